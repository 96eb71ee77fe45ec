"""The inbox stage's tables and settings, and what every part of it shares (the digest schedule
and quiet hours of a subscriber, held notifications, where a subscriber is traced)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.inbox.render import Renderer
from newsroom_notify.domain.intents import Publish, Stage
from newsroom_notify.domain.schedule import Schedule
from newsroom_notify.domain.state import (
    DigestBuffer,
    Held,
    Preferences,
    Profile,
    QuietHours,
    Quota,
    Sent,
    Traces,
)
from newsroom_notify.domain.tokens import Tokens


def schedule_of(prefs: Preferences) -> Schedule:
    """A subscriber's digest schedule."""
    return Schedule(prefs.digest, prefs.timezone, prefs.digest_hour, prefs.digest_weekday)


QUIET_SEARCH_MINUTES = 2 * 24 * 60  # quiet hours' end looked for across a change of clocks


def in_quiet_hours(quiet: QuietHours | None, timezone: str, now: datetime) -> bool:
    """Whether ``now`` falls inside the daily quiet window (local time, may cross midnight)."""
    if quiet is None or quiet.start == quiet.end:
        return False
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    if quiet.start < quiet.end:
        return quiet.start <= minute < quiet.end
    return minute >= quiet.start or minute < quiet.end


def quiet_hours_end(quiet: QuietHours | None, timezone: str, now: datetime) -> datetime:
    """When the quiet window ``now`` is in ends (``now`` itself outside of one), in UTC: the
    first minute ``in_quiet_hours`` sees outside it. Its end on the wall clock, unless the clocks
    change in between (a window may then end early, at a wall-clock time before its start, or
    late, its end skipped): then found a minute at a time, up to two days."""
    if quiet is None or not in_quiet_hours(quiet, timezone, now):
        return now
    local = now.astimezone(ZoneInfo(timezone))
    end = local.replace(hour=quiet.end // 60, minute=quiet.end % 60, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)  # the same wall-clock time tomorrow
    ended = end.astimezone(UTC)
    shown = ended.astimezone(local.tzinfo)  # what the clocks show then: the end, if they agree
    if shown.utcoffset() == local.utcoffset() and shown.replace(tzinfo=None) == end.replace(
        tzinfo=None
    ):
        return ended
    step = now.replace(second=0, microsecond=0)
    for _ in range(QUIET_SEARCH_MINUTES):
        step += timedelta(minutes=1)
        if not in_quiet_hours(quiet, timezone, step):
            return step.astimezone(UTC)
    return now  # none found: the timer asks at its next check


def releases_due(release_at: datetime | None, now: datetime) -> bool:
    """Whether the quiet-hours timer asks for a recipient's release at ``now``: when their held
    notifications' ``release_at`` has come, or is not known (held before it was kept)."""
    return release_at is None or release_at <= now


def _everywhere(_: str, __: int | None) -> bool:
    return True


def _uncounted(_: str) -> None:
    return None


@dataclass
class InboxBase:
    """The inbox stage's tables and settings (the handlers are in the modules beside)."""

    profiles: MutableMapping[str, Profile]
    sent: MutableMapping[str, Sent]  # sent_key(recipient, subject) -> what was sent
    held: MutableMapping[str, Held]
    digests: MutableMapping[str, DigestBuffer]
    traces: MutableMapping[str, Traces]
    tokens: Tokens
    clock: Callable[[], datetime]
    quotas: MutableMapping[str, Quota] | None = None  # mailbox key -> confirmation mails sent
    confirmations_per_day: int = 3  # per mailbox (the per-address limit)
    source: str = "urn:newsroom-notify"
    digest_grace: timedelta = timedelta(minutes=2)  # late contributions still make it
    items_per_article: int = 5
    # Whether a recipient's state lives in the given partition of the inbox topic (the stream
    # shell's partitioner; None: the in-process pipeline, one partition holds everyone).
    owns: Callable[[str, int | None], bool] = _everywhere
    # Caps of the per-recipient records (docs/security.md, bounded state), and who hears of
    # a cap hit.
    held_max: int = 50
    digest_items_max: int = 200
    digest_contributions_max: int = 200
    subscriptions_max: int = 500  # per subscriber: more are refused (not recorded)
    traces_max: int = 5_000  # discussions per subscriber: more, an erasure searches for them
    on_capped: Callable[[str], None] = _uncounted
    render: Renderer = field(init=False, repr=False)  # the wire events it sends

    def __post_init__(self) -> None:
        self.render = Renderer(self.tokens, self.source, self.clock)

    def _emit(self, event: ev.CloudEvent) -> Publish:
        return Publish.of(event)

    def _store_held(self, rid: str, held: Held) -> None:
        if held.notifications:
            self.held[rid] = held
        else:
            self.held.pop(rid, None)

    def token_current(self, sid: str, version: int) -> bool:
        """Whether a token of this version still speaks for this subscriber (no sign-out or
        erasure since it was minted). With no profile only version 0 does: the version of an
        erase token mailed to a commenter who never subscribed."""
        profile = self.profiles.get(sid)
        return version == (profile.token_version if profile is not None else 0)

    def _trace(self, sid: str, stage: Stage, key: str) -> None:
        traces = self.traces.get(sid) or Traces()
        entry = (stage.value, key)
        if traces.overflow or entry in [tuple(k) for k in traces.keys]:
            return
        if len(traces.keys) < self.traces_max:
            traces.keys.append(entry)
        else:  # past the cap: an erasure asks every threads partition (docs/security.md)
            traces.overflow = True
            self.on_capped("traces")
        self.traces[sid] = traces
