"""Throughput, latency, memory and state of the real worker(s) on a real broker, next to the
limit: a plain aiokafka consume -> produce loop moving the same records on the same broker.

One run, in this order (``--quick`` shrinks every size):

1. a local single-node Kafka (``newsroom_dev.kafka``) unless KAFKA_BOOTSTRAP_SERVERS is
   set; the service's topics created up front with ``--partitions`` partitions, and
   ``message.timestamp.type=LogAppendTime`` on the comments and notifications topics so a
   record's timestamp is the moment the broker appended it;
2. setup: one worker processes the articles, subscriptions (members and guests, every scope,
   instant and digest, one hot article with ``--hot-followers`` digest followers) and
   preferences, then the guests' confirmations (not counted in any throughput); the worker is
   stopped and its state measured (RocksDB files, changelog bytes on the broker);
3. a batch of ``--comments`` comment events is written to a copy topic of the comments
   topic's layout (the limit's input);
4. the limit (``bench/limit.py``, its own process) copies the copy topic to another topic;
5. one worker starts and becomes ready (tables recovered), then a batch of comments is
   published at full speed: comment events/s fully processed (every stage done: the group's
   committed offsets on the comments and internal topics reach their ends) and notifications/s
   (end offsets of the notifications topic), sampled every 0.25 s;
6. the limit again on the same copy topic, writing the notifications the service produced in
   step 5 for those comments instead of copies (the records the service moves, no logic);
7. the same as 5 with two workers (separate data dirs and web ports, one group, both ready
   before the batch): throughput of two, with one standby replica and then (a new batch)
   with none; CPU ms per comment event of each next to one worker's;
8. latency: one worker, ready (it recovered what the other did), gets half the comment rate
   one worker sustained in step 5 (or ``--moderate-rate``), then ``--rate`` comments/s (0:
   skipped), each for ``--duration`` s, once per ``--latency-configs`` entry (worker
   settings; interleave them); latency of each notification = its append time - the append
   time of its comment's input record (both LogAppendTime), also cut at the stages' topics
   (LogAppendTime too): per-hop figures.

``--phases`` skips steps 7 and/or 8.

Prints a table and writes every figure to ``bench/results/throughput-<time>.json``;
``--plot out.png`` draws the latency distribution and the throughput over time.

    python -m bench.throughput [--quick] [--comments N] [--rate 500] [--duration 20] [--plot p.png]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.stats import latency_summary, sustained_rate
from newsroom_dev.builders import article, member, subscribe
from newsroom_dev.kafka import LocalKafka, free_port
from newsroom_dev.process import ServiceProcess as WorkerProcess
from newsroom_dev.process import worker_env
from newsroom_dev.workload import TOKEN_KEY, BenchWorkload, generate_bench
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.keys import entity_key
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import FollowChange
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.settings import Settings
from newsroom_notify.stream.admin import create_topics as admin_create_topics
from newsroom_notify.stream.admin import internal_topic_names, topic_layout
from newsroom_notify.stream.stages import key_partition

ROOT = Path(__file__).resolve().parents[2]

Record = tuple[str, bytes, bytes]  # topic, key, value


# ----------------------------------------------------------------------------- sizes


@dataclass
class Sizes:
    articles: int
    members: int
    guests: int
    hot_followers: int
    comments: int
    rate: float
    duration: float
    partitions: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Sizes:
        quick = args.quick
        return cls(
            articles=args.articles or (200 if quick else 2000),
            members=args.members or (300 if quick else 2000),
            guests=args.guests or (50 if quick else 500),
            hot_followers=args.hot_followers or (2000 if quick else 10_000),
            comments=args.comments or (1000 if quick else 3000),
            rate=args.rate,
            duration=args.duration or (5.0 if quick else 20.0),
            partitions=args.partitions,
        )


# ------------------------------------------------------------------------- broker side


def records_of(events: Iterable[ev.CloudEvent], prefix: str) -> list[Record]:
    """(topic, key, value) of each event, keyed as the contract says."""
    out = []
    for event in events:
        key, value = codec.encode(event, event.partition_key() or "x")
        out.append((f"{prefix}newsroom.{event.topic_role}", key, value))
    return out


async def create_topics(bootstrap: str, topics: dict[str, dict[str, str]], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin_create_topics(admin, topics, partitions)
    finally:
        await admin.close()


def producer(bootstrap: str, **kwargs: Any) -> AIOKafkaProducer:
    """A producer configured like the service's and the CLI's: acks=all, idempotent."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=256 * 1024,
        **kwargs,
    )


