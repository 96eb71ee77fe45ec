"""An entity's followers are kept in chunks (issue 19 item 4): a follow, an unfollow or an
erasure rewrites one chunk and the entity's small head whatever the number of followers, and
a fan-out to a section's followers is walked a bounded number of followers per handler call,
each follower reached once, the thread's candidates merged with their follower basis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from pydantic import BaseModel

from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.intents import Intent, Stage, ToRecipients, ToStage
from newsroom_notify.domain.keys import ENTITY_FOLLOWER_CHUNKS, follower_chunk, follower_chunk_key
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import (
    Activity,
    Candidacy,
    Edit,
    Erase,
    FanoutStep,
    FollowChange,
    FollowEnded,
    Retraction,
)
from newsroom_notify.domain.model import (
    ArticleInfo,
    Basis,
    CommentSummary,
    Condition,
    Reason,
    Subject,
)
from newsroom_notify.domain.state import Followers
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.stream.stages import decode_stage_message
from tests.builders import Clock, article, cancel, created, erase, member, subscribe

M = TypeVar("M", bound=BaseModel)
SECTION = "section:politics"
ARTICLE = ArticleInfo(
    id="a-9", title="Vote", url="https://n.example/a-9", journalist_id="j-1", section="politics"
)
AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class Recorded(dict[str, M]):
    """A table that remembers which keys were written or deleted (as a changelog would)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def __setitem__(self, key: str, value: M) -> None:
        self.writes.append(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.writes.append(key)
        super().__delitem__(key)


def follow(entity: str, sid: str, delivery: str = "instant", active: bool = True) -> FollowChange:
    scope, _, target = entity.partition(":")
    return FollowChange(
        subscriber_id=sid,
        scope=scope,  # type: ignore[arg-type]
        target=target,
        delivery=delivery,  # type: ignore[arg-type]
        active=active,
    )


def stage_with(followers: int, step: int = 50, entity: str = SECTION) -> FollowsStage:
    stage = FollowsStage(heads=Recorded(), chunks=Recorded(), fanout={}, step_recipients=step)
    for i in range(followers):
        stage.on_follow_change(entity, follow(entity, f"m-{i}"))
    return stage


def news(candidates: dict[str, list[Basis]] | None = None) -> Activity:
    return Activity(
        event="article",
        subject=Subject(key="a:a-9", article=ARTICLE),
        candidates=candidates or {},
        at=AT,
        origin="evt-9",
    )


def walk(stage: FollowsStage, entity: str, activity: Activity) -> Iterator[list[Intent]]:
    """Each handler call of a fan-out, in order; every step as the follows topic carries it."""
    out = stage.on_activity(entity, activity)
    while True:
        yield out
        steps = [o for o in out if isinstance(o, ToStage) and o.stage is Stage.FOLLOWS]
        if not steps:
            return
        (step,) = steps
        assert step.key == entity
        decoded = decode_stage_message(step.key.encode(), step.message.model_dump_json().encode())
        assert isinstance(decoded, FanoutStep)
        out = stage.on_fanout_step(entity, decoded)


def candidacies(out: list[Intent]) -> list[Candidacy]:
    """The candidacies a handler call hands the inbox, one per recipient, in order."""
    return [
        Candidacy(recipient_id=rid, subject=o.subject, bases=bases, at=o.at, origin=o.origin)
        for o in out
        if isinstance(o, ToRecipients)
        for rid, bases in o.bases.items()
    ]


def next_steps(out: list[Intent]) -> list[FanoutStep]:
    """The next step a handler call of a fan-out sends itself, if any."""
    return [o.message for o in out if isinstance(o, ToStage) and isinstance(o.message, FanoutStep)]


def largest_chunk(stage: FollowsStage) -> int:
    return max(len(c.delivery) for c in stage.chunks.values())


def test_a_fan_out_reaches_every_follower_once_a_bounded_number_per_handler_call() -> None:
    stage = stage_with(1_000, step=50)
    calls = list(walk(stage, SECTION, news()))
    recipients = [c.recipient_id for out in calls for c in candidacies(out)]
    assert sorted(recipients) == sorted(f"m-{i}" for i in range(1_000))  # each exactly once
    assert len(calls) >= 1_000 // (50 + largest_chunk(stage))
    # whole chunks are taken: a call stops at the first chunk after 50 followers
    assert max(len(candidacies(out)) for out in calls) < 50 + largest_chunk(stage)
    assert all(c.bases[0].reason == Reason.NEW_ARTICLE for out in calls for c in candidacies(out))


def test_a_small_fan_out_is_one_call_with_no_step() -> None:
    stage = stage_with(30, step=50)
    out = stage.on_activity(SECTION, news())
    assert len(candidacies(out)) == 30
    assert len(out) == 1  # one intent: the candidacies, no next step
    assert isinstance(out[0], ToRecipients)


def test_the_journalist_is_not_told_of_their_own_article_whichever_chunk_they_are_in() -> None:
    stage = stage_with(300, step=20)
    stage.on_follow_change(SECTION, follow(SECTION, "j-1"))
    recipients = {c.recipient_id for out in walk(stage, SECTION, news()) for c in candidacies(out)}
    assert "j-1" not in recipients
    assert len(recipients) == 300


def test_a_thread_candidate_who_follows_gets_one_candidacy_with_every_basis() -> None:
    entity = "commenter:m-ben"
    stage = stage_with(400, step=10, entity=entity)
    reply = Basis(
        reason=Reason.REPLY, condition=Condition.ASKED_FOR_REPLIES, scope="article", target="a-9"
    )
    comment = CommentSummary(
        id="c-1", author_id="m-ben", author_name="Ben", excerpt="hi", url="https://n.example/c"
    )
    activity = Activity(
        event="comment",
        subject=Subject(key="c:c-1", article=ARTICLE, comment=comment),
        candidates={"m-7": [reply], "m-outsider": [reply]},
        at=AT,
        origin="evt-1",
    )
    calls = list(walk(stage, entity, activity))
    assert len(calls) > 2
    got = [c for out in calls for c in candidacies(out)]
    by_recipient = {c.recipient_id: c for c in got}
    assert len(got) == len(by_recipient) == 401  # the follower candidate once, the outsider too
    assert [b.reason for b in by_recipient["m-7"].bases] == [
        Reason.REPLY,
        Reason.FOLLOWED_COMMENTER,
    ]
    assert [b.reason for b in by_recipient["m-outsider"].bases] == [Reason.REPLY]
    # a retraction later reaches exactly who got it, from every step
    assert set(stage.fanout["commenter:m-ben|c:c-1"].recipients) == set(by_recipient)


def test_a_replayed_step_hands_out_the_same_candidacies_and_the_same_next_step() -> None:
    stage = stage_with(500, step=40)
    first = stage.on_activity(SECTION, news())
    (step,) = next_steps(first)
    once, again = stage.on_fanout_step(SECTION, step), stage.on_fanout_step(SECTION, step)
    assert once == again
    assert len(candidacies(once)) >= 40


def test_a_follow_rewrites_one_chunk_and_the_head_not_the_follower_list() -> None:
    stage = stage_with(2_000)
    heads, chunks = stage.heads, stage.chunks
    assert isinstance(heads, Recorded)
    assert isinstance(chunks, Recorded)
    heads.writes.clear()
    chunks.writes.clear()
    stage.on_follow_change(SECTION, follow(SECTION, "m-new"))
    assert chunks.writes == [follower_chunk_key(SECTION, follower_chunk("m-new"))]
    assert heads.writes == [SECTION]
    assert len(chunks[chunks.writes[0]].delivery) < 10  # about 2,000 / 4,096 others
    assert heads[SECTION].count == 2_001
    # a new delivery of a known follower: their chunk only
    chunks.writes.clear()
    heads.writes.clear()
    stage.on_follow_change(SECTION, follow(SECTION, "m-new", "digest"))
    assert (chunks.writes, heads.writes) == (
        [follower_chunk_key(SECTION, follower_chunk("m-new"))],
        [],
    )
    assert stage.followers_of(SECTION)["m-new"] == "digest"


def test_an_unfollow_or_an_erasure_leaves_no_trace_of_the_follower() -> None:
    stage = stage_with(3)
    stage.on_follow_change(SECTION, follow(SECTION, "m-1", active=False))
    stage.on_erase(SECTION, Erase(subscriber_id="m-2"))
    assert stage.followers_of(SECTION) == {"m-0": "instant"}
    assert stage.heads[SECTION].count == 1
    assert "m-1" not in repr(dict(stage.chunks))
    assert "m-2" not in repr(dict(stage.chunks))
    stage.on_follow_change(SECTION, follow(SECTION, "m-0", active=False))
    assert dict(stage.heads) == {}
    assert dict(stage.chunks) == {}


def test_an_erased_commenter_leaves_no_chunk_naming_them_even_one_the_head_missed() -> None:
    entity = "commenter:m-ben"
    stage = stage_with(50, entity=entity)
    # a crash between two writes can leave a chunk the head does not list
    stray = next(n for n in range(ENTITY_FOLLOWER_CHUNKS) if n not in stage.heads[entity].chunks)
    stage.chunks[follower_chunk_key(entity, stray)] = stage.chunks[
        follower_chunk_key(entity, stage.heads[entity].chunks[0])
    ].model_copy(deep=True)
    out = stage.on_erase(entity, Erase(subscriber_id="m-ben"))
    ended = {o.message.subscriber_id for o in out if isinstance(o.message, FollowEnded)}
    assert ended == {f"m-{i}" for i in range(50)}
    assert not any("m-ben" in key for key in [*stage.heads, *stage.chunks])


def test_a_follow_replayed_after_a_crash_between_its_writes_is_reached_by_fan_outs() -> None:
    stage = stage_with(0)
    stage.on_follow_change(SECTION, follow(SECTION, "m-1"))
    del stage.chunks[follower_chunk_key(SECTION, follower_chunk("m-1"))]  # the chunk was lost
    stage.on_follow_change(SECTION, follow(SECTION, "m-1"))  # the replay
    assert [c.recipient_id for c in candidacies(stage.on_activity(SECTION, news()))] == ["m-1"]


def test_the_caps_of_commenters_and_of_sections_are_apart() -> None:
    capped: list[str] = []
    stage = FollowsStage(heads={}, chunks={}, fanout={}, followers_max=2)
    stage.publisher_followers_max = 3
    stage.on_capped = capped.append
    for i in range(5):
        stage.on_follow_change("commenter:m-ben", follow("commenter:m-ben", f"m-{i}"))
        stage.on_follow_change(SECTION, follow(SECTION, f"m-{i}"))
    assert len(stage.followers_of("commenter:m-ben")) == 2
    assert len(stage.followers_of(SECTION)) == 3
    assert capped == ["followers"] * 5
    # an unfollow makes room for a newcomer
    stage.on_follow_change(SECTION, follow(SECTION, "m-0", active=False))
    stage.on_follow_change(SECTION, follow(SECTION, "m-9"))
    assert "m-9" in stage.followers_of(SECTION)


@pytest.fixture
def pipe() -> LocalPipeline:
    return LocalPipeline(
        tokens=Tokens(["k"], 3600, 3600), clock=Clock(datetime(2026, 11, 28, 8, tzinfo=UTC))
    )


def test_every_section_follower_hears_of_a_new_article_once_through_the_pipeline(
    pipe: LocalPipeline,
) -> None:
    pipe.follows.step_recipients = 7
    readers = [f"m-r{i}" for i in range(60)]
    pipe.feed(subscribe(member(r, r.upper()), "section", "politics", "instant") for r in readers)
    pipe.feed([cancel("m-r0", "section", "politics"), erase("m-r1")])
    out = created(pipe.feed([article("a-9", section="politics")]))
    assert sorted(n.data.recipient.id for n in out) == sorted(readers[2:])
    assert {n.data.reason for n in out} == {"new_article"}


def test_a_comment_edited_and_removed_while_its_fan_out_walks_reaches_every_follower_so() -> None:
    entity = "commenter:m-ben"
    stage = stage_with(300, step=20, entity=entity)
    comment = CommentSummary(
        id="c-1", author_id="m-ben", author_name="Ben", excerpt="hi", url="https://n.example/c"
    )
    subject = Subject(key="c:c-1", article=ARTICLE, comment=comment)
    posted = Activity(event="comment", subject=subject, at=AT, origin="evt-1")
    first = stage.on_activity(entity, posted)
    (step,) = next_steps(first)
    told = {c.recipient_id for c in candidacies(first)}
    # the edit and the removal reach the follows key before the next step (same key: same
    # partition); they go to who was told so far
    edited = Activity(event="edit", subject=subject, excerpt="bye", at=AT, origin="evt-2")
    assert {o.key for o in stage.on_activity(entity, edited)} == told
    removed = Activity(event="retract", subject=subject, cause="spam", at=AT, origin="evt-3")
    assert {o.key for o in stage.on_activity(entity, removed)} == told
    # every later step: each follower's candidacy, then the edit and the retraction, as if
    # the walk had ended before them; the walk goes on to the last follower
    out = stage.on_fanout_step(entity, step)
    later: list[str] = []
    while True:
        given = [c.recipient_id for c in candidacies(out)]
        assert isinstance(out[0], ToRecipients)  # the candidacies first
        inbox = [o for o in out if isinstance(o, ToStage) and o.stage is Stage.INBOX]
        pairs = list(zip(inbox[::2], inbox[1::2], strict=True))
        assert [edit.key for edit, _ in pairs] == given  # then each one's edit and retraction
        for edit, retraction in pairs:
            assert isinstance(edit.message, Edit)
            assert edit.message.excerpt == "bye"
            assert isinstance(retraction.message, Retraction)
            assert edit.key == retraction.key == retraction.message.recipient_id
            assert retraction.message.cause == "spam"
        later += given
        steps = next_steps(out)
        if not steps:
            break
        out = stage.on_fanout_step(entity, steps[0])
    assert sorted([*told, *later]) == sorted(f"m-{i}" for i in range(300))


def test_followers_stored_before_the_chunks_move_into_them_on_first_use() -> None:
    """An upgrade in place: an entity's followers in the old single record (``followers``
    table) are all still told of its next article, each once, and the old record is gone."""

    legacy = {SECTION: Followers(delivery={f"m-{i}": "instant" for i in range(300)})}
    legacy["section:other"] = Followers(delivery={"m-x": "digest"})
    stage = FollowsStage(
        heads=Recorded(), chunks=Recorded(), fanout={}, step_recipients=40, legacy=legacy
    )
    recipients = [c.recipient_id for out in walk(stage, SECTION, news()) for c in candidacies(out)]
    assert sorted(recipients) == sorted(f"m-{i}" for i in range(300))
    assert SECTION not in legacy  # moved
    assert "section:other" in legacy  # only the entity touched
    assert stage.heads[SECTION].count == 300
    # A follow, then an unfollow, of an entity not yet moved: the old followers come along.
    stage.on_follow_change("section:other", follow("section:other", "m-y"))
    stage.on_follow_change("section:other", follow("section:other", "m-x", active=False))
    assert stage.followers_of("section:other") == {"m-y": "instant"}
    assert legacy == {}


def test_a_move_replayed_after_a_crash_counts_no_follower_twice() -> None:

    legacy = {SECTION: Followers(delivery={f"m-{i}": "instant" for i in range(50)})}
    stage = FollowsStage(heads={}, chunks={}, fanout={}, legacy=legacy)
    stage.on_follow_change(SECTION, follow(SECTION, "m-new"))
    legacy[SECTION] = Followers(delivery={f"m-{i}": "instant" for i in range(50)})  # not deleted
    stage.on_follow_change(SECTION, follow(SECTION, "m-0", "digest"))  # the replay moves again
    assert stage.heads[SECTION].count == 51
    assert stage.followers_of(SECTION)["m-0"] == "digest"
