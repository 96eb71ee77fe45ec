"""Helpers for tests that talk to the real broker: topics, producing, draining, workers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from newsroom_dev import builders
from newsroom_dev.builders import event_records
from newsroom_dev.process import PortTaken, ServiceProcess, unique, worker_env
from newsroom_notify.contract import events as ev
from newsroom_notify.stream.admin import INTERNAL_STAGES
from newsroom_notify.stream.admin import create_topics as admin_create_topics
from newsroom_notify.stream.stages import key_partition


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    replication: int = 1,
    timeout: float = 30.0,
) -> None:
    """Create plain topics and wait until the metadata shows all their partitions (the
    service's own ``create_topics``, with default topic configs)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        layout: dict[str, dict[str, str]] = {name: {} for name in names}
        await admin_create_topics(admin, layout, partitions, replication, timeout)
    finally:
        await admin.close()


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[
        tuple[bytes | None, bytes | None]
        | tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
    ],
    **producer_kwargs: Any,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **producer_kwargs
    )
    await producer.start()
    try:
        for record in records:
            key, value, *rest = record
            headers = rest[0] if rest else None
            await producer.send_and_wait(topic, key=key, value=value, headers=headers)
    finally:
        await producer.stop()


async def drain(
    bootstrap: str,
    topic: str,
    expect: int,
    timeout: float = 30.0,
    settle: float = 1.0,
    isolation_level: str = "read_uncommitted",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``expect`` records arrived (then ``settle`` more
    seconds to catch extras), or until ``timeout``. Returns what was read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level=isolation_level,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if now >= deadline or (settle_until is not None and now >= settle_until):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                got.extend(records)
            if settle_until is None and len(got) >= expect:
                settle_until = time.monotonic() + settle
    finally:
        await consumer.stop()
    return got


async def drain_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 30.0,
    settle: float = 0.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``done(records so far)`` holds (polled after each
    fetch), then ``settle`` seconds more to catch extras; fails if ``done`` does not hold
    within ``timeout``. Returns what was read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while not done(got):
            assert time.monotonic() < deadline, f"{topic}: condition not met by {len(got)} records"
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                got.extend(records)
        settled = time.monotonic() + settle
        while time.monotonic() < settled:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                got.extend(records)
    finally:
        await consumer.stop()
    return got


INPUT_TOPICS = ("newsroom.articles", "newsroom.comments", "newsroom.subscriptions")


def consumed_topics(env: Mapping[str, str]) -> list[str]:
    """The topics a worker started with ``env`` consumes: the inputs and its stage topics."""
    prefix, group = env["NEWSROOM_TOPICS__PREFIX"], env["NEWSROOM_APP_ID"]
    return [prefix + t for t in INPUT_TOPICS] + [f"{group}-{stage}" for stage in INTERNAL_STAGES]


class Offsets:
    """End offsets of topics and the committed offsets of the workers' consumer group."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.partitions = partitions
        self.consumer: AIOKafkaConsumer | None = None
        self.admin: AIOKafkaAdminClient | None = None

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self.consumer is None or self.admin is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await consumer.start()
            await admin.start()
            self.consumer, self.admin = consumer, admin
        return self.consumer, self.admin

    async def close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.admin is not None:
            await self.admin.close()
        self.consumer = self.admin = None

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        consumer, _ = await self._clients()
        tps = [TopicPartition(t, p) for t in topics for p in range(self.partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends

    async def settled(self, group: str, topics: list[str]) -> bool:
        """Whether the group committed every record of ``topics``. Committed offsets are read
        first: a record is committed only after what it caused was written, so anything it
        caused is inside the end offsets read afterwards."""
        _, admin = await self._clients()
        committed = await admin.list_consumer_group_offsets(group)
        ends = await self.ends(topics)
        return all(
            end == 0 or (tp in committed and committed[tp].offset >= end)
            for tp, end in ends.items()
        )


async def wait_settled(bootstrap: str, env: Mapping[str, str], timeout: float = 60.0) -> None:
    """Poll until the worker started with ``env`` committed every record of the topics it
    consumes: everything published so far has been handled and what it caused was written."""
    offsets = Offsets(bootstrap, int(env["NEWSROOM_TOPICS__PARTITIONS"]))
    deadline = time.monotonic() + timeout
    try:
        while not await offsets.settled(env["NEWSROOM_APP_ID"], consumed_topics(env)):
            assert time.monotonic() < deadline, "the worker did not commit its input in time"
            await asyncio.sleep(0.2)
    finally:
        await offsets.close()


async def read_to_end(
    bootstrap: str, topic: str, partitions: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to the end offsets read when called (no waiting for
    extras: call it once the writers are known to be done, see ``wait_settled``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(*parts, timeout_ms=200)
            for records in batch.values():
                got.extend(records)
    finally:
        await consumer.stop()
    return got


SENTINEL = "m-sentinel-"
PARTITIONS = 4  # worker_env's NEWSROOM_TOPICS__PARTITIONS


def partition_twin(name: str, twin: str, prefix: str = "") -> str:
    """``name`` with a suffix such that ``prefix + name`` and ``prefix + twin`` hash to the same
    partition (records keyed by them are handled in the order they were sent)."""
    want = key_partition(prefix + twin, PARTITIONS)
    return next(
        candidate
        for i in itertools.count()
        if key_partition(prefix + (candidate := f"{name}-{i}"), PARTITIONS) == want
    )


def is_sentinel(record: ConsumerRecord[bytes, bytes]) -> bool:
    """Whether an output record is for one of ``barrier``'s sentinels."""
    data = orjson.loads(record.value).get("data") or {}
    recipient = data.get("recipient")
    rid = recipient.get("id") if isinstance(recipient, dict) else data.get("recipient_id")
    return isinstance(rid, str) and rid.startswith(SENTINEL)


def barrier(
    bootstrap: str,
    prefix: str,
    subscribers: Iterable[str],
    tag: str,
    article: str = "a-1",
    commenter: str = "m-ben",
) -> None:
    """Wait until what was published so far reached every stage for ``subscribers`` (instead
    of sleeping and hoping).

    For each subscriber, two sentinel members in that subscriber's inbox partition follow
    (instantly) a probe article in ``article``'s threads partition and a probe author in
    ``commenter``'s follows partition. Their subscriptions travel behind the subscribers'
    earlier commands (same inbox partition, then the same stage partitions), and the probe's
    comments behind the earlier comments of ``article`` and of ``commenter``; probe comments are
    published until every sentinel heard of one. ``tag`` keeps sentinels of each call apart.
    """
    probe_article = partition_twin("a-probe", article)
    author = partition_twin("m-probe", commenter, "commenter:")
    events: list[ev.CloudEvent] = [builders.article(probe_article)]
    sentinels: set[str] = set()
    for n, sid in enumerate(subscribers):
        on_article = partition_twin(f"{SENTINEL}{tag}-{n}a", sid)
        on_author = partition_twin(f"{SENTINEL}{tag}-{n}c", sid)
        sentinels |= {on_article, on_author}
        events += [
            builders.subscribe(
                builders.member(on_article, "Sentinel"), "article", probe_article, "instant"
            ),
            builders.subscribe(
                builders.member(on_author, "Sentinel"), "commenter", author, "instant"
            ),
        ]
    publish_events(bootstrap, prefix, events)
    topic = f"{prefix}newsroom.notifications"

    def heard(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        told = set()
        for record in records:
            recipient = orjson.loads(record.value).get("data", {}).get("recipient")
            if isinstance(recipient, dict):
                told.add(recipient.get("id"))
        return sentinels <= told

    for attempt in range(12):  # until the sentinels' subscriptions have landed
        probe = builders.comment(
            f"c-probe-{tag}-{attempt}",
            builders.member(author, "Probe"),
            "Probe",
            aid=probe_article,
            at=datetime.now(UTC),
        )
        publish_events(bootstrap, prefix, [probe])
        with contextlib.suppress(AssertionError):
            run(drain_until(bootstrap, topic, heard, timeout=5))
            return
    raise AssertionError(f"barrier {tag}: the sentinels heard of no probe comment in a minute")


async def _send_in_order(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


def publish_events(bootstrap: str, prefix: str, events: Iterable[ev.CloudEvent]) -> None:
    """Publish contract events to the topics of a worker with ``prefix``, in order."""
    run(_send_in_order(bootstrap, event_records(events, prefix)))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


WorkerProcess = ServiceProcess  # the tests' name: most of them start a worker
__all__ = [
    "PortTaken",
    "ServiceProcess",
    "WorkerProcess",
    "event_records",
    "unique",
    "worker_env",
]
