"""The quiet-hours timer (every minute) asks the inbox to release a recipient's held
notifications only once their quiet hours have ended (``Held.release_at``, read from the start
of the stored JSON), not every minute of every held recipient's night; the inbox still checks
the quiet hours itself. ``release_at`` is the first minute ``in_quiet_hours`` sees outside
them, across changes of clocks too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom_dev.workload import TOKENS
from newsroom_notify.domain import state
from newsroom_notify.domain.inbox.base import in_quiet_hours, quiet_hours_end, releases_due
from newsroom_notify.domain.state import Held, QuietHours, stored_release_at
from newsroom_notify.settings import Settings
from tests.builders import Clock, comment, member, preferences, subscribe
from tests.memory_shell import MemoryShell
from tests.unit.test_copier import decoded

# Zones with a one-hour and a half-hour change of clocks, across midnight or not, and none.
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
MINUTE = timedelta(minutes=1)
CLOCK_CHANGES = [  # 2026, UTC
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York, forward
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Berlin, forward
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe, back half an hour
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe, forward half an hour
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Berlin (and London), back
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York, back
]


@settings(max_examples=400, deadline=None)
@given(
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    zone=st.sampled_from(ZONES),
    now=st.one_of(
        st.datetimes(
            min_value=datetime(2026, 1, 1),
            max_value=datetime(2027, 12, 31),
            timezones=st.just(UTC),
        ),
        # Within a day and a half of a change of clocks in one of the zones.
        st.tuples(st.sampled_from(CLOCK_CHANGES), st.integers(-36 * 60, 36 * 60)).map(
            lambda change: change[0] + timedelta(minutes=change[1])
        ),
    ),
)
def test_the_release_time_is_the_end_of_the_quiet_hours_never_later(
    start: int, end: int, zone: str, now: datetime
) -> None:
    quiet = QuietHours(start=start, end=end)
    release_at = quiet_hours_end(quiet, zone, now)
    if not in_quiet_hours(quiet, zone, now):
        assert release_at == now
        return
    # The first minute (from now) that is no longer quiet, a step at a time.
    ended = now
    while in_quiet_hours(quiet, zone, ended):
        ended += MINUTE
    assert now < release_at <= ended  # never later than the end, nor earlier:
    assert ended - release_at < MINUTE  # (``ended`` is stepped from ``now``, seconds and all)
    assert not in_quiet_hours(quiet, zone, release_at)


def test_quiet_hours_ending_in_the_hour_a_clock_skips_end_no_later_than_it() -> None:
    # Berlin, 29 March 2026: 02:00 becomes 03:00, so an end at 02:30 never shows on its clocks;
    # the quiet hours end at 03:00 local, 01:00 UTC (read as 02:30 before the change, 01:30
    # UTC, a release half an hour late).
    quiet = QuietHours(start=22 * 60, end=2 * 60 + 30)
    now = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
    ended = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert in_quiet_hours(quiet, "Europe/Berlin", ended - MINUTE)
    assert not in_quiet_hours(quiet, "Europe/Berlin", ended)
    assert now < quiet_hours_end(quiet, "Europe/Berlin", now) <= ended


@pytest.mark.parametrize(
    ("zone", "start", "end", "now", "ended"),
    [
        # Clocks back: 01:40 summer time becomes, twenty minutes later, 01:00 winter time,
        # before the window's start: the quiet hours are over at 01:00 UTC, not at 07:00.
        ("Europe/London", "01:30", "07:00", "2026-10-25T00:40Z", "2026-10-25T01:00Z"),
        ("Europe/Berlin", "02:30", "07:00", "2026-10-25T00:40Z", "2026-10-25T01:00Z"),
        # Clocks forward past the end (02:30 never shows), asked after the earlier reading.
        ("Europe/Berlin", "22:00", "02:30", "2026-03-29T00:45Z", "2026-03-29T01:00Z"),
    ],
)
def test_quiet_hours_across_a_change_of_clocks_end_when_they_end(
    zone: str, start: str, end: str, now: str, ended: str
) -> None:
    def minutes(hhmm: str) -> int:
        return int(hhmm[:2]) * 60 + int(hhmm[3:])

    quiet = QuietHours(start=minutes(start), end=minutes(end))
    at, over = datetime.fromisoformat(now), datetime.fromisoformat(ended)
    assert in_quiet_hours(quiet, zone, over - MINUTE)
    assert not in_quiet_hours(quiet, zone, over)
    assert quiet_hours_end(quiet, zone, at) == over


def test_no_quiet_hours_release_at_once() -> None:
    now = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
    assert quiet_hours_end(None, "UTC", now) == now
    assert releases_due(None, now)
    assert releases_due(now, now)
    assert not releases_due(now + MINUTE, now)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    held=decoded(state.Held), release_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC)))
)
def test_the_release_time_read_from_the_start_is_the_decoded_one(
    held: Held, release_at: datetime | None
) -> None:
    held.release_at = release_at
    stored = held.model_dump_json().encode("utf-8")
    assert stored.startswith(b'{"release_at":')
    assert stored_release_at(stored) == Held.model_validate_json(stored).release_at == release_at


def test_a_held_record_stored_before_release_at_was_kept_is_decoded() -> None:
    stored = json.dumps({"notifications": [], "authors": {}}).encode("utf-8")
    assert stored_release_at(stored) is None  # so the timer asks, as it always did


CAL = member("m-cal", "Cal Reyes", "cal@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
NIGHT = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)  # 23:30 in Berlin


async def held_overnight() -> tuple[MemoryShell, Clock]:
    """Cal follows a-1 instantly with quiet hours 22:00-07:00 in Berlin; Ben comments at 23:30
    there: Cal's notification is held."""
    clock = Clock(NIGHT - timedelta(hours=1))
    shell = MemoryShell.start(Settings(dev_mode=True), TOKENS, clock)
    shell.publish(subscribe(CAL, "article", "a-1", "instant"))
    shell.publish(
        preferences(
            "m-cal", timezone="Europe/Berlin", quiet_hours={"start": "22:00", "end": "07:00"}
        )
    )
    await shell.run_until_idle()
    clock.now = NIGHT
    shell.publish(comment("c2", BEN))
    await shell.run_until_idle()
    assert told(shell) == []
    assert "m-cal" in shell.state()["held"]
    return shell, clock


