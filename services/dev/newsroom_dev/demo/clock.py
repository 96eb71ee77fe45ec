"""The demo's sped-up clock: one service hour in a real minute, anchored so that the whole story
falls in one service hour (the worker gets it as its digest clock; the story is stamped with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

CLOCK_SPEED = 60.0  # one service hour in a minute: the hourly digest arrives during the demo


def clock_anchor(now: datetime, speed: float) -> datetime:
    """The anchor that makes the sped-up clock read one minute past the next full hour at
    ``now``: the whole story then falls in one service hour (a digest period), whatever the
    minute the demo starts at. (``Clock``: anchor + (real - anchor) * speed.)"""
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, minutes=1)
    seconds = (speed * now.timestamp() - start.timestamp()) / (speed - 1)
    return datetime.fromtimestamp(seconds, UTC)
