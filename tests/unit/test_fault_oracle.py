"""The fault suite's oracle (tests/faults/harness.py) can fail: each check on a crafted output."""

from __future__ import annotations

from typing import Any

from newsroom_dev.workload import TOKENS, Facts, Phase, Workload, reference_outputs
from newsroom_notify.domain.tokens import TokenClaims
from tests.builders import comment, member, subscribe
from tests.faults.harness import (
    as_json,
    comparable,
    digest_problems,
    fact_violations,
    token_choice_only,
)


def notification(**changes: Any) -> dict[str, Any]:
    data = {
        "notification_id": "n-1",
        "recipient": {"id": "m-ana", "name": "Ana", "email": None},
        "reason": "reply",
        "article": {"id": "a-1", "title": "T", "url": "https://x/a-1"},
        "comment": {"id": "a-1-c9", "author_name": "Ben", "excerpt": "Hi", "url": "u"},
        "parent": None,
        "unsubscribe_token": TOKENS.unsubscribe(TokenClaims("m-ana", "replies", None)),
        "confirm_token": None,
        "manage_token": TOKENS.manage("m-ana"),
    }
    data.update(changes.pop("data", {}))
    event = {
        "specversion": "1.0",
        "id": "n-1",
        "source": "urn:newsroom-notify",
        "type": "newsroom.notification.created",
        "time": "2026-11-30T10:00:00+00:00",
        "subject": "comment:a-1-c9",
        "data": data,
    }
    event.update(changes)
    return event


def test_a_replay_differs_only_by_time_and_token_signatures() -> None:
    first = notification()
    replay = notification(time="2026-11-30T11:00:00+00:00")
    replay["data"]["unsubscribe_token"] = TOKENS.unsubscribe(TokenClaims("m-ana", "replies", None))
    assert comparable(first) == comparable(replay)
    assert comparable(first)["data"]["unsubscribe_token"] == [
        "unsubscribe",
        "m-ana",
        "replies",
        None,
    ]


def test_content_that_matters_is_compared() -> None:
    base = comparable(notification())
    other_token = TOKENS.unsubscribe(TokenClaims("m-ana", "article", "a-1"))
    for changed in (
        notification(data={"reason": "mention"}),
        notification(data={"recipient": {"id": "m-ana", "name": "Ann", "email": None}}),
        notification(data={"unsubscribe_token": other_token}),
        notification(data={"unsubscribe_token": "forged"}),
        notification(subject="comment:a-1-c8"),
    ):
        assert comparable(changed) != base


def test_only_a_difference_in_the_token_s_subscription_is_the_open_token_choice_defect() -> None:
    expected = {"n-1": comparable(notification())}
    other_token = TOKENS.unsubscribe(TokenClaims("m-ana", "article", "a-1"))
    copies = {
        "n-1": [notification(), notification(data={"unsubscribe_token": other_token})],
    }
    assert token_choice_only({"n-1"}, copies, expected) == ["n-1"]
    # Any other difference is not: the copy with another excerpt stays wrong content.
    edited = notification(data={"unsubscribe_token": other_token})
    edited["data"]["comment"] = {**edited["data"]["comment"], "excerpt": "Edited"}
    assert token_choice_only({"n-1"}, {"n-1": [notification(), edited]}, expected) == []
    assert token_choice_only({"n-1"}, {"n-1": [edited]}, expected) == []


def digest(did: str, start: str, comments: list[str], rid: str = "m-ana") -> dict[str, Any]:
    items = [{"comment": {"id": c}, "reason": "follow_up"} for c in comments]
    return {
        "id": did,
        "time": "2026-11-30T10:00:00+00:00",
        "data": {
            "recipient": {"id": rid},
            "period": {"frequency": "hourly", "start": start},
            "articles": [{"article": {"id": "a-1"}, "items": items}],
        },
    }


def test_digest_problems() -> None:
    one = digest("d-1", "10:00", ["c1"])
    assert (
        digest_problems([one, digest("d-1", "10:00", ["c1"]), digest("d-2", "11:00", ["c2"])]) == []
    )
    assert digest_problems([one, digest("d-1", "10:00", ["c1", "c2"])])  # copies differ
    assert digest_problems([one, digest("d-9", "10:00", ["c3"])])  # two for one period
    assert digest_problems([one, digest("d-2", "11:00", ["c1"])])  # a comment twice
    assert digest_problems([digest("d-3", "12:00", ["c4", "c4"])])  # twice in one digest


def test_fact_violations() -> None:
    facts = Facts(
        guests={"g-1"},
        unconfirmed={"g-1"},
        erased={"m-gone"},
        author={"a-1-c9": "m-ben", "a-1-c10": "m-ben"},
        never_approved={"a-1-c7"},
        after_changes={"a-1-c10"},
        digest_mode={"m-ana"},
    )
    workload = Workload(phases=[], burst=Phase("burst", []), facts=facts)
    confirm = notification(data={"recipient": {"id": "g-1"}, "reason": "confirm_subscription"})
    assert fact_violations(workload, [confirm, notification()], [digest("d-1", "1", ["c"])]) == []
    for wrong in (
        [],  # no confirmation request for the guest
        [confirm, confirm],  # two
        [confirm, notification(data={"recipient": {"id": "g-1"}})],  # unconfirmed, notified
        [confirm, notification(data={"recipient": {"id": "m-ben"}})],  # own comment
        [confirm, notification(data={"comment": {"id": "a-1-c7"}})],  # never approved
        [confirm, notification(data={"recipient": {"id": "m-gone"}, "comment": {"id": "a-1-c10"}})],
    ):
        assert fact_violations(workload, wrong, []), wrong
    assert fact_violations(workload, [confirm], [digest("d-1", "1", ["c"], rid="m-x")])
    assert fact_violations(workload, [confirm], [digest("d-1", "1", ["a-1-c9"], rid="m-ben")])


def test_reference_events_compare_like_worker_output() -> None:
    ana, ben = member("m-ana", "Ana"), member("m-ben", "Ben")
    phase = reference_outputs(
        [
            Phase(
                "p",
                [
                    subscribe(ana, "replies", None),
                    comment("c1", ana),
                    comment("c2", ben, parent="c1"),
                ],
            )
        ]
    )[0]
    (created,) = phase.created
    assert comparable(as_json(created))["data"]["recipient"]["id"] == "m-ana"
    assert comparable(as_json(created))["data"]["unsubscribe_token"][0] == "unsubscribe"