async def publish(
    bootstrap: str, records: list[Record], topic: str | None = None, rate: float | None = None
) -> float:
    """Write ``records`` in order (to ``topic`` instead of their own if given), as fast as
    possible or paced at ``rate`` per second; return the seconds it took."""
    prod = producer(bootstrap, linger_ms=0 if rate else 10)
    await prod.start()
    started = time.monotonic()
    try:
        pending = []
        for n, (own_topic, key, value) in enumerate(records):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            pending.append(
                await prod.send(
                    topic or own_topic, key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER]
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return time.monotonic() - started


class Watch:
    """End offsets of topics and committed offsets of consumer groups, summed per topic."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.partitions = partitions
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> Watch:
        await self.consumer.start()
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    def _tps(self, topics: Iterable[str]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t in topics for p in range(self.partitions)]

    async def offsets(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        """The end offset of each partition of ``topics``."""
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(self._tps(topics))
        return ends

    async def end(self, topics: Iterable[str]) -> dict[str, int]:
        """The end offsets of ``topics``, summed over their partitions."""
        out: dict[str, int] = {}
        for tp, offset in (await self.offsets(topics)).items():
            out[tp.topic] = out.get(tp.topic, 0) + offset
        return out

    async def committed(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        wanted = set(topics)
        out = dict.fromkeys(wanted, 0)
        offsets = await self.admin.list_consumer_group_offsets(group)
        for tp, meta in offsets.items():
            if tp.topic in wanted and meta.offset >= 0:
                out[tp.topic] += meta.offset
        return out


# ------------------------------------------------------------------------------ workers


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def vm_rss_mb(pid: int) -> float | None:
    """Current resident set size (VmRSS) of a live process, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int, system_only: bool = False) -> float | None:
    """User + system (or only system: the kernel's work, e.g. socket I/O) CPU seconds a live
    process has used."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[12]) + (0 if system_only else int(fields[11]))
        return ticks / os.sysconf("SC_CLK_TCK")
    return None


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine, all cores, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)
    return 0, 0


def dir_bytes(path: Path, suffixes: tuple[str, ...] | None = None) -> int:
    """Bytes of the files under ``path`` (only those ending with one of ``suffixes``)."""
    total = 0
    for item in path.rglob("*"):
        if item.is_file() and (suffixes is None or item.name.endswith(suffixes)):
            total += item.stat().st_size
    return total


@dataclass
class Service:
    """The worker processes of the run (one consumer group, one topic prefix)."""

    bootstrap: str
    tmp: Path
    partitions: int
    env: dict[str, str] = field(init=False)
    workers: list[WorkerProcess] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    starts: int = 0
    broker_pids: list[int] = field(default_factory=list)  # the local broker's, if started here

    def __post_init__(self) -> None:
        self.env = worker_env(
            self.bootstrap,
            self.tmp,
            {
                "NEWSROOM_TOPICS__PARTITIONS": str(self.partitions),
                "NEWSROOM_TOKENS__SECRET_KEYS": orjson.dumps([TOKEN_KEY]).decode(),
                # Digest timers would cut the hot article's digests mid-run (fan-out on read,
                # measured by bench/fanout_cost.py); keep them out of the throughput figures.
                "NEWSROOM_DIGEST__TICK_S": "3600",
            },
        )

    @property
    def prefix(self) -> str:
        return self.env["NEWSROOM_TOPICS__PREFIX"]

    @property
    def group(self) -> str:
        return self.env["NEWSROOM_APP_ID"]

    def settings(self) -> Settings:
        return Settings(
            app_id=self.group, topics={"prefix": self.prefix, "partitions": self.partitions}
        )

    def data_dir(self, index: int) -> Path:
        return self.tmp / f"worker-{index}-data"

    def start(self, count: int, overrides: dict[str, str] | None = None) -> None:
        """Start ``count`` workers (``overrides``: settings of this start only)."""
        self.starts += 1
        self.ports = []
        for index in range(count):
            env = {**self.env, **(overrides or {})}
            env["NEWSROOM_DATA_DIR"] = str(self.data_dir(index))
            port = free_port()
            env["NEWSROOM_WEB_PORT"] = str(port)
            self.ports.append(port)
            worker = WorkerProcess(env, self.tmp / f"worker-{index}-start-{self.starts}.log")
            worker.start()
            self.workers.append(worker)

    async def ready(self, within_s: float = 180.0) -> float:
        """Wait until every worker answers /readyz with 200 (tables recovered, no rebalance)."""
        started = time.monotonic()
        while time.monotonic() - started < within_s:
            answers = await asyncio.gather(*(asyncio.to_thread(_ready, p) for p in self.ports))
            if all(answers):
                return time.monotonic() - started
            for worker in self.workers:
                if worker.proc is not None and worker.proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {worker.log_text()[-3000:]}")
            await asyncio.sleep(0.5)
        raise TimeoutError("workers not ready")

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None and w.proc.poll() is None]

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(OSError):
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.proc is not None:
                try:
                    worker.proc.wait(60)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()
                code = worker.proc.returncode
                if code not in (0, -signal.SIGTERM):
                    print(f"  worker exited with {code}; log {worker.log_path}", file=sys.stderr)
            worker.stop()  # closes its log
        self.workers.clear()


def _ready(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/readyz"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)
    return False


# ------------------------------------------------------------------------- measuring


@dataclass
class Phase:
    """Progress of one throughput phase, sampled from the broker."""

    name: str
    total_in: int
    series_in: list[tuple[float, float]] = field(default_factory=list)
    series_out: list[tuple[float, float]] = field(default_factory=list)
    done_s: float | None = None
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)
    system_cpu_s: dict[int, float] = field(default_factory=dict)  # of which in the kernel
    machine_busy: float | None = None  # share of all cores busy (any process) until done
    broker_cpu_s: float | None = None  # the local broker's CPU until done (if started here)

    def figures(self) -> dict[str, Any]:
        first_in = next((t for t, p in self.series_in if p > 0), None)
        first_out = next((t for t, p in self.series_out if p > 0), None)
        produced = self.series_out[-1][1] if self.series_out else 0
        last_change = next(
            (t for t, p in self.series_out if p >= produced), None
        )  # first time the final count was seen
        if first_out is not None:  # committed offsets lag up to a commit interval behind
            first_in = first_out if first_in is None else min(first_in, first_out)
        overall_in = (
            self.total_in / (self.done_s - first_in)
            if self.done_s and first_in is not None and self.done_s > first_in
            else None
        )
        overall_out = (
            produced / (last_change - first_out)
            if last_change and first_out is not None and last_change > first_out
            else None
        )
        busy = (self.done_s - first_in) if self.done_s and first_in is not None else None
        return {
            "input_events": self.total_in,
            "notifications": int(produced),
            "completed": self.done_s is not None,
            "first_progress_s": _round(first_in, 2),
            "done_s": _round(self.done_s, 2),
            # comment events fully processed (every stage done) per second of processing
            "input_per_s": _round(overall_in),
            # how fast the first stage took them off the input topic (10-90 % slope)
            "intake_per_s_sustained": _round(sustained_rate(self.series_in)),
            "notifications_per_s_sustained": _round(sustained_rate(self.series_out)),
            "notifications_per_s_overall": _round(overall_out),
            "peak_rss_mb": {str(k): round(v, 1) for k, v in self.peak_rss_mb.items()},
            "cpu_s": {str(k): round(v, 1) for k, v in self.cpu_s.items()},
            "system_cpu_s": {str(k): round(v, 1) for k, v in self.system_cpu_s.items()},
            # worker CPU (all processes) per comment event: steadier than rates on a shared box
            "cpu_ms_per_comment": _round(1000 * sum(self.cpu_s.values()) / self.total_in, 2),
            "machine_cpu_busy_percent": _round(
                100 * self.machine_busy if self.machine_busy is not None else None
            ),
            "broker_cpu_s": _round(self.broker_cpu_s) if self.broker_cpu_s else None,
            "cpu_percent_while_busy": {
                str(k): round(100 * v / busy, 0) for k, v in self.cpu_s.items() if busy
            },
        }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def follow(
    *,
    watch: Watch,
    service: Service,
    phase: Phase,
    inputs: str,
    outputs: str,
    internal: list[str],
    base_in: int,
    base_out: int,
    within_s: float,
    interval: float = 0.25,
) -> None:
    """Sample the group's progress until every input and internal record is processed."""
    started = time.monotonic()
    cpu0 = {pid: cpu_seconds(pid) or 0.0 for pid in service.pids()}
    sys0 = {pid: cpu_seconds(pid, system_only=True) or 0.0 for pid in service.pids()}
    broker0 = {pid: cpu_seconds(pid) or 0.0 for pid in service.broker_pids}
    busy0, total0 = machine_jiffies()
    settled = 0
    while time.monotonic() - started < within_s:
        committed = await watch.committed(service.group, [inputs, *internal])
        ends = await watch.end([outputs, *internal])
        now = time.monotonic() - started
        consumed = committed[inputs] - base_in
        phase.series_in.append((now, consumed))
        phase.series_out.append((now, ends[outputs] - base_out))
        for pid in service.pids():
            rss = vm_hwm_mb(pid)
            if rss is not None:
                phase.peak_rss_mb[pid] = max(phase.peak_rss_mb.get(pid, 0.0), rss)
            cpu = cpu_seconds(pid)
            if cpu is not None:
                phase.cpu_s[pid] = cpu - cpu0.get(pid, 0.0)
                phase.system_cpu_s[pid] = (cpu_seconds(pid, True) or 0.0) - sys0.get(pid, 0.0)
        lag = sum(ends[t] - committed[t] for t in internal)
        settled = settled + 1 if consumed >= phase.total_in and lag <= 0 else 0
        if settled == 1:
            phase.done_s = now
            busy, total = machine_jiffies()
            if total > total0:
                phase.machine_busy = (busy - busy0) / (total - total0)
            phase.broker_cpu_s = sum(
                (cpu_seconds(pid) or 0.0) - broker0[pid] for pid in service.broker_pids
            )
        if settled >= 3:
            return
        await asyncio.sleep(interval)
    phase.done_s = None
    print(f"  {phase.name}: not finished after {within_s:.0f}s", file=sys.stderr)


