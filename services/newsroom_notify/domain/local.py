"""The whole pipeline in one process, over dicts: the reference the Faust topology must match.

``LocalPipeline`` delivers every ``ToStage`` intent to the stage that owns its key exactly as the
Kafka topology does (threads by article id, follows by entity, inbox by subscriber id), and a
fan-out's candidacies (``ToRecipients``) to the inbox's ``on_candidacies``, one intent at a
time, breadth-first, each handler's in the order the shell sends them (``in_sending_order``).
Tests use it to state expected outputs; benchmarks and fault tests use it to compute the
notifications a stream must produce.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.dispatch import Stages, command, deliver, in_sending_order
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.intents import Intent, Publish, Stage, ToRecipients, ToStage
from newsroom_notify.domain.messages import DigestTick, Release
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
    "unfollowed_commenters",
    "follower_heads",
    "follower_chunks",
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
            unfollowed=t["unfollowed_commenters"],
        )
        self.follows = FollowsStage(t["follower_heads"], t["follower_chunks"], t["fanout"])
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
        self.stages = Stages(self.threads, self.follows, self.inbox)

    def feed(self, events: Iterable[ev.CloudEvent]) -> list[ev.CloudEvent]:
        """Process input events in order; return the output events they produced."""
        produced: list[ev.CloudEvent] = []
        for event in events:
            if event.topic_role == "subscriptions":
                cmd = command(event, self.tokens)
                produced += self.run([ToStage(Stage.INBOX, cmd.subscriber_id, cmd)])
            else:
                key = event.partition_key() or ""
                produced += self.run([ToStage(Stage.THREADS, key, event)])
        self.outputs += produced
        return produced

    def tick(self) -> list[ev.CloudEvent]:
        """What the digest timers do: article fan-outs first, then the inboxes that are due."""
        produced: list[ev.CloudEvent] = []
        tick = DigestTick(at=self.clock())
        for article_id in list(self.tables["pending"]):
            produced += self.run([ToStage(Stage.THREADS, article_id, tick)])
        for recipient_id in [
            r for r in self.tables["digests"] if self.inbox.digest_due(r, tick.at)
        ]:
            produced += self.run([ToStage(Stage.INBOX, recipient_id, tick)])
        self.outputs += produced
        return produced

    def release(self, recipient_id: str) -> list[ev.CloudEvent]:
        """What the quiet-hours timer does for one recipient."""
        produced = self.run(
            [ToStage(Stage.INBOX, recipient_id, Release(recipient_id=recipient_id))]
        )
        self.outputs += produced
        return produced

    def run(self, intents: Iterable[Intent]) -> list[ev.CloudEvent]:
        """Deliver messages to their stages, and what they cause in turn, breadth-first;
        return the events published (not added to ``outputs``)."""
        queue: deque[Intent] = deque(intents)
        produced: list[ev.CloudEvent] = []
        while queue:
            intent = queue.popleft()
            if isinstance(intent, Publish):
                produced.append(intent.event)
            elif isinstance(intent, ToRecipients):  # decided together, as the shell does
                inbox = self.stages.inbox
                queue.extend(
                    inbox.on_candidacies(
                        intent.subject, intent.at, intent.origin, intent.bases, intent.choices
                    )
                )
            else:
                asked = deliver(self.stages, intent.stage, intent.key, intent.message)
                queue.extend(in_sending_order(asked))
        return produced
