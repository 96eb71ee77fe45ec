"""Fewer hops (issue 19, item 2): a comment whose author has no followers skips the follows
stage. The threads stage hands its candidacies to the inbox itself once the follows stage has
said the author has none; everything a reader notices (who is told, why, what an edit or a
removal reaches, what erasure forgets) stays as it was. Expectations are written by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain import local
from newsroom_notify.domain.dispatch import Stages
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.intents import Intent, Stage, ToRecipients, ToStage
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import (
    Activity,
    CommenterFollowed,
    Edit,
    Erase,
    FollowChange,
    NoFollowers,
    Retraction,
)
from newsroom_notify.domain.model import ArticleInfo, Subject
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
    comment,
    created,
    edit,
    erase,
    member,
    moderate,
    retracted,
    subscribe,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
DAN = member("m-dan", "Dan Roe", "dan@example.org")
BEN_KEY = "commenter:m-ben"

Delivered = list[tuple[Stage, str, BaseModel]]


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> Delivered:
    """Every message the in-process pipeline hands to a stage: (stage, key, message)."""
    seen: Delivered = []
    real = local.deliver

    def recording(stages: Stages, stage: Stage, key: str, message: BaseModel) -> list[Intent]:
        seen.append((stage, key, message))
        return real(stages, stage, key, message)

    monkeypatch.setattr(local, "deliver", recording)
    return seen


@pytest.fixture
def pipe() -> LocalPipeline:
    tokens = Tokens(["hops-key"], unsubscribe_max_age=3600, confirm_max_age=3600)
    p = LocalPipeline(tokens=tokens, clock=Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC)))
    p.feed([article("a-1")])
    return p


def to_follows(seen: Delivered) -> list[str]:
    """The kinds of the messages the follows stage was handed."""
    return [getattr(m, "kind", type(m).__name__) for s, _, m in seen if s is Stage.FOLLOWS]


def told(outputs: list[ev.CloudEvent]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (n.data.recipient.id, n.data.reason, n.data.comment.id if n.data.comment else None)
        for n in created(outputs)
    )


def test_once_known_without_followers_a_comment_skips_the_follows_stage(
    pipe: LocalPipeline, delivered: Delivered
) -> None:
    """Ben has no followers. His first comment goes through the follows stage (nobody knew),
    which tells the threads stage; his next comment goes to the inbox straight from there,
    and Ana is told of both replies exactly as before."""
    pipe.feed([comment("c1", ANA, notify="replies")])
    delivered.clear()
    assert told(pipe.feed([comment("c2", BEN, "first", parent="c1")])) == [("m-ana", "reply", "c2")]
    assert to_follows(delivered) == ["activity"]
    assert BEN_KEY in pipe.tables["unfollowed_commenters"]
    delivered.clear()
    assert told(pipe.feed([comment("c3", BEN, "@Ana Lima again", parent="c1")])) == [
        ("m-ana", "reply", "c3")
    ]
    assert to_follows(delivered) == []
    # A top-level comment nobody is a candidate for crosses nothing after the threads stage.
    delivered.clear()
    assert pipe.feed([comment("c4", BEN, "on its own")]) == []
    assert [s for s, _, _ in delivered] == [Stage.THREADS]


def test_a_first_follower_brings_the_follows_stage_back(
    pipe: LocalPipeline, delivered: Delivered
) -> None:
    """Once Cal follows Ben, Ben's comments go through the follows stage again and Cal is
    told of them; if Cal leaves, the follows stage says so with Ben's next comment."""
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1")])
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    assert BEN_KEY not in pipe.tables["unfollowed_commenters"]
    delivered.clear()
    assert told(pipe.feed([comment("c3", BEN, parent="c1")])) == [
        ("m-ana", "reply", "c3"),
        ("m-cal", "followed_commenter", "c3"),
    ]
    assert to_follows(delivered) == ["activity"]
    pipe.feed([cancel("m-cal", "commenter", "m-ben")])
    pipe.feed([comment("c4", BEN, parent="c1")])  # through the follows stage: none now
    delivered.clear()
    assert told(pipe.feed([comment("c5", BEN, parent="c1")])) == [("m-ana", "reply", "c5")]
    assert to_follows(delivered) == []


def follow(sid: str, active: bool = True) -> FollowChange:
    return FollowChange(
        subscriber_id=sid, scope="commenter", target="m-ben", delivery="instant", active=active
    )


