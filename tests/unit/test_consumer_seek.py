"""After a rebalance, a partition the group never committed is read again from its start.

Faust's ``ContinuousConsumer.ack`` drops acknowledgements from an older consumer generation on
the assumption that the records are read again in the new one; aiokafka's
``seek_to_committed`` leaves a never-committed partition where it was, so without this its
records, processed before a heartbeat timeout, stayed uncommitted for good (the fault suite's
settling on committed offsets hung on the articles of the first seconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from newsroom_notify.stream.faust_ext.continuity import Continuity
from newsroom_notify.stream.faust_ext.transport import ContinuousConsumer

NEVER = TP("t.newsroom.articles", 0)
ZERO = TP("t.newsroom.articles", 1)
AT_5 = TP("t.newsroom.articles", 2)


def test_never_committed_partitions_are_read_again_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sought: dict[TP, int] = {}

    async def committed(self: object) -> Mapping[TP, int | None]:
        return {NEVER: None, ZERO: 0, AT_5: 5}  # aiokafka sought AT_5 itself

    async def seek(self: object, partition: TP, offset: int) -> None:
        sought[partition] = offset

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", committed)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", seek)
    consumer = ContinuousConsumer.__new__(ContinuousConsumer)
    consumer.continuity = Continuity()
    asyncio.run(consumer.seek_to_committed())
    assert sought == {NEVER: 0, ZERO: 0}
    assert [consumer.continuity.expected(tp) for tp in (NEVER, ZERO, AT_5)] == [0, 0, 5]


def test_the_seek_after_a_recovery_lands_after_what_the_agents_processed_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's recovery resumes the flow, then seeks the stream partitions to their committed
    offsets. Records processed in between (a restart after a graceful stop mid-stream finds
    some waiting) must not be read again: the seek lands after them, not at the older commit.
    """
    broker_committed = {AT_5: 5}  # the group's offset when the recovery began
    sought: list[int | None] = []

    async def committed(self: object) -> Mapping[TP, int | None]:
        sought.append(broker_committed[AT_5])
        return dict(broker_committed)

    async def agents_finish_and_commit(self: ContinuousConsumer) -> None:
        # Stand-in for Faust's wait_empty: the records 5..7 the agents took while the flow was
        # on are acknowledged and committed once the flow stops.
        assert not self.app.flow_control.is_active(), "records still flowing in"
        broker_committed[AT_5] = 8

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", committed)
    monkeypatch.setattr(ContinuousConsumer, "wait_empty", agents_finish_and_commit)
    consumer = ContinuousConsumer.__new__(ContinuousConsumer)
    consumer.continuity = Continuity()
    consumer._seeking = asyncio.Lock()
    consumer._read_offset = {}
    consumer._committed_offset = {}
    flow = FlowControlEvent(initially_suspended=False)
    consumer.app = SimpleNamespace(flow_control=flow)

    async def recovery_completes() -> None:
        consumer.can_resume_flow = asyncio.Event()
        consumer.suspend_flow = asyncio.Event()
        consumer.resume_flow()  # as Faust's recovery does when no changelog needs reading
        await consumer.perform_seek()

    asyncio.run(recovery_completes())
    assert sought == [8]
    assert consumer.continuity.expected(AT_5) == 8
