"""The stages' ``Sender`` on a real broker: records appended straight to the producer's open
batches land where and as aiokafka's own ``send`` would put them, in order, and their delivery
(one per batch) reports the broker's offsets and its refusals."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from newsroom_notify.metrics import OVERSIZED
from newsroom_notify.stream.admin import create_topics as admin_create_topics
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter, Sender
from tests.integration.kafka_helpers import create_topics, drain, run, unique


class FaustLikeProducer:
    """What ``Sender`` uses of Faust's aiokafka producer: ``send`` and ``_ensure_producer``."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.sent_through_send = 0

    def _ensure_producer(self) -> AIOKafkaProducer:
        return self.producer

    async def send(self, topic: str, key: Any, value: Any, partition: Any, ts: Any, headers: Any):  # type: ignore[no-untyped-def]
        self.sent_through_send += 1
        return await self.producer.send(topic, value, key=key, partition=partition, headers=headers)


@contextlib.asynccontextmanager
async def _app(bootstrap: str, **producer_settings: Any) -> AsyncIterator[Any]:
    """What the ``Sender`` uses of a Faust app, around an idempotent producer on the broker."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **producer_settings
    )
    await producer.start()
    try:
        yield SimpleNamespace(producer=FaustLikeProducer(producer), undelivered=None)
    finally:
        await producer.stop()


async def _send_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> Any:
    async with _app(bootstrap, max_batch_size=4096) as app:
        faust_like, producer = app.producer, app.producer.producer
        sender = Sender(app)
        deliveries = [
            await sender.send(topic, key, value, [("content-type", b"x/y")])
            for key, value in records
        ]
        # Where aiokafka's own partitioner puts each key (what consumers of the contract and
        # the stages' co-partitioning rely on).
        expected = {}
        for key, _ in records[:50]:
            meta = await producer.send_and_wait(topic + "-ref", b"", key=key)
            expected[key] = meta.partition
        results = await asyncio.gather(*deliveries)
        return faust_like.sent_through_send, results, expected, len(set(map(id, deliveries)))


def test_records_land_in_the_default_partitioners_partition_in_order(kafka_bootstrap: str) -> None:
    topic = unique("sender")
    run(create_topics(kafka_bootstrap, [topic, topic + "-ref"], partitions=5))
    records = [(f"reader-{i % 37}".encode(), f"{i:05d}".encode() * 40) for i in range(2_000)]
    through_send, results, expected, batches = run(_send_all(kafka_bootstrap, topic, records))
    # 200-byte records in 4 KiB batches: most appended to an open batch, a full one through send.
    assert 0 < through_send < len(records) // 4
    assert batches < len(records) // 4  # deliveries are per batch, not per record
    assert all(r is not None and r.topic == topic for r in results)
    got = run(drain(kafka_bootstrap, topic, expect=len(records)))
    assert sorted((r.key, r.value) for r in got) == sorted(records)
    assert all(dict(r.headers) == {"content-type": b"x/y"} for r in got)
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        assert expected.get(record.key, record.partition) == record.partition
        by_key[record.key].append(record.value)
    for key, values in by_key.items():
        assert values == [v for k, v in records if k == key]  # each key's order kept


async def _changelog(bootstrap: str, topic: str) -> tuple[Any, int]:
    async with _app(bootstrap) as app:
        writer = ChangelogWriter(app)
        table = SimpleNamespace(
            name="profiles", changelog_topic=SimpleNamespace(get_topic_name=lambda: topic)
        )
        for i in range(100):
            writer.put(table, i % 2, f"k{i}".encode(), b"v" * 100)
        await writer.drain()
        await app.producer.producer.flush()
        await asyncio.sleep(0)  # the deliveries' callbacks
        return writer._offsets, app.producer.sent_through_send


def test_the_changelog_offsets_stored_are_the_batches_delivered(kafka_bootstrap: str) -> None:
    topic = unique("changelog")
    run(create_topics(kafka_bootstrap, [topic], partitions=2))
    offsets, through_send = run(_changelog(kafka_bootstrap, topic))
    assert through_send == 1  # the first record, which waits for the topic's metadata
    stored = {tp.partition: offset for (_, tp), (_, offset) in offsets.items()}
    assert set(stored) == {0, 1}
    # 50 records per partition in one or a few batches: the last batch's first offset, at
    # most the last record's (a recovery re-reads at most that batch), never beyond it.
    assert all(0 <= offset <= 49 for offset in stored.values())


async def _refused(bootstrap: str, topic: str) -> tuple[Any, float]:
    async with _app(bootstrap) as app:
        sender = Sender(app)
        before = OVERSIZED.labels(where="delivery")._value.get()
        delivery = await sender.send(topic, b"k", b"x" * 20_000)  # the topic takes 10,000
        with pytest.raises(Exception):  # noqa: B017, PT011 - the broker's refusal, any class
            await delivery
        await asyncio.sleep(0)
        return app.undelivered, OVERSIZED.labels(where="delivery")._value.get() - before


def test_a_batch_the_broker_refuses_is_reported_once(kafka_bootstrap: str) -> None:
    topic = unique("refusing")
    run(_create_small_topic(kafka_bootstrap, topic, 10_000))
    undelivered, counted = run(_refused(kafka_bootstrap, topic))
    assert undelivered is None  # a refusal is counted and logged, commits go on (README)
    assert counted == 1


async def _refused_batch(bootstrap: str, topic: str) -> tuple[Any, float, int]:
    # The first record goes through aiokafka's send (no metadata yet), the next two are
    # appended to the batch it opened: the broker refuses the batch, three records.
    async with _app(bootstrap, linger_ms=200) as app:
        sender = Sender(app)
        before = OVERSIZED.labels(where="delivery")._value.get()
        deliveries = [await sender.send(topic, b"k", b"x" * 4_000) for _ in range(3)]
        for delivery in deliveries:
            with pytest.raises(Exception):  # noqa: B017, PT011 - the broker's refusal
                await delivery
        await asyncio.sleep(0)
        counted = OVERSIZED.labels(where="delivery")._value.get() - before
        return app.undelivered, counted, app.producer.sent_through_send


def test_a_refused_batch_counts_its_records_once_each(kafka_bootstrap: str) -> None:
    topic = unique("refusing-batch")
    run(_create_small_topic(kafka_bootstrap, topic, 10_000))  # three records: 12,000 bytes
    undelivered, counted, through_send = run(_refused_batch(kafka_bootstrap, topic))
    assert through_send == 1  # one record with its own delivery, two sharing the batch's
    assert undelivered is None
    assert counted == 3  # not 2 (the batch once, the record sent through send once)


async def _create_small_topic(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin_create_topics(admin, {topic: {"max.message.bytes": str(limit)}}, 1, 1, 30.0)
    finally:
        await admin.close()