def releases(shell: MemoryShell) -> int:
    return sum(1 for r in shell.app.log.records if r.value and b'"kind":"release"' in r.value)


def told(shell: MemoryShell) -> list[str]:
    return [
        e.data.recipient.id
        for _, e in shell.outputs()
        if getattr(e, "type", "").endswith("created")
    ]


async def test_the_timer_asks_for_a_release_only_once_the_quiet_hours_have_ended() -> None:
    shell, clock = await held_overnight()
    for minutes in (1, 60, 7 * 60 + 29):  # 23:31, 00:30, 06:59 in Berlin
        clock.now = NIGHT + timedelta(minutes=minutes)
        await shell.timers()
        assert releases(shell) == 0, clock.now
    clock.now = NIGHT + timedelta(hours=7, minutes=30)  # 07:00 in Berlin
    await shell.timers()
    assert releases(shell) == 1
    assert told(shell) == ["m-cal"]
    assert "m-cal" not in shell.state()["held"]


async def test_new_preferences_let_the_timer_ask_at_its_next_check() -> None:
    shell, clock = await held_overnight()
    shell.publish(preferences("m-cal", timezone="Europe/Berlin"))  # no quiet hours any more
    await shell.run_until_idle()
    clock.now = NIGHT + timedelta(minutes=1)
    await shell.timers()
    assert releases(shell) == 1
    assert told(shell) == ["m-cal"]
