"""``newsroom-notify demo``: the product working, end to end, in a terminal.

Starts what is missing (a local Kafka unless ``NEWSROOM_KAFKA__BOOTSTRAP_SERVERS`` is set, a
worker, the stand-alone API), publishes a story — an article, members and a guest discussing it
with "Notify of" choices, a reply chain, a mention, spam removed by a moderator, a reader
following in an hourly digest — and prints each event going in and each notification,
retraction and digest coming out, with why. Then it stays up: post your own events with
``newsroom-notify post`` or the API and watch them here. Ctrl-C stops everything it started.

The worker runs on a sped-up clock (one hour in a minute, starting just after a full hour) so the
hourly digest arrives during the demo; the scenario stamps its events with the same clock.

This module runs the story (publishes it, watches the output topics and the SMTP sink); the
story itself is data in ``story.py``, the processes it starts are in ``stack.py``, the sped-up
clock in ``clock.py`` and the line for an event going in in ``render.py`` (a line for an event
coming out is ``newsroom_notify.contract.describe``'s, the one renderer of output events).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.markup import escape

from newsroom_dev import builders as b
from newsroom_dev.demo.clock import CLOCK_SPEED
from newsroom_dev.demo.render import describe_input
from newsroom_dev.demo.stack import Inbox, services
from newsroom_dev.demo.story import GEOFF, Step, scenario, stamp
from newsroom_notify.clock import Clock
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.describe import describe_output
from newsroom_notify.settings import Settings

if TYPE_CHECKING:
    from newsroom_dev.smtpsink import Landed

__all__ = ["Demo", "run_demo"]


@dataclass
class Demo:
    """Runs the story against a broker and prints what goes in and what comes out."""

    settings: Settings
    console: Console
    clock: Callable[[], datetime]
    seen: list[dict[str, Any]] = field(default_factory=list)
    confirmed: bool = False
    run_id: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    digest_seen: asyncio.Event = field(default_factory=asyncio.Event)
    inbox: Inbox | None = None
    posted_at: dict[str, float] = field(default_factory=dict)  # comment id -> appended (wall)
    mailed: dict[str, float] = field(default_factory=dict)  # message id -> accepted (wall)
    latencies: list[float] = field(default_factory=list)
    _unprinted: list[Landed] = field(default_factory=list)

    async def publish(self, producer: AIOKafkaProducer, step: Step) -> None:
        if step.caption:
            self.console.print(f"\n[bold]{step.caption}[/]")
        for event in step.events:
            stamped = stamp(event, self.clock(), self.run_id)
            key, value = codec.encode(stamped, stamped.partition_key() or "demo")
            topic = self.settings.topics.name(getattr(self.settings.topics, stamped.topic_role))
            await producer.send_and_wait(
                topic, key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER]
            )
            if isinstance(stamped, ev.CommentPosted):  # appended: the mail path's start
                self.posted_at[stamped.data.comment_id] = time.time()
            self.console.print(f"  [cyan]→[/] {describe_input(stamped)}", highlight=False)

    async def watch(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                        event = orjson.loads(record.value or b"")
                        self.seen.append(event)
                        if event["type"] == "newsroom.digest.ready":
                            self.digest_seen.set()
                        self.console.print(
                            f"  ← {describe_output(event, markup=True, ids=False)}", highlight=False
                        )
            self.print_mails()

    def print_mails(self, final: bool = False) -> None:
        """Print each mail the sink accepted, once the notification it came from was seen
        here (for the comment it is about: the time from the comment's append to the SMTP
        server's acceptance)."""
        if self.inbox is None:
            return
        while not self.inbox.landed.empty():
            self._unprinted.append(self.inbox.landed.get())
        waiting = []
        for mail in self._unprinted:
            mid = str(mail.message.get("Message-ID", "")).strip("<>").split("@")[0]
            event = next((e for e in self.seen if e["id"] == mid), None)
            if event is None and not final and time.time() - mail.accepted_at < 5:
                waiting.append(mail)
                continue
            self.mailed[mid] = mail.accepted_at
            comment = (event or {}).get("data", {}).get("comment") or {}
            appended = self.posted_at.get(comment.get("id", ""))
            after = ""
            if appended is not None and event and event["type"].endswith("notification.created"):
                self.latencies.append(mail.accepted_at - appended)
                after = f" ({mail.accepted_at - appended:.2f} s after the comment was posted)"
            to = mail.message["To"]
            name = to.addresses[0].display_name if to and to.addresses else "?"
            subject = escape(str(mail.message.get("Subject", "")))
            opened = mail.html or mail.eml
            self.console.print(
                f"  [magenta]✉[/] mail to {escape(name)}: “{subject}”{after} — open {opened}",
                highlight=False,
                soft_wrap=True,
            )
        self._unprinted = waiting

    def due_mails(self) -> set[str]:
        """Ids that must become a mail: notifications and digests with an address, less the
        notifications retracted (a retracted one may have been mailed before its retraction)."""
        retracted = {
            e["data"]["notification_id"]
            for e in self.seen
            if e["type"] == "newsroom.notification.retracted"
        }
        return {
            e["id"]
            for e in self.seen
            if e["type"] in ("newsroom.notification.created", "newsroom.digest.ready")
            and e["data"]["recipient"].get("email")
            and e["id"] not in retracted
        }

    async def wait_for_mails(self, timeout_s: float) -> None:
        """Until every due mail landed in the sink (bounded), then a summary."""
        if self.inbox is None:
            return
        deadline = time.monotonic() + timeout_s
        while not self.due_mails() <= set(self.mailed) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            self.print_mails()
        self.print_mails(final=True)
        missing = self.due_mails() - set(self.mailed)
        summary = (
            f"\n[bold]{len(self.mailed)} mails landed in the SMTP sink[/] ({self.inbox.directory})"
        )
        if self.latencies:
            summary += (
                f"; comment posted → mail accepted: median {statistics.median(self.latencies):.2f}"
                f" s, max {max(self.latencies):.2f} s"
            )
        if missing:
            summary += f"; [red]{len(missing)} still missing[/]"
        self.console.print(summary, highlight=False, soft_wrap=True)

    def confirm_token(self, subscriber_id: str) -> str | None:
        for event in self.seen:
            data = event.get("data", {})
            if data.get("reason") == "confirm_subscription" and (
                data.get("recipient", {}).get("id") == subscriber_id
            ):
                return str(data["confirm_token"])
        return None

    async def run(self, stay: bool, digest_wait_s: float) -> list[dict[str, Any]]:
        kafka = self.settings.kafka.aiokafka_kwargs()
        topics = self.settings.topics
        producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
        consumer = AIOKafkaConsumer(**kafka, enable_auto_commit=False)
        await producer.start()
        await consumer.start()
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # also when SIGINT came in ignored
            loop.add_signal_handler(sig, main.cancel)
        outputs = [topics.name(topics.notifications), topics.name(topics.digests)]
        await _from_the_end(consumer, producer, outputs)
        stop = asyncio.Event()
        watcher = asyncio.create_task(self.watch(consumer, stop))
        try:
            for step in scenario(self.run_id):
                await self.publish(producer, step)
                await asyncio.sleep(step.settle_s)
                token = self.confirm_token(b.sid_of(GEOFF))
                if token and not self.confirmed:
                    self.confirmed = True
                    self.console.print(
                        "\n[bold]Geoff clicks the link in the confirmation e-mail[/]"
                    )
                    await self.publish(producer, Step("", [b.confirm(token)]))
                    await asyncio.sleep(2.0)
            self.console.print(
                f"\n[bold]Waiting for the hour to end (the demo clock runs {CLOCK_SPEED:.0f}x): "
                "Dan's hourly digest…[/]"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.digest_seen.wait(), digest_wait_s)
            await self.wait_for_mails(30.0)
            if stay:
                bootstrap = self.settings.kafka.bootstrap_servers
                self.console.print(
                    "\n[bold]The demo is up.[/] Post your own events and watch them here:\n"
                    f"  NEWSROOM_KAFKA__BOOTSTRAP_SERVERS={bootstrap} "
                    ".venv/bin/newsroom-notify post --file event.json   (see schemas/examples/)\n"
                    f"  or the subscription API on http://127.0.0.1:{self.settings.api.port}\n"
                    f"Each mail is written to {self.inbox.directory if self.inbox else '-'} "
                    "(.eml, and .html to open in a browser).\n"
                    "Ctrl-C stops everything.",
                    soft_wrap=True,
                )
                await asyncio.Event().wait()
        finally:
            stop.set()
            await watcher
            await consumer.stop()
            await producer.stop()
        return self.seen


async def _from_the_end(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, names: list[str]
) -> None:
    """Read ``names`` from their current ends: everything the story causes, nothing older.

    Partitions are assigned explicitly (no group, no waiting for a rebalance), before the
    first event is published."""
    parts = [TopicPartition(n, p) for n in names for p in sorted(await producer.partitions_for(n))]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)  # resolve the end offset now, not lazily later


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, *, publish_only: bool, stay: bool, run_dir: Path) -> int:
    """The ``demo`` command."""
    console = Console(highlight=False)
    if publish_only:  # the workers run elsewhere (docker compose's demo profile)
        clock = Clock(settings.digest.clock_speed, settings.digest.clock_anchor)
        demo = Demo(settings, console, clock)
        asyncio.run(demo.run(stay=False, digest_wait_s=0.0))
        return 0
    # Ctrl-C and SIGTERM end the demo through its clean-up, even during start-up and even when
    # it was started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    stopped = (KeyboardInterrupt, asyncio.CancelledError)
    inbox = Inbox()
    with contextlib.suppress(*stopped), services(settings, run_dir, console, inbox) as live:
        clock = Clock(live.digest.clock_speed, live.digest.clock_anchor)
        demo = Demo(live, console, clock, inbox=inbox)
        asyncio.run(demo.run(stay=stay, digest_wait_s=60.0))
    console.print("Stopped.")
    return 0
