"""Batches (issue 19 item 1): an agent handles the records already fetched together, writes
each changed key once per batch, and acknowledges the batch only after it was handled.

Faust attributes a table write to the partition of its *current event* (``Table.partition_for_key``
and the RocksDB store's ``_set`` both read ``faust.streams.current_event()``). With
``stream.take`` the current event is the batch's last record, so the writes of the others
landed in its partition: why batches were rejected before. Here each record is handled under
its own event (``handling``) and a kept write remembers the event that made it, so it reaches
its own partition however the batch is mixed. The fake table below attributes writes exactly as
Faust does; tests/unit/test_shell_in_memory.py runs the whole shell on mixed batches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
import rocksdict
from bench.fanout_cost import JsonTable
from faust.events import Event as FaustEvent
from faust.streams import current_event
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from pydantic import BaseModel, model_validator

from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.intents import Stage
from newsroom_notify.domain.keys import sent_key
from newsroom_notify.domain.model import Reason
from newsroom_notify.domain.state import Profile, Sent, Subscription
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.stream.batching import Candidacies
from newsroom_notify.stream.faust_ext.app import ExtendedApp
from newsroom_notify.stream.faust_ext.batches import event_batches, handling
from newsroom_notify.stream.faust_ext.tables import ModelTable, WriteBack
from newsroom_notify.stream.stages import READ_AHEAD_FROM, Pipeline, read_ahead
from tests.memory_shell import flowing_app
from tests.unit.test_inbox_batch import AT, BASES, NOW, SUBJECTS


class Value(BaseModel):
    n: int


@dataclass
class Message:
    partition: int
    offset: int


@dataclass
class Event:
    message: Message


@dataclass
class FaustLikeTable:
    """A Faust table as far as ``ModelTable`` uses it: a write goes to the partition of the
    current event (none: refused, as Faust refuses a write outside of a stream)."""

    partitions: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    writes: list[tuple[bytes, bytes | None, int]] = field(default_factory=list)
    reads: int = 0

    @property
    def data(self) -> FaustLikeTable:
        return self

    def _partition(self) -> int:
        event = current_event()
        if event is None:
            raise TypeError("Cannot modify table key from outside of stream iteration")
        return int(event.message.partition)

    def __getitem__(self, key: bytes) -> bytes:
        self.reads += 1
        for store in self.partitions.values():
            if key in store:
                return store[key]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(key in store for store in self.partitions.values())

    def __setitem__(self, key: bytes, value: bytes) -> None:
        partition = self._partition()
        self.writes.append((key, value, partition))
        self.partitions.setdefault(partition, {})[key] = value

    def __delitem__(self, key: bytes) -> None:
        partition = self._partition()
        self.writes.append((key, None, partition))
        del self.partitions[partition][key]

    def __iter__(self) -> Iterator[bytes]:
        return iter([k for store in self.partitions.values() for k in store])

    def items(self) -> list[tuple[bytes, bytes]]:
        return [item for store in self.partitions.values() for item in store.items()]

    def __len__(self) -> int:
        return sum(len(store) for store in self.partitions.values())


def kept_table() -> tuple[ModelTable[Value], FaustLikeTable, WriteBack]:
    faust_table, write_back = FaustLikeTable(), WriteBack()
    return ModelTable(faust_table, Value, write_back=write_back), faust_table, write_back


def test_each_write_of_a_mixed_batch_lands_in_its_own_records_partition() -> None:
    table, faust_table, write_back = kept_table()
    batch = [Event(Message(partition=0, offset=7)), Event(Message(partition=3, offset=2))]
    with handling(batch[0]):
        table["a"] = Value(n=1)
    with handling(batch[1]):
        table["b"] = Value(n=2)
    assert faust_table.writes == []  # kept until the batch ends
    write_back.flush()  # after the batch: no current event any more
    assert sorted(faust_table.writes) == [(b"a", b'{"n":1}', 0), (b"b", b'{"n":2}', 3)]
    # What stream.take did: every write under the batch's last event.
    assert (b"a", b'{"n":1}', 3) not in faust_table.writes
    assert current_event() is None


def test_a_key_written_several_times_in_a_batch_is_written_once_with_its_last_value() -> None:
    table, faust_table, write_back = kept_table()
    event = Event(Message(partition=5, offset=0))
    with handling(event):
        for n in range(10):
            table["thread"] = Value(n=n)
        table["gone"] = Value(n=1)
        del table["gone"]  # written then deleted in the same batch: nothing to write
    write_back.flush()
    assert faust_table.writes == [(b"thread", b'{"n":9}', 5)]


def test_reads_in_a_batch_see_its_writes_and_ask_the_store_once_per_key() -> None:
    table, faust_table, write_back = kept_table()
    event = Event(Message(partition=1, offset=0))
    with handling(event):
        table["k"] = Value(n=1)
    write_back.flush()
    faust_table.reads = 0
    with handling(event):
        assert table["k"].n == 1
        assert table.get("k") == Value(n=1)
        assert "missing" not in table
        assert table.get("missing") is None
        assert faust_table.reads == 2  # "k" once, "missing" once
        table["k"] = Value(n=2)
        assert table["k"].n == 2  # its own write, before the flush
        del table["k"]
        assert "k" not in table
        with pytest.raises(KeyError):
            del table["k"]
    assert list(table) == []  # iteration (the timers') sees the kept deletion
    write_back.flush()
    assert faust_table.writes[-1] == (b"k", None, 1)


def test_the_raw_items_a_timer_scans_are_the_stores_with_the_batchs_writes_in_place() -> None:
    table, _, write_back = kept_table()
    first, second = Event(Message(partition=0, offset=0)), Event(Message(partition=1, offset=0))
    with handling(first):
        table["a"], table["b"] = Value(n=1), Value(n=2)
    with handling(second):
        table["c"] = Value(n=3)
    write_back.flush()
    assert sorted(table.raw_items()) == [("a", b'{"n":1}'), ("b", b'{"n":2}'), ("c", b'{"n":3}')]
    with handling(first):
        table["a"] = Value(n=10)
        del table["b"]
        table["d"] = Value(n=4)
    # Mid-batch (a timer runs between two records): what the batch wrote, not yet flushed.
    assert sorted(table.raw_items()) == [("a", b'{"n":10}'), ("c", b'{"n":3}'), ("d", b'{"n":4}')]
    write_back.flush()
    assert sorted(table.raw_items()) == [("a", b'{"n":10}'), ("c", b'{"n":3}'), ("d", b'{"n":4}')]


class Thread(BaseModel):
    participants: dict[str, str] = {}
    decoded: ClassVar[int] = 0

    @model_validator(mode="after")
    def counted(self) -> Thread:
        Thread.decoded += 1
        return self


def test_a_large_value_read_again_in_a_batch_is_decoded_once_and_each_read_is_its_own() -> None:
    """A batch of comments on one busy article reads its thread once per comment: it is
    decoded once (or not at all after the batch wrote it), and each read gets a copy. A handler
    that changes what it read and does not write it back (the domain does: a capped thread)
    must not change what the next record reads."""
    faust_table, write_back = FaustLikeTable(), WriteBack()
    table = ModelTable(faust_table, Thread, write_back=write_back)
    first, second = Event(Message(partition=0, offset=0)), Event(Message(partition=0, offset=1))
    busy = {f"m-{i:03d}": f"Reader {i:03d}" for i in range(100)}  # a few kB
    with handling(first):
        table["a-1"] = Thread(participants=busy)
    write_back.flush()
    stored = Thread(participants=busy)
    Thread.decoded = 0
    with handling(first):
        read = table["a-1"]
        read.participants["m-new"] = "Bo"  # changed, not written
    with handling(second):
        assert table.get("a-1") == stored
        assert table["a-1"] is not table["a-1"]
    assert Thread.decoded == 1
    with handling(second):
        changed = table["a-1"]
        changed.participants["m-new"] = "Cy"
        table["a-1"] = changed
        changed.participants["m-late"] = "Di"  # after the write: not written
        assert table["a-1"] == Thread(participants={**busy, "m-new": "Cy"})
        assert "m-late" not in table["a-1"].participants
    assert Thread.decoded == 2  # the expected value above; the reads decoded nothing more
    write_back.drop()  # an interrupted batch: what it decoded is forgotten with the rest
    with handling(second):
        assert table["a-1"] == stored
    write_back.flush()
    Thread.decoded = 0
    with handling(first):
        table["a-1"] = Thread(participants={"m-1": "Ana"})  # small: read back by decoding
        assert table["a-1"].participants == {"m-1": "Ana"}
        assert table["a-1"].participants == {"m-1": "Ana"}
    assert Thread.decoded == 3  # built once, decoded at each read


def test_a_write_outside_of_any_record_is_refused_as_faust_refuses_it() -> None:
    table, faust_table, _ = kept_table()
    with pytest.raises(TypeError):
        table["k"] = Value(n=1)
    assert faust_table.writes == []


def test_copies_of_one_key_in_several_partitions_stay_apart_in_a_batch() -> None:
    """A message broadcast to every partition (each copy handled in its own partition) may
    write the same key in each: one batch holding several copies keeps and writes them all,
    and each record reads its own partition's value."""
    table, faust_table, write_back = kept_table()
    events = [Event(Message(partition=p, offset=0)) for p in range(3)]
    for p, event in enumerate(events):
        with handling(event):
            assert "commenter:x" not in table
            table["commenter:x"] = Value(n=p)
    for p, event in enumerate(events):
        with handling(event):
            assert table["commenter:x"].n == p
    write_back.flush()
    assert sorted(faust_table.writes) == [
        (b"commenter:x", f'{{"n":{p}}}'.encode(), p) for p in range(3)
    ]


