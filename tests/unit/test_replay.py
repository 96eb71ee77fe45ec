"""At-least-once replays: re-processing any suffix of a stream (what a crash before the offset
commit causes) never produces a notification the first pass did not, even though the tables
already hold the effects of the replayed events (later subscriptions, later participants)."""

from __future__ import annotations

from datetime import UTC, datetime

from newsroom_dev.workload import TOKEN_KEY, generate
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens


def test_replaying_any_suffix_repeats_only_ids_already_sent() -> None:
    workload = generate(seed=7, burst=0)
    pipe = LocalPipeline(
        tokens=Tokens([TOKEN_KEY], 3600, 3600), clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC)
    )
    stream = [event for phase in workload.phases for event in phase.events]
    first = pipe.feed(stream)
    expected = {o.id for o in first}
    assert any(isinstance(o, ev.NotificationCreated) for o in first)
    for start in range(0, len(stream), 25):
        replayed = pipe.feed(stream[start:])
        strays = {o.id for o in replayed} - expected
        assert strays == set(), f"replay from {start} produced {strays}"


def test_the_workload_exercises_every_reason_and_retractions() -> None:
    workload = generate(seed=7, burst=0)
    reasons = workload.expected_reasons(workload.phases)
    assert set(reasons) >= {"reply", "mention", "follow_up", "followed_commenter"}
    assert any(phase.retracted for phase in workload.phases)
