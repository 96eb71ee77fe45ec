"""The Faust shell's stage wiring (``stream.stages.install``) run in memory, without a broker.

``MemoryApp`` stands in for the Faust app: it records the topics, tables, agents and timers
``install`` declares, and its producer appends each record to an in-memory log, partitioned as
Kafka's default partitioner would. ``run_until_idle`` hands every record, in the order it was
written, to the agent consuming its topic, until no record is left: the same agents, decoders,
routes and encodings as a worker, so a record sent to the wrong topic, a stage listening to the
wrong one or a message encoded for the wrong decoder shows up as a different output or a dead
letter. Tables are split by partition, so a record landing in another partition than its
key's state is caught too. (FastStream's ``TestKafkaBroker`` idea. Faust's own tables and
transport, and the extensions in ``stream.faust_ext`` other than ``Sender``, are not exercised
here: the integration tests cover them on a real broker.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from faust.streams import current_event

from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.settings import Settings
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.stages import Pipeline, install, key_partition, raw_topic


@dataclass
class Record:
    """One record of the log (fits ``contract.deadletter.RawRecord``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class Log:
    """Every topic's records; ``pending``: those not yet handed to an agent, in write order."""

    partitions: int
    records: list[Record] = field(default_factory=list)
    pending: deque[Record] = field(default_factory=deque)
    _next_offset: dict[tuple[str, int], int] = field(default_factory=dict)

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Iterable[tuple[str, bytes]] | None = None,
    ) -> Record:
        if partition is None:
            partition = key_partition(key.decode("utf-8"), self.partitions) if key else 0
        offset = self._next_offset.get((topic, partition), 0)
        self._next_offset[(topic, partition)] = offset + 1
        record = Record(topic, partition, offset, key, value, list(headers or ()))
        self.records.append(record)
        self.pending.append(record)
        return record

    def on(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]


def _delivered(record: Record) -> asyncio.Future[Any]:
    delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    delivery.set_result(
        SimpleNamespace(
            topic_partition=SimpleNamespace(topic=record.topic, partition=record.partition),
            offset=record.offset,
        )
    )
    return delivery


class MemoryTopic:
    """``app.topic(...)``: its names, and ``send`` (the dead letterer's and the API's way)."""

    def __init__(self, log: Log, names: tuple[str, ...]) -> None:
        self.log = log
        self.names = names

    def get_topic_name(self) -> str:
        [name] = self.names
        return name

    async def send(
        self, *, key: bytes | None, value: bytes | None, headers: Any = None
    ) -> asyncio.Future[Any]:
        return _delivered(self.log.append(self.get_topic_name(), key, value, None, headers))


