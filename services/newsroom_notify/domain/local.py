"""The whole pipeline in one process, over dicts: the reference the Faust topology must match.

``LocalPipeline`` routes every ``Outbound`` to the stage that owns its key exactly as the
Kafka topology does (threads by article id, follows by entity, inbox by subscriber id), one
message at a time, breadth-first. Tests use it to state expected outputs; benchmarks and fault
tests use it to compute the notifications a stream must produce.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.dispatch import (
    command_key,
    follows_handle,
    inbox_handle,
    threads_handle,
)
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.messages import Command, DigestTick, Release
from newsroom_notify.domain.outbox import Destination, Outbound
from newsroom_notify.domain.threads import ThreadsStage
from newsroom_notify.domain.tokens import Tokens

TABLES = (
    "threads",
    "comments",
    "digest_followers",
    "digest_members",
    "activity",
    "pending",
    "authored",
    "followers",
    "fanout",
    "profiles",
    "sent",
    "held",
    "digests",
    "traces",
    "quotas",
)  # every table of the three stages


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LocalPipeline:
    """Threads, follows and inbox stages wired together in memory."""

    tokens: Tokens
    clock: Callable[[], datetime] = _now
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[ev.CloudEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = self.tables
        for name in TABLES:
            t.setdefault(name, {})
        self.threads = ThreadsStage(
            t["threads"],
            t["comments"],
            t["digest_followers"],
            t["digest_members"],
            t["activity"],
            t["pending"],
            t["authored"],
            clock=self.clock,
        )
        self.follows = FollowsStage(t["followers"], t["fanout"])
        self.inbox = InboxStage(
            t["profiles"],
            t["sent"],
            t["held"],
            t["digests"],
            t["traces"],
            tokens=self.tokens,
            clock=self.clock,
            quotas=t["quotas"],
        )

    def feed(self, events: Iterable[ev.CloudEvent]) -> list[ev.CloudEvent]:
        """Process input events in order; return the output events they produced."""
        produced: list[ev.CloudEvent] = []
        for event in events:
            if event.topic_role == "subscriptions":
                key = command_key(event, self.tokens)
                command = Command(
                    subscriber_id=key, event_json=event.model_dump_json(), at=event.time
                )
                produced += self._run(Outbound(Destination.INBOX, key, command), event)
            else:
                produced += self._run(
                    Outbound(Destination.THREADS, event.partition_key() or "", event)
                )
        self.outputs += produced
        return produced

    def tick(self) -> list[ev.CloudEvent]:
        """What the digest timers do: article fan-outs first, then the inboxes that are due."""
        produced: list[ev.CloudEvent] = []
        for article_id in list(self.tables["pending"]):
            tick = Outbound(Destination.THREADS, article_id, DigestTick())
            produced += self._run(tick)
        for recipient_id in [r for r in self.tables["digests"] if self.inbox.digest_due(r)]:
            produced += self._run(Outbound(Destination.INBOX, recipient_id, DigestTick()))
        self.outputs += produced
        return produced

    def release(self, recipient_id: str) -> list[ev.CloudEvent]:
        """What the quiet-hours timer does for one recipient."""
        produced = self._run(
            Outbound(Destination.INBOX, recipient_id, Release(recipient_id=recipient_id))
        )
        self.outputs += produced
        return produced

    def _run(self, first: Outbound, command: ev.CloudEvent | None = None) -> list[ev.CloudEvent]:
        queue: deque[Outbound] = deque([first])
        produced: list[ev.CloudEvent] = []
        while queue:
            item = queue.popleft()
            message: BaseModel = item.message
            if item.to.is_output:
                assert isinstance(message, ev.CloudEvent)
                produced.append(message)
                continue
            if item.to is Destination.THREADS:
                queue.extend(threads_handle(self.threads, item.key, message))
            elif item.to is Destination.FOLLOWS:
                queue.extend(follows_handle(self.follows, item.key, message))
            else:
                queue.extend(inbox_handle(self.inbox, item.key, message, command))
        return produced
