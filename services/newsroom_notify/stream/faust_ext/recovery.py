"""Faust's table recovery and standby replicas, reading the changelog records in chunks.

Faust's ``Recovery._slurp_changelogs`` takes the changelog records one at a time, each through
``asyncio.wait_for`` (a task and a timer), formats two debug messages, and after every record
asks whether recovery is over by building a ``Counter`` of every active changelog partition
(the service's 20 tables times their partitions: 160 entries with 8). Profiled while a worker
recovered a million profiles, that check alone was a quarter of its CPU; standby replicas pay
the same per record for as long as the worker runs. ``ChunkedRecovery`` does the same work per
record (its offset, its table's buffer, the table's changelog callback, Faust's timing
estimate) but takes what the queue already holds in one go and asks the questions once per
chunk: ``need_recovery`` (recovery over: flush the buffers, signal the end) and whether the
standby replicas caught up. A record of a partition that is neither active nor standby any
longer (a rebalance in between) is skipped; Faust applied it to the previous record's table. A
record whose table fails is logged and the next ones go on, as in Faust (a chunk is not
dropped).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import Any

import structlog
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.utils.tracing import finish_span
from mode import Service

log = structlog.get_logger(__name__)

CHUNK = 1_000  # records taken from the queue before the end-of-recovery questions are asked
IDLE_WAIT_S = 5.0  # Faust's: how long an empty queue is awaited before the questions anyway


class ChunkedRecovery(Recovery):
    """Faust's recovery service with ``_slurp_changelogs`` taking chunks (module docstring)."""

    def need_recovery(self) -> bool:
        """Whether an active changelog partition is still behind its high-water mark (Faust's
        answer, without building a ``Counter`` of every partition)."""
        offsets = self.active_offsets
        for tp, highwater in self.active_highwaters.items():
            offset = offsets[tp]
            if highwater is not None and offset is not None and highwater - offset > 0:
                return True
        return False

    @Service.task
    async def _slurp_changelogs(self) -> None:
        queue = self.tables.changelog_queue
        timeouts = 0
        while not self.should_stop:
            try:
                self.signal_recovery_end.clear()
                events: list[Any] = []
                if queue.empty():
                    try:
                        events.append(await asyncio.wait_for(queue.get(), IDLE_WAIT_S))
                    except TimeoutError:
                        timeouts += 1
                        if self.should_stop:
                            return
                        await self._maybe_signal_recovery_end(timeouts)
                        continue
                while len(events) < CHUNK and not queue.empty():
                    events.append(queue.get_nowait())
                timeouts = 0
                for event in events:
                    try:
                        await self._take(event)
                    except Exception as exc:  # as Faust: that record only; the rest go on
                        log.warning("error in table recovery", error=repr(exc))
                await self._maybe_signal_recovery_end(0)
                self._maybe_standbys_ready()
                await asyncio.sleep(0)  # the agents' turn between two chunks
            except Exception as exc:  # as Faust: the loop goes on
                log.warning("error in table recovery", error=repr(exc))

    async def _take(self, event: Any) -> None:
        """One changelog record: its offset, its table's buffer (applied when full), the
        table's callback, and (active partitions) Faust's processing-time samples."""
        now = monotonic()
        message = event.message
        tp, offset = message.tp, message.offset
        is_active = tp in self.active_tps
        if is_active:
            offsets = self.active_offsets
            self._active_events_received_at[tp] = now
        elif tp in self.standby_tps:
            offsets = self.standby_offsets
            self._standby_events_received_at.setdefault(tp, now)
        else:
            return  # a partition no longer ours (a rebalance in between)
        table = self.tp_to_table[tp]
        bufsize = self.buffer_sizes.get(tp)
        if bufsize is None:
            size = table.recovery_buffer_size if is_active else table.standby_buffer_size
            bufsize = self.buffer_sizes[tp] = size
        seen = offsets.get(tp)
        if seen is not None and offset <= seen:
            return
        offsets[tp] = offset
        buffer = self.buffers[table]
        buffer.append(event)
        await table.on_changelog_event(event)
        if len(buffer) >= bufsize:
            table.apply_changelog_batch(buffer)
            buffer.clear()
            self._last_flush_at = now
        if is_active:
            after = monotonic()
            last = self._last_active_event_processed_at
            if last is not None:
                self._processing_times.append(after - last)
                if len(self._processing_times) > self.num_samples_required_for_estimate:
                    self._processing_times.popleft()
            self._last_active_event_processed_at = after

    async def _maybe_signal_recovery_end(self, timeouts: int) -> None:
        # Faust waits for two idle turns before looking for aborted transactions (none here:
        # the service does not use transactions, but the check is kept as Faust has it).
        if timeouts > 1 and self.app.in_transaction:
            await self._detect_aborted_tx()
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()  # what is still buffered
            self._set_recovery_ended()
            if self._actives_span is not None:
                self._actives_span.set_tag("Actives-Ready", True)
            self.signal_recovery_end.set()

    async def _detect_aborted_tx(self) -> None:
        offsets = self.active_offsets
        for tp, highwater in self.active_highwaters.items():
            if highwater is not None and offsets[tp] is not None and offsets[tp] < highwater:
                position = await self.app.consumer.position(tp)
                if position is not None and position >= highwater:
                    offsets[tp] = highwater

    async def _seek_offsets(self, consumer: Any, tps: set[Any], offsets: Any, title: str) -> None:
        """Faust's, with a partition whose offset is not known read from its start, as Faust
        reads one whose offset is -1 (nothing read yet).

        A rebalance during a recovery adds its partitions to the recovery's sets with an
        offset of None (``Recovery._add``) while Faust's loop goes on with the recovery it
        was in: once that one's actives were caught up, it sought its standby partitions,
        the new ones among them at None, and aiokafka's ``seek`` raised "Offset must be a
        positive integer": the worker crashed (two workers starting together, a million
        followers' changelogs). The next turn of the loop, which the rebalance asked for,
        builds their offsets as usual."""
        for tp in tps:
            if offsets.get(tp) is None:
                offsets[tp] = -1
        await super()._seek_offsets(consumer, tps, offsets, title)

    def _maybe_standbys_ready(self) -> None:
        if self._standbys_span is None and self.tables.standbys_ready:
            return
        if not self.standby_remaining_total():
            if self._standbys_span:
                finish_span(self._standbys_span)
                self._standbys_span = None
            self.tables.on_standbys_ready()


class ChunkedTableManager(TableManager):
    """Faust's table manager with ``ChunkedRecovery`` as its recovery service."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = ChunkedRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
