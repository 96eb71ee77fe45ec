"""Broker side of the throughput benchmark: the workload as records, topics, publishing,
and watching offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.stream.admin import create_topics as admin_create_topics

Record = tuple[str, bytes, bytes]  # topic, key, value


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