def test_the_follows_stage_tells_the_threads_stage_of_a_first_follower_only() -> None:
    """0 -> 1 follower: every threads partition is told; a second follower: nothing; the same
    follow again (a replay after a crash may have lost the first message): told again; the
    last follower leaving: nothing (the next comment says it); erasure: told (the threads
    stage's record names the erased commenter)."""
    stage = FollowsStage(heads={}, chunks={}, fanout={})

    def told_threads(out: list[Intent]) -> list[BaseModel]:
        return [i.message for i in out if isinstance(i, ToStage) and i.stage is Stage.THREADS]

    first = told_threads(stage.on_follow_change(BEN_KEY, follow("m-cal")))
    assert first == [CommenterFollowed(entity=BEN_KEY)]
    assert told_threads(stage.on_follow_change(BEN_KEY, follow("m-dan"))) == []
    assert told_threads(stage.on_follow_change(BEN_KEY, follow("m-dan"))) == first
    assert told_threads(stage.on_follow_change(BEN_KEY, follow("m-dan", active=False))) == []
    assert told_threads(stage.on_follow_change(BEN_KEY, follow("m-cal", active=False))) == []
    assert told_threads(stage.on_erase(BEN_KEY, Erase(subscriber_id="m-ben"))) == first
    # A journalist's or section's followers are not the threads stage's concern.
    journalist = FollowChange(
        subscriber_id="m-cal", scope="journalist", target="j-1", delivery="instant", active=True
    )
    assert told_threads(stage.on_follow_change("journalist:j-1", journalist)) == []


def test_edits_and_removal_reach_whoever_got_the_skipped_fan_out(
    pipe: LocalPipeline, delivered: Delivered
) -> None:
    """Ben's reply (sent from the threads stage) reached Ana (reply), Cal (mention) and Dan
    (article follower). Then Dan stops following the article and Cal starts following Ben:
    the edit and the removal still reach exactly Ana, Cal and Dan, by the notifications'
    ids, and nothing about the comment goes through the follows stage."""
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1")])
    pipe.feed([subscribe(CAL, "article", "a-2", "instant"), comment("c9", CAL)])
    pipe.feed([subscribe(DAN, "article", "a-1", "instant")])
    delivered.clear()
    sent = created(pipe.feed([comment("c3", BEN, "@Cal Duarte see", parent="c1")]))
    assert told(sent) == [
        ("m-ana", "reply", "c3"),
        ("m-cal", "mention", "c3"),
        ("m-dan", "follow_up", "c3"),
    ]
    assert to_follows(delivered) == []
    pipe.feed([cancel("m-dan", "article", "a-1")])
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    delivered.clear()
    pipe.feed([edit("c3", "@Cal Duarte see this")])
    edits = sorted(k for s, k, m in delivered if s is Stage.INBOX and isinstance(m, Edit))
    assert edits == ["m-ana", "m-cal", "m-dan"]
    out = pipe.feed([moderate("c3", "spam")])
    assert sorted((r.data.recipient_id, r.data.notification_id) for r in retracted(out)) == sorted(
        (n.data.recipient.id, n.data.notification_id) for n in sent
    )
    assert to_follows(delivered) == []
    assert all(
        not isinstance(m, Retraction) or k in {"m-ana", "m-cal", "m-dan"} for _, k, m in delivered
    )


def test_a_comment_that_went_through_the_follows_stage_is_removed_through_it(
    pipe: LocalPipeline,
) -> None:
    """Ben's reply went through the follows stage (Cal followed him then; every comment before
    an upgrade did too). Cal leaves, and the threads stage learns that Ben has no followers:
    that changes nothing for the earlier reply. A redelivery of the event that fanned it out
    takes the same route, and its removal reaches Ana and Cal, who got it."""
    pipe.feed([comment("c1", ANA, notify="replies")])
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    posted = comment("c2", BEN, parent="c1")
    sent = created(pipe.feed([posted]))
    assert told(sent) == [("m-ana", "reply", "c2"), ("m-cal", "followed_commenter", "c2")]
    pipe.feed([cancel("m-cal", "commenter", "m-ben"), comment("c3", BEN, parent="c1")])
    assert BEN_KEY in pipe.tables["unfollowed_commenters"]
    pipe.feed([posted])  # the same event again (a rebalance): the same route
    out = pipe.feed([moderate("c2", "trash")])
    assert sorted((r.data.recipient_id, r.data.notification_id) for r in retracted(out)) == sorted(
        (n.data.recipient.id, n.data.notification_id) for n in sent
    )


