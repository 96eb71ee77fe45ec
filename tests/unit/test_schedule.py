"""Digest periods: time zones, DST change days, weekly boundaries, tiling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsroom_notify.domain.schedule import (
    Schedule,
    last_closed_period,
    period_containing,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_daily_period_runs_from_digest_hour_to_digest_hour_local() -> None:
    berlin = Schedule("daily", "Europe/Berlin", 8)
    period = period_containing(berlin, utc(2026, 11, 28, 12, 0))  # 13:00 in Berlin
    assert period.start == utc(2026, 11, 28, 7, 0)  # 08:00 CET
    assert period.end == utc(2026, 11, 29, 7, 0)
    before_eight = period_containing(berlin, utc(2026, 11, 28, 6, 59))
    assert before_eight.end == utc(2026, 11, 28, 7, 0)


def test_last_closed_period_is_the_one_that_just_ended() -> None:
    ny = Schedule("daily", "America/New_York", 8)
    closed = last_closed_period(ny, utc(2026, 11, 28, 13, 30))  # 08:30 in New York
    assert closed.start == utc(2026, 11, 27, 13, 0)
    assert closed.end == utc(2026, 11, 28, 13, 0)


def test_spring_forward_day_is_23_hours_and_nothing_is_skipped() -> None:
    berlin = Schedule("daily", "Europe/Berlin", 8)
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
    change = period_containing(berlin, utc(2026, 3, 29, 1, 0))  # the instant of the jump
    assert change.start == utc(2026, 3, 28, 7, 0)  # 08:00 CET
    assert change.end == utc(2026, 3, 29, 6, 0)  # 08:00 CEST
    assert change.end - change.start == timedelta(hours=23)
    after = period_containing(berlin, change.end)
    assert after.start == change.end
    assert after.end - after.start == timedelta(hours=24)


def test_fall_back_day_is_25_hours() -> None:
    berlin = Schedule("daily", "Europe/Berlin", 8)
    change = period_containing(berlin, utc(2026, 10, 25, 0, 30))  # just before 03:00 CEST
    assert change.end - change.start == timedelta(hours=25)
    assert period_containing(berlin, change.end).start == change.end


def test_digest_hour_inside_the_spring_gap_maps_to_the_jump() -> None:
    berlin = Schedule("daily", "Europe/Berlin", 2)  # 02:00 does not exist on 2026-03-29
    period = period_containing(berlin, utc(2026, 3, 29, 12, 0))
    assert period.start == utc(2026, 3, 29, 1, 0)  # the instant clocks jumped to 03:00
    previous = period_containing(berlin, period.start - timedelta(seconds=1))
    assert previous.end == period.start


def test_weekly_period_starts_on_the_weekday() -> None:
    monday_eight = Schedule("weekly", "Asia/Tokyo", 8, 0)
    period = period_containing(monday_eight, utc(2026, 11, 28, 0, 0))  # Saturday in Tokyo
    assert period.start == utc(2026, 11, 22, 23, 0)  # Monday 23rd, 08:00 JST
    assert period.end == utc(2026, 11, 29, 23, 0)


def test_hourly_periods_follow_half_hour_zones() -> None:
    kolkata = Schedule("hourly", "Asia/Kolkata")
    period = period_containing(kolkata, utc(2026, 11, 28, 10, 45))  # 16:15 IST
    assert (period.start, period.end) == (utc(2026, 11, 28, 10, 30), utc(2026, 11, 28, 11, 30))


def test_schedule_key_round_trips() -> None:
    for schedule in (
        Schedule("hourly", "UTC"),
        Schedule("daily", "Europe/Berlin", 7),
        Schedule("weekly", "Asia/Tokyo", 8, 3),
    ):
        assert Schedule.from_key(schedule.key) == schedule


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]
)
@pytest.mark.parametrize("frequency", ["hourly", "daily", "weekly"])
def test_periods_tile_time_through_dst_changes(zone: str, frequency: str) -> None:
    schedule = Schedule(frequency, zone, 8, 2)  # type: ignore[arg-type]
    nominal = {"hourly": 1, "daily": 24, "weekly": 24 * 7}[frequency]
    # Hourly: the months with DST changes; daily and weekly: the whole year.
    windows = (
        [(utc(2026, 3, 20), utc(2026, 4, 10)), (utc(2026, 9, 25), utc(2026, 11, 5))]
        if frequency == "hourly"
        else [(utc(2026, 1, 1), utc(2027, 1, 1))]
    )
    for start, end in windows:
        period = period_containing(schedule, start)
        while period.start < end:
            following = period_containing(schedule, period.end)
            assert following.start == period.end  # no gap, no overlap
            length = period.end - period.start
            assert timedelta(hours=nominal - 1) <= length <= timedelta(hours=nominal + 1)
            period = following


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["Europe/London", "America/Sao_Paulo", "Asia/Kathmandu"]),
)
def test_a_moment_is_in_the_period_containing_it(moment: datetime, zone: str) -> None:
    for frequency in ("hourly", "daily", "weekly"):
        period = period_containing(Schedule(frequency, zone, 6, 4), moment)  # type: ignore[arg-type]
        assert period.contains(moment)
