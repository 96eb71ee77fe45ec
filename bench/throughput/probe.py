"""Where a hop's time goes, inside one worker: ``--probe`` of the latency phase.

The latency phase cuts a notification's latency at the stages' topics (``Hops``); this cuts
each hop again inside the worker that reads the topic. For every record of a topic created
with ``LogAppendTime`` (the bench's comments topic and the stages' own), milliseconds from its
append on the broker to:

- ``fetched``: aiokafka's fetcher hands it over (in Faust's consumer thread, when the worker's
  event loop asks for records: what the fetch and that asking cost);
- ``delivered``: Faust's consumer loop, on the worker's event loop, takes it (the hand-over
  between the two threads);
- ``batch``: its agent starts handling the batch it is in (the turn of the event loop it waits
  for, behind the other agents' batches, and the gathering of the batch);

and per batch ``handle_ms`` (the agent's handling of the whole batch, its writes and the
records it hands to the producer) and ``size``. The rest of a hop, from the end of the batch to
the next topic's append, is the producer's (its linger, the one produce request in flight per
broker, the event loop's turns).

The worker loads it by ``sitecustomize`` (``bench/throughput/probe_site``, put first on the
worker's ``PYTHONPATH``) when ``NEWSROOM_BENCH_PROBE`` names the JSON file to write; it patches
aiokafka's ``Fetcher.fetched_records``, ``ContinuousConsumer.getmany`` and
``batches.event_batches`` (before the stages import it), so it is for benchmarks only and
costs a clock read per record.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.stats import percentile

ENV = "NEWSROOM_BENCH_PROBE"  # the JSON file the worker writes its figures to
LOG_APPEND_TIME = 1  # a record's timestamp type: set by the broker at the append
STAGES = ("threads", "follows", "inbox")  # the stages' topics end with their name


def stage_of(topic: str) -> str:
    """The stage a topic feeds, named by the topic (``<app>-inbox`` -> inbox; the contract's
    input topics by their own name: ``bench.comments`` -> comments)."""
    for stage in STAGES:
        if topic.endswith("-" + stage):
            return stage
    return topic.rpartition(".")[2]


class Probe:
    """Samples per (topic's stage, point), summarised as p50/p90/p99 and written to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.samples: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self._lock = threading.Lock()  # the consumer thread adds samples too

    def since_append(self, point: str, topic: str, timestamp_ms: float, kind: int) -> None:
        if kind == LOG_APPEND_TIME:
            self.add(point, topic, time.time() * 1000 - timestamp_ms)

    def add(self, point: str, topic: str, value: float) -> None:
        with self._lock:
            self.samples[(stage_of(topic), point)].append(value)

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """{stage: {point: {count, p50, p90, p99}}}."""
        with self._lock:
            taken = {key: list(values) for key, values in self.samples.items()}
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (stage, point), values in sorted(taken.items()):
            out.setdefault(stage, {})[point] = {
                "count": len(values),
                **{f"p{q}": round(percentile(values, q), 1) for q in (50, 90, 99)},
            }
        return out

    def write(self) -> None:
        """Once, as the worker exits: summarising sorts every sample, a stall that would land
        in the event loop whose waits this measures if it were done while the worker runs."""
        self.path.write_text(json.dumps(self.summary(), indent=1))


def install(path: Path) -> Probe:  # pragma: no cover - patches a worker's running code
    """Patch the worker's consumer and agents to feed a ``Probe`` writing to ``path``."""
    from aiokafka.consumer.fetcher import Fetcher  # noqa: PLC0415 - only in a probed worker

    from newsroom_notify.stream.faust_ext import batches, transport  # noqa: PLC0415

    probe = Probe(path)
    fetched_records = Fetcher.fetched_records
    getmany = transport.ContinuousConsumer.getmany
    event_batches = batches.event_batches

    async def probed_fetched_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        records = await fetched_records(self, *args, **kwargs)
        for tp, recs in records.items():
            for record in recs:
                probe.since_append("fetched", tp.topic, record.timestamp, record.timestamp_type)
        return records

    async def probed_getmany(self: Any, timeout: float) -> AsyncIterator[Any]:  # noqa: ASYNC109
        async for tp, message in getmany(self, timeout):
            kind = message.timestamp_type
            probe.since_append("delivered", tp.topic, message.timestamp * 1000, kind)
            yield tp, message

    async def probed_batches(stream: Any, max_events: int) -> AsyncIterator[list[Any]]:
        async for batch in event_batches(stream, max_events):
            for event in batch:
                message = event.message
                kind = message.timestamp_type
                probe.since_append("batch", message.topic, message.timestamp * 1000, kind)
            started = time.perf_counter()
            yield batch
            topic = batch[0].message.topic
            probe.add("handle_ms", topic, (time.perf_counter() - started) * 1000)
            probe.add("size", topic, len(batch))

    Fetcher.fetched_records = probed_fetched_records
    transport.ContinuousConsumer.getmany = probed_getmany  # type: ignore[method-assign]
    batches.event_batches = probed_batches
    atexit.register(probe.write)
    return probe
