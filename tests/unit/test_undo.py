"""The undo of an unsubscribe (issue 18, reader pages): ``newsroom.subscription.restored``
brings back exactly the subscription the subscriber cancelled, as it was, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
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
BEN = member("m-ben", "Ben Okoro")


def restore(sid: str, scope: str, target: str | None, version: int | None = None) -> ev.CloudEvent:
    return ev.SubscriptionRestored.model_validate(
        {
            "specversion": "1.0",
            "id": f"restore-{sid}-{scope}-{target}-{version}",
            "source": "urn:test",
            "type": "newsroom.subscription.restored",
            "time": datetime(2026, 11, 28, 12, 30, tzinfo=UTC).isoformat(),
            "data": {
                "subscriber_id": sid,
                "scope": scope,
                "target": target,
                "token_version": version,
            },
        }
    )


@pytest.fixture
def pipe() -> LocalPipeline:
    p = LocalPipeline(
        tokens=Tokens(["undo-key"], 3600, 3600),
        clock=Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
    )
    p.feed([article("a-1"), article("a-2")])
    return p


def _subs(pipe: LocalPipeline) -> dict[str, tuple[str, bool]]:
    profile = pipe.inbox.profiles[GEOFF_ID]
    return {k: (s.delivery, s.active) for k, s in profile.subscriptions.items()}


def _confirmed_guest(pipe: LocalPipeline) -> None:
    for target, delivery in (("a-1", "digest"), ("a-2", "instant")):
        (request,) = created(pipe.feed([subscribe(GEOFF, "article", target, delivery)]))
        pipe.feed([confirm(request.data.confirm_token or "")])


def test_a_guest_s_cancelled_subscription_comes_back_as_it_was_without_a_confirmation(
    pipe: LocalPipeline,
) -> None:
    _confirmed_guest(pipe)
    before = _subs(pipe)
    pipe.feed([cancel(GEOFF_ID, "article", "a-1")])
    assert "article|a-1" not in _subs(pipe)
    out = pipe.feed([restore(GEOFF_ID, "article", "a-1")])
    assert _subs(pipe) == before  # the digest delivery it had, active
    assert created(out) == []  # no confirmation mail


def test_a_restore_of_what_was_never_cancelled_or_taken_up_again_changes_nothing(
    pipe: LocalPipeline,
) -> None:
    _confirmed_guest(pipe)
    pipe.feed([restore(GEOFF_ID, "article", "a-9")])  # never had it
    assert "article|a-9" not in _subs(pipe)
    pipe.feed([cancel(GEOFF_ID, "article", "a-2")])
    pipe.feed([restore(GEOFF_ID, "article", "a-2")])
    pipe.feed([restore(GEOFF_ID, "article", "a-2")])  # a second undo: already back
    assert _subs(pipe)["article|a-2"] == ("instant", True)
    pipe.feed([restore("m-nobody", "article", "a-2")])  # another subscriber's id
    assert "m-nobody" not in pipe.inbox.profiles


def test_a_restore_authorised_before_a_sign_out_is_ignored(pipe: LocalPipeline) -> None:
    _confirmed_guest(pipe)
    version = pipe.inbox.profiles[GEOFF_ID].token_version
    pipe.feed([cancel(GEOFF_ID, "article", "a-1")])
    pipe.feed([restore(GEOFF_ID, "article", "a-1", version - 1)])
    assert "article|a-1" not in _subs(pipe)


def test_comments_between_the_unsubscribe_and_the_undo_are_not_notified(
    pipe: LocalPipeline,
) -> None:
    _confirmed_guest(pipe)
    pipe.feed([cancel(GEOFF_ID, "article", "a-2")])
    gap = comment(
        "c-gap", BEN, "While away", aid="a-2", at=datetime(2026, 11, 28, 12, 10, tzinfo=UTC)
    )
    pipe.feed([restore(GEOFF_ID, "article", "a-2")])
    assert [n for n in created(pipe.feed([gap])) if n.data.recipient.id == GEOFF_ID] == []
    after = comment(
        "c-after", BEN, "Back", aid="a-2", at=datetime(2026, 11, 28, 12, 40, tzinfo=UTC)
    )
    (note,) = [n for n in created(pipe.feed([after])) if n.data.recipient.id == GEOFF_ID]
    assert note.data.comment is not None
    assert note.data.comment.id == "c-after"