def test_too_many_kept_writes_are_flushed_in_mid_batch() -> None:
    table, faust_table, write_back = kept_table()
    write_back.max_kept = 3
    with handling(Event(Message(partition=0, offset=0))):
        for n in range(3):
            table[f"k{n}"] = Value(n=n)
            write_back.flush_if_full()
    assert len(faust_table.writes) == 3


def test_a_per_record_write_back_writes_each_records_values_before_the_next_record() -> None:
    # The inbox's: a digest cut recorded while its record is handled is in the store and the
    # changelog before the next record of the batch (a kill -9 later loses nothing recorded).
    faust_table, write_back = FaustLikeTable(), WriteBack.per_record()
    table = ModelTable(faust_table, Value, write_back=write_back)
    for offset in range(3):
        with handling(Event(Message(partition=1, offset=offset))):
            table[f"cut-{offset}"] = Value(n=offset)
        write_back.flush_if_full()  # what the agent does after each record
        assert faust_table.writes[-1] == (f"cut-{offset}".encode(), f'{{"n":{offset}}}'.encode(), 1)
    assert len(faust_table.writes) == 3


class FetchedStream:
    """A Faust stream as ``event_batches`` reads it: ``events()`` hands out the records of
    ``fetches`` (each a list of records the consumer fetched together), the channel's queue is
    empty between two fetches, ``ack`` is recorded."""

    def __init__(self, fetches: list[list[int]]) -> None:
        self.fetches = fetches
        self.queued = 0  # records of the current fetch not handed out yet
        self.enable_acks = True
        self.acked: list[int] = []
        self.channel = SimpleNamespace(queue=SimpleNamespace(empty=lambda: self.queued == 0))
        self.app = flowing_app()

    async def events(self) -> AsyncIterator[Event]:
        for fetch in self.fetches:
            for i, offset in enumerate(fetch):
                self.queued = len(fetch) - i - 1
                yield Event(Message(partition=0, offset=offset))

    async def ack(self, event: Event) -> bool:
        self.acked.append(event.message.offset)
        return True