async def settle(watch: Watch, group: str, topics: list[str], within_s: float, label: str) -> float:
    """Wait until the group has committed every record of ``topics``; return the seconds."""
    started = time.monotonic()
    stable, lag = 0, -1
    while time.monotonic() - started < within_s:
        ends = await watch.end(topics)
        committed = await watch.committed(group, topics)
        lag = sum(ends[t] - committed[t] for t in topics)
        stable = stable + 1 if lag <= 0 else 0
        if stable >= 3:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{label}: still {lag} records behind after {within_s:.0f}s")


COMMENT_SUBJECT = re.compile(rb'"c:([^"]+)"')  # a subject key in a stage's message
COMMENT_ID = re.compile(rb"a-\d+-c\d+")  # the workload's comment ids (tests/workload.py)


def comment_of(value: bytes) -> str | None:
    """The comment a stage's record is about (its subject key, else the first comment id)."""
    found = COMMENT_SUBJECT.search(value) or COMMENT_ID.search(value)
    return found.group(found.re.groups).decode() if found else None


@dataclass
class Hops:
    """Append times (LogAppendTime, ms) of each comment's records on the stages' topics."""

    follows: dict[str, int] = field(default_factory=dict)  # comment -> first -follows record
    inbox: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # (comment, part.)

    def add(self, stage: str, value: bytes, partition: int, timestamp: int) -> None:
        cid = comment_of(value)
        if cid is None:
            return
        if stage == "follows":
            self.follows[cid] = min(timestamp, self.follows.get(cid, timestamp))
        elif stage == "inbox":
            self.inbox.setdefault((cid, partition), []).append(timestamp)

    def split(
        self, notified: list[tuple[str, int, int]], appended: dict[str, int]
    ) -> dict[str, Any]:
        """Each notification's latency cut at its hops: the threads stage (comment -> its first
        -follows record, or -> its -inbox record when it skips the follows stage), the follows
        stage (-> the -inbox record of the recipient's partition) and the inbox stage (->
        the notification); distributions in ms, as ``latency_summary``."""
        parts: dict[str, list[float]] = {
            "threads_to_follows": [],
            "follows_to_inbox": [],
            "threads_to_inbox": [],
            "inbox_to_notification": [],
        }
        for cid, partition, ts in notified:
            if cid not in appended:
                continue
            inbox = [t for t in self.inbox.get((cid, partition), []) if t <= ts]
            if not inbox:
                continue
            arrived = max(inbox)
            follows = self.follows.get(cid)
            if follows is not None and follows <= arrived:
                parts["threads_to_follows"].append((follows - appended[cid]) / 1000)
                parts["follows_to_inbox"].append((arrived - follows) / 1000)
            else:
                parts["threads_to_inbox"].append((arrived - appended[cid]) / 1000)
            parts["inbox_to_notification"].append((ts - arrived) / 1000)
        return {name: latency_summary(values) for name, values in parts.items()}


