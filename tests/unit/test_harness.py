"""What the test harness promises every test: inputs that do not depend on earlier tests, and
Hypothesis without wall-clock deadlines."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import settings

from newsroom_dev.builders import T0, fresh_events
from tests.builders import article, comment, member

ANA = member("m-ana", "Ana Lima")


def _first_events() -> list[tuple[str, str]]:
    events = [article("a-1"), comment("c1", ANA), comment("c2", ANA)]
    return [(e.id, e.time.isoformat()) for e in events]


FIRST = [
    ("evt-1", "2026-11-28T09:00:01+00:00"),
    ("evt-2", "2026-11-28T09:00:02+00:00"),
    ("evt-3", "2026-11-28T09:00:03+00:00"),
]


def test_a_test_builds_from_evt_1_whatever_ran_before() -> None:
    assert _first_events() == FIRST


def test_and_so_does_the_next_test() -> None:
    assert _first_events() == FIRST


def test_a_block_can_start_afresh_and_the_outer_numbering_goes_on() -> None:
    assert article().id == "evt-1"
    with fresh_events():
        assert _first_events() == FIRST
    assert article().id == "evt-2"
    assert comment("c9", ANA).data.posted_at == T0 + timedelta(seconds=3)


def test_hypothesis_runs_without_a_wall_clock_deadline() -> None:
    assert settings().deadline is None
    assert settings().derandomize