async def test_a_batch_is_what_was_already_fetched_up_to_the_maximum() -> None:
    stream = FetchedStream([[0], [1, 2, 3, 4, 5], [6, 7]])
    seen: list[list[int]] = []
    async for batch in event_batches(stream, max_events=3):
        assert stream.acked == [o for b in seen for o in b]  # the batch is not acked yet
        seen.append([e.message.offset for e in batch])
    assert seen == [[0], [1, 2, 3], [4, 5], [6, 7]]  # a lone record waits for nobody
    assert stream.acked == list(range(8))
    assert stream.enable_acks is False  # Faust's per-record acknowledgement is off


async def test_a_batch_interrupted_is_not_acknowledged() -> None:
    stream = FetchedStream([[0, 1], [2]])
    batches = event_batches(stream, max_events=10)
    first = await anext(batches)
    assert [e.message.offset for e in first] == [0, 1]
    await batches.aclose()  # the agent cancelled while handling it (a stop, a rebalance)
    assert stream.acked == []


def test_handling_restores_the_event_before_it() -> None:
    outer, inner = Event(Message(0, 1)), Event(Message(1, 2))
    with handling(outer):
        with handling(inner):
            assert current_event() is inner
        assert current_event() is outer
    assert current_event() is None


def test_what_an_interrupted_batch_kept_is_dropped_not_written_later() -> None:
    """An agent cancelled in mid-batch (a stop) drops its kept writes: the batch is not
    acknowledged and is handled again, and a later flush must not write them under a
    partition this worker may no longer own."""
    table, faust_table, write_back = kept_table()
    with handling(Event(Message(partition=2, offset=0))):
        table["k"] = Value(n=1)
    write_back.drop()
    write_back.flush()
    assert faust_table.writes == []
    assert "k" not in table


