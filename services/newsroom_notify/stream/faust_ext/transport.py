"""Faust's aiokafka transport: an idempotent producer and a consumer that skips nothing.

Faust enables idempotence only inside transactions; for at-least-once processing we want it on
every producer so a retried batch is never written twice by the broker. The consumer guards
the order of records across rebalances (see ``stream.continuity``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import partial
from typing import Any

import structlog
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from faust.exceptions import ProducerSendError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock

from newsroom_notify.metrics import OVERSIZED, REWINDS, UNDELIVERED
from newsroom_notify.stream.faust_ext.continuity import Continuity, Verdict
from newsroom_notify.stream.faust_ext.eager import eagerly, rest
from newsroom_notify.stream.faust_ext.partitioner import key_partition
from newsroom_notify.stream.faust_ext.tables import StateTooLarge

log = structlog.get_logger(__name__)

# More than a record's framing in a batch (DefaultRecordBatchBuilder.estimate_size_in_bytes).
RECORD_OVERHEAD = 512
# How long the seek after a recovery waits for in-flight records to finish (ContinuousConsumer).
DRAIN_BEFORE_SEEK_S = 30.0


class IdempotentProducer(faust_aiokafka.Producer):
    """acks=all and enable_idempotence on every producer Faust creates; a flush (before every
    commit) first sends the app's queued changelog records (``ChangelogWriter``)."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}

    async def flush(self) -> None:
        writer: ChangelogWriter | None = getattr(self.app, "changelog_writer", None)
        if writer is not None:
            await writer.drain()
        await super().flush()
        if writer is not None:
            writer.store_offsets()

    async def on_stop(self) -> None:
        await self.flush()
        writer: ChangelogWriter | None = getattr(self.app, "changelog_writer", None)
        if writer is not None:
            await writer.stop()
        await super().on_stop()


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread with the app's fetch wait (``fetch_max_wait_ms`` of
    ``ExtendedApp``) instead of Faust's fixed 1500 ms."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            # Read by AIOKafkaConsumer.start() when it builds its Fetcher (aiokafka 0.14).
            consumer._fetch_max_wait_ms = int(wait)
        return consumer


class ContinuousConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer that never lets a record be skipped or acknowledged stale.

    * every fetched record of an acknowledged topic is judged by ``Continuity``: a record from
      beyond the current position (a stale prefetch) is dropped and the partition rewound;
    * an acknowledgement of a record from an older consumer generation is ignored: the record
      was sought back and will be read, processed and acknowledged again;
    * Faust's gap filling (which marks missing offsets as processed) only ever sees the real
      holes ``Continuity`` accepted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.continuity = Continuity()
        self._seeking = asyncio.Lock()

    def _new_consumer_thread(self) -> TunedConsumerThread:
        return TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek(self, partition: TP, offset: int) -> None:
        self.continuity.sought(partition, offset)
        await super().seek(partition, offset)

    async def perform_seek(self) -> None:
        """Seek the stream partitions to their committed offsets, having first committed what
        the agents processed.

        Faust's recovery, when no changelog needs reading (as after a graceful stop), resumes
        the flow before it resumes the stream partitions and awaits this seek: with the fetcher
        already running (any rebalance but a process's first), records fetched meanwhile are
        processed, and the seek then rewinds past them to the older
        committed offset, so they are processed (and their outputs sent) a second time. Here
        the flow is stopped, in-flight records finish and are committed, and only then does
        the consumer seek; Faust resumes the flow afterwards. One seek at a time: the fetcher
        also seeks (a batch that arrived while the flow was stopped) and must not rewind to
        offsets read before this commit.
        """
        async with self._seeking:
            if self.flow_active and self.app.flow_control.is_active():
                self.stop_flow()
                self.app.flow_control.suspend()
                self.app.flow_control.clear()  # fetched, never started: read after the seek
                try:  # in-flight records acknowledged, then committed
                    await asyncio.wait_for(self.wait_empty(), DRAIN_BEFORE_SEEK_S)
                except TimeoutError:  # a handler stuck (broker down): at least once, as before
                    log.warning("in-flight records not finished before the seek; seeking")
            await super().perform_seek()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        for tp, offset in committed.items():
            if not offset:
                # Never committed: aiokafka leaves the position where it was, so records read
                # in the previous generation, whose acknowledgements ``ack`` drops, would never
                # be read again nor committed (seen after a heartbeat timeout on a busy machine:
                # the articles of the first seconds stayed uncommitted for good). Read the
                # partition again from its start, as the dropped acknowledgements assume.
                await self.seek(tp, 0)
            else:
                self.continuity.sought(tp, offset)
        return committed

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.continuity.revoked(revoked)
        await super().on_partitions_revoked(revoked)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 - Faust's signature
        acks_enabled_for = self.app.topics.acks_enabled_for
        self.continuity.new_batch()
        async for tp, message in super().getmany(timeout):
            if not acks_enabled_for(message.topic):
                yield tp, message
                continue
            verdict = self.continuity.judge(tp, message.offset)
            if verdict is Verdict.DELIVER:
                yield tp, message
            elif verdict is Verdict.REWIND:
                expected = self.continuity.expected(tp)
                assert expected is not None
                log.warning(
                    "fetched past the position; rewinding",
                    topic=tp.topic,
                    partition=tp.partition,
                    expected=expected,
                    fetched=message.offset,
                )
                REWINDS.labels(topic=tp.topic).inc()
                await super().seek(tp, expected)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        """Faust's loop handing fetched records to the streams (``Consumer._drain_messages``,
        faust-streaming 0.15.3), each delivered ``eagerly``: Faust wraps every delivery in
        ``wait_first`` (four tasks and an ``asyncio.wait`` per record: 8 % of a worker's CPU
        while it recovered a million profiles, 5 % while it handled comments). A delivery that
        waits (a full stream buffer, the flow stopped for a rebalance) is finished as Faust
        does, in ``wait_first`` with ``suspend_flow``."""
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany may not give the loop a turn
                if not self.should_stop:
                    async for tp, message in batch:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        r_offset = read_offset.get(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # already read (Faust drops it too)
                        gap = r_offset and offset - r_offset > 1
                        if gap and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)  # type: ignore[operator]
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        suspended = eagerly(callback(message))
                        if suspended is not None:
                            await self.wait_first(rest(suspended), self.suspend_flow.wait())
                        read_offset[tp] = offset
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("broker stopped the consumer; shutting down")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception:
            log.exception("handing fetched records to the streams failed")
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        undelivered = getattr(self.app, "undelivered", None)
        if undelivered is not None:  # see Sender: never commit past a record that was lost
            log.error("not committing: a record was not delivered", error=repr(undelivered))
            return False
        committed: bool = await super()._commit(offsets)
        return committed

    def ack(self, message: Message) -> bool:
        if message.generation_id != self.app.consumer_generation_id:
            with ack_lock:
                message.acked = True  # forget it: it is read again in this generation
                self._unacked_messages.discard(message)
            return False
        return super().ack(message)


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport: ``IdempotentProducer`` out, ``ContinuousConsumer`` in."""

    Producer = IdempotentProducer
    Consumer = ContinuousConsumer


class Sender:
    """Hands records straight to the app's producer (no awaiting of the broker's answer).

    Faust's ``Topic.send`` wraps each record in a ``FutureMessage`` with callbacks; the stages
    send raw bytes they encoded themselves, so they skip that layer. Delivery is still checked
    before offsets move: Faust flushes the producer before every commit. A producer error is
    raised as the ``KafkaError`` it is (Faust hides it in ``ProducerSendError``), so the
    ingestor retries the record instead of dead-lettering it. A record the producer gave up on
    after its retries (``producer_request_timeout``) is logged and counted, the app stops
    committing (``ContinuousConsumer._commit``) and crashes: a restart processes again
    everything since the last commit, so nothing is lost.

    Most records skip aiokafka's ``send`` too (``_append``): it awaits the topic's metadata,
    makes a future per record and resolves each when its batch is acknowledged, a quarter of
    the cost of a notification in a million-follower fan-out. A record is appended to the
    partition's open batch in the producer's accumulator (what ``send`` does in the end), and
    the batch's own delivery is checked, once per batch. Anything unusual (no metadata yet,
    the batch full, the producer closing or failed, a transactional producer, a producer that
    is not aiokafka's) goes through ``send``.
    """

    def __init__(self, app: Any, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # The batch whose delivery is checked (per topic partition), each once, and how many
        # records this sender appended to it (what a failure counts).
        self._watched: dict[TopicPartition, tuple[asyncio.Future[Any], list[int]]] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,  # None: a tombstone
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        """Hand the record to the producer; returns its delivery (already checked).

        A record larger than ``max_bytes``, or one the producer refuses as too large, raises
        ``StateTooLarge``: retrying cannot help, so the caller dead-letters its input."""
        size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers or ())
        if self.max_bytes is not None and size > self.max_bytes:
            raise StateTooLarge(f"record for {topic}: {size} bytes > {self.max_bytes}")
        batch = self._append(topic, key, value, headers, partition, size)
        if batch is not None:
            return batch
        try:
            delivery: asyncio.Future[Any] = await self.app.producer.send(
                topic, key, value, partition, None, headers
            )
        except ProducerSendError as exc:
            if isinstance(exc.__cause__, MessageSizeTooLargeError):
                raise StateTooLarge(f"record for {topic}: {size} bytes, refused") from None
            if isinstance(exc.__cause__, KafkaError):
                raise exc.__cause__ from None
            raise
        except MessageSizeTooLargeError:
            raise StateTooLarge(f"record for {topic}: {size} bytes, refused") from None
        delivery.add_done_callback(partial(check_delivery, self.app))
        return delivery

    def _append(  # noqa: PLR0917 - send's own arguments, in its order
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
        size: int,
    ) -> asyncio.Future[Any] | None:
        """Append the record to its partition's open batch; returns the batch's delivery, or
        None if ``send`` must take it (see the class's docstring)."""
        ensure = getattr(self.app.producer, "_ensure_producer", None)
        if ensure is None or key is None:
            return None
        producer = ensure()
        accumulator = producer._message_accumulator
        txn = producer._txn_manager
        if (
            (txn is not None and txn.transactional_id is not None)
            or accumulator._closed
            or accumulator._exception is not None
            or size + RECORD_OVERHEAD > producer._max_request_size  # send refuses it
        ):
            return None
        known = producer._metadata._partitions.get(topic)
        if not known:
            return None  # no metadata yet: send waits for it
        if partition is None:  # the default partitioner's choice (murmur2, as Java's)
            if not isinstance(producer._partitioner, DefaultPartitioner):
                return None  # another partitioner: its choice, through send
            partition = key_partition(key, len(known))
        elif partition not in known:
            return None
        tp = TopicPartition(topic, partition)
        pending = accumulator._batches.get(tp)
        if pending:
            batch = pending[-1]
        else:
            batch = accumulator._append_batch(accumulator.create_builder(), tp)
        appended = batch._builder.append(
            timestamp=None, key=key, value=value, headers=list(headers or ())
        )
        if appended is None:
            return None  # full: send waits for the sender to take it, then opens another
        delivery: asyncio.Future[Any] = batch.future
        watched = self._watched.get(tp)
        if watched is not None and watched[0] is delivery:
            watched[1][0] += 1
        else:
            count = [1]
            self._watched[tp] = (delivery, count)
            delivery.add_done_callback(partial(check_delivery, self.app, records=count))
        return delivery


def check_delivery(
    app: Any, delivery: asyncio.Future[Any], records: list[int] | None = None
) -> None:
    """If the producer gave up on the record (or on the ``records[0]`` records of a batch):
    count them, stop committing (``ContinuousConsumer._commit``) and crash the app."""
    if delivery.cancelled():
        return
    exc = delivery.exception()
    if exc is None:
        return
    count = records[0] if records else 1  # a record sent through ``send`` has its own delivery
    if isinstance(exc, MessageSizeTooLargeError | RecordListTooLargeError):
        # The broker's limit is below the service's (NEWSROOM_LIMITS__STATE_RECORD_BYTES):
        # every retry and restart would fail alike, so alert and go on (README).
        OVERSIZED.labels(where="delivery").inc(count)
        log.error(
            "the broker refused a record as too large; it is lost",
            error=type(exc).__name__,
            records=count,
        )
        return
    UNDELIVERED.inc(count)
    log.error("the producer gave up on records; stopping", error=repr(exc), records=count)
    if getattr(app, "undelivered", None) is None:
        app.undelivered = exc
        app.crashing = asyncio.ensure_future(app.crash(exc))


class ChangelogWriter:
    """Table changelog records straight to the producer, in the order the tables were written.

    Faust sends each table write through ``Topic.send_soon`` (a ``FutureMessage``, its producer
    buffer, two callbacks) and stores the changelog offset in RocksDB after every record. This
    writer queues ``(table, partition, key, value)``, one task hands them to the producer in
    order, and the latest offset per changelog partition is stored once per flush. A flush
    (Faust flushes the producer before every commit, see ``IdempotentProducer``) sends the queue
    first, so no offset is committed before the state changes it caused are in the changelog.
    A stored offset that lags only makes a recovery re-read records it already has.
    """

    def __init__(self, app: Any, max_bytes: int | None = None) -> None:
        self.sender = Sender(app, max_bytes)
        self._queue: deque[tuple[Any, int, bytes, bytes | None]] = deque()
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._offsets: dict[tuple[str, TP], tuple[Any, int]] = {}

    def put(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        """Queue a write (``value`` None: a deletion) for ``table``'s changelog."""
        self._queue.append((table, partition, key, value))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self.drain()

    async def drain(self) -> None:
        """Hand every queued record to the producer (retrying a producer error)."""
        async with self._lock:
            last: asyncio.Future[Any] | None = None
            while self._queue:
                table, partition, key, value = self._queue[0]
                topic = table.changelog_topic.get_topic_name()
                try:
                    delivery = await self.sender.send(topic, key, value, partition=partition)
                except StateTooLarge as exc:
                    # Never retried (it cannot succeed) and never blocking the commits: the
                    # store keeps the value, the changelog the previous one (README).
                    self._queue.popleft()
                    OVERSIZED.labels(where="changelog").inc()
                    log.error(  # noqa: TRY400 - the message says it all, no traceback
                        "changelog record too large; left out",
                        table=getattr(table, "name", "?"),
                        partition=partition,
                        error=str(exc),
                    )
                    continue
                except (KafkaError, ProducerSendError) as exc:
                    log.warning("changelog send failed; retrying", error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                self._queue.popleft()
                if delivery is not last:  # records of one batch share its delivery
                    last = delivery
                    delivery.add_done_callback(partial(self._delivered, table))

    def _delivered(self, table: Any, delivery: asyncio.Future[Any]) -> None:
        # A failed delivery is handled by the Sender's own check (count, stop commits, crash).
        if not delivery.cancelled() and delivery.exception() is None:
            result = delivery.result()  # a record's, or its batch's (its first offset)
            if result is None:
                return
            tp = result.topic_partition
            self._offsets[(table.name, tp)] = (table, result.offset)

    def store_offsets(self) -> None:
        """Remember in each table's store how far its changelog partitions are written."""
        offsets, self._offsets = self._offsets, {}
        for (_, tp), (table, offset) in offsets.items():
            try:
                table.data.set_persisted_offset(tp, offset)
            except Exception:  # a partition closed by a rebalance meanwhile: recovery re-reads
                log.debug("changelog offset not stored", topic=tp.topic, partition=tp.partition)

    async def stop(self) -> None:
        """Send what is queued and stop the task."""
        await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