async def measure_latency(
    *,
    bootstrap: str,
    records: list[Record],
    comments_topic: str,
    notifications_topic: str,
    stage_topics: dict[str, str],
    partitions: int,
    rate: float,
    caught_up: Callable[[], Awaitable[bool]],
    drain_s: float = 2.0,
    max_drain_s: float = 90.0,
) -> dict[str, Any]:
    """Publish ``records`` at ``rate``/s; for every notification of one of those comments,
    latency = notification append time - append time of the comment's (latest) input record,
    and that time cut at the stages' topics (``stage_topics``: stage -> topic, LogAppendTime)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    stage_of = {topic: stage for stage, topic in stage_topics.items()}
    watched = [
        TopicPartition(topic, p)
        for topic in (comments_topic, notifications_topic, *stage_of)
        for p in range(partitions)
    ]
    consumer.assign(watched)
    await consumer.seek_to_end(*watched)
    for tp in watched:
        await consumer.position(tp)  # fix the start before anything is published
    appended: dict[str, int] = {}
    notified: list[tuple[str, int, int]] = []  # comment, partition, append time
    hops = Hops()
    timestamp_types: set[int] = set()
    reasons: Counter[str] = Counter()
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            for tp, recs in batch.items():
                for record in recs:
                    timestamp_types.add(record.timestamp_type)
                    if tp.topic in stage_of:
                        hops.add(stage_of[tp.topic], record.value or b"", tp.partition,
                                 record.timestamp)  # fmt: skip
                        continue
                    value = orjson.loads(record.value)
                    if tp.topic == comments_topic:
                        appended[value["data"]["comment_id"]] = record.timestamp
                    elif value["type"] == "newsroom.notification.created":
                        ref = value["data"].get("comment")
                        if ref is not None:
                            notified.append((ref["id"], tp.partition, record.timestamp))
                            reasons[value["data"]["reason"]] += 1

    task = asyncio.create_task(collect())
    sent_s = await publish(bootstrap, records, rate=rate)
    last, quiet_since = -1, time.monotonic()
    drain_until = time.monotonic() + max_drain_s
    shown = time.monotonic()
    while time.monotonic() < drain_until:
        if len(notified) != last:
            last, quiet_since = len(notified), time.monotonic()
        if time.monotonic() - quiet_since >= drain_s and await caught_up():
            break  # the service processed everything and nothing came for drain_s
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            print(f"  latency: {len(notified)} notifications so far, waiting for stragglers")
        await asyncio.sleep(0.2)
    print(f"  latency: published in {sent_s:.1f}s, stopped collecting")
    stop.set()
    await task
    await consumer.stop()
    latencies = [(ts - appended[cid]) / 1000 for cid, _, ts in notified if cid in appended]
    return {
        "comments": len(records),
        "rate_target": rate,
        "rate_achieved": round(len(records) / sent_s, 1),
        "notifications": len(notified),
        "drain_capped": time.monotonic() >= drain_until,
        "unmatched": len(notified) - len(latencies),
        "timestamp_types": sorted(timestamp_types),  # 1 = LogAppendTime
        "reasons": dict(reasons.most_common()),
        **latency_summary(latencies),
        "hops": hops.split(notified, appended),
        "samples_s": latencies,
    }


async def read_since(
    bootstrap: str, start: dict[TopicPartition, int]
) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    """Every record appended to these partitions since ``start`` (up to their current end)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = list(start)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, start[tp])
        records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
        todo = {tp for tp in tps if ends[tp] > start[tp]}
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, recs in batch.items():
                records.extend((r.key, r.value or b"", list(r.headers)) for r in recs)
                if recs and recs[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        return records
    finally:
        await consumer.stop()


def run_limit(
    bootstrap: str,
    source: str,
    sink: str,
    expect: int,
    timeout: float,
    *,
    outputs: Path | None = None,
) -> dict[str, Any]:
    """Run ``bench/limit.py`` as its own process; return its figures."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "limit.py"),
        "--bootstrap",
        bootstrap,
        "--source",
        source,
        "--sink",
        sink,
        "--expect",
        str(expect),
        "--group",
        f"{sink}-limit",
    ]
    if outputs is not None:
        command += ["--outputs", str(outputs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"limit failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


# ---------------------------------------------------------------------- breaking news


def breaking_news_records(
    prefix: str, followers: int, seed: int, articles: int
) -> tuple[list[Record], list[Record]]:
    """``followers`` members subscribed (instant) to one section, and ``articles`` articles
    published in it (one per measurement): their journalist has no followers of their own, so
    every notification is ``new_article`` from the section."""
    section = f"breaking-{seed}"
    subscriptions = records_of(
        (
            subscribe(member(f"bn-{i}", f"Reader {i}"), "section", section, "instant")
            for i in range(followers)
        ),
        prefix,
    )
    alerts = records_of(
        [
            article(f"a-breaking-{seed}-{n}", journalist=f"j-breaking-{seed}", section=section)
            for n in range(articles)
        ],
        prefix,
    )
    return subscriptions, alerts


def follower_state(
    followers: int, section: str, partitions: int, changelogs: dict[str, str]
) -> Iterator[tuple[str, int, bytes, bytes]]:
    """What ``followers`` members subscribed (instant) to ``section`` leave in the tables, as
    changelog records (topic, partition, key, value): each member's profile (the inbox's, in
    their key's partition) as the domain writes it for the first member (their ``traces``,
    read only by an erasure, are left out: half the records to recover), and the
    section's follower chunks and head built by the follows stage's own code
    (``FollowsStage.on_follow_change``): the storage the workers then recover is the real one."""
    pipe = LocalPipeline(tokens=Tokens([TOKEN_KEY], 3600, 3600))
    pipe.feed([subscribe(member("bn-0", "Reader 0"), "section", section, "instant")])
    profile = pipe.tables["profiles"]["bn-0"].model_dump_json()
    follows = FollowsStage(heads={}, chunks={}, fanout={})
    entity = entity_key("section", section)
    for i in range(followers):
        sid = f"bn-{i}"
        part = key_partition(sid, partitions)
        key = sid.encode()
        value = profile.replace('"bn-0"', f'"{sid}"').replace('"Reader 0"', f'"Reader {i}"')
        yield changelogs["profiles"], part, key, value.encode()
        change = FollowChange.model_construct(
            subscriber_id=sid,
            scope="section",
            target=section,
            delivery="instant",
            active=True,
            schedule=None,
        )
        follows.on_follow_change(entity, change)
    part = key_partition(entity, partitions)
    for name, chunk in follows.chunks.items():
        yield changelogs["follower-chunks"], part, name.encode(), chunk.model_dump_json().encode()
    for name, head in follows.heads.items():
        yield changelogs["follower-heads"], part, name.encode(), head.model_dump_json().encode()


async def seed_followers(run: Run, followers: int, section: str) -> int:
    """Write ``follower_state`` straight to the (existing) changelog topics; return the count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    group = run.service.group
    changelogs = {
        table: f"{group}-{table}-changelog"
        for table in ("profiles", "follower-chunks", "follower-heads")
    }
    missing = [name for name in changelogs.values() if name not in names]
    if missing:
        raise RuntimeError(f"changelog topics missing: {missing}")
    prod = producer(run.bootstrap, linger_ms=20)
    await prod.start()
    count = 0
    try:
        pending = []
        records = follower_state(followers, section, run.sizes.partitions, changelogs)
        for topic, partition, key, value in records:
            pending.append(await prod.send(topic, key=key, value=value, partition=partition))
            count += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return count


async def breaking_news_phase(
    run: Run,
    watch: Watch,
    *,
    followers: int,
    seed: int,
    within_s: float,
    workers: list[int],
    seeding: str = "subscribe",
) -> dict[str, Any]:
    """``followers`` instant followers of a section (not timed): subscribed through the
    pipeline (``seeding`` "subscribe", one worker), or their profiles and the section's
    follower chunks written straight to the changelogs the workers recover (``changelog``);
    then, for each count of ``workers``, that many workers, ready, and one article in the
    section: seconds from its append to the last notification's append (both LogAppendTime),
    the workers' RSS before and at their peak, and their CPU."""
    service = run.service
    section = f"breaking-{seed}"
    service.start(1)
    await service.ready()
    started = time.monotonic()
    if seeding == "changelog":
        service.stop()  # it created the changelog topics; its tables recover what is written
        written = await seed_followers(run, followers, section)
        alerts = breaking_news_records(service.prefix, 0, seed, len(workers))[1]
        how = f"written straight to the changelogs ({written} records)"
    else:
        subscriptions, alerts = breaking_news_records(service.prefix, followers, seed, len(workers))
        await publish(run.bootstrap, subscriptions)
        await settle(watch, service.group, run.consumed, within_s, "breaking-news followers")
        service.stop()
        how = "subscribed"
    seeded_s = time.monotonic() - started
    print(f"breaking news: {followers} section followers {how} in {seeded_s:.1f}s (not timed)")
    by_workers: dict[str, Any] = {}
    for count, alert in zip(workers, alerts, strict=True):
        service.start(count)
        ready_s = await service.ready(within_s)
        print(f"breaking news: {count} worker(s) ready in {ready_s:.1f}s")
        try:
            figures = await breaking_news_alert(run, alert, followers, within_s)
        finally:
            service.stop()
        by_workers[str(count)] = figures
        print(
            f"breaking news, {count} worker(s): {figures['notifications']} of {followers} "
            f"notifications ({figures['repeated_notifications']} repeated), the last "
            f"{figures['seconds']}s after the article; RSS "
            f"{figures['rss_before_mb']} MiB before, at most {figures['max_rss_during_mb']} "
            f"MiB during, peak {figures['peak_rss_mb']} MiB"
        )
    first = by_workers[str(workers[0])]
    return {
        "followers": followers,
        "seeding": seeding,
        "seeding_s": round(seeded_s, 1),
        **first,
        "by_workers": by_workers,
    }


