"""Fault injection against the real processes: workers, broker(s), and a known workload.

A ``FaultRun`` starts worker processes (on a sped-up clock, so that hourly digests are cut every
second) against a broker and publishes the workload phase by phase, letting each phase settle
(the worker group's committed offsets reach the end of every topic it consumes) before the next.
The ``tail`` phase is the faulted one: it is published in chunks, and each fault of a scenario
is triggered by progress — once the notifications expected from the chunks before and half of
the current chunk have been observed — while the next chunk is held back until the fault has
landed, so the stream is still flowing when it lands (each hit records that input was still
left to publish and output still to come). Consumers collect the notifications and digests
topics throughout. The run is judged against the reference outputs of the published phases
(``newsroom_dev/workload.py``):

* missing / unexpected — notification ids (and retraction ids) expected and never seen, or seen
  and not expected;
* wrong content — a notification or retraction whose content differs from the reference's;
* duplicates that differ — two copies of one id with different content;
* reasons — the count of each reason among the distinct notifications;
* digests — one digest id per recipient and period, copies of one id identical, no comment in
  two digests of one recipient;
* facts — what the workload's construction implies, independent of the pipeline code.

Content is compared as the event minus ``time`` and with each token replaced by its decoded
claims (purpose, subscriber, scope, target): a replay mints tokens afresh (their signature
embeds the minting second) and stamps the time it ran, nothing else may differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from newsroom_dev.kafka import free_port
from newsroom_dev.workload import TOKEN_KEY, TOKENS, Phase, Workload
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims
from tests.integration.kafka_helpers import (
    Offsets,
    WorkerProcess,
    consumed_topics,
    worker_env,
)

CLOCK_SPEED = 3600  # a virtual hour per real second: hourly digests are cut every second


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
    wrong_content: int = 0
    duplicates_differ: int = 0
    token_choice: list[str] = field(default_factory=list)  # see CONSENT_TOKEN
    reasons_seen: dict[str, int] = field(default_factory=dict)
    reasons_expected: dict[str, int] = field(default_factory=dict)
    digests: int = 0
    digest_problems: list[str] = field(default_factory=list)
    fact_violations: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)  # each fault: progress, flowing
    dead_letters: int = 0
    baseline_rss_mb: float | None = None  # peak RSS after the normal workload (burst only)
    peak_rss_mb: float | None = None
    notes: str = ""
    observations: dict[str, bool] = field(default_factory=dict)

    HEADER = (
        f"{'scenario':<22}{'events in':>10}{'expected':>10}{'missing':>9}{'dup':>6}"
        f"{'unexpected':>11}{'wrong':>6}{'retr.miss':>10}{'digests':>8}{'recover s':>10}"
        f"{'dead':>6}{'rss MB':>12}"
    )

    def row(self) -> str:
        recover = f"{self.recover_s:.1f}" if self.recover_s is not None else "-"
        rss = f"{self.peak_rss_mb:.0f}" if self.peak_rss_mb is not None else "-"
        if self.baseline_rss_mb is not None:
            rss = f"{self.baseline_rss_mb:.0f}->{rss}"
        problems = self.digest_problems + self.fact_violations
        return (
            f"{self.scenario:<22}{self.events_in:>10}{self.expected:>10}{self.missing:>9}"
            f"{self.duplicated:>6}{self.unexpected:>11}"
            f"{self.wrong_content + self.duplicates_differ:>6}{self.retractions_missing:>10}"
            f"{self.digests:>8}{recover:>10}{self.dead_letters:>6}{rss:>12}"
            + (f"  {self.notes}" if self.notes else "")
            + (f"  problems: {problems[:5]}" if problems else "")
        )


def rss_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM, kept by the kernel) of a live process, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _claims(token: str) -> list[Any]:
    """What a token says (its purpose and claims), without its signature and timestamp."""
    readers: list[tuple[str, Callable[[str], Any]]] = [
        ("unsubscribe", TOKENS.read_unsubscribe),
        ("confirm", TOKENS.read_confirm),
        ("manage", TOKENS.read_manage),
    ]
    for purpose, read in readers:
        with contextlib.suppress(InvalidToken):
            claims = read(token)
            if isinstance(claims, TokenClaims):
                return [purpose, claims.subscriber_id, claims.scope, claims.target]
            return [purpose, claims]
    return ["invalid token"]


CONSENT_TOKEN = (
    "an unsubscribe token cancels another of the recipient's subscriptions than the reference's"
)


def _sans_unsubscribe(value: dict[str, Any]) -> dict[str, Any]:
    return {**value, "data": {**value["data"], "unsubscribe_token": None}}


def token_choice_only(
    ids: set[str], copies: dict[str, list[dict[str, Any]]], expected: dict[str, Any]
) -> list[str]:
    """Of ``ids``, those whose copies differ from the reference (or from each other) in
    nothing but which of the recipient's subscriptions the unsubscribe token cancels: the open
    defect CONSENT_TOKEN (README, open defects), told apart from any other difference."""
    return sorted(
        i
        for i in ids
        if len(
            {_key(_sans_unsubscribe(comparable(c))) for c in copies[i]}
            | ({_key(_sans_unsubscribe(expected[i]))} if i in expected else set())
        )
        == 1
    )


def comparable(value: Any) -> Any:
    """An output event as the oracle compares it: no ``time``, tokens as their claims."""
    if isinstance(value, dict):
        return {
            k: (_claims(v) if k.endswith("_token") and isinstance(v, str) else comparable(v))
            for k, v in value.items()
            if k != "time"
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def as_json(event: ev.CloudEvent) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(event.model_dump_json())
    return value


@dataclass
class Collector:
    """Reads a topic from the start for the whole run, noting when each record arrived."""

    bootstrap: str
    topic: str
    parse: bool = True  # dead letters are arbitrary bytes: count them, do not parse them
    arrivals: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next offset
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
                    batch = await consumer.getmany(timeout_ms=200, max_records=200)
                except KafkaError:
                    await asyncio.sleep(0.5)  # the broker may be down on purpose
                    continue
                now = time.monotonic()
                for tp, records in batch.items():
                    for record in records:
                        value = orjson.loads(record.value) if self.parse else {}
                        self.arrivals.append((now, value))
                        if self.parse:
                            self.ids.add(value["id"])
                        self.positions[tp.partition] = record.offset + 1
        finally:
            await consumer.stop()

    def caught_up(self, ends: dict[int, int]) -> bool:
        """Whether every record up to these end offsets was read."""
        return all(self.positions.get(p, 0) >= end for p, end in ends.items())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


class FaultRun:
    """Workers, a workload, collectors and the figures of one scenario."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        tmp: Path,
        workload: Workload,
        workers: int = 1,
        env: dict[str, str] | None = None,
        hits: int = 1,
        burst: bool = False,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.workload = workload
        anchor = datetime.now(UTC).isoformat()
        extra = {
            "NEWSROOM_TOKENS__SECRET_KEYS": orjson.dumps([TOKEN_KEY]).decode(),
            "NEWSROOM_DIGEST__CLOCK_SPEED": str(CLOCK_SPEED),
            "NEWSROOM_DIGEST__CLOCK_ANCHOR": anchor,  # a restarted worker continues the timeline
            "NEWSROOM_DIGEST__TICK_S": "0.25",
            # Fan-outs to followers walked one follower per step (FanoutStep on -follows), so
            # the faults also land in the middle of walks; the reference takes them at once.
            "NEWSROOM_LIMITS__FANOUT_STEP_RECIPIENTS": "1",
            **(env or {}),
        }
        base = worker_env(bootstrap, tmp, extra)
        self.prefix = base["NEWSROOM_TOPICS__PREFIX"]
        self.group = base["NEWSROOM_APP_ID"]
        self.partitions = int(base["NEWSROOM_TOPICS__PARTITIONS"])
        self.consumed = consumed_topics(base)
        self.workers = []
        for i in range(workers):
            worker_vars = dict(base)
            worker_vars["NEWSROOM_DATA_DIR"] = str(tmp / f"worker-{i}-data")
            if i:
                worker_vars["NEWSROOM_WEB_PORT"] = str(free_port())
            self.workers.append(WorkerProcess(worker_vars, tmp / f"worker-{i}.log"))
        self.tmp = tmp
        self.hit_count = hits
        self.burst = burst
        self.fault_ended: float | None = None
        self.extra_records: list[tuple[str, bytes | None, bytes]] = []
        self.peak_rss: float | None = None
        self.baseline_rss: float | None = None
        self.events_in = 0
        self.observations: dict[str, bool] = {}  # what a scenario checked along the way
        self.hits: list[dict[str, Any]] = []
        self.landed = 0
        self.notifications = Collector(bootstrap, f"{self.prefix}newsroom.notifications")
        self.digests = Collector(bootstrap, f"{self.prefix}newsroom.digests")
        self.dead = Collector(bootstrap, f"{self.prefix}newsroom.deadletter", parse=False)
        self.offsets = Offsets(bootstrap, self.partitions)
        # The faulted phase in chunks; the ids each chunk must produce, and when each hit is due.
        tail = workload.phase("tail")
        size = -(-len(tail.events) // (hits + 1))
        self.chunks = [
            Phase("tail", tail.events[i : i + size], tail.per_event[i : i + size])
            for i in range(0, len(tail.events), size)
        ]
        self.tail_ids = {o.id for o in tail.outputs}
        self.tail_published = 0
        done = 0
        self.thresholds: list[int] = []
        for chunk in self.chunks[:hits]:
            produced = len({o.id for o in chunk.outputs})
            self.thresholds.append(done + produced // 2)
            done += produced

    # ------------------------------------------------------------------ workers

    def start_workers(self) -> None:
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.wait_ready(timeout=90)

    def kill(self, index: int = 0, sig: int = signal.SIGKILL) -> None:
        self.sample_rss()  # its peak so far (VmHWM) before it goes
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

    # --------------------------------------------------------------- progress

    async def due(self, hit: int, timeout: float = 180.0) -> None:
        """Wait until fault ``hit`` is due: the notifications of the chunks before it and of
        half of its own chunk were observed. Records whether the stream was still flowing."""
        target = self.thresholds[hit]
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = len(self.notifications.ids & self.tail_ids)
            if seen >= target:
                break
            await asyncio.sleep(0.05)
        self.hits.append(
            {
                "hit": hit,
                "due_at_outputs": target,
                "outputs_seen": seen,
                "by_progress": seen >= target,
                "input_left": self.tail_published < len(self.workload.phase("tail").events),
                "output_left": seen < len(self.tail_ids),
            }
        )

    def land(self) -> None:
        """The fault has landed: the next chunk of the stream may go."""
        self.landed += 1

    async def settle(self, timeout: float = 180.0) -> bool:
        """Poll until the workers committed every record of the topics they consume."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.offsets.settled(self.group, self.consumed):
                    return True
            except (TimeoutError, KafkaError, OSError):
                await self.offsets.close()  # the broker may be down on purpose: reconnect
            await asyncio.sleep(0.25)
        return False

    async def read_all(self, timeout: float = 60.0) -> bool:
        """Poll until the collectors have read everything written to their topics so far."""
        topics = {c.topic: c for c in (self.notifications, self.digests, self.dead)}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ends = await self.offsets.ends(list(topics))
            except (TimeoutError, KafkaError, OSError):
                await self.offsets.close()
                await asyncio.sleep(0.25)
                continue
            per_topic: dict[str, dict[int, int]] = defaultdict(dict)
            for tp, end in ends.items():
                per_topic[tp.topic][tp.partition] = end
            if all(c.caught_up(per_topic[t]) for t, c in topics.items()):
                return True
            await asyncio.sleep(0.1)
        return False

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

    async def publish(self, records: list[tuple[str, bytes, bytes]], rate: float | None) -> None:
        """Send ``records`` in order at ``rate`` per second (None: as fast as possible),
        retrying through broker outages."""
        producer = await self._producer()
        try:
            started = time.monotonic()
            pending: list[asyncio.Future[Any]] = []
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
                else:  # a burst: pipelined (the idempotent producer keeps the order)
                    pending.append(await producer.send(topic, key=key, value=value))
                self.events_in += 1
            if pending:
                await asyncio.gather(*pending)
        finally:
            await producer.stop()

    # ------------------------------------------------------------------- a run

    async def run(
        self,
        fault: Callable[[FaultRun], Coroutine[Any, Any, None]] | None,
        rate: float | None = 150.0,
        timeout_s: float = 180.0,
    ) -> Report:
        collectors = (self.notifications, self.digests, self.dead)
        for collector in collectors:
            await collector.start()
        settled: dict[str, bool] = {}
        try:
            for phase in self.workload.phases:
                if phase.name == "tail":
                    await self._faulted_tail(fault, rate)
                else:
                    await self.publish(self.workload.records(phase.events, self.prefix), None)
                settled[phase.name] = await self.settle(timeout_s)
                if not settled[phase.name]:
                    break  # the report says which phase; the rest would only wait as long
            self.sample_rss()
            if self.burst and all(settled.values()):
                self.baseline_rss = self.peak_rss
                burst = self.workload.records(self.workload.burst.events, self.prefix)
                await self.publish(burst, None)
                settled["burst"] = await self.settle(timeout_s)
                self.sample_rss()
            settled["read"] = await self.read_all()
        finally:
            for collector in collectors:
                await collector.stop()
            await self.offsets.close()
        self.observations.update({f"settled:{k}": v for k, v in settled.items()})
        outputs = {
            "notifications": [e for _, e in self.notifications.arrivals],
            "digests": [e for _, e in self.digests.arrivals],
        }
        (self.tmp / "outputs.json").write_bytes(orjson.dumps(outputs))  # for a post-mortem
        return self._report()

    async def _faulted_tail(
        self, fault: Callable[[FaultRun], Coroutine[Any, Any, None]] | None, rate: float | None
    ) -> None:
        task = asyncio.create_task(fault(self)) if fault is not None else None
        extra = [(t, k or b"", v) for t, k, v in self.extra_records]
        for n, chunk in enumerate(self.chunks):
            if task is not None and n:
                while self.landed < n and not task.done():
                    await asyncio.sleep(0.05)
            records = self.workload.records(chunk.events, self.prefix)
            if n == len(self.chunks) // 2:
                records[len(records) // 2 : len(records) // 2] = extra  # poison: mid-stream
            await self.publish(records, rate)
            self.tail_published += len(chunk.events)
        if task is not None:
            await task

    # ---------------------------------------------------------------- judging

    def _report(self) -> Report:
        phases = [*self.workload.phases, *([self.workload.burst] if self.burst else [])]
        expected = {o.id: comparable(as_json(o)) for p in phases for o in p.outputs}
        created_expected = {i for i in expected if i.startswith("n-")}
        retracted_expected = {i for i in expected if i.startswith("r-")}
        copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for _, event in self.notifications.arrivals:
            copies[event["id"]].append(event)
        seen = set(copies)
        created = {i for i in seen if i.startswith("n-")}
        retracted = {i for i in seen if i.startswith("r-")}
        wrong = sorted(
            i for i in seen & set(expected) if any(comparable(c) != expected[i] for c in copies[i])
        )
        differ = sorted(i for i in seen if len({_key(comparable(c)) for c in copies[i]}) > 1)
        token_choice = token_choice_only(set(wrong) | set(differ), copies, expected)
        wrong = [i for i in wrong if i not in token_choice]
        differ = [i for i in differ if i not in token_choice]
        first = {i: c[0] for i, c in copies.items()}
        reasons_seen = Counter(first[i]["data"]["reason"] for i in created)
        reasons_expected = Counter(expected[i]["data"]["reason"] for i in created_expected)
        strays = sorted(seen - set(expected))
        recover = None
        if self.fault_ended is not None:
            after = [t for t, _ in self.notifications.arrivals if t >= self.fault_ended]
            recover = (min(after) - self.fault_ended) if after else None
        digests = [event for _, event in self.digests.arrivals]
        digest_issues = digest_problems(digests)
        notes = []
        if strays:
            notes.append(f"unexpected: {[_describe(first[i]) for i in strays[:3]]}")
        if created_expected - created:
            lost = sorted(created_expected - created)[:3]
            notes.append(f"missing: {[_describe(expected[i]) for i in lost]}")
        if wrong:
            notes.append(f"wrong: {[(expected[i], comparable(copies[i][0])) for i in wrong[:1]]}")
        if differ:
            notes.append(f"copies differ: {[comparable(c) for c in copies[differ[0]]][:2]}")
        return Report(
            scenario=self.name,
            events_in=self.events_in,
            expected=len(created_expected),
            missing=len(created_expected - created),
            duplicated=sum(len(c) - 1 for c in copies.values()),
            unexpected=len(strays),
            retractions_missing=len(retracted_expected - retracted),
            recover_s=recover,
            wrong_content=len(wrong),
            token_choice=[_describe(first[i]) for i in token_choice],
            duplicates_differ=len(differ),
            reasons_seen=dict(reasons_seen),
            reasons_expected=dict(reasons_expected),
            digests=len({d["id"] for d in digests}),
            digest_problems=digest_issues,
            fact_violations=fact_violations(self.workload, [first[i] for i in created], digests),
            hits=list(self.hits),
            dead_letters=len(self.dead.arrivals),
            baseline_rss_mb=self.baseline_rss,
            peak_rss_mb=self.peak_rss,
            observations=dict(self.observations),
            notes=" ".join(notes),
        )


REPEATED_IN_DIGESTS = "comment in digests"


def _key(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _describe(event: dict[str, Any]) -> str:
    data = event["data"]
    recipient = (data.get("recipient") or {}).get("id") or data.get("recipient_id")
    kind = event["type"].rsplit(".", 1)[-1]
    return f"{kind} {recipient} {data.get('reason')} {event.get('subject')}"


def digest_problems(digests: list[dict[str, Any]]) -> list[str]:
    """What breaks "at most one digest per recipient per period, each comment once"."""
    problems: list[str] = []
    copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for digest in digests:
        copies[digest["id"]].append(digest)
    periods: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    items: dict[str, Counter[str]] = defaultdict(Counter)
    for did, same in copies.items():
        if len({_key(comparable(c)) for c in same}) > 1:
            problems.append(f"digest {did}: copies differ")
        data = same[0]["data"]
        rid = data["recipient"]["id"]
        periods[(rid, data["period"]["frequency"], data["period"]["start"])].add(did)
        listed = [
            (part["article"]["id"], i["comment"]["id"], i.get("reason"))
            for part in data["articles"]
            for i in part["items"]
            if i.get("comment")
        ]
        if len({cid for _, cid, _ in listed}) < len(listed):
            problems.append(f"{REPEATED_IN_DIGESTS} (one digest): {rid} {did} {listed}")
        items[rid].update({cid for _, cid, _ in listed})
    problems += [f"{k}: {len(v)} digests for one period" for k, v in periods.items() if len(v) > 1]
    problems += [
        f"{REPEATED_IN_DIGESTS} {n}x: {rid} {cid}"
        for rid, counts in items.items()
        for cid, n in counts.items()
        if n > 1
    ]
    return problems


def fact_violations(
    workload: Workload, created: list[dict[str, Any]], digests: list[dict[str, Any]]
) -> list[str]:
    """What the workload's construction implies (``Facts``), checked on the distinct outputs."""
    facts = workload.facts
    out: list[str] = []
    confirms = Counter(
        n["data"]["recipient"]["id"]
        for n in created
        if n["data"]["reason"] == "confirm_subscription"
    )
    if confirms != Counter(dict.fromkeys(facts.guests, 1)):
        out.append(f"confirmation requests {dict(confirms)} != one per guest")
    silenced = facts.erased | facts.paused
    for n in created:
        data = n["data"]
        rid, reason = data["recipient"]["id"], data["reason"]
        cid = (data.get("comment") or {}).get("id")
        if rid in facts.unconfirmed and reason != "confirm_subscription":
            out.append(f"unconfirmed guest {rid} got {reason}")
        if isinstance(cid, str) and facts.author.get(cid) == rid:
            out.append(f"{rid} told of their own comment {cid}")
        if cid in facts.never_approved:
            out.append(f"{rid} told of {cid}, never approved")
        after = cid in facts.after_changes or data["article"]["id"].startswith("a-new")
        if rid in silenced and after:
            out.append(f"{rid} (erased or paused) got {reason} about {cid}")
    for digest in digests:
        rid = digest["data"]["recipient"]["id"]
        if rid not in facts.digest_mode:
            out.append(f"digest to {rid}, who has no digest-mode subscription")
        for part in digest["data"]["articles"]:
            for item in part["items"]:
                cid = (item.get("comment") or {}).get("id")
                if isinstance(cid, str) and facts.author.get(cid) == rid:
                    out.append(f"{rid}'s digest holds their own comment {cid}")
                if cid in facts.never_approved:
                    out.append(f"{rid}'s digest holds {cid}, never approved")
    return out


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking call (kill, restart, broker stop) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
