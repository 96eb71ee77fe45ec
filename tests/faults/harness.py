"""Fault injection against the real processes: workers, broker(s), and a known workload.

A ``FaultRun`` starts worker processes against a broker, publishes the workload's setup, lets it
settle, then streams the rest at a steady rate while a scenario injects its fault (SIGKILL,
SIGTERM, a broker stop, a poison record, a burst...). A consumer collects the notifications
topic throughout; at the end the run is judged by notification ids, which are deterministic:

* missing     — expected ids never seen;
* duplicated  — ids seen more than once (allowed under at-least-once: same id, same content);
* unexpected  — ids seen that the reference pipeline did not produce;
* recover_s   — from the end of the fault until outputs flow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from newsroom_notify.devkafka import free_port
from tests.integration.kafka_helpers import WorkerProcess, worker_env
from tests.workload import TOKEN_KEY, Workload


@dataclass
class Report:
    """The figures of one scenario."""

    scenario: str
    events_in: int
    expected: int
    missing: int
    duplicated: int
    unexpected: int
    retractions_missing: int
    recover_s: float | None
    dead_letters: int = 0
    peak_rss_mb: float | None = None
    notes: str = ""
    observations: dict[str, bool] = field(default_factory=dict)

    HEADER = (
        f"{'scenario':<22}{'events in':>10}{'expected':>10}{'missing':>9}{'dup':>6}"
        f"{'unexpected':>11}{'retr.miss':>10}{'recover s':>10}{'dead':>6}{'rss MB':>8}"
    )

    def row(self) -> str:
        recover = f"{self.recover_s:.1f}" if self.recover_s is not None else "-"
        rss = f"{self.peak_rss_mb:.0f}" if self.peak_rss_mb is not None else "-"
        return (
            f"{self.scenario:<22}{self.events_in:>10}{self.expected:>10}{self.missing:>9}"
            f"{self.duplicated:>6}{self.unexpected:>11}{self.retractions_missing:>10}"
            f"{recover:>10}{self.dead_letters:>6}{rss:>8}"
            + (f"  {self.notes}" if self.notes else "")
        )


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process (and its children are not counted)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


@dataclass
class Collector:
    """Reads a topic from the start for the whole run, noting when each record arrived."""

    bootstrap: str
    topic: str
    parse: bool = True  # dead letters are arbitrary bytes: count them, do not parse them
    arrivals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
            request_timeout_ms=10_000,
            retry_backoff_ms=200,
        )
        while True:
            try:
                await consumer.start()
                break
            except KafkaError:
                await asyncio.sleep(0.5)
        try:
            while not self._stop.is_set():
                try:
                    batch = await consumer.getmany(timeout_ms=200)
                except KafkaError:
                    await asyncio.sleep(0.5)  # the broker may be down on purpose
                    continue
                now = time.monotonic()
                for records in batch.values():
                    for record in records:
                        value = orjson.loads(record.value) if self.parse else {}
                        self.arrivals.append((now, value))
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class FaultRun:
    """Workers, a workload, a collector and the figures of one scenario."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        tmp: Path,
        workload: Workload,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.workload = workload
        extra = {"NEWSROOM_TOKENS__SECRET_KEYS": orjson.dumps([TOKEN_KEY]).decode(), **(env or {})}
        base = worker_env(bootstrap, tmp, extra)
        self.prefix = base["NEWSROOM_TOPICS__PREFIX"]
        self.workers = []
        for i in range(workers):
            worker_vars = dict(base)
            worker_vars["NEWSROOM_DATA_DIR"] = str(tmp / f"worker-{i}-data")
            if i:
                worker_vars["NEWSROOM_WEB_PORT"] = str(free_port())
            self.workers.append(WorkerProcess(worker_vars, tmp / f"worker-{i}.log"))
        self.tmp = tmp
        self.fault_ended: float | None = None
        self.extra_records: list[tuple[str, bytes | None, bytes]] = []
        self.peak_rss: float | None = None
        self.events_in = 0
        self.observations: dict[str, bool] = {}  # what a scenario checked along the way

    # ------------------------------------------------------------------ workers

    def start_workers(self) -> None:
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.wait_ready(timeout=90)

    def kill(self, index: int = 0, sig: int = signal.SIGKILL) -> None:
        worker = self.workers[index]
        assert worker.proc is not None
        worker.proc.send_signal(sig)
        worker.proc.wait(60)

    def restart(self, index: int = 0) -> None:
        old = self.workers[index]
        fresh = WorkerProcess(old.env, old.log_path)
        fresh.start()
        fresh.wait_ready(timeout=120)
        self.workers[index] = fresh

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.stop()

    def sample_rss(self) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                value = rss_mb(worker.proc.pid)
                if value is not None:
                    self.peak_rss = max(self.peak_rss or 0.0, value)

    # -------------------------------------------------------------- publishing

    async def _producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=30_000,
            retry_backoff_ms=200,
            linger_ms=5,
        )
        while True:
            try:
                await producer.start()
                return producer
            except KafkaError:
                await asyncio.sleep(0.5)

    async def publish(
        self,
        records: list[tuple[str, bytes, bytes]],
        rate: float | None,
        during: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send ``records`` in order at ``rate`` per second (None: as fast as possible), while
        ``during`` runs the fault; retries through broker outages."""
        producer = await self._producer()
        fault = asyncio.create_task(during()) if during is not None else None
        try:
            started = time.monotonic()
            for n, (topic, key, value) in enumerate(records):
                if rate:
                    delay = started + n / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                while True:
                    try:
                        await producer.send_and_wait(topic, key=key, value=value)
                        break
                    except KafkaError:
                        await asyncio.sleep(0.5)
                self.events_in += 1
                if n % 50 == 0:
                    self.sample_rss()
            if fault is not None:
                await fault
        finally:
            await producer.stop()

    # ------------------------------------------------------------------- a run

    async def run(
        self,
        fault: Callable[[FaultRun], Awaitable[None]] | None,
        rate: float | None = 150.0,
        settle_s: float = 4.0,
        timeout_s: float = 120.0,
    ) -> Report:
        notifications = Collector(self.bootstrap, f"{self.prefix}newsroom.notifications")
        dead = Collector(self.bootstrap, f"{self.prefix}newsroom.deadletter", parse=False)
        await notifications.start()
        await dead.start()
        try:
            for phase in (self.workload.setup, self.workload.openers):
                await self.publish(self.workload.records(phase, self.prefix), rate=None)
                await asyncio.sleep(settle_s)
            stream = self.workload.records(self.workload.stream, self.prefix)
            middle = len(stream) // 2  # extra (poison) records go in the middle of the stream
            stream[middle:middle] = [(t, k or b"", v) for t, k, v in self.extra_records]
            await self.publish(stream, rate, (lambda: fault(self)) if fault is not None else None)
            expected = self.workload.expected_created | self.workload.expected_retracted
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                seen = {event["id"] for _, event in notifications.arrivals}
                if expected <= seen:
                    break
                self.sample_rss()
                await asyncio.sleep(0.5)
            await asyncio.sleep(2.0)  # late duplicates or strays
        finally:
            await notifications.stop()
            await dead.stop()
        return self._report(notifications, dead)

    def _report(self, notifications: Collector, dead: Collector) -> Report:
        ids = Counter(event["id"] for _, event in notifications.arrivals)
        created = {i for i in ids if i.startswith("n-")}
        retracted = {i for i in ids if i.startswith("r-")}
        expected = self.workload.expected_created
        recover = None
        if self.fault_ended is not None:
            after = [t for t, _ in notifications.arrivals if t >= self.fault_ended]
            recover = (min(after) - self.fault_ended) if after else None
        strays = (created - expected) | (retracted - self.workload.expected_retracted)
        samples = [
            (
                e["type"].rsplit(".", 1)[-1],
                e["data"].get("recipient", {}).get("id") or e["data"].get("recipient_id"),
                e["data"].get("reason"),
                e.get("subject"),
            )
            for _, e in notifications.arrivals
            if e["id"] in strays
        ][:5]
        return Report(
            scenario=self.name,
            events_in=self.events_in,
            expected=len(expected),
            missing=len(expected - created),
            duplicated=sum(n - 1 for n in ids.values() if n > 1),
            unexpected=len((created - expected) | (retracted - self.workload.expected_retracted)),
            retractions_missing=len(self.workload.expected_retracted - retracted),
            recover_s=recover,
            dead_letters=len(dead.arrivals),
            peak_rss_mb=self.peak_rss,
            observations=dict(self.observations),
            notes=(f"unexpected: {samples} " if samples else "")
            + (
                f"missing: {[self.workload.detail.get(i) for i in sorted(expected - created)[:5]]}"
                if expected - created
                else ""
            ),
        )


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call (kill, restart, broker stop) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
