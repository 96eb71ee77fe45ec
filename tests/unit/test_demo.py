"""The demo's sped-up clock: its story always falls inside one digest hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsroom_notify.clock import Clock
from newsroom_notify.demo import CLOCK_SPEED, clock_anchor


@pytest.mark.parametrize("minute", [0, 21, 47, 59])
def test_the_demo_clock_starts_just_after_a_full_hour(minute: int) -> None:
    now = datetime(2026, 11, 28, 8, minute, 42, 123456, tzinfo=UTC)
    anchor = clock_anchor(now, CLOCK_SPEED)
    service = anchor + (now - anchor) * CLOCK_SPEED  # what Clock(...)() reads at `now`
    assert abs(service - datetime(2026, 11, 28, 9, 1, tzinfo=UTC)) < timedelta(milliseconds=1)
    # 50 real seconds later (the whole story, with room) it is still the same service hour.
    later = anchor + (now + timedelta(seconds=50) - anchor) * CLOCK_SPEED
    assert later.hour == 9
    assert Clock(CLOCK_SPEED, anchor).anchor == anchor  # the setting the worker gets