def test_the_values_a_batch_keeps_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of big fan-outs reads many profiles: past the bound it reads the store again
    instead of keeping more."""
    monkeypatch.setattr("newsroom_notify.stream.faust_ext.tables.READS_KEPT", 2)
    table, faust_table, _ = kept_table()
    with handling(Event(Message(partition=0, offset=0))):
        for _ in range(2):
            for key in ("a", "b", "c"):
                table.get(key)
    assert faust_table.reads == 2 + 2 * 1  # a and b kept; c read twice


def test_the_values_a_batch_keeps_decoded_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound (bytes of JSON), a large value is decoded again at each read."""
    monkeypatch.setattr("newsroom_notify.stream.faust_ext.tables.DECODED_BYTES_KEPT", 5_000)
    faust_table, write_back = FaustLikeTable(), WriteBack()
    table = ModelTable(faust_table, Thread, write_back=write_back)
    event = Event(Message(partition=0, offset=0))
    with handling(event):
        for key in ("a", "b", "c"):  # about 2 kB each
            table[key] = Thread(participants={f"m-{i:03d}": f"Reader {i:03d}" for i in range(80)})
    write_back.flush()
    Thread.decoded = 0
    with handling(event):
        for _ in range(3):
            for key in ("a", "b", "c"):
                assert len(table[key].participants) == 80
    assert Thread.decoded == 2 + 3  # a and b kept decoded; c decoded at each read


