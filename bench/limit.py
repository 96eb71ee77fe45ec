"""The limit: the fastest plain aiokafka consume -> produce loop, with no logic at all.

Reads ``--source`` from the start in consumer group ``--group`` and writes every record
unchanged (key, value, headers, same partition) to ``--sink`` with a producer configured like
the service's (acks=all, idempotent), until ``--expect`` records were copied and acknowledged.
Batched as far as aiokafka allows: ``getmany`` with large fetches, ``send`` without awaiting
each delivery, acknowledgements awaited together before offsets are committed (at-least-once,
committed about once a second like the worker). Runs as its own process so its CPU is
comparable with a worker's; prints one JSON line with its timings.

With ``--outputs FILE`` (a pickled list of ``(key, value, headers)``: the notifications the
service produced for these inputs) it writes those records instead of copies, spread evenly
over the inputs in order and partitioned by key like the service: the same records in and out
as the service moves, still with no logic.

    python bench/limit.py --bootstrap 127.0.0.1:9092 --source in --sink out --expect 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import resource
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition


async def copy(args: argparse.Namespace) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        args.source,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_wait_ms=100,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=args.linger_ms,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    await consumer.start()
    await producer.start()
    copied = 0
    first: float | None = None
    last_commit = time.monotonic()
    pending: list[asyncio.Future[Any]] = []
    offsets: dict[TopicPartition, int] = {}
    outputs: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] | None = None
    if args.outputs:
        outputs = pickle.loads(args.outputs.read_bytes())  # noqa: S301 - the bench's own file
    written = 0
    cpu0 = time.process_time()
    try:
        while copied < args.expect:
            batch = await consumer.getmany(timeout_ms=200, max_records=args.max_records)
            if not batch:
                continue
            if first is None:
                first = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    if outputs is None:
                        pending.append(
                            await producer.send(
                                args.sink,
                                value=record.value,
                                key=record.key,
                                partition=record.partition,
                                headers=list(record.headers),
                            )
                        )
                        written += 1
                    else:  # this input's share of the outputs
                        end = (copied + 1) * len(outputs) // args.expect
                        for key, value, headers in outputs[written:end]:
                            pending.append(
                                await producer.send(
                                    args.sink, value=value, key=key, headers=headers
                                )
                            )
                        written = end
                    copied += 1
                offsets[tp] = records[-1].offset + 1
            if time.monotonic() - last_commit >= args.commit_interval or copied >= args.expect:
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit(dict(offsets))
                last_commit = time.monotonic()
        done = time.monotonic()
    finally:
        await producer.stop()
        await consumer.stop()
    assert first is not None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "copied": copied,
        "written": written,
        "seconds": round(done - first, 3),
        "rate": round(copied / (done - first), 1),
        "written_per_s": round(written / (done - first), 1),
        "cpu_s": round(time.process_time() - cpu0, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", default="bench-limit")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--max-records", type=int, default=20_000)
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument(
        "--outputs", type=Path, help="pickled (key, value, headers) records to write"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(copy(args))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