class MemoryTable(MutableMapping[bytes, bytes]):
    """``app.Table(...)``: bytes to bytes, one store per partition, as a worker's RocksDB
    tables: while an agent handles a record, the table is that record's partition (a write
    outside a record is refused, as ``DirectChangelogTable`` does); a timer (no record) reads
    and iterates all of them. The table is its own store (``table.data``)."""

    def __init__(self, app: MemoryApp, name: str) -> None:
        self.app = app
        self.name = name
        self.partitions: dict[int, dict[bytes, bytes]] = {}

    @property
    def data(self) -> MemoryTable:
        return self

    def _store(self) -> dict[bytes, bytes]:
        partition = _current_partition()
        if partition is None:
            raise RuntimeError(f"table {self.name} written outside of a stream")
        return self.partitions.setdefault(partition, {})

    def __getitem__(self, key: bytes) -> bytes:
        partition = _current_partition()
        if partition is not None:
            return self.partitions.get(partition, {})[key]
        for store in self.partitions.values():
            if key in store:
                return store[key]
        raise KeyError(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._store()[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._store()[key]

    def __iter__(self) -> Iterator[bytes]:
        partition = _current_partition()
        if partition is not None:
            return iter(list(self.partitions.get(partition, {})))
        return iter([k for store in self.partitions.values() for k in store])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _current_partition() -> int | None:
    """The partition of the record being handled, as Faust's store finds it: Faust's current
    event (``faust_ext.batches.handling`` sets it for each record of a batch)."""
    event = current_event()
    return None if event is None else int(event.message.partition)


class MemoryProducer:
    """``app.producer``, as ``stream.faust_ext.transport.Sender`` calls it."""

    def __init__(self, log: Log) -> None:
        self.log = log

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
    ) -> asyncio.Future[Any]:
        return _delivered(self.log.append(topic, key, value, partition, headers))


Process = Callable[[Any], Awaitable[None]]


class MemoryApp:
    """What ``install`` uses of a Faust app: ``topic``, ``Table``, ``agent``, ``timer`` and
    (through ``Sender``) ``producer``."""

    def __init__(self, partitions: int) -> None:
        self.log = Log(partitions)
        self.producer = MemoryProducer(self.log)
        self.tables: dict[str, MemoryTable] = {}
        self.agents: dict[str, tuple[tuple[str, ...], Process]] = {}
        self.timers: list[Callable[[], Awaitable[None]]] = []

    def topic(self, *names: str, **_: Any) -> MemoryTopic:
        return MemoryTopic(self.log, names)

    def Table(self, name: str, **_: Any) -> MemoryTable:  # Faust's name
        table = self.tables[name] = MemoryTable(self, name)
        return table

    def agent(self, channel: MemoryTopic, name: str) -> Callable[[Process], Process]:
        def register(process: Process) -> Process:
            self.agents[name] = (channel.names, process)
            return process

        return register

    def timer(self, _interval: float) -> Callable[[Any], Any]:
        def register(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            self.timers.append(fn)
            return fn

        return register


@dataclass
class _Event:
    """Faust's event, as far as the shell reads it (weakly referenced as Faust's current)."""

    message: Record


class InFlight:
    """Faust's consumer's records in flight (``Consumer.unacked``), by identity."""

    def __init__(self) -> None:
        self.messages: dict[int, Any] = {}

    def add(self, message: Any) -> None:
        self.messages[id(message)] = message

    def discard(self, message: Any) -> None:
        self.messages.pop(id(message), None)


def flowing_app() -> SimpleNamespace:
    """Faust's app as ``event_batches`` reads it: the consumer's records in flight, the flow on
    (never stopped)."""
    return SimpleNamespace(
        consumer=SimpleNamespace(unacked=InFlight()),
        flow_control=SimpleNamespace(is_active=lambda: True, stops=0),
    )


class _Records:
    """A stream of records already fetched, as an agent reads it (``event_batches``): its
    ``events()``, a ``channel.queue`` that is empty once the last record was handed out, and
    ``ack`` (counted)."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.handed = 0
        self.acked = 0
        self.enable_acks = True
        self.channel = SimpleNamespace(queue=SimpleNamespace(empty=self._empty))
        self.app = flowing_app()

    def _empty(self) -> bool:
        return self.handed >= len(self.records)

    async def events(self) -> AsyncIterator[Any]:
        for record in self.records:
            self.handed += 1
            yield _Event(record)

    async def ack(self, event: Any) -> bool:
        self.acked += 1
        return True


@dataclass
class MemoryShell:
    """The stages installed on a ``MemoryApp``."""

    app: MemoryApp
    pipeline: Pipeline
    settings: Settings
    batches: list[int] = field(default_factory=list)  # sizes of the batches handed to agents

    @classmethod
    def start(
        cls, settings: Settings, tokens: Tokens, clock: Callable[[], datetime]
    ) -> MemoryShell:
        app = MemoryApp(settings.topics.partitions)
        topics = settings.topics
        dead_letters = DeadLetterer(
            topic=raw_topic(app, topics.name(topics.deadletter)),  # type: ignore[arg-type]
            group=settings.app_id,
        )
        pipeline = install(app, settings, dead_letters, clock, tokens)  # type: ignore[arg-type]
        return cls(app, pipeline, settings)

    def topic(self, role: str) -> str:
        topics = self.settings.topics
        return topics.name(getattr(topics, role))

    def publish(self, event: ev.CloudEvent) -> None:
        """Write an input event to its topic, keyed as the contract says."""
        key, value = codec.encode(event, event.partition_key() or "x")
        self.app.log.append(self.topic(event.topic_role), key, value)

    async def run_until_idle(self) -> None:
        """Hand every pending record to the agent of its topic, until none is left: the
        records next to each other in the log that go to the same agent as one batch (of
        several partitions, as a worker's agent gets them)."""
        consumers = {
            topic: process for topics, process in self.app.agents.values() for topic in topics
        }
        pending = self.app.log.pending
        while pending:
            record = pending.popleft()
            process = consumers.get(record.topic)
            if process is None:  # outputs and dead letters: nobody here consumes them
                continue
            batch = [record]
            while pending and consumers.get(pending[0].topic) is process:
                batch.append(pending.popleft())
            stream = _Records(batch)
            await process(stream)
            assert stream.acked == len(batch), "a batch was not acknowledged whole"
            self.batches.append(len(batch))

    async def timers(self) -> None:
        """Fire every timer once (quiet-hours release, digest ticks), then settle."""
        for timer in self.app.timers:
            await timer()
            await self.run_until_idle()

    def outputs(self) -> list[tuple[bytes | None, ev.CloudEvent | codec.Rejected]]:
        """(key, event) of every record on the notifications and digests topics, in order;
        a record a consumer of its topic would refuse comes as the ``Rejected`` it raises."""
        out: list[tuple[bytes | None, ev.CloudEvent | codec.Rejected]] = []
        roles = {self.topic("notifications"): "notifications", self.topic("digests"): "digests"}
        for record in self.app.log.records:
            role = roles.get(record.topic)
            if role is not None:
                try:
                    event = codec.decode(role, record.key, record.value, 1 << 30)
                except codec.Rejected as rejected:
                    out.append((record.key, rejected))
                else:
                    out.append((record.key, event))
        return out

    def state(self) -> dict[str, dict[str, str]]:
        """Every table: key -> value (the JSON of its model), over all partitions."""
        return {
            name: {
                key.decode("utf-8"): value.decode("utf-8")
                for store in table.partitions.values()
                for key, value in store.items()
            }
            for name, table in self.app.tables.items()
        }

    def dead_letters(self) -> list[Record]:
        return self.app.log.on(self.topic("deadletter"))
