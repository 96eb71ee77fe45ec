"""The eager delivery the consumer uses for each fetched record (``stream.faust_ext.eager``,
called by ``ContinuousConsumer._drain_messages``, which every integration test goes through):
a delivery that does not wait is done without a task, and one that has to wait finishes
exactly as it would have in a task."""

from __future__ import annotations

import asyncio

import pytest

from newsroom_notify.stream.faust_ext.eager import eagerly, rest


async def test_a_delivery_that_does_not_wait_is_done_before_eagerly_returns() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=2)

    async def deliver(value: int) -> None:
        await queue.put(value)  # room in the queue: no wait

    assert eagerly(deliver(1)) is None
    assert eagerly(deliver(2)) is None
    assert [queue.get_nowait(), queue.get_nowait()] == [1, 2]


async def test_a_delivery_to_a_full_queue_finishes_when_room_is_made_in_order() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    steps: list[str] = []

    async def deliver(value: int) -> str:
        steps.append(f"put {value}")
        await queue.put(value)
        steps.append(f"queued {value}")
        return f"done {value}"

    assert eagerly(deliver(1)) is None
    suspended = eagerly(deliver(2))  # the queue is full: it waits
    assert suspended is not None
    assert steps == ["put 1", "queued 1", "put 2"]
    finishing = asyncio.ensure_future(rest(suspended))
    await asyncio.sleep(0)
    assert not finishing.done()  # still waiting for room
    assert queue.get_nowait() == 1
    assert await finishing == "done 2"
    assert steps[-1] == "queued 2"
    assert queue.get_nowait() == 2


async def test_a_delivery_yielding_to_the_loop_and_awaiting_a_future_gets_its_result() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def deliver() -> str:
        await asyncio.sleep(0)  # a bare yield to the loop
        return "got " + await future

    suspended = eagerly(deliver())
    assert suspended is not None
    finishing = asyncio.ensure_future(rest(suspended))
    await asyncio.sleep(0)
    future.set_result("it")
    assert await finishing == "got it"


async def test_errors_come_out_where_they_happen() -> None:
    async def fails_at_once() -> None:
        raise ValueError("before waiting")

    with pytest.raises(ValueError, match="before waiting"):
        eagerly(fails_at_once())

    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fails_later() -> None:
        try:
            await future
        except KeyError as exc:
            raise ValueError("after waiting") from exc

    suspended = eagerly(fails_later())
    assert suspended is not None
    finishing = asyncio.ensure_future(rest(suspended))
    await asyncio.sleep(0)
    future.set_exception(KeyError("the future's"))
    with pytest.raises(ValueError, match="after waiting"):
        await finishing


async def test_cancelling_the_rest_cancels_the_delivery_where_it_waits() -> None:
    # Faust's drain abandons a waiting delivery when the flow is suspended (a rebalance).
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)
    cleaned: list[str] = []

    async def deliver() -> None:
        try:
            await queue.put(1)
        finally:
            cleaned.append("finally")

    suspended = eagerly(deliver())
    assert suspended is not None
    finishing = asyncio.ensure_future(rest(suspended))
    await asyncio.sleep(0)
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    assert cleaned == ["finally"]
    assert queue.qsize() == 1  # the cancelled delivery put nothing