async def breaking_news_alert(
    run: Run, alert: Record, followers: int, within_s: float
) -> dict[str, Any]:
    """Publish ``alert`` (an article) to the ready workers; follow its notifications."""
    topics, pids = run.topics, run.service.pids()
    rss_before = max(vm_rss_mb(pid) or 0.0 for pid in pids)
    hwm_before = max(vm_hwm_mb(pid) or 0.0 for pid in pids)
    cpu0 = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    watched = [TopicPartition(topics["notifications"], p) for p in range(run.sizes.partitions)]
    consumer.assign(watched)
    await consumer.seek_to_end(*watched)
    for tp in watched:
        await consumer.position(tp)
    aid = orjson.loads(alert[2])["data"]["article_id"]
    prod = producer(run.bootstrap)
    await prod.start()
    try:
        meta = await (
            await prod.send(
                alert[0], key=alert[1], value=alert[2], headers=[codec.CONTENT_TYPE_HEADER]
            )
        )
    finally:
        await prod.stop()
    appended_ms = meta.timestamp
    # At-least-once: a rebalance (a busy machine can miss a heartbeat) repeats notifications
    # with the same id; the figure counts each id once and reports the repeats apart.
    seen: set[str] = set()
    repeats, last_ms, peak_rss, rss_during = 0, None, hwm_before, rss_before
    deadline = time.monotonic() + within_s
    sent_at = time.monotonic()
    rss_series: list[tuple[int, int, float]] = []  # seconds, notifications, RSS of all workers
    try:
        while len(seen) < followers and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    value = orjson.loads(record.value)
                    data = value.get("data", {})
                    if (
                        value.get("type") == "newsroom.notification.created"
                        and data.get("article", {}).get("id") == aid
                    ):
                        if data["notification_id"] in seen:
                            repeats += 1
                            continue
                        seen.add(data["notification_id"])
                        last_ms = max(last_ms or 0, record.timestamp)
            peak_rss = max([peak_rss] + [vm_hwm_mb(pid) or 0.0 for pid in pids])
            rss_now = sum(vm_rss_mb(pid) or 0.0 for pid in pids)
            rss_during = max([rss_during] + [vm_rss_mb(pid) or 0.0 for pid in pids])
            elapsed = time.monotonic() - sent_at
            if elapsed >= 10 * (len(rss_series) + 1):  # RSS against progress, every 10 s
                rss_series.append((round(elapsed), len(seen), round(rss_now, 1)))
                print(
                    f"  {elapsed:.0f}s: {len(seen)} notifications, workers' RSS {rss_now:.0f} MiB"
                )
    finally:
        await consumer.stop()
    cpu = sum((cpu_seconds(pid) or 0.0) - cpu0[pid] for pid in pids)
    count = len(seen)
    seconds = (last_ms - appended_ms) / 1000 if last_ms is not None else None
    return {
        "notifications": count,
        "completed": count >= followers,
        "repeated_notifications": repeats,
        "seconds": _round(seconds, 2),
        "notifications_per_s": _round(count / seconds) if seconds else None,
        "rss_before_mb": _round(rss_before),
        "peak_rss_before_mb": _round(hwm_before),  # VmHWM: start-up and recovery included
        "peak_rss_mb": _round(peak_rss),
        # the largest VmRSS sampled (every 0.5 s) from the article to the last notification:
        # what the fan-out itself held, without start-up and recovery
        "max_rss_during_mb": _round(rss_during),
        "rss_series": rss_series,  # [seconds, notifications so far, VmRSS of the workers (MiB)]
        "worker_cpu_s": _round(cpu),
        "cpu_ms_per_notification": _round(1000 * cpu / count, 3) if count else None,
    }


# -------------------------------------------------------------------------------- run


@dataclass
class Run:
    """The workload as records, the service and its topic names."""

    bootstrap: str
    sizes: Sizes
    workload: BenchWorkload
    service: Service
    batches: dict[str, list[Record]]
    setup: list[Record]
    confirmations: list[Record]

    def latency_batch(self, kind: str, n: int, count: int | None) -> list[Record]:
        """New comments (never processed before) for latency run ``n``: ``count`` of them, or
        ``--rate`` x ``--duration``."""
        if count is None:
            count = int(self.sizes.rate * self.sizes.duration)
        name = f"{kind}-{n}"
        if name not in self.batches:
            self.batches[name] = records_of(self.workload.comments(count), self.service.prefix)
        return self.batches[name]

    @property
    def topics(self) -> dict[str, str]:
        settings = self.service.settings()
        t = settings.topics
        return {
            "articles": t.name(t.articles),
            "comments": t.name(t.comments),
            "subscriptions": t.name(t.subscriptions),
            "notifications": t.name(t.notifications),
            "limit_in": f"{self.service.prefix}bench.limit-in",
            "limit_out": f"{self.service.prefix}bench.limit-out",
            "limit_notify": f"{self.service.prefix}bench.limit-notifications",
        }

    @property
    def internal(self) -> list[str]:
        return internal_topic_names(self.service.settings())

    @property
    def consumed(self) -> list[str]:
        """Every topic the service's group consumes."""
        t = self.topics
        return [t["articles"], t["comments"], t["subscriptions"], *self.internal]


def prepare(bootstrap: str, sizes: Sizes, tmp: Path, seed: int) -> tuple[Run, dict[str, Any]]:
    """Generate the workload and encode it."""
    started = time.monotonic()
    workload = generate_bench(
        seed=seed,
        articles=sizes.articles,
        members=sizes.members,
        guests=sizes.guests,
        hot_followers=sizes.hot_followers,
    )
    service = Service(bootstrap, tmp, sizes.partitions)
    prefix = service.prefix
    batches = {
        "one": records_of(workload.comments(sizes.comments), prefix),
        "two": records_of(workload.comments(sizes.comments), prefix),
        "two_no_standby": records_of(workload.comments(sizes.comments), prefix),
    }
    run = Run(
        bootstrap=bootstrap,
        sizes=sizes,
        workload=workload,
        service=service,
        batches=batches,
        setup=records_of(workload.setup, prefix),
        confirmations=records_of(workload.confirmations, prefix),
    )
    one = batches["one"]
    figures = {
        "seed": seed,
        "setup_events": len(run.setup) + len(run.confirmations),
        "subscriptions": workload.subscriptions,
        "hot_article_digest_followers": workload.hot_followers,
        "comment_events_per_batch": len(one),
        "mean_comment_record_bytes": round(sum(len(k) + len(v) for _, k, v in one) / len(one), 1),
        "generate_s": round(time.monotonic() - started, 1),
    }
    print(
        f"workload: {figures['setup_events']} setup events ({workload.subscriptions} "
        f"subscriptions), comment batches of {len(one)} events, in {figures['generate_s']}s"
    )
    return run, figures


async def make_topics(run: Run) -> None:
    """The service's topics and the limit's; ``LogAppendTime`` on the articles, comments and
    notifications topics and on the stages' own topics (the latency's per-hop figures; the
    service reads no record timestamp)."""
    layout = topic_layout(run.service.settings())
    topics = run.topics
    for name in (
        topics["articles"],
        topics["comments"],
        topics["notifications"],
        *run.internal,
    ):
        layout[name]["message.timestamp.type"] = "LogAppendTime"
    layout[topics["limit_in"]] = dict(layout[topics["comments"]])
    layout[topics["limit_out"]] = dict(layout[topics["notifications"]])
    layout[topics["limit_notify"]] = dict(layout[topics["notifications"]])
    await create_topics(run.bootstrap, layout, run.sizes.partitions)


