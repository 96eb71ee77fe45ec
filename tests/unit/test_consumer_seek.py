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

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

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
