"""Run a coroutine at once, without a task, as far as it goes without waiting.

Faust's consumer hands every fetched record to the streams through ``wait_first`` (four tasks
and an ``asyncio.wait`` per record), although delivering a record almost never waits: it puts
the record in a queue with room. ``eagerly`` runs the coroutine up to its first suspension in
the caller; only a coroutine that really waits (a full queue, suspended flow) is finished in a
task, by ``rest``, from exactly where it stopped (Python 3.12's eager tasks, for 3.11).
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Any


class Suspended:
    """A coroutine that ran until it first waited on ``yielded``; awaiting this finishes it."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Generator[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        # What ``yield from coro`` would do, starting after its first ``yield``: the task that
        # awaits this gets the future the coroutine waits on, and sends (or throws) its outcome
        # back in.
        coro, waiting_on = self.coro, self.yielded
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # the task's cancellation, or the future's error
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    waiting_on = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def eagerly(awaitable: Awaitable[Any]) -> Suspended | None:
    """Run ``awaitable`` (a coroutine) now until it finishes (None) or waits (the rest of it,
    to be awaited). An exception it raises before waiting propagates from here."""
    coro = awaitable.__await__()
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    return Suspended(coro, yielded)


async def rest(suspended: Suspended) -> Any:
    """Await the rest of a suspended coroutine (a coroutine, for ``asyncio.ensure_future``)."""
    return await suspended