async def run_setup(run: Run, watch: Watch, within_s: float) -> dict[str, Any]:
    """One worker processes the setup, then the confirmations; stopped afterwards."""
    service = run.service
    started = time.monotonic()
    service.start(1)
    await service.ready()
    await publish(run.bootstrap, run.setup)
    await settle(watch, service.group, run.consumed, within_s, "setup")
    await publish(run.bootstrap, run.confirmations)
    await settle(watch, service.group, run.consumed, within_s, "confirmations")
    seconds = time.monotonic() - started
    rss = {str(pid): round(vm_hwm_mb(pid) or 0.0, 1) for pid in service.pids()}
    service.stop()
    print(f"setup processed in {seconds:.1f}s")
    events = len(run.setup) + len(run.confirmations)
    return {
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds, 1),
        "peak_rss_mb": rss,
    }


async def bench(
    bootstrap: str, sizes: Sizes, tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    started = time.monotonic()
    run, workload_figures = prepare(bootstrap, sizes, tmp, args.seed)
    run.service.broker_pids = args.broker_pids
    result: dict[str, Any] = {
        "sizes": sizes.__dict__,
        "bootstrap": bootstrap,
        "workload": workload_figures,
    }
    await make_topics(run)
    topics, service = run.topics, run.service
    phase_args = {
        "watch": None,
        "service": service,
        "inputs": topics["comments"],
        "outputs": topics["notifications"],
        "internal": run.internal,
        "within_s": args.timeout,
    }
    async with Watch(bootstrap, sizes.partitions) as watch:
        phase_args["watch"] = watch
        try:
            result["setup"] = await run_setup(run, watch, args.timeout)
            result["state"] = state_figures(service, run.workload, args.broker_dir)

            # the limit, on a copy of the first batch
            one = run.batches["one"]
            await publish(bootstrap, one, topic=topics["limit_in"])
            result["limit"] = run_limit(
                bootstrap, topics["limit_in"], topics["limit_out"], len(one), args.timeout
            )
            print(f"limit: {result['limit']['rate']} records/s")

            base = await watch.offsets([topics["notifications"]])
            result["one_worker"] = await throughput_phase(
                name="1 worker", workers=1, records=one, **phase_args
            )
            # the limit again, now writing what the service wrote for the same inputs
            produced = await read_since(bootstrap, base)
            outputs = tmp / "limit-outputs.pickle"
            outputs.write_bytes(pickle.dumps(produced))
            result["limit_with_outputs"] = run_limit(
                bootstrap,
                topics["limit_in"],
                topics["limit_notify"],
                len(one),
                args.timeout,
                outputs=outputs,
            )
            print(
                f"limit with the service's outputs: {result['limit_with_outputs']['rate']} "
                f"records/s in, {result['limit_with_outputs']['written_per_s']} out"
            )
            if "breaking" in args.phases:
                result["breaking_news"] = await breaking_news_phase(
                    run,
                    watch,
                    followers=args.breaking_followers,
                    seed=args.seed,
                    within_s=args.timeout,
                    workers=args.breaking_workers,
                    seeding=args.breaking_seeding,
                )
            if "two" in args.phases:
                # with the standby replicas (the default) and without: reported apart
                result["two_workers"] = await throughput_phase(
                    name="2 workers",
                    workers=2,
                    records=run.batches["two"],
                    overrides={"NEWSROOM_STANDBY_REPLICAS": "1"},
                    **phase_args,
                )
                result["two_workers_no_standby"] = await throughput_phase(
                    name="2 workers, no standby",
                    workers=2,
                    records=run.batches["two_no_standby"],
                    overrides={"NEWSROOM_STANDBY_REPLICAS": "0"},
                    **phase_args,
                )
            if "latency" in args.phases:
                await latency_phases(run, watch, result, args)
        finally:
            service.stop()
    return finish(result, started)


async def latency_phases(
    run: Run, watch: Watch, result: dict[str, Any], args: argparse.Namespace
) -> None:
    """One worker (ready: it recovered what the others did) gets comments at half the rate
    one worker sustained (or ``--moderate-rate``), then at ``--rate`` (0: skipped), once per
    ``--latency-configs`` entry, in the order given (interleave them: A,B,A,B)."""
    service, sizes, topics = run.service, run.sizes, run.topics
    stage_topics = dict(zip(("threads", "follows", "inbox"), run.internal, strict=True))

    async def caught_up() -> bool:
        ends = await watch.end(run.consumed)
        committed = await watch.committed(service.group, run.consumed)
        return all(committed[t] >= ends[t] for t in run.consumed)

    async def latency_at(rate: float, label: str, records: list[Record]) -> dict[str, Any]:
        print(f"latency: {rate:.0f} comments/s{label} for {sizes.duration:.0f}s")
        figures = await measure_latency(
            caught_up=caught_up,
            bootstrap=run.bootstrap,
            records=records,
            comments_topic=topics["comments"],
            notifications_topic=topics["notifications"],
            stage_topics=stage_topics,
            partitions=sizes.partitions,
            rate=rate,
            max_drain_s=args.max_drain,
        )
        hops = figures["hops"]
        print(
            f"latency: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
            f"({figures['count']} notifications); p50/p99 per hop: "
            + ", ".join(f"{k} {v['p50_ms']}/{v['p99_ms']}" for k, v in hops.items() if v["count"])
        )
        return figures

    capacity = result.get("one_worker", {}).get("input_per_s") or sizes.rate
    moderate = args.moderate_rate or max(1.0, round(capacity / 2))
    runs: list[dict[str, Any]] = []
    for n, (name, overrides) in enumerate(args.latency_configs):
        service.start(1, overrides)
        await service.ready()
        cpu0 = {pid: cpu_seconds(pid) or 0.0 for pid in service.pids()}
        try:
            label = f" (half of 1 worker's), config {name}"
            mod = await latency_at(
                moderate, label, run.latency_batch("moderate", n, int(moderate * sizes.duration))
            )
            samples: list[float] = []
            high = None
            if sizes.rate:
                high = await latency_at(
                    sizes.rate, f", config {name}", run.latency_batch("latency", n, None)
                )
                samples = high.pop("samples_s")
            cpu = sum((cpu_seconds(p) or 0.0) - c for p, c in cpu0.items())
        finally:
            service.stop()
        mod.pop("samples_s")
        runs.append(
            {
                "config": name,
                "settings": overrides,
                "moderate": mod,
                "high": high,
                "worker_cpu_s": round(cpu, 1),
            }
        )
        if n == 0:
            result["latency_moderate"] = mod
            if high is not None:
                result["latency"] = high
                result["latency_samples_s"] = samples
    result["latency_runs"] = runs


def finish(result: dict[str, Any], started: float) -> dict[str, Any]:
    result["ratios"] = ratios(result)
    # the two headline keys: comment events/s / the limit's writing the same outputs,
    # and seconds from the breaking-news article to its last notification
    result["ratio_to_limit_outputs"] = result["ratios"]["service_over_limit_with_outputs"]
    result["breaking_news_s"] = result.get("breaking_news", {}).get("seconds")
    # scale-out in CPU: worker CPU ms per comment event of 1 worker and of 2 (with and without
    # standby replicas), and 2 workers' over 1 worker's (the issue's target: within 15 %)
    cpu = {
        "one_worker": result.get("one_worker", {}).get("cpu_ms_per_comment"),
        "two_workers_standby": result.get("two_workers", {}).get("cpu_ms_per_comment"),
        "two_workers_no_standby": result.get("two_workers_no_standby", {}).get(
            "cpu_ms_per_comment"
        ),
    }
    one = cpu["one_worker"]
    result["cpu_ms_per_comment"] = cpu
    result["cpu_two_over_one"] = {
        key: round(value / one, 3) if value and one else None
        for key, value in cpu.items()
        if key != "one_worker"
    }
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


async def throughput_phase(
    *,
    name: str,
    workers: int,
    records: list[Record],
    watch: Any,
    overrides: dict[str, str] | None = None,
    service: Service,
    inputs: str,
    outputs: str,
    internal: list[str],
    within_s: float,
) -> dict[str, Any]:
    base_in = (await watch.end([inputs]))[inputs]
    base_out = (await watch.end([outputs]))[outputs]
    # Workers first, ready (tables recovered, group settled), then the batch as fast as a
    # producer writes it: the figure is processing, not start-up and rebalancing.
    service.start(workers, overrides)
    await service.ready()
    phase = Phase(name, len(records))
    print(f"{name}: ready; publishing {len(records)} comment events")
    await publish(service.bootstrap, records)
    await follow(
        watch=watch,
        service=service,
        phase=phase,
        inputs=inputs,
        outputs=outputs,
        internal=internal,
        base_in=base_in,
        base_out=base_out,
        within_s=within_s,
    )
    service.stop()
    figures = phase.figures()
    figures["series"] = {"input": phase.series_in, "notifications": phase.series_out}
    print(
        f"{name}: {figures['input_per_s']} comment events/s through every stage, "
        f"{figures['notifications_per_s_sustained']} notifications/s"
    )
    return figures


def state_figures(
    service: Service, workload: BenchWorkload, broker_dir: Path | None
) -> dict[str, Any]:
    """Bytes of state after the setup, per subscription (the worker is stopped: flushed)."""
    data = service.data_dir(0)
    rocks_live = dir_bytes(data, (".sst", ".log"))
    changelog = None
    if broker_dir is not None:
        changelog = sum(
            dir_bytes(d, (".log",))
            for d in broker_dir.rglob(f"{service.group}-*-changelog-*")
            if d.is_dir()
        )
    n = workload.subscriptions
    return {
        "subscriptions": n,
        "rocksdb_bytes": rocks_live,
        "rocksdb_bytes_per_subscription": round(rocks_live / n, 1),
        "data_dir_bytes": dir_bytes(data),
        "changelog_bytes": changelog,
        "changelog_bytes_per_subscription": round(changelog / n, 1) if changelog else None,
    }


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    one = result.get("one_worker", {}).get("input_per_s")
    two = result.get("two_workers", {}).get("input_per_s")
    limit = result.get("limit", {}).get("rate")
    limit_out = result.get("limit_with_outputs", {}).get("rate")
    return {
        "service_over_limit": round(one / limit, 3) if one and limit else None,
        "service_over_limit_with_outputs": round(one / limit_out, 3) if one and limit_out else None,
        "two_over_one": round(two / one, 3) if one and two else None,
    }


# ------------------------------------------------------------------------------ output


def table(result: dict[str, Any]) -> str:
    one, two = result.get("one_worker", {}), result.get("two_workers", {})
    limit, lat = result.get("limit", {}), result.get("latency", {})
    lw, mod = result.get("limit_with_outputs", {}), result.get("latency_moderate", {})
    state, ratio = result.get("state", {}), result.get("ratios", {})
    bn = result.get("breaking_news", {})
    nsb, cpu2 = result.get("two_workers_no_standby", {}), result.get("cpu_two_over_one", {})

    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value:,}{unit}"
        if isinstance(value, float):
            return f"{value:,.1f}{unit}"
        return f"{value}{unit}"

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f} %"

    rss = [v for phase in (one, two) for v in phase.get("peak_rss_mb", {}).values()]
    rows = [
        ("limit (plain aiokafka copy)", fmt(limit.get("rate"), " rec/s")),
        ("1 worker: comment events/s, all stages done", fmt(one.get("input_per_s"))),
        ("1 worker: intake of the first stage (10-90%)", fmt(one.get("intake_per_s_sustained"))),
        ("1 worker: notifications/s (sustained)", fmt(one.get("notifications_per_s_sustained"))),
        ("1 worker: CPU ms per comment event", fmt(one.get("cpu_ms_per_comment"))),
        ("1 worker / limit", pct(ratio.get("service_over_limit"))),
        (
            "limit writing the service's outputs: in / out",
            f"{fmt(lw.get('rate'))} / {fmt(lw.get('written_per_s'))} rec/s",
        ),
        ("1 worker / limit writing the outputs", pct(ratio.get("service_over_limit_with_outputs"))),
        ("2 workers: comment events/s, all stages done", fmt(two.get("input_per_s"))),
        ("2 workers: notifications/s (sustained)", fmt(two.get("notifications_per_s_sustained"))),
        ("2 workers: CPU ms per comment event", fmt(two.get("cpu_ms_per_comment"))),
        ("2 workers, no standby: comment events/s", fmt(nsb.get("input_per_s"))),
        ("2 workers, no standby: CPU ms per comment", fmt(nsb.get("cpu_ms_per_comment"))),
        (
            "CPU per comment, 2 workers / 1: standby / none",
            f"{pct(cpu2.get('two_workers_standby'))} / {pct(cpu2.get('two_workers_no_standby'))}",
        ),
        (
            "machine CPU busy (all cores), 1 / 2 workers",
            f"{fmt(one.get('machine_cpu_busy_percent'), ' %')} / "
            f"{fmt(two.get('machine_cpu_busy_percent'), ' %')}",
        ),
        (
            "broker CPU s, 1 / 2 workers (worker CPU s)",
            f"{fmt(one.get('broker_cpu_s'))} / {fmt(two.get('broker_cpu_s'))} "
            f"({fmt(sum(one.get('cpu_s', {}).values()) or None)} / "
            f"{fmt(sum(two.get('cpu_s', {}).values()) or None)})",
        ),
        ("2 workers / 1 worker", pct(ratio.get("two_over_one"))),
        (
            f"latency at {lat.get('rate_target', 0):.0f}/s: p50 / p99 / max",
            f"{fmt(lat.get('p50_ms'))} / {fmt(lat.get('p99_ms'))} / {fmt(lat.get('max_ms'))} ms",
        ),
        ("latency: notifications measured", fmt(lat.get("count"))),
        (
            f"latency at {mod.get('rate_target', 0):.0f}/s (half of 1 worker's): p50 / p99 / max",
            f"{fmt(mod.get('p50_ms'))} / {fmt(mod.get('p99_ms'))} / {fmt(mod.get('max_ms'))} ms",
        ),
        *(
            (
                f"breaking news, {n} worker(s): {fmt(bn.get('followers'))} followers, "
                "article -> last",
                f"{fmt(b.get('seconds'), ' s')} ({fmt(b.get('notifications_per_s'))} notif./s; "
                f"RSS {fmt(b.get('rss_before_mb'))} -> peak {fmt(b.get('peak_rss_mb'), ' MiB')})",
            )
            for n, b in bn.get("by_workers", {}).items()
        ),
        *(
            (
                f"latency run {n + 1}, {r['config']}: p50 / p99 at "
                f"{r['moderate']['rate_target']:.0f}/s"
                + (f", at {r['high']['rate_target']:.0f}/s" if r["high"] else ""),
                f"{fmt(r['moderate']['p50_ms'])} / {fmt(r['moderate']['p99_ms'])} ms"
                + (
                    f"; {fmt(r['high']['p50_ms'])} / {fmt(r['high']['p99_ms'])} ms"
                    if r["high"]
                    else ""
                ),
            )
            for n, r in enumerate(result.get("latency_runs", []))
            if len(result.get("latency_runs", [])) > 1
        ),
        ("worker peak RSS", fmt(max(rss) if rss else None, " MiB")),
        ("state: RocksDB bytes / subscription", fmt(state.get("rocksdb_bytes_per_subscription"))),
        ("state: changelog bytes / subscr.", fmt(state.get("changelog_bytes_per_subscription"))),
        ("setup events/s (not counted above)", fmt(result.get("setup", {}).get("events_per_s"))),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def plot(result: dict[str, Any], samples: list[float], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - optional extra 'bench'

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if samples:
        ms = sorted(s * 1000 for s in samples)
        left.hist(ms, bins=60, color="tab:blue", alpha=0.8)
        left.set_xlabel("end-to-end latency (ms)")
        left.set_ylabel("notifications")
        lat = result["latency"]
        left.set_title(
            f"latency at {lat['rate_target']:.0f} comments/s: "
            f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms"
        )
    for key, label in (("one_worker", "1 worker"), ("two_workers", "2 workers")):
        series = result.get(key, {}).get("series", {}).get("input", [])
        if len(series) > 1:
            times = [t for t, _ in series]
            rates = [0.0] + [(p1 - p0) / (t1 - t0) for (t0, p0), (t1, p1) in pairwise(series)]
            window = 8  # committed offsets move once a second: smooth over ~2 s
            smooth = [
                sum(rates[max(0, i - window + 1) : i + 1]) / min(i + 1, window)
                for i in range(len(rates))
            ]
            right.plot(times, smooth, label=f"{label}: input events/s")
    limit = result.get("limit", {}).get("rate")
    if limit:
        right.axhline(limit, color="grey", linestyle="--", label="limit (plain aiokafka copy)")
    right.set_xlabel("seconds since the workers started")
    right.set_ylabel("events/s")
    right.set_yscale("log")
    right.legend()
    right.set_title("throughput over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def parse_configs(text: str) -> list[tuple[str, dict[str, str]]]:
    """'a:X=1,Y=2;b:;a:' -> [(a, {X: 1, Y: 2}), (b, {}), (a, {X: 1, Y: 2})]."""
    known: dict[str, dict[str, str]] = {}
    out = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        name, _, assignments = entry.partition(":")
        pairs = dict(a.split("=", 1) for a in filter(None, assignments.split(",")))
        if pairs or name not in known:
            known[name] = pairs
        out.append((name, known[name]))
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="throughput.py",  # the name it had as one file (bench/throughput.py)
        description=__doc__.splitlines()[0] if __doc__ else "",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about 1-2 minutes")
    parser.add_argument("--comments", type=int, help="comment events per throughput batch")
    parser.add_argument("--articles", type=int)
    parser.add_argument("--members", type=int)
    parser.add_argument("--guests", type=int)
    parser.add_argument("--hot-followers", type=int, help="digest followers of the hot article")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="comments/s of the latency run (0: skipped)"
    )
    parser.add_argument(
        "--moderate-rate",
        type=float,
        help="comments/s of the first latency run (default: half of what 1 worker sustained)",
    )
    parser.add_argument(
        "--latency-configs",
        type=parse_configs,
        default=[("default", {})],
        help="latency runs, each with its own worker settings, in this order: "
        "'name:VAR=value,VAR=value;name2:...' (e.g. 'a:;b:NEWSROOM_KAFKA__LINGER_MS=0;a:;b:' "
        "interleaves the defaults a with b; an entry with no settings reuses its name's)",
    )
    parser.add_argument("--duration", type=float, help="seconds of the latency run")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=300.0, help="per phase, seconds")
    parser.add_argument(
        "--max-drain",
        type=float,
        default=90.0,
        help="latency: at most this many seconds after the last comment for its notifications",
    )
    parser.add_argument(
        "--breaking-workers",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[1, 2],
        help="worker counts of the breaking-news phase, one article each (default 1,2)",
    )
    parser.add_argument("--json", type=Path, help="result file (default bench/results/...)")
    parser.add_argument("--plot", type=Path, help="write a PNG: latency and throughput")
    parser.add_argument(
        "--phases",
        type=lambda v: set(v.split(",")),
        default={"breaking", "two", "latency"},
        help="after setup, the limit and 1 worker: any of 'breaking', 'two', 'latency' "
        "(comma-separated; default all three; 'none' for none)",
    )
    parser.add_argument(
        "--breaking-followers",
        type=int,
        default=10_000,
        help="instant followers of the breaking-news section (1000000 for the issue's figure)",
    )
    parser.add_argument(
        "--breaking-seeding",
        choices=("subscribe", "changelog"),
        default="subscribe",
        help="breaking news: subscribe the followers through the pipeline, or write their "
        "profiles and the section's follower chunks straight to the changelogs (fast: for a "
        "million)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    sizes = Sizes.from_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="newsroom-bench-"))
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    cluster: LocalKafka | None = None
    args.broker_dir = None
    args.broker_pids = []
    try:
        if configured:
            bootstrap = configured
            print(f"using the broker at {bootstrap}")
        else:
            cluster = LocalKafka.create(tmp / "kafka", size=1)
            cluster.start()
            bootstrap = cluster.bootstrap_servers
            args.broker_dir = tmp / "kafka"
            args.broker_pids = [n.pid for n in cluster.nodes if n.pid is not None]
            print(f"started a local Kafka at {bootstrap}")
        result = asyncio.run(bench(bootstrap, sizes, tmp, args))
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    samples = result.pop("latency_samples_s", [])
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()}
    out = args.json or ROOT / "bench" / "results" / time.strftime("throughput-%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print()
    print(table(result))
    print(f"\nall figures: {out} ({result['total_s']:.0f}s)")
    if args.plot:
        try:
            plot(result, samples, args.plot)
        except ImportError:
            print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
            return 1
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