def test_an_upgraded_deployment_keeps_notifying_followers(pipe: LocalPipeline) -> None:
    """Before the upgrade Cal followed Ben; the threads stage's new table starts empty.
    Nothing is assumed: Ben's comments go through the follows stage, and Cal is told."""
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    pipe.tables["unfollowed_commenters"].clear()  # as a worker upgraded in place has it
    assert told(pipe.feed([comment("c1", BEN)])) == [("m-cal", "followed_commenter", "c1")]
    assert told(pipe.feed([comment("c2", BEN)])) == [("m-cal", "followed_commenter", "c2")]
    assert pipe.tables["unfollowed_commenters"] == {}


def test_erasure_forgets_the_commenter_and_the_recipient(pipe: LocalPipeline) -> None:
    """Ben (known to have no followers) and Ana (a recipient of his skipped fan-out) are
    erased: no table names either of them any more."""
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1")])
    pipe.feed([comment("c3", BEN, "@Ana Lima hi", parent="c1")])
    assert pipe.tables["comments"]["a-1/c3"].direct == ["m-ana"]
    pipe.feed([erase("m-ana")])
    assert pipe.tables["comments"]["a-1/c3"].direct == []
    pipe.feed([erase("m-ben")])
    assert BEN_KEY not in pipe.tables["unfollowed_commenters"]
    text = repr({name: dict(table) for name, table in pipe.tables.items()})
    assert "m-ana" not in text
    assert "m-ben" not in text


def test_past_its_cap_the_table_takes_nobody_and_comments_take_the_hop(
    pipe: LocalPipeline, delivered: Delivered
) -> None:
    """With room for one commenter, Ben (second) is not recorded: his comments go through
    the follows stage, and notify as before, and the threads stage no longer asks about him
    (no message to every threads partition per comment); the cap is counted."""
    capped: list[str] = []
    pipe.threads.unfollowed_max = 1
    pipe.threads.on_capped = capped.append
    pipe.feed([comment("c1", ANA, notify="replies")])  # Ana: the one recorded
    pipe.feed([comment("c2", BEN, parent="c1")])
    assert list(pipe.tables["unfollowed_commenters"]) == ["commenter:m-ana"]
    assert capped == ["unfollowed_commenters"]
    delivered.clear()
    assert told(pipe.feed([comment("c3", BEN, parent="c1")])) == [("m-ana", "reply", "c3")]
    assert to_follows(delivered) == ["activity"]
    assert [m for _, _, m in delivered if isinstance(m, NoFollowers)] == []


def test_a_no_followers_message_is_what_the_follows_stage_sends() -> None:
    """The follows stage tells the threads stage after a comment of a commenter without
    followers when the threads stage asked (it has room to remember), not after one of a
    followed commenter, nor for an article."""
    info = ArticleInfo(id="a-1", title="t", url="", journalist_id="j-1")
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    unasked = Activity(event="comment", subject=Subject(key="c:c1", article=info), at=at)
    activity = unasked.model_copy(update={"learn": True})
    stage = FollowsStage(heads={}, chunks={}, fanout={})
    assert stage.on_activity(BEN_KEY, unasked) == []
    assert stage.on_activity(BEN_KEY, activity) == [  # to the partition of the article asking
        ToStage(Stage.THREADS, "a-1", NoFollowers(entity=BEN_KEY))
    ]
    stage.on_follow_change(BEN_KEY, follow("m-cal"))
    out = stage.on_activity(BEN_KEY, activity)
    (fan,) = out  # m-cal's candidacy, no message to the threads stage
    assert isinstance(fan, ToRecipients)
    assert list(fan.bases) == ["m-cal"]
    article_activity = activity.model_copy(update={"event": "article", "subject": activity.subject})
    assert stage.on_activity("journalist:j-1", article_activity) == []


def test_with_the_shortcut_off_the_threads_stage_is_never_told() -> None:
    """NEWSROOM_LIMITS__UNFOLLOWED_COMMENTERS=0: the follows stage sends nothing to the threads
    stage for a commenter without followers, so every comment crosses the follows topic."""
    info = ArticleInfo(id="a-1", title="t", url="", journalist_id="j-1")
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    activity = Activity(
        event="comment", subject=Subject(key="c:c1", article=info), at=at, learn=True
    )
    stage = FollowsStage(heads={}, chunks={}, fanout={}, tell_no_followers=False)
    assert stage.on_activity(BEN_KEY, activity) == []
