"""The sped-up clock of the demo and tests: the demo story falls inside one digest hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsroom_dev.demo.clock import CLOCK_SPEED, clock_anchor
from newsroom_notify import clock as clock_module
from newsroom_notify.clock import Clock


def reading_at(clock: Clock, real: datetime, monkeypatch: pytest.MonkeyPatch) -> datetime:
    """What ``clock()`` returns when the wall clock shows ``real``."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: object = None) -> Frozen:
            return cls.fromtimestamp(real.timestamp(), UTC)

    with monkeypatch.context() as patch:
        patch.setattr(clock_module, "datetime", Frozen)
        return clock()


@pytest.mark.parametrize("minute", [0, 21, 47, 59])
def test_the_demo_clock_starts_just_after_a_full_hour(
    minute: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CLOCK_SPEED == 60.0  # one service hour per real minute
    now = datetime(2026, 11, 28, 8, minute, 42, 123456, tzinfo=UTC)
    clock = Clock(CLOCK_SPEED, clock_anchor(now, CLOCK_SPEED))  # the setting the worker gets
    start = reading_at(clock, now, monkeypatch)
    assert abs(start - datetime(2026, 11, 28, 9, 1, tzinfo=UTC)) < timedelta(milliseconds=1)
    # 50 real seconds later (the whole story, with room) it is 50 service minutes later: 09:51.
    later = reading_at(clock, now + timedelta(seconds=50), monkeypatch)
    assert abs(later - datetime(2026, 11, 28, 9, 51, tzinfo=UTC)) < timedelta(milliseconds=1)


def test_a_sped_up_clock_stands_still_until_its_anchor(monkeypatch: pytest.MonkeyPatch) -> None:
    anchor = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    clock = Clock(3600.0, anchor)
    before = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, tzinfo=UTC)]
    assert [reading_at(clock, real, monkeypatch) for real in before] == [anchor, anchor]
    # From the anchor on, an hour per second: 2.5 s later it is 02:30.
    later = reading_at(clock, anchor + timedelta(seconds=2.5), monkeypatch)
    assert later == datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
