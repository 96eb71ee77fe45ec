"""Every rule of DESIGN.md, told as small stories through the in-process pipeline."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import itsdangerous.timed
import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain import tokens as tokens_module
from newsroom_notify.domain.keys import sent_key, sent_prefix
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims, Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
    comment,
    confirm,
    created,
    delete,
    edit,
    erase,
    guest,
    member,
    moderate,
    preferences,
    retracted,
    sid_of,
    subscribe,
    summary,
    tampered,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte")
GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = sid_of(GEOFF)


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["key-2", "key-1"], unsubscribe_max_age=3600, confirm_max_age=3600)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def pipe(tokens: Tokens, clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=tokens, clock=clock)
    p.feed([article()])
    return p


# ---------------------------------------------------------------- rule "Replies"


def test_reply_notifies_the_parent_author_who_asked_for_replies(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed([comment("c1", ANA, "So where do the buses go?", notify="replies")])
    out = pipe.feed([comment("c2", BEN, "Read paragraph two.", parent="c1")])
    (n,) = created(out)
    assert n.data.recipient.id == "m-ana"
    assert n.data.recipient.email == "ana@example.org"
    assert n.data.reason == "reply"
    assert n.data.comment is not None
    assert n.data.comment.id == "c2"
    assert n.data.comment.author_name == "Ben Okoro"
    assert n.data.parent is not None
    assert n.data.parent.id == "c1"
    assert n.data.article.url == "https://news.example.com/a-1"
    assert n.data.comment.url == "https://news.example.com/a-1#comment-c2"
    assert n.partition_key() == "m-ana"
    claims = tokens.read_unsubscribe(n.data.unsubscribe_token)
    assert (claims.subscriber_id, claims.scope, claims.target) == ("m-ana", "replies", "a-1")


def test_reply_to_someone_who_did_not_ask_notifies_nobody(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA)])
    assert pipe.feed([comment("c2", BEN, parent="c1")]) == []


def test_follow_up_choice_also_asks_for_replies(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up")])
    out = pipe.feed([comment("c2", BEN, parent="c1")])
    assert summary(out) == {("m-ana", "reply", "c2")}


def test_a_notify_of_tick_keeps_an_explicitly_chosen_delivery(pipe: LocalPipeline) -> None:
    """An instant follow chosen on the site, then the comment form's tick (no delivery): the
    follow stays instant, whichever of the two arrives first."""
    pipe.feed([subscribe(ANA, "article", "a-1", "instant")])
    pipe.feed([comment("c1", ANA, notify="follow_up")])
    out = pipe.feed([comment("c2", BEN)])
    assert summary(out) == {("m-ana", "follow_up", "c2")}


def test_site_wide_replies_subscription_asks_for_replies_everywhere(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(ANA, "replies", None), comment("c1", ANA)])
    out = pipe.feed([comment("c2", BEN, parent="c1")])
    assert summary(out) == {("m-ana", "reply", "c2")}


def test_nobody_is_notified_of_their_own_comment(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up"), subscribe(ANA, "article", "a-1", "instant")])
    out = pipe.feed([comment("c2", ANA, "@Ana Lima replying to myself", parent="c1")])
    assert out == []


# ------------------------------------------ rule "Only approved comments notify"


def test_only_approved_comments_notify_and_a_later_approval_notifies_once(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([comment("c1", ANA, notify="replies")])
    assert pipe.feed([comment("c2", BEN, parent="c1", status="pending")]) == []
    assert pipe.feed([comment("c3", BEN, parent="c1", status="spam")]) == []
    approval = moderate("c2", "approved")
    out = pipe.feed([approval])
    assert summary(out) == {("m-ana", "reply", "c2")}
    # The same approval delivered again (at-least-once) only repeats the same notification id.
    assert [n.id for n in created(pipe.feed([approval]))] == [n.id for n in created(out)]
    # A moderator approving it once more sends nothing.
    assert pipe.feed([moderate("c2", "approved")]) == []


def test_approval_after_removal_does_not_notify_again(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1")])
    pipe.feed([moderate("c2", "spam")])
    assert created(pipe.feed([moderate("c2", "approved")])) == []


def test_edits_never_notify(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1")])
    assert pipe.feed([edit("c2", "Edited: read paragraph two, @Ana Lima")]) == []


# ------------------------------------------------- rule "Removed after the fact"


@pytest.mark.parametrize(
    ("removal", "cause"),
    [
        (moderate("c2", "spam"), "spam"),
        (moderate("c2", "trash"), "trash"),
        (delete("c2"), "deleted"),
    ],
)
def test_removed_comment_retracts_every_instant_notification_it_caused(
    pipe: LocalPipeline, removal: ev.CloudEvent, cause: str
) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(CAL, "article", "a-1", "instant"),
        ]
    )
    sent = created(pipe.feed([comment("c2", BEN, parent="c1")]))
    assert {n.data.recipient.id for n in sent} == {"m-ana", "m-cal"}
    out = pipe.feed([removal])
    assert {(r.data.notification_id, r.data.recipient_id) for r in retracted(out)} == {
        (n.data.notification_id, n.data.recipient.id) for n in sent
    }
    assert {r.data.cause for r in retracted(out)} == {cause}
    assert created(out) == []


def test_removing_a_comment_that_never_notified_retracts_nothing(pipe: LocalPipeline) -> None:
    pipe.feed(
        [comment("c1", ANA, notify="replies"), comment("c2", BEN, parent="c1", status="pending")]
    )
    assert pipe.feed([moderate("c2", "spam")]) == []


# -------------------------------- rule "One notification per person per comment"


def test_one_notification_per_recipient_and_comment_strongest_reason_wins(
    pipe: LocalPipeline,
) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(ANA, "article", "a-1", "instant"),
            subscribe(ANA, "commenter", "m-ben", "instant"),
        ]
    )
    out = pipe.feed([comment("c2", BEN, "@Ana Lima see above", parent="c1")])
    assert summary(out) == {("m-ana", "reply", "c2")}


def test_followed_commenter_beats_follow_up(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1", "instant"),
            subscribe(CAL, "commenter", "m-ben", "instant"),
        ]
    )
    out = pipe.feed([comment("c2", BEN)])
    assert summary(out) == {("m-cal", "followed_commenter", "c2")}


def test_a_weaker_reason_applies_when_the_stronger_one_is_not_wanted(pipe: LocalPipeline) -> None:
    # Ana never asked for replies, but follows Ben: she hears of his reply as his follower.
    pipe.feed([comment("c1", ANA), subscribe(ANA, "commenter", "m-ben", "instant")])
    out = pipe.feed([comment("c2", BEN, parent="c1")])
    assert summary(out) == {("m-ana", "followed_commenter", "c2")}


def test_following_the_article_counts_as_asking_for_replies(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA), subscribe(ANA, "article", "a-1", "instant")])
    out = pipe.feed([comment("c2", BEN, parent="c1")])
    assert summary(out) == {("m-ana", "reply", "c2")}


# --------------------------------------------------------------- rule "Mentions"


def test_mention_of_a_consenting_participant(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up")])  # participant with a subscription
    out = pipe.feed([comment("c2", BEN, "I agree with @ana lima on this.")])
    assert summary(out) == {("m-ana", "mention", "c2")}


def test_mention_by_handle(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies")])
    out = pipe.feed([comment("c2", BEN, "cc @AnaLima")])
    assert summary(out) == {("m-ana", "mention", "c2")}


def test_mention_of_a_participant_without_consent_notifies_nobody(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA)])
    assert pipe.feed([comment("c2", BEN, "@Ana Lima what do you think?")]) == []


def test_mention_of_someone_outside_the_thread_notifies_nobody(pipe: LocalPipeline) -> None:
    pipe.feed([article("a-2"), comment("c1", ANA, aid="a-2", notify="replies")])
    assert pipe.feed([comment("c2", BEN, "@Ana Lima come here")]) == []


# ---------------------------------------------------------------- rule "Follows"


def test_article_follow_up_goes_to_the_digest_by_default(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1")])
    assert pipe.feed([comment("c2", BEN)]) == []
    assert pipe.tables["digest_members"]["a-1|m-cal"].schedule == "daily|UTC|8"


def test_instant_article_follower_gets_follow_ups(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    out = pipe.feed([comment("c2", BEN)])
    assert summary(out) == {("m-cal", "follow_up", "c2")}


def test_followed_commenter_in_digest_mode_is_kept_for_the_digest(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben")])
    assert pipe.feed([comment("c2", BEN)]) == []
    entry = pipe.tables["digests"]["m-cal"].items["c:c2"]
    assert entry.reason == "followed_commenter"


def test_new_article_reaches_journalist_and_section_followers_once(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            subscribe(ANA, "journalist", "j-9", "instant"),
            subscribe(ANA, "section", "politics", "instant"),
            subscribe(BEN, "section", "politics", "instant"),
        ]
    )
    out = pipe.feed([article("a-9", journalist="j-9", section="politics")])
    assert {(n.data.recipient.id, n.data.reason, n.data.article.id) for n in created(out)} == {
        ("m-ana", "new_article", "a-9"),
        ("m-ben", "new_article", "a-9"),
    }
    assert pipe.feed([article("a-9", journalist="j-9", section="politics", updated=True)]) == []


def test_cancelled_subscription_stops_notifications(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    assert created(pipe.feed([comment("c2", BEN)]))
    pipe.feed([cancel("m-cal", "article", "a-1")])
    assert pipe.feed([comment("c3", BEN)]) == []


def test_unsubscribe_token_cancels_exactly_its_subscription(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1", "instant"),
            subscribe(CAL, "commenter", "m-ben", "instant"),
        ]
    )
    (n,) = created(pipe.feed([comment("c2", BEN)]))
    assert n.data.reason == "followed_commenter"
    pipe.inbox.unsubscribe(n.data.unsubscribe_token)  # cancels the commenter follow only
    out = pipe.feed([comment("c3", BEN)])
    assert summary(out) == {("m-cal", "follow_up", "c3")}


def test_tokens_are_rejected_when_forged_expired_or_of_another_purpose(tokens: Tokens) -> None:
    claims = TokenClaims("m-ana", "article", "a-1")
    token = tokens.unsubscribe(claims)
    with pytest.raises(InvalidToken):
        tokens.read_confirm(token)  # another purpose
    with pytest.raises(InvalidToken):
        tokens.read_unsubscribe(tampered(token))
    other = Tokens(["attacker"], 3600, 3600)
    with pytest.raises(InvalidToken):
        tokens.read_unsubscribe(other.unsubscribe(claims))
    expired = Tokens(["key-2"], unsubscribe_max_age=-1, confirm_max_age=-1)
    with pytest.raises(InvalidToken, match="expired"):
        expired.read_unsubscribe(expired.unsubscribe(claims))


def test_tokens_for_the_same_claims_are_reused_briefly_and_never_across_claims(
    tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = TokenClaims("m-ana", "article", "a-1")
    first = tokens.unsubscribe(ana)
    assert tokens.unsubscribe(ana) == first  # memoised: no second signature
    assert tokens.read_unsubscribe(first) == ana
    others = {
        tokens.unsubscribe(TokenClaims("m-ana", "article", "a-2")),
        tokens.unsubscribe(TokenClaims("m-ben", "article", "a-1")),
        tokens.unsubscribe(TokenClaims("m-ana", "commenter", "a-1")),
        tokens.manage("m-ana"),
    }
    assert first not in others
    assert len(others) == 4
    with pytest.raises(InvalidToken):
        tokens.read_manage(first)  # the memo keeps purposes apart
    later, wall = time.monotonic() + tokens_module.REUSE_S + 1, time.time() + 5
    monkeypatch.setattr(tokens_module.time, "monotonic", lambda: later)
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: wall)  # a later signature
    fresh = tokens.unsubscribe(ana)
    assert fresh != first
    assert tokens.read_unsubscribe(fresh) == ana


def test_tokens_signed_with_an_old_key_still_verify_after_rotation() -> None:
    old = Tokens(["key-1"], 3600, 3600)
    rotated = Tokens(["key-2", "key-1"], 3600, 3600)
    token = old.unsubscribe(TokenClaims("m-ana", "replies", None))
    assert rotated.read_unsubscribe(token).subscriber_id == "m-ana"


# --------------------------------------------------- rule "Guests confirm first"


def test_guest_first_subscription_only_asks_for_confirmation(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    out = pipe.feed([comment("c1", GEOFF, "Where do the buses go?", notify="replies")])
    (request,) = created(out)
    assert request.data.reason == "confirm_subscription"
    assert request.data.recipient.id == GEOFF_ID
    assert request.data.recipient.email == "geoff.roach@example.org"
    assert request.data.confirm_token is not None
    # Not confirmed yet: a reply reaches nobody.
    assert pipe.feed([comment("c2", BEN, parent="c1")]) == []
    assert pipe.feed([confirm(request.data.confirm_token)]) == []
    out = pipe.feed([comment("c3", BEN, "@Geoff Roach there", parent="c1")])
    assert summary(out) == {(GEOFF_ID, "reply", "c3")}


def test_a_confirmed_guests_later_subscription_is_confirmed_by_its_own_request(
    pipe: LocalPipeline,
) -> None:
    # Anybody can type a confirmed guest's address: each new request is confirmed by mail.
    (request,) = created(pipe.feed([subscribe(GEOFF, "replies", None)]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    (again,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1", "instant")]))
    assert again.data.reason == "confirm_subscription"
    assert pipe.feed([comment("c2", BEN)]) == []
    pipe.feed([confirm(again.data.confirm_token or "")])
    out = pipe.feed([comment("c3", BEN)])
    assert summary(out) == {(GEOFF_ID, "follow_up", "c3")}


def test_a_forged_confirmation_confirms_nothing(pipe: LocalPipeline, tokens: Tokens) -> None:
    pipe.feed([subscribe(GEOFF, "article", "a-1", "instant")])
    forged = Tokens(["attacker"], 3600, 3600).confirm(TokenClaims(GEOFF_ID, "article", "a-1"))
    with pytest.raises(InvalidToken):
        pipe.feed([confirm(forged)])
    assert pipe.feed([comment("c2", BEN)]) == []


# ------------------------------------------------------------ rule "Preferences"


def test_paused_and_muted_deliver_nothing(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([preferences("m-cal", paused=True)])
    assert pipe.feed([comment("c2", BEN)]) == []
    pipe.feed([preferences("m-cal", paused=False, muted_articles=["a-1"])])
    assert pipe.feed([comment("c3", BEN)]) == []
    pipe.feed([preferences("m-cal")])
    assert summary(pipe.feed([comment("c4", BEN)])) == {("m-cal", "follow_up", "c4")}


def test_quiet_hours_hold_instant_notifications_until_they_end(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed(
        [
            preferences(
                "m-cal", timezone="Europe/Berlin", quiet_hours={"start": "22:00", "end": "07:00"}
            )
        ]
    )
    clock.now = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert pipe.feed([comment("c2", BEN)]) == []
    assert pipe.release("m-cal") == []  # still quiet
    clock.now = datetime(2026, 11, 29, 6, 5, tzinfo=UTC)  # 07:05 in Berlin
    assert summary(pipe.release("m-cal")) == {("m-cal", "follow_up", "c2")}
    assert pipe.release("m-cal") == []


def test_a_held_notification_of_a_removed_comment_is_never_sent(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([preferences("m-cal", quiet_hours={"start": "22:00", "end": "07:00"})])
    clock.now = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    pipe.feed([comment("c2", BEN)])
    assert pipe.feed([moderate("c2", "spam")]) == []  # nothing sent, nothing to retract
    clock.now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert pipe.release("m-cal") == []


# ---------------------------------------------------------------- rule "Erasure"


def test_erasure_removes_every_trace_and_stops_delivery(pipe: LocalPipeline) -> None:
    (request,) = created(pipe.feed([comment("c1", GEOFF, "Hello all", notify="follow_up")]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    pipe.feed(
        [subscribe(GEOFF, "article", "a-1", "instant"), subscribe(GEOFF, "commenter", "m-ben")]
    )
    assert created(pipe.feed([comment("c2", BEN, "Welcome aboard", parent="c1")]))
    pipe.feed([erase(GEOFF_ID)])
    state = json.dumps(
        {
            name: {k: v.model_dump(mode="json") for k, v in table.items()}
            for name, table in pipe.tables.items()
        }
    )
    assert "fanout" in pipe.tables
    assert GEOFF_ID not in state
    assert "geoff.roach@example.org" not in state
    assert "Geoff Roach" not in state
    assert "Hello all" not in state  # the text of his own comments
    assert pipe.feed([comment("c3", BEN, "@Geoff Roach still there?")]) == []


# --------------------------------------------------------------- idempotence


def test_events_replayed_after_a_crash_only_repeat_the_same_ids(
    tokens: Tokens, clock: Clock
) -> None:
    story = [
        article(),
        comment("c1", ANA, notify="replies"),
        subscribe(CAL, "article", "a-1", "instant"),
        comment("c2", BEN, "@Ana Lima hi", parent="c1"),
        comment("c3", CAL, parent="c2"),
        moderate("c2", "spam"),
    ]
    pipe = LocalPipeline(tokens=tokens, clock=clock)
    first = pipe.feed(story)
    assert summary(first) == {("m-ana", "reply", "c2"), ("m-cal", "follow_up", "c2")}
    reply, follow_up = (n.id for n in sorted(created(first), key=lambda n: n.data.recipient.id))
    retractions = {r.id for r in retracted(first)}
    assert len(retractions) == 2
    # At-least-once: the records after the last committed offset come again, while the tables
    # already hold their effects. Each replayed record re-emits exactly what it emitted first.
    # c2 is spam by now: its posting, replayed, notifies nobody again (spam never notifies);
    # c3 (Cal's reply to c2) notified nobody; the spam mark repeats the same two retractions.
    expected = {3: retractions, 4: retractions, 5: retractions}
    assert {reply, follow_up}.isdisjoint(retractions)
    for start in range(3, len(story)):
        replayed = pipe.feed(story[start:])
        assert {o.id for o in replayed} == expected[start], start
    # Before the spam mark, replaying c2 and c3 re-emits c2's two notifications, same ids.
    again = LocalPipeline(tokens=tokens, clock=clock)
    again.feed(story[:5])
    assert {o.id for o in again.feed(story[3:5])} == {reply, follow_up}


def test_a_full_replay_never_gives_one_recipient_two_ids_for_one_comment(
    tokens: Tokens, clock: Clock
) -> None:
    story = [
        article(),
        comment("c1", ANA, notify="replies"),
        comment("c2", BEN, "@Ana Lima hi", parent="c1"),
        subscribe(CAL, "article", "a-1", "instant"),
        comment("c3", BEN, parent="c1"),
        moderate("c2", "spam"),
    ]
    pipe = LocalPipeline(tokens=tokens, clock=clock)
    outputs = pipe.feed(story) + pipe.feed(story)
    ids: dict[tuple[str, str | None], set[str]] = {}
    for n in created(outputs):
        ids.setdefault((n.data.recipient.id, n.subject), set()).add(n.id)
    assert all(len(v) == 1 for v in ids.values())
    retracted_ids = {r.data.notification_id for r in retracted(outputs)}
    assert retracted_ids == {n.id for n in created(outputs) if n.subject == "c:c2"}


def test_erasure_of_one_id_leaves_ids_that_merely_start_like_it() -> None:
    """Member ids may contain '|' (``auth0|abc``): erasing ``auth0`` must not touch the records
    of ``auth0|abc``, and keys of different (recipient, subject) pairs never collide."""
    assert sent_key("a|b", "c") != sent_key("a", "b|c")
    assert sent_key("auth0|abc", "c:1").startswith(sent_prefix("auth0|abc"))
    assert not sent_key("auth0|abc", "c:1").startswith(sent_prefix("auth0"))


@pytest.mark.parametrize(
    "recipient_id",
    ["m-1", "auth0|abc", 'q"\\/\b\f\n\r\t\x00\x1f\x7f', "".join(map(chr, range(128))), "Zoë", "🦊"],
)
def test_a_sent_key_is_the_same_bytes_as_the_stored_ones(recipient_id: str) -> None:
    """``sent`` keys are stored: whichever way one is built, it is the JSON ``json.dumps``
    made of it when it was first written (non-ASCII escaped), or a replay would not find what
    the recipient was sent."""
    key = sent_key(recipient_id, "c:c-1")
    assert key == json.dumps([recipient_id, "c:c-1"], separators=(",", ":"))
    assert key.startswith(sent_prefix(recipient_id))
