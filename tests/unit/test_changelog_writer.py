"""ChangelogWriter: table writes reach the changelog in the order they were made, a producer
error delays them but loses none, and a table remembers how far its changelog is written only
once the records were delivered. The tables' RocksDB writes no write-ahead log of its own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rocksdict
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from newsroom_notify.stream.faust_ext.tables import without_wal
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter


@dataclass
class Delivered:
    topic_partition: TP
    offset: int


@dataclass
class FakeProducer:
    """Accepts sends (failing the first ``refuse`` of them); delivery is resolved by hand."""

    refuse: int = 0
    sent: list[tuple[str, bytes, bytes | None, int]] = field(default_factory=list)
    deliveries: list[asyncio.Future[Delivered]] = field(default_factory=list)

    async def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int, *_: Any
    ) -> Any:
        if self.refuse:
            self.refuse -= 1
            raise KafkaConnectionError("broker away")
        self.sent.append((topic, key, value, partition))
        delivery: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    def deliver_all(self) -> None:
        for offset, delivery in enumerate(self.deliveries):
            if not delivery.done():
                topic, _, _, partition = self.sent[offset]
                delivery.set_result(Delivered(TP(topic, partition), offset))


@dataclass
class FakeStore:
    persisted: dict[TP, int] = field(default_factory=dict)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


@dataclass
class FakeTopic:
    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class FakeTable:
    name: str
    changelog_topic: FakeTopic
    data: FakeStore = field(default_factory=FakeStore)


@dataclass
class FakeApp:
    producer: FakeProducer


def table(name: str) -> FakeTable:
    return FakeTable(name, FakeTopic(f"app-{name}-changelog"))


async def test_writes_reach_the_changelog_in_order_and_offsets_are_stored_after_delivery() -> None:
    producer = FakeProducer()
    writer = ChangelogWriter(FakeApp(producer))
    sent, profiles = table("sent"), table("profiles")
    writer.put(sent, 2, b"k1", b"v1")
    writer.put(profiles, 2, b"p1", b"{}")
    writer.put(sent, 2, b"k1", b"v2")
    writer.put(sent, 3, b"k2", None)  # a deletion: a tombstone
    await writer.drain()
    assert producer.sent == [
        ("app-sent-changelog", b"k1", b"v1", 2),
        ("app-profiles-changelog", b"p1", b"{}", 2),
        ("app-sent-changelog", b"k1", b"v2", 2),
        ("app-sent-changelog", b"k2", None, 3),
    ]
    writer.store_offsets()
    assert sent.data.persisted == {}  # nothing delivered yet: nothing remembered
    producer.deliver_all()
    await asyncio.sleep(0)  # delivery callbacks
    writer.store_offsets()
    assert sent.data.persisted == {
        TP("app-sent-changelog", 2): 2,
        TP("app-sent-changelog", 3): 3,
    }
    assert profiles.data.persisted == {TP("app-profiles-changelog", 2): 1}
    await writer.stop()


async def test_a_producer_error_delays_the_records_but_loses_none(monkeypatch: Any) -> None:
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("newsroom_notify.stream.faust_ext.transport.asyncio.sleep", no_wait)
    producer = FakeProducer(refuse=2)
    writer = ChangelogWriter(FakeApp(producer))
    threads = table("threads")
    writer.put(threads, 0, b"a-1", b"x")
    writer.put(threads, 0, b"a-2", b"y")
    await writer.drain()
    assert [key for _, key, _, _ in producer.sent] == [b"a-1", b"a-2"]
    await writer.stop()


async def test_the_background_task_sends_without_a_flush() -> None:
    producer = FakeProducer()
    writer = ChangelogWriter(FakeApp(producer))
    writer.put(table("comments"), 1, b"c", b"v")
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(producer.sent) == 1
    await writer.stop()


def _rdict(path: Path, **_: Any) -> rocksdict.Rdict:
    return rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))


def _wal_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.log"))


def test_table_stores_skip_rocksdbs_write_ahead_log_and_keep_data_on_close(tmp_path: Path) -> None:
    plain = _rdict(tmp_path / "plain")
    state = without_wal(_rdict)(tmp_path / "state")
    for db in (plain, state):
        for i in range(200):
            db[b"key-%d" % i] = b"v" * 100
    assert _wal_bytes(tmp_path / "plain") > 20_000  # the control: a log write per put
    assert _wal_bytes(tmp_path / "state") == 0  # the changelog topic is the log
    state.close()
    plain.close()
    reopened = _rdict(tmp_path / "state")
    assert reopened[b"key-199"] == b"v" * 100  # closing flushed the memtable
    reopened.close()
