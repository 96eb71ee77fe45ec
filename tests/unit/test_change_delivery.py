"""Change delivery (issue 18, the subscription manager): ``newsroom.subscription.delivery_changed``
moves one existing subscription between instant mails and the digest, without a new
confirmation mail, and changes nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    Clock,
    article,
    change_delivery,
    comment,
    confirm,
    created,
    guest,
    member,
    sid_of,
    subscribe,
)

GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = sid_of(GEOFF)
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
START = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def pipe(clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=Tokens(["delivery-key"], 3600, 3600), clock=clock)
    p.feed([article("a-1"), article("a-2")])
    return p


def _confirmed_guest(pipe: LocalPipeline) -> None:
    """Geoff, a guest, follows a-1 as it happens and a-2 in the digest, both confirmed."""
    for target, delivery in (("a-1", "instant"), ("a-2", "digest")):
        (request,) = created(pipe.feed([subscribe(GEOFF, "article", target, delivery)]))
        pipe.feed([confirm(request.data.confirm_token or "")])


def _subs(pipe: LocalPipeline, sid: str = GEOFF_ID) -> dict[str, tuple[str, bool]]:
    profile = pipe.inbox.profiles[sid]
    return {k: (s.delivery, s.active) for k, s in profile.subscriptions.items()}


def _to(outputs: list[ev.CloudEvent], sid: str = GEOFF_ID) -> list[str]:
    """The comment ids of the instant notifications ``sid`` got."""
    return [
        n.data.comment.id for n in created(outputs) if n.data.recipient.id == sid and n.data.comment
    ]


def _digests_until(
    pipe: LocalPipeline, clock: Clock, end: datetime, sid: str = GEOFF_ID
) -> list[ev.DigestReady]:
    out: list[ev.CloudEvent] = []
    while clock.now < end:
        clock.now = min(end, clock.now + timedelta(minutes=10))
        out += pipe.tick()
    return [d for d in out if isinstance(d, ev.DigestReady) and d.data.recipient.id == sid]


def test_a_confirmed_guest_moves_an_article_follow_to_the_digest_without_a_new_confirmation(
    pipe: LocalPipeline, clock: Clock
) -> None:
    _confirmed_guest(pipe)
    assert _to(pipe.feed([comment("c1", BEN, "Before the change", aid="a-1")])) == ["c1"]

    out = pipe.feed([change_delivery(GEOFF_ID, "article", "a-1", "digest")])
    assert created(out) == []  # no confirmation mail: consent was given already
    assert _subs(pipe)["article|a-1"] == ("digest", True)

    # The next comment goes to the digest, not to an instant mail.
    assert _to(pipe.feed([comment("c2", BEN, "After the change", aid="a-1")])) == []
    # Daily digest at 08:00 UTC (the default), cut after a short grace.
    (digest,) = _digests_until(pipe, clock, datetime(2026, 11, 29, 8, 10, tzinfo=UTC))
    assert [(a.article.id, a.new_comments) for a in digest.data.articles] == [("a-1", 1)]


def test_a_digest_follow_moved_back_to_instant_is_mailed_as_it_happens_and_leaves_the_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    _confirmed_guest(pipe)
    out = pipe.feed([change_delivery(GEOFF_ID, "article", "a-2", "instant")])
    assert created(out) == []
    assert _to(pipe.feed([comment("c1", BEN, "Now instant", aid="a-2")])) == ["c1"]
    assert _digests_until(pipe, clock, datetime(2026, 11, 29, 8, 10, tzinfo=UTC)) == []


def test_a_commenter_follow_changes_delivery_at_the_follows_stage(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    assert _to(pipe.feed([comment("c1", BEN, "One", aid="a-1")]), "m-cal") == ["c1"]
    pipe.feed([change_delivery("m-cal", "commenter", "m-ben", "digest")])
    assert _to(pipe.feed([comment("c2", BEN, "Two", aid="a-2")]), "m-cal") == []
    (digest,) = _digests_until(pipe, clock, datetime(2026, 11, 29, 8, 10, tzinfo=UTC), "m-cal")
    assert [a.article.id for a in digest.data.articles] == ["a-2"]


def test_a_subscription_the_subscriber_does_not_have_is_not_created_or_changed(
    pipe: LocalPipeline,
) -> None:
    _confirmed_guest(pipe)
    before = _subs(pipe)
    pipe.feed([change_delivery(GEOFF_ID, "article", "a-9", "digest")])  # never had it
    pipe.feed([change_delivery(GEOFF_ID, "commenter", "m-ben", "digest")])
    assert _subs(pipe) == before
    pipe.feed([change_delivery("m-nobody", "article", "a-1", "digest")])  # unknown subscriber
    assert "m-nobody" not in pipe.inbox.profiles
    # A guest's request not yet confirmed is not a subscription: it stays a request.
    other = guest("Ida Berg", "ida@example.org")
    (request,) = created(pipe.feed([subscribe(other, "article", "a-1", "instant")]))
    pipe.feed([change_delivery(sid_of(other), "article", "a-1", "digest")])
    assert _subs(pipe, sid_of(other)) == {}
    pipe.feed([confirm(request.data.confirm_token or "")])
    assert _subs(pipe, sid_of(other)) == {"article|a-1": ("instant", True)}


def test_a_change_authorised_by_a_token_older_than_a_sign_out_changes_nothing(
    pipe: LocalPipeline,
) -> None:
    _confirmed_guest(pipe)
    version = pipe.inbox.profiles[GEOFF_ID].token_version
    pipe.feed([change_delivery(GEOFF_ID, "article", "a-1", "digest", version - 1)])
    assert _subs(pipe)["article|a-1"] == ("instant", True)
    assert _to(pipe.feed([comment("c1", BEN, "Still instant", aid="a-1")])) == ["c1"]
    pipe.feed([change_delivery(GEOFF_ID, "article", "a-1", "digest", version)])  # current
    assert _subs(pipe)["article|a-1"] == ("digest", True)