def test_a_large_value_written_again_and_again_in_a_batch_stays_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A busy thread rewritten by comment after comment replaces what was kept for it: the
    bound counts what is kept, not every write, so the last writes are kept too."""
    monkeypatch.setattr("newsroom_notify.stream.faust_ext.tables.DECODED_BYTES_KEPT", 5_000)
    faust_table, write_back = FaustLikeTable(), WriteBack()
    table = ModelTable(faust_table, Thread, write_back=write_back)
    busy = {f"m-{i:03d}": f"Reader {i:03d}" for i in range(80)}  # about 2 kB
    Thread.decoded = 0
    with handling(Event(Message(partition=0, offset=0))):
        for n in range(20):
            table["a-1"] = Thread(participants={**busy, "last": str(n)})
            assert table["a-1"].participants["last"] == str(n)
    assert Thread.decoded == 20  # the values built; no read decoded


class FaustAgent:
    """An agent reading batches from a real Faust stream (faust-streaming's own stream loop:
    it counts a record as in flight when the agent takes it), fed as Faust's consumer feeds it:
    records put in the stream's queue. ``stop`` does what a graceful stop (and the seek of a
    rebalance) does before it waits for the records in flight: stop the flow, clear the
    queues."""

    TOPIC = "t.newsroom.comments"

    def __init__(self) -> None:
        self.app = ExtendedApp("batches-test", broker="kafka://127.0.0.1:1", store="memory://")
        self.app.topics.acking_topics.add(self.TOPIC)
        self.app.consumer_generation_id = 1
        self.app.flow_control.resume()
        self.stream = self.app.channel().stream()
        self.queue = self.stream.channel.queue
        self.handled: list[list[tuple[int, int]]] = []  # (offset, generation) per batch
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for batch in event_batches(self.stream, max_events=10):
            self.handled.append([(e.message.offset, e.message.generation_id) for e in batch])

    def fetched(self, offset: int) -> None:
        message = ConsumerMessage(
            self.TOPIC, 0, offset, 0.0, 0, None, None, b"{}", None,
            generation_id=self.app.consumer_generation_id,
        )  # fmt: skip
        self.queue.put_nowait(FaustEvent(self.app, None, b"{}", {}, message))

    def in_flight(self) -> list[int]:
        """What Faust's ``Consumer.wait_empty`` waits for before a stop or a seek goes on."""
        return sorted(m.offset for m in self.app.consumer.unacked)

    def acknowledged(self) -> list[int]:
        """The offsets Faust's consumer would commit up to."""
        consumer: Any = self.app.consumer
        return sorted(consumer._acked[TP(self.TOPIC, 0)])

    def stop(self) -> None:
        self.app.flow_control.suspend()
        self.app.flow_control.clear()

    def resumed(self, generation: int) -> None:
        """The flow on again: after a rebalance (a new consumer generation) or the seek after a
        recovery (the same generation)."""
        self.app.consumer_generation_id = generation
        self.app.flow_control.resume()

    async def turns(self, n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def started(self) -> FaustAgent:
        await asyncio.sleep(0.05)  # the stream starts (a service) and waits on its queue
        return self


@pytest.mark.parametrize("turns", range(12))
async def test_a_stop_while_a_batch_is_gathered_does_not_wait_for_it(turns: int) -> None:
    """The agent took a record and, seeing another queued, asked Faust's stream for it; the
    stop cleared the queue in between (``turns`` of the event loop after the second record was
    queued, each interleaving tried). Faust's stream then waits for ever on its empty queue:
    the graceful stop must not wait for the first record (it hung, the fault suite's SIGTERM
    scenario), and it must not be handled after the stop nor acknowledged (it is read again)."""
    agent = await FaustAgent().started()
    agent.fetched(0)
    while not agent.queue.empty():  # the agent takes it, then looks for more
        await agent.turns(1)
    agent.fetched(1)
    await agent.turns(turns)
    agent.stop()
    await agent.turns(40)
    assert agent.in_flight() == []
    assert agent.handled == []
    assert agent.acknowledged() == []
    await agent.close()


@pytest.mark.parametrize("generation", [1, 2], ids=["seek after a recovery", "rebalance"])
async def test_records_gathered_before_the_flow_stopped_are_handled_once(generation: int) -> None:
    """The agent was left gathering on an empty queue by a stop of the flow, which then resumed
    (``ContinuousConsumer.perform_seek``, or a rebalance): the records it gathered before are
    read again from the committed offset, and only that copy is handled."""
    agent = await FaustAgent().started()
    agent.fetched(0)
    while not agent.queue.empty():
        await agent.turns(1)
    agent.fetched(1)
    await agent.turns(1)  # the interleaving that leaves the agent gathering on an empty queue
    agent.stop()
    await agent.turns(40)
    agent.resumed(generation)
    agent.fetched(0)  # read again from the committed offset
    agent.fetched(1)
    await agent.turns(40)
    assert agent.handled == [[(0, generation), (1, generation)]]
    await agent.close()


async def test_a_batch_handed_to_its_agent_is_in_flight_until_acknowledged() -> None:
    """What a graceful stop must wait for: the records of a batch being handled."""
    agent = await FaustAgent().started()
    seen: list[list[int]] = []

    async def handle() -> None:
        async for _batch in event_batches(agent.stream, max_events=10):
            seen.append(agent.in_flight())  # while the agent handles it

    await agent.close()
    agent.task = asyncio.ensure_future(handle())
    await agent.turns(5)
    for offset in range(3):
        agent.fetched(offset)
    await agent.turns(60)
    assert seen == [[0, 1, 2]]
    assert agent.in_flight() == []  # acknowledged after the batch
    assert agent.acknowledged() == [0, 1, 2]
    await agent.close()


class CountedRocksDB:
    """A partition's RocksDB (rocksdict, on disk) counting the reads that reach it."""

    def __init__(self, path: Path) -> None:
        self.db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
        self.single_reads = 0
        self.multi_gets: list[int] = []

    def get(self, key: Any) -> Any:
        if isinstance(key, list):
            self.multi_gets.append(len(key))
        else:
            self.single_reads += 1
        return self.db.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.db.put(key, value)


@dataclass
class RocksDBLikeTable:
    """A Faust table on RocksDB as far as ``ModelTable`` reads it: a partition's store is in
    ``data._dbs``, and the changelog record of a write is ``on_key_set``'s."""

    dbs: dict[int, CountedRocksDB]
    is_global: bool = False
    changelog: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    @property
    def data(self) -> RocksDBLikeTable:
        return self

    @property
    def _dbs(self) -> dict[int, CountedRocksDB]:
        return self.dbs

    def __contains__(self, key: object) -> bool:
        return any(db.db.get(key) is not None for db in self.dbs.values())

    def __delitem__(self, key: bytes) -> None:  # the flush of a deletion: a tombstone
        partition = current_event().message.partition  # type: ignore[union-attr]
        self.changelog.append((key, None))
        del self.dbs[partition].db[key]

    def on_key_set(self, key: bytes, value: bytes) -> None:
        self.changelog.append((key, value))


def test_a_fan_out_records_recipients_are_read_together_and_each_read_gives_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inbox reads each recipient of a fan-out record once: a multi-get of all of them
    # first instead of one RocksDB read each (read_ahead), and then each read answers what a
    # read of the store would have: stored values, absent keys, the batch's own writes.
    db = CountedRocksDB(tmp_path / "p3")
    for n in range(0, 10, 2):  # even recipients have a value
        db.put(f"r{n}".encode(), Value(n=n).model_dump_json().encode())
    write_back = WriteBack.per_record()
    table = ModelTable(RocksDBLikeTable({3: db}), Value, write_back=write_back)
    recipients = [f"r{n}" for n in range(10)]
    with handling(Event(Message(partition=3, offset=0))):
        table["r4"] = Value(n=40)  # written by the record before the fan-out's reads
        table.read_ahead(recipients)
        assert db.multi_gets == [9]  # r4 is the batch's own: not asked for
        values = [table.get(r) for r in recipients]
        del table["r0"]  # the record's own writes after the read ahead win too
        table["r1"] = Value(n=11)
        assert (table.get("r0"), table.get("r1")) == (None, Value(n=11))
    assert db.single_reads == 0
    expected = [Value(n=n) if n % 2 == 0 else None for n in range(10)]
    expected[4] = Value(n=40)
    assert values == expected
    write_back.flush()  # what it read is forgotten with the record: the next one reads again
    with handling(Event(Message(partition=3, offset=1))):
        assert table.get("r2") == Value(n=2)
    assert db.single_reads == 1
    # at most READS_KEPT kept, like single reads
    monkeypatch.setattr("newsroom_notify.stream.faust_ext.tables.READS_KEPT", 3)
    with handling(Event(Message(partition=3, offset=2))):
        table.read_ahead(recipients)
        assert db.multi_gets[-1] == 2  # r2 was already kept
        assert table.get("r9") is None
    assert db.single_reads == 2
    # no record (a web page's read): nothing read ahead
    table.read_ahead(recipients)
    assert len(db.multi_gets) == 2


class RecordingSender:
    """The stages' ``Sender`` as the pipeline uses it: what was sent, to which topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes | None, *_: Any) -> None:
        self.sent.append((topic, key))


@pytest.mark.parametrize(
    ("others", "ahead"),
    [(0, False), (READ_AHEAD_FROM - 5, False), (READ_AHEAD_FROM - 4, True), (20, True)],
    ids=["4", "just-below", "threshold", "24"],
)
async def test_the_inbox_reads_a_large_fan_out_records_recipients_ahead_and_a_small_ones_one_by_one(
    tmp_path: Path, others: int, ahead: bool
) -> None:
    # What the worker's inbox agent does with a fan-out record (Pipeline.on_inbox_record): the
    # profiles and sent records it decides on are the ones read ahead, so RocksDB is asked
    # once per table, and the decisions are those of the recipients' stored state. A record
    # of fewer than READ_AHEAD_FROM recipients (a comment's few) is read one by one: cheaper.
    subject = SUBJECTS[1]  # an article, to the followers of its section
    section = Subscription(
        scope="section", target="world", delivery="instant", active=True, since=AT
    )
    profiles_db, sent_db = CountedRocksDB(tmp_path / "profiles"), CountedRocksDB(tmp_path / "sent")
    for rid in ("m-1", "m-2", "m-3"):
        profile = Profile(id=rid, name=rid, subscriptions={"section|world": section})
        profiles_db.put(rid.encode(), profile.model_dump_json().encode())
    told = Sent(notification_id="n-before", reason=Reason.NEW_ARTICLE, mode="instant", origin="o")
    sent_db.put(sent_key("m-2", subject.key).encode(), told.model_dump_json().encode())
    write_back = WriteBack.per_record()
    profiles = ModelTable(RocksDBLikeTable({0: profiles_db}), Profile, write_back=write_back)
    sent = ModelTable(RocksDBLikeTable({0: sent_db}), Sent, write_back=write_back)
    inbox = InboxStage(
        profiles,
        sent,
        JsonTable(),
        JsonTable(),
        {},
        tokens=Tokens(["k"], 60, 60),
        clock=lambda: NOW,
    )
    sender = RecordingSender()
    pipeline = Pipeline(
        stages=cast(Any, SimpleNamespace(inbox=inbox)),
        topics={Stage.INBOX: "inbox", "notifications": "notifications"},
        tokens=Tokens(["k"], 60, 60),
        sender=cast(Any, sender),
        inbox_partitions=1,
        read_ahead=read_ahead(profiles, sent),
    )
    record = Candidacies(
        subject=subject,
        at=AT,
        origin="evt-1|section",
        # m-4 and the others: no profile (nothing reaches them)
        bases={
            rid: [BASES[5]]
            for rid in ("m-1", "m-2", "m-3", "m-4", *(f"m-x{n}" for n in range(others)))
        },
    )
    with handling(Event(Message(partition=0, offset=0))):
        await pipeline.on_inbox_record("m-1", record)
    recipients = len(record.bases)
    assert READ_AHEAD_FROM > 4  # else the small cases above are not small
    if ahead:
        assert (profiles_db.multi_gets, sent_db.multi_gets) == ([recipients], [recipients])
        assert (profiles_db.single_reads, sent_db.single_reads) == (0, 0)
    else:  # each profile read once, and the sent record of each who may hear of it
        assert (profiles_db.multi_gets, sent_db.multi_gets) == ([], [])
        assert (profiles_db.single_reads, sent_db.single_reads) == (recipients, 3)
    # m-2 was told before (another origin: not a replay, not told again), m-4 has no profile
    assert sender.sent == [("notifications", b"m-1"), ("notifications", b"m-3")]
    write_back.flush()
    assert sorted(key for key, _ in sent.table.changelog) == sorted(
        sent_key(rid, subject.key).encode() for rid in ("m-1", "m-3")
    )
