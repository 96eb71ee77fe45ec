"""An agent's records in batches: whatever the consumer has already handed the agent's stream.

``event_batches`` reads the stream's events with Faust's acknowledgements off and yields them
in lists: the first record waits as usual; then, while the stream's channel already holds more
(fetched and queued by the consumer), they join the batch, up to ``max_events``. Nothing waits
for a batch to fill, so a lone record is handled as soon as it arrives and a busy agent gets
big batches by itself (what arrives while a batch is handled is the next batch).

Every record of a batch is acknowledged only after the whole batch was handled (its table
writes written, its output records handed to the producer: see ``WriteBack`` and
``stages.Pipeline``), so an offset is never committed before what its record caused.

A batch being gathered is not counted as in flight: Faust's stream counts a record as handed
to its agent (``Consumer._unacked_messages``, what a graceful stop and a rebalance wait for)
as soon as the agent takes it, but the agent only handles it once the batch is complete. A
stop that clears the streams' queues while a batch is gathered (the agent having asked Faust's
stream for one more record it saw queued) leaves the agent waiting for ever on an empty queue:
counted, that batch made the stop wait for ever (the fault suite's and ``make soak``'s SIGTERM
scenarios hung sometimes). So a record is counted again only when its batch is handed to the
agent (each topic is read by one agent, so a record is in one stream only), and a batch holds
only records taken since the flow last stopped (``StoppingFlow`` counts the stops: a graceful
stop, a rebalance, the seek after a recovery): as Faust's stream skips a record it takes while
the flow is stopped, the records gathered before a stop are dropped, unacknowledged; they are
read again from the committed offset (handled then, they would be handled twice).

``handling(event)`` makes ``event`` Faust's current event while one record of the batch is
handled: Faust's RocksDB store and the tables attribute a read or a write to the partition of
the current event, and with a batch the stream's own current event is the batch's last, not
necessarily this record's (``stream.take`` was rejected for that before).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from faust.streams import _current_event
from mode.utils.queues import FlowControlEvent

SPINS = 16  # turns of the event loop given to the consumer to queue a fetched record


class StoppingFlow(FlowControlEvent):
    """Faust's flow control (``app.flow_control``: the consumer hands records to the streams
    while it is active), counting its stops."""

    stops = 0

    def suspend(self) -> None:
        self.stops += 1
        super().suspend()


async def event_batches(stream: Any, max_events: int) -> AsyncIterator[list[Any]]:
    """The stream's events, a batch at a time (at most ``max_events``), each batch acknowledged
    after the caller has handled it."""
    stream.enable_acks = False  # read per record by Faust's stream loop: we acknowledge
    queue = stream.channel.queue
    flow: StoppingFlow = stream.app.flow_control
    in_flight = stream.app.consumer.unacked  # what a stop waits for (Faust's stream adds to it)
    batch: list[Any] = []
    since = flow.stops
    async for event in stream.events():
        in_flight.discard(event.message)  # gathered, not handled yet: counted when handed over
        if flow.stops != since:  # the flow stopped since the batch began: read again
            batch, since = [], flow.stops
        batch.append(event)
        if len(batch) < max_events and not queue.empty():
            continue  # already fetched: it joins this batch
        if len(batch) < max_events and await _more_fetched(queue):
            continue
        if flow.stops != since or not flow.is_active():
            batch = []  # the flow stopped while the batch was gathered: read again
            continue
        for handed in batch:
            in_flight.add(handed.message)
        yield batch
        # Not in a ``finally``: a batch interrupted (the agent cancelled at a stop or a
        # rebalance) is not acknowledged, so it is read again.
        for handled in batch:
            await stream.ack(handled)
        batch = []


async def _more_fetched(queue: Any) -> bool:
    """Whether the consumer hands the stream another record already fetched, given a few turns
    of the event loop: Faust's consumer queues the fetched records one at a time, each after a
    turn of the loop (``Consumer._drain_messages`` waits on every delivery), so an agent that
    never yields finds its queue empty however many records are waiting. A lone record costs
    these few turns (microseconds), nothing waits on a timer."""
    for _ in range(SPINS):
        await asyncio.sleep(0)
        if not queue.empty():
            return True
    return False


@contextlib.contextmanager
def handling(event: Any) -> Iterator[None]:
    """Faust's current event is ``event`` inside the block (then what it was before)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
