"""The service's clock: real UTC time, or real time sped up for demos and tests.

Everything time-based (digest periods, quiet hours, activity slots) reads this clock, never
``datetime.now`` directly. With ``speed`` > 1, virtual time runs ``speed`` times faster than
real time from ``anchor`` on: ``virtual = anchor + (real - anchor) * speed``; before ``anchor``
it stands still at ``anchor`` (a test sets up its story on a stopped clock, then starts it). It
depends only on real time, so a restarted worker with the same settings continues the same
virtual timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Clock:
    """A callable returning the current (possibly sped-up) UTC time."""

    speed: float = 1.0
    anchor: datetime | None = None

    def __call__(self) -> datetime:
        real = datetime.now(UTC)
        if self.speed == 1.0 or self.anchor is None:
            return real
        return self.anchor + max(real - self.anchor, timedelta(0)) * self.speed
