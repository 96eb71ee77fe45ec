"""Digest periods: hourly, daily and weekly, in the subscriber's own time zone.

A period is a half-open interval ``[start, end)`` of real (UTC) time whose boundaries are a
fixed local wall-clock time: every local hour (hourly), every day at the digest hour (daily),
every week on the digest weekday at the digest hour (weekly). Boundaries are computed from local
dates by one function, so the end of one period is exactly the start of the next: a
daylight-saving change makes a period 23 or 25 hours long but never skips or doubles one.
Hourly periods are real hours starting at local :00 of the zone's standard offset. A local time
that does not exist (spring forward) maps to the instant the clocks jumped; an ambiguous one
(fall back) to its first occurrence.

A digest is due at the end of its period, i.e. at the local digest hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["hourly", "daily", "weekly"]


@dataclass(frozen=True)
class Schedule:
    """When someone's digests are cut."""

    frequency: Frequency = "daily"
    timezone: str = "UTC"
    hour: int = 8
    weekday: int = 0  # Monday

    @property
    def key(self) -> str:
        """A compact identity, shared by everyone whose periods coincide."""
        if self.frequency == "hourly":
            return f"hourly|{self.timezone}"
        if self.frequency == "daily":
            return f"daily|{self.timezone}|{self.hour}"
        return f"weekly|{self.timezone}|{self.hour}|{self.weekday}"

    @classmethod
    def from_key(cls, key: str) -> Schedule:
        """The schedule a ``key`` names."""
        parts = key.split("|")
        frequency = parts[0]
        if frequency == "hourly":
            return cls("hourly", parts[1])
        if frequency == "daily":
            return cls("daily", parts[1], int(parts[2]))
        return cls("weekly", parts[1], int(parts[2]), int(parts[3]))


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC."""

    frequency: Frequency
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in the period."""
        return self.start <= moment < self.end


def _boundary(local_day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``hour``:00 local time on ``local_day``."""
    # fold=0: an ambiguous time is its first occurrence; a time in a spring-forward gap is
    # read with the offset before the jump, which for a gap starting on the hour is exactly
    # the instant the clocks jumped.
    return datetime.combine(local_day, time(hour), tzinfo=zone).astimezone(UTC)


def period_containing(schedule: Schedule, moment: datetime) -> Period:
    """The period of ``schedule`` that contains ``moment``."""
    zone = ZoneInfo(schedule.timezone)
    local = moment.astimezone(zone)
    if schedule.frequency == "hourly":
        # Real hours aligned on the zone's standard offset (local :00 in Kolkata, +05:30), so
        # they tile even where DST shifts by half an hour (Lord Howe).
        standard = (local.utcoffset() or timedelta()) - (local.dst() or timedelta())
        shift = timedelta(minutes=int(standard.total_seconds() // 60) % 60)
        utc_moment = moment.astimezone(UTC)
        start = (utc_moment - shift).replace(minute=0, second=0, microsecond=0) + shift
        return Period("hourly", start, start + timedelta(hours=1))
    step = 1 if schedule.frequency == "daily" else 7
    day = local.date()
    if schedule.frequency == "weekly":
        day -= timedelta(days=(day.weekday() - schedule.weekday) % 7)
    start = _boundary(day, schedule.hour, zone)
    if start > moment:
        day -= timedelta(days=step)
        start = _boundary(day, schedule.hour, zone)
    end = _boundary(day + timedelta(days=step), schedule.hour, zone)
    return Period(schedule.frequency, start, end)


def last_closed_period(schedule: Schedule, now: datetime) -> Period:
    """The most recent period that has ended at ``now``."""
    current = period_containing(schedule, now)
    return period_containing(schedule, current.start - timedelta(microseconds=1))
