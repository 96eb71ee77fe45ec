"""Hand-written stories of the README's "one notification per person per comment" when the
messages between stages arrive late or twice (the stream's stages talk through topics: a
candidacy can reach the inbox after the article's activity of the same comment, a record
comes again after a crash). Every expectation is written out from the README's words.

The pipeline is the in-process one (the real stage classes); a story holds a message "in
transit" by handling one stage itself and delivering what it produced later, as the inbox
topic would after a delay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.dispatch import deliver as route
from newsroom_notify.domain.inbox.subscriptions import MAX_CHOSEN
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import Activity, Chose, DigestTick, FormChoice
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    T0,
    Clock,
    article,
    cancel,
    comment,
    confirm,
    created,
    edit,
    erase,
    guest,
    member,
    moderate,
    names,
    preferences,
    subscribe,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
Z = UTC


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 21, 0, tzinfo=Z))


@pytest.fixture
def pipe(clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=Tokens(["arrival-story-key"], 3600, 3600), clock=clock)
    p.feed([article("a-1")])
    return p


def at(clock: Clock, hour: int, minute: int) -> None:
    clock.now = datetime(2026, 11, 27, hour, minute, tzinfo=Z)


def deliver(pipe: LocalPipeline, items: list[Intent]) -> list[ev.CloudEvent]:
    """Messages held in transit reach their stages now (and what they cause, in turn)."""
    return pipe.run(items)


def threads_handle(pipe: LocalPipeline, key: str, message: BaseModel) -> list[Intent]:
    """The threads stage handles one record; what it sends is held in transit."""
    return route(pipe.stages, Stage.THREADS, key, message)


def digests(out: list[ev.CloudEvent]) -> list[tuple[str, int, list[tuple[str, str]]]]:
    """(period start hour:minute, total comments, [(comment, reason)]) of each digest."""
    return [
        (
            o.data.period.start.strftime("%H:%M"),
            o.data.total_comments,
            [(i.comment.id, i.reason) for part in o.data.articles for i in part.items],
        )
        for o in out
        if isinstance(o, ev.DigestReady)
    ]


def cal_follows_the_article_and_ben_hourly(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            preferences("m-cal", digest="hourly"),
            subscribe(CAL, "article", "a-1", "digest"),
            subscribe(CAL, "commenter", "m-ben", "digest"),
        ]
    )


# ------------------------- Digests: one notification per person per comment, in any order


def test_a_comment_whose_candidacy_arrives_after_its_digest_is_in_no_later_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """Cal follows a-1 and Ben, both in the hourly digest. Ben's comment at 21:59 is counted
    in a-1's activity at once; the candidacy "Cal follows Ben" is still in transit when the
    21:00-22:00 digest is cut (22:02), so that digest shows it as a follow-up. When the
    candidacy arrives (22:03) the comment has reached Cal: the 22:00-23:00 digest does not
    bring it again (nothing else happened: no digest at all)."""
    cal_follows_the_article_and_ben_hourly(pipe)
    at(clock, 21, 59)
    in_transit = threads_handle(pipe, "a-1", comment("c1", BEN, "Trams at last."))
    at(clock, 22, 2)
    assert digests(pipe.tick()) == [("21:00", 1, [("c1", "follow_up")])]
    at(clock, 22, 3)
    assert deliver(pipe, in_transit) == []
    at(clock, 23, 2)
    assert digests(pipe.tick()) == []


def test_a_comment_whose_article_activity_arrives_after_its_digest_is_in_no_later_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """The other order: the candidacy "Cal follows Ben" puts Ben's 21:59 comment in the
    21:00-22:00 digest (as followed commenter); a-1's activity of that period reaches Cal's
    inbox only after the cut. The 22:00-23:00 digest neither lists nor counts it again."""
    cal_follows_the_article_and_ben_hourly(pipe)
    at(clock, 21, 59)
    assert pipe.feed([comment("c1", BEN, "Trams at last.")]) == []
    at(clock, 22, 0)
    activity = threads_handle(pipe, "a-1", DigestTick())  # in transit to the inbox
    at(clock, 22, 2)
    assert digests(pipe.tick()) == [("21:00", 1, [("c1", "followed_commenter")])]
    at(clock, 22, 3)
    assert deliver(pipe, activity) == []
    at(clock, 22, 30)
    assert pipe.feed([comment("c2", ANA, "A new one.")]) == []
    at(clock, 23, 2)
    assert digests(pipe.tick()) == [("22:00", 1, [("c2", "follow_up")])]


def test_an_article_activity_delivered_again_after_its_digest_is_not_in_the_next_one(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """After a crash the inbox gets a-1's 21:00-22:00 activity again, after the digest it
    went into was cut: a replay changes nothing, the next digest holds only what is new."""
    pipe.feed([preferences("m-cal", digest="hourly"), subscribe(CAL, "article", "a-1", "digest")])
    at(clock, 21, 59)
    pipe.feed([comment("c1", BEN, "Trams at last.")])
    at(clock, 22, 0)
    activity = threads_handle(pipe, "a-1", DigestTick())
    assert deliver(pipe, activity) == []
    at(clock, 22, 2)
    assert digests(pipe.tick()) == [("21:00", 1, [("c1", "follow_up")])]
    at(clock, 22, 3)
    assert deliver(pipe, activity) == []  # the same records again
    at(clock, 22, 30)
    pipe.feed([comment("c2", ANA, "A new one.")])
    at(clock, 23, 2)
    assert digests(pipe.tick()) == [("22:00", 1, [("c2", "follow_up")])]


# ----------------------------- Replies to a held comment: decided when the reply is approved


def test_a_reply_to_a_held_comment_never_notifies_its_author_not_even_replayed(
    pipe: LocalPipeline,
) -> None:
    """Ana asked for replies everywhere. Ben replies to her comment while it is held for
    moderation: nothing (a reply notifies the parent's author only if the parent is approved
    when the reply is). Her comment is approved later: still nothing about Ben's reply, and
    the reply's record processed again after a crash must decide as the first time did."""
    pipe.feed([subscribe(ANA, "replies", None, "instant")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?", status="pending")])
    reply = comment("c2", BEN, "Down Main Street.", parent="c1")
    assert created(pipe.feed([reply])) == []
    assert created(pipe.feed([moderate("c1", "approved")])) == []
    assert created(pipe.feed([reply])) == []  # the same record again (at-least-once)
    # A reply once the parent is approved does notify her.
    (n,) = created(pipe.feed([comment("c3", BEN, "Or Elm Street.", parent="c1")]))
    assert (n.data.recipient.id, n.data.reason, n.subject) == ("m-ana", "reply", "c:c3")


# ------------------------------------------------- An edit never notifies, not even replayed


def test_a_comment_replayed_after_its_edit_repeats_what_was_sent_first(
    pipe: LocalPipeline,
) -> None:
    """Cal follows a-1 instantly. Ben's comment reaches him; Ben then edits it to mention
    Ana. After a crash the comment's record is processed again: the same notification as the
    first time (the text it was sent with), and Ana, mentioned only by the edit, hears
    nothing (an edit never notifies)."""
    pipe.feed([subscribe(CAL, "article", "a-1", "instant"), subscribe(ANA, "replies", None)])
    pipe.feed([comment("c0", ANA, "Hello.")])
    posted = comment("c1", BEN, "Trams at last.")
    (first,) = created(pipe.feed([posted]))
    assert pipe.feed([edit("c1", "Trams at last, @Ana Lima.")]) == []
    (again,) = created(pipe.feed([posted]))
    assert (again.id, again.data.recipient.id, again.data.reason) == (
        first.id,
        "m-cal",
        "follow_up",
    )
    assert again.data.comment is not None
    assert again.data.comment.excerpt == "Trams at last."


def test_an_approval_replayed_after_an_edit_repeats_what_was_sent_first(
    pipe: LocalPipeline,
) -> None:
    """The same with a comment held for moderation: the approval notified Cal with the text
    then; Ben edits it; the approval's record processed again repeats that notification."""
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([comment("c1", BEN, "Trams at last.", status="pending")])
    approval = moderate("c1", "approved")
    (first,) = created(pipe.feed([approval]))
    assert pipe.feed([edit("c1", "Trams at last, finally.")]) == []
    (again,) = created(pipe.feed([approval]))
    assert (again.id, again.data.recipient.id) == (first.id, "m-cal")
    assert again.data.comment is not None
    assert again.data.comment.excerpt == "Trams at last."


# ------------------- Replies: the parent's "Notify of" choice may reach the inbox after a reply


def choice_in_transit(pipe: LocalPipeline, posted: ev.CloudEvent) -> list[Intent]:
    """The threads stage handles ``posted``; its author's "Notify of" choice, sent to their
    inbox directly, is held in transit (returned); the rest (its fan-out) goes on now."""
    out = threads_handle(pipe, "a-1", posted)
    held = [i for i in out if isinstance(i, ToStage) and isinstance(i.message, FormChoice)]
    assert len(held) == 1
    deliver(pipe, [i for i in out if i not in held])
    return held


def reasons(out: list[ev.CloudEvent]) -> list[tuple[str, str, str | None]]:
    return [(n.data.recipient.id, n.data.reason, n.subject) for n in created(out)]


def test_a_reply_that_reaches_the_inbox_before_the_parents_notify_of_choice_notifies(
    pipe: LocalPipeline,
) -> None:
    """Ana (she follows a-2) ticks "Notify of: replies" on her comment c1. The choice goes to
    her inbox directly; Ben's reply c2 goes through the follows stage, and its candidacy
    arrives first. She hears of the reply as if the choice had come first, and when it does
    come, nothing more: no second notification, and the next reply notifies her as usual."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    held = choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    assert reasons(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")])) == [
        ("m-ana", "reply", "c:c2")
    ]
    assert deliver(pipe, held) == []
    assert reasons(pipe.feed([comment("c3", CAL, "Or Elm Street.", parent="c1")])) == [
        ("m-ana", "reply", "c:c3")
    ]


def test_a_reply_to_another_of_her_comments_also_brings_her_choice(pipe: LocalPipeline) -> None:
    """A "Notify of" choice counts for replies to any of her comments under the article (rule
    "Replies"): her choice on c1 is in transit when Ben replies to c3, her next comment there
    (no tick): the reply carries it all the same."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    held = choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    pipe.feed([comment("c3", ANA, "And the trams?")])
    assert reasons(pipe.feed([comment("c4", BEN, "Main Street.", parent="c3")])) == [
        ("m-ana", "reply", "c:c4")
    ]
    assert deliver(pipe, held) == []


def test_both_her_choices_in_transit_come_with_a_reply_as_they_would_in_order(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """Ana ticked "replies" on c1 and "follow-up comments" on c2; both are in transit when Ben
    replies to c2. The reply carries both: she is told, and her mail's unsubscribe link cancels
    what it cancels when the choices come first (her replies on a-1, rule "Replies")."""
    in_order = LocalPipeline(tokens=pipe.tokens, clock=clock)
    in_order.feed([article("a-1")])
    follows_a2 = subscribe(ANA, "article", "a-2", "instant")
    c1 = comment("c1", ANA, "Where do the buses go?", notify="replies")
    c2 = comment("c2", ANA, "And when?", notify="follow_up")
    reply = comment("c3", BEN, "Every ten minutes.", parent="c2")
    (expected,) = created(in_order.feed([follows_a2, c1, c2, reply]))
    pipe.feed([follows_a2])
    held = choice_in_transit(pipe, c1) + choice_in_transit(pipe, c2)
    (got,) = created(pipe.feed([reply]))
    assert names(pipe.tokens.read_unsubscribe(got.data.unsubscribe_token)) == names(
        in_order.tokens.read_unsubscribe(expected.data.unsubscribe_token)
    )
    assert names(pipe.tokens.read_unsubscribe(got.data.unsubscribe_token)) == (
        "m-ana",
        "replies",
        "a-1",
    )
    assert deliver(pipe, held) == []
    assert (
        pipe.tables["profiles"]["m-ana"].subscriptions
        == in_order.tables["profiles"]["m-ana"].subscriptions
    )


def test_a_follow_up_choice_overtaken_by_a_reply_also_counts_for_replies(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """ "Notify of: new follow-up comments" asks for replies too (rule "Replies"): the
    overtaking reply notifies her as a reply, and her subscriptions are then exactly what
    they are when the choice comes first (a-1's comments in her digest, from c1 on)."""
    in_order = LocalPipeline(tokens=Tokens(["arrival-story-key"], 3600, 3600), clock=clock)
    in_order.feed([article("a-1")])
    follows_a2 = subscribe(ANA, "article", "a-2", "instant")
    for p in (pipe, in_order):
        p.feed([follows_a2])
    posted = comment("c1", ANA, "Where do the buses go?", notify="follow_up")
    in_order.feed([posted])
    held = choice_in_transit(pipe, posted)
    assert reasons(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")])) == [
        ("m-ana", "reply", "c:c2")
    ]
    assert deliver(pipe, held) == []
    subscriptions = pipe.tables["profiles"]["m-ana"].subscriptions
    assert subscriptions == in_order.tables["profiles"]["m-ana"].subscriptions
    assert subscriptions["article|a-1"].delivery == "digest"


def test_a_notify_of_choice_cancelled_after_a_reply_brought_it_stays_cancelled(
    pipe: LocalPipeline,
) -> None:
    """The reply brought Ana's choice to her inbox; she then cancels her replies on a-1.
    When the choice itself arrives late, it must not subscribe her again: no later reply."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    held = choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    assert len(created(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")]))) == 1
    pipe.feed([cancel("m-ana", "replies", "a-1")])
    assert deliver(pipe, held) == []
    assert created(pipe.feed([comment("c3", CAL, "Or Elm Street.", parent="c1")])) == []


@pytest.mark.parametrize("before", [False, True], ids=["made-by-the-choice", "made-before"])
def test_a_reply_does_not_bring_a_choice_whose_subscription_was_cancelled_since(
    pipe: LocalPipeline, before: bool
) -> None:
    """Her choice reached her inbox first this time, and she cancelled her replies on a-1:
    a reply that carries the choice must not subscribe her again. Also when she had asked
    for them before the choice (which then changed nothing, so the cancelled subscription
    began before it)."""
    pipe.feed([subscribe(ANA, "replies" if before else "article", "a-1" if before else "a-2")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?", notify="replies")])
    pipe.feed([cancel("m-ana", "replies", "a-1")])
    assert created(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")])) == []
    assert created(pipe.feed([comment("c3", CAL, "Or Elm Street.", parent="c1")])) == []


def test_a_guests_choice_is_not_brought_by_a_reply(pipe: LocalPipeline) -> None:
    """Gus, a guest, confirmed a subscription to a-2 earlier. His "Notify of" on a-1 needs his
    confirmation again (rule "Guests confirm first"): the thread gives a reply no guest's
    choice to carry, and the inbox applies none that a candidacy carries. A reply overtaking
    the choice tells him nothing and asks nothing; the choice, when it arrives, asks him to
    confirm, once."""
    gus = guest("Gus", "gus@example.org")
    (request,) = created(pipe.feed([subscribe(gus, "article", "a-2", "instant")]))
    assert created(pipe.feed([confirm(request.data.confirm_token or "")])) == []
    (held,) = choice_in_transit(pipe, comment("c1", gus, "Where?", notify="replies"))
    assert isinstance(held, ToStage)
    assert isinstance(held.message, FormChoice)
    reply = threads_handle(pipe, "a-1", comment("c2", BEN, "Down Main Street.", parent="c1"))
    fans = [i.message for i in reply if isinstance(i, ToStage) and i.stage is Stage.FOLLOWS]
    assert [a.choices for a in fans if isinstance(a, Activity)] == [{}]
    assert created(deliver(pipe, reply)) == []
    # A candidacy that carried it anyway (the inbox does not rely on the thread for this).
    forged = Chose(subscriber_id=held.key, article_id="a-1", choice="replies", at=held.message.at)
    assert pipe.stages.inbox.choice_first(forged) == []
    profile = pipe.tables["profiles"][held.message.subscriber_id]
    assert ("replies|a-1" in profile.subscriptions, profile.pending) == (False, {})
    assert [n.data.reason for n in created(deliver(pipe, [held]))] == ["confirm_subscription"]
    assert created(pipe.feed([comment("c3", CAL, "Or Elm Street.", parent="c1")])) == []


def test_a_reply_does_not_bring_back_a_reader_erased_while_it_was_in_transit(
    pipe: LocalPipeline,
) -> None:
    """Ana's choice is in transit; Ben's reply is handled by the thread (its candidacy carries
    her choice); Ana is erased before the candidacy reaches her inbox. The candidacy neither
    notifies her nor makes her a profile again."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    reply = threads_handle(pipe, "a-1", comment("c2", BEN, "Down Main Street.", parent="c1"))
    pipe.feed([erase("m-ana")])
    assert created(deliver(pipe, reply)) == []
    assert "m-ana" not in pipe.tables["profiles"]
    assert "a-1|m-ana" not in pipe.tables["authored"]  # her choices left the thread too


def test_a_reply_does_not_bring_a_choice_to_a_profile_made_after_it(
    pipe: LocalPipeline,
) -> None:
    """The same, and Ana subscribes again (to a-2) before the candidacy arrives: her new
    profile began after the choice, which belonged to the one erased: no reply, and no
    subscription to replies on a-1."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    reply = threads_handle(pipe, "a-1", comment("c2", BEN, "Down Main Street.", parent="c1"))
    pipe.feed([erase("m-ana"), subscribe(ANA, "article", "a-2", "instant")])
    assert created(deliver(pipe, reply)) == []
    assert list(pipe.tables["profiles"]["m-ana"].subscriptions) == ["article|a-2"]


def restore(sid: str, scope: str, target: str | None) -> ev.CloudEvent:
    """The unsubscribe page's undo (``newsroom.subscription.restored``), now."""
    return ev.SubscriptionRestored.model_validate(
        {
            "specversion": "1.0",
            "id": f"restore-{sid}-{scope}-{target}",
            "source": "urn:test",
            "type": "newsroom.subscription.restored",
            "time": T0.isoformat(),
            "data": {"subscriber_id": sid, "scope": scope, "target": target},
        }
    )


def test_a_choice_once_handled_never_subscribes_again_whatever_happened_since(
    pipe: LocalPipeline,
) -> None:
    """A reply brought Ana's choice; she cancelled replies on a-1, undid it, cancelled again,
    and then cancelled ten other subscriptions (the undo list keeps ten). Neither the choice
    arriving late nor a later reply carrying it subscribes her again."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    held = choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    assert len(created(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")]))) == 1
    pipe.feed([cancel("m-ana", "replies", "a-1"), restore("m-ana", "replies", "a-1")])
    pipe.feed([cancel("m-ana", "replies", "a-1")])
    for n in range(10):
        pipe.feed([subscribe(ANA, "article", f"x-{n}"), cancel("m-ana", "article", f"x-{n}")])
    assert "replies|a-1" not in pipe.tables["profiles"]["m-ana"].ended  # not what stops it
    assert deliver(pipe, held) == []
    assert created(pipe.feed([comment("c3", CAL, "Or Elm Street.", parent="c1")])) == []
    assert "replies|a-1" not in pipe.tables["profiles"]["m-ana"].subscriptions


def test_a_choice_refused_at_the_cap_is_not_made_later_by_a_reply(pipe: LocalPipeline) -> None:
    """Ana is at her cap of subscriptions when her choice comes: it is not recorded (bounded
    state). She cancels one; a reply carrying the choice still does not make it."""
    pipe.inbox.subscriptions_max = 2
    pipe.feed([subscribe(ANA, "article", "a-2"), subscribe(ANA, "article", "a-3")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?", notify="replies")])
    pipe.feed([cancel("m-ana", "article", "a-3")])
    assert created(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")])) == []
    assert "replies|a-1" not in pipe.tables["profiles"]["m-ana"].subscriptions


def test_a_reply_more_than_a_day_after_the_choice_does_not_carry_it(pipe: LocalPipeline) -> None:
    """The choice reaches the inbox within moments; a reply a day later has no reason to
    carry it (nor the thread to hand it on)."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?", notify="replies")])
    late = comment("c2", BEN, "Still no bus.", parent="c1", at=T0 + timedelta(days=1, hours=1))
    fans = [i.message for i in threads_handle(pipe, "a-1", late) if isinstance(i, ToStage)]
    assert [a.choices for a in fans if isinstance(a, Activity)] == [{}]
    soon = comment("c3", CAL, "Try the tram.", parent="c1")
    fans = [i.message for i in threads_handle(pipe, "a-1", soon) if isinstance(i, ToStage)]
    assert [sorted(a.choices) for a in fans if isinstance(a, Activity)] == [["m-ana"]]


def test_a_choice_in_transit_does_not_undo_a_cancellation_made_after_it(
    pipe: LocalPipeline,
) -> None:
    """Ana had asked for replies on a-1 before; her "Notify of" on c1 (changing nothing) is in
    transit when she cancels those replies. A reply carrying the choice must not undo the
    cancellation: the inbox cannot tell whether the choice came before it."""
    pipe.feed([subscribe(ANA, "replies", "a-1", "instant")])
    choice_in_transit(pipe, comment("c1", ANA, "Where do the buses go?", notify="replies"))
    pipe.feed([cancel("m-ana", "replies", "a-1")])
    assert created(pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1")])) == []


def test_a_reply_to_ones_own_comment_carries_no_choice(pipe: LocalPipeline) -> None:
    """Nobody hears about their own comment: Ana answering herself carries nothing for her to
    the follows stage (Ben follows her: her comments go through it)."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    pipe.feed([subscribe(BEN, "commenter", "m-ana", "instant")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?", notify="replies")])
    own = comment("c2", ANA, "Found it: Main Street.", parent="c1")
    fans = [i.message for i in threads_handle(pipe, "a-1", own) if isinstance(i, ToStage)]
    assert [a.choices for a in fans if isinstance(a, Activity)] == [{}]


def test_the_choices_an_inbox_remembers_are_bounded(pipe: LocalPipeline) -> None:
    """An inbox remembers the choices it handled for a day (what a reply may still carry), and
    at most ``MAX_CHOSEN`` of them: a prolific commenter's profile does not grow without end."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    day = timedelta(days=1, minutes=1)
    pipe.feed([comment("old", ANA, "Yesterday.", aid="b-0", notify="replies")])
    pipe.feed([comment("c1", ANA, "Today.", aid="b-1", notify="replies", at=T0 + day)])
    assert list(pipe.tables["profiles"]["m-ana"].chosen) == ["replies|b-1"]  # b-0: a day before
    ticks = [
        comment(f"c{n}", ANA, "Again.", aid=f"b-{n}", notify="replies", at=T0 + day)
        for n in range(2, MAX_CHOSEN + 20)
    ]
    pipe.feed(ticks)
    assert len(pipe.tables["profiles"]["m-ana"].chosen) == MAX_CHOSEN


def test_a_reply_replayed_after_a_later_choice_does_not_carry_it(pipe: LocalPipeline) -> None:
    """Ben's reply is handled again after a crash, after Ana ticked "Notify of" on a later
    comment: the replay carries only what was chosen before the reply (nothing here), as the
    first pass did."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    pipe.feed([comment("c1", ANA, "Where do the buses go?")])
    reply = comment("c2", BEN, "Down Main Street.", parent="c1")
    pipe.feed([reply])
    pipe.feed([comment("c3", ANA, "Thanks!", notify="replies")])
    fans = [i.message for i in threads_handle(pipe, "a-1", reply) if isinstance(i, ToStage)]
    assert [a.choices for a in fans if isinstance(a, Activity)] == [{}]


def test_a_comment_replayed_after_its_authors_erasure_does_not_bring_her_back(
    pipe: LocalPipeline,
) -> None:
    """Ana ticked "Notify of" on c1 and was erased; c1's record is processed again (a
    rebalance reads the comments topic again). Her choice is not sent again (it carries her
    name and address, and would make her a profile and a subscription), nor kept for replies."""
    posted = comment("c1", ANA, "Where do the buses go?", notify="replies")
    pipe.feed([subscribe(ANA, "article", "a-2", "instant"), posted, erase("m-ana")])
    again = threads_handle(pipe, "a-1", posted)
    assert [i for i in again if isinstance(i, ToStage) and isinstance(i.message, FormChoice)] == []
    deliver(pipe, again)
    assert "m-ana" not in pipe.tables["profiles"]
    assert "a-1|m-ana" not in pipe.tables["authored"]


def test_an_older_comment_replayed_keeps_her_latest_choice(pipe: LocalPipeline) -> None:
    """Ana ticked "replies" on c1, then again on c2; c1's record processed again does not put
    the older choice back in its place: a reply carries the latest one."""
    pipe.feed([subscribe(ANA, "article", "a-2", "instant")])
    c1 = comment("c1", ANA, "Where do the buses go?", notify="replies")
    c2 = comment("c2", ANA, "And when?", notify="replies")
    pipe.feed([c1, c2])
    threads_handle(pipe, "a-1", c1)
    (kept,) = pipe.tables["authored"]["a-1|m-ana"].chosen.values()
    assert kept.at == c2.time
