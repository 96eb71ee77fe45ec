"""Throughput, latency, memory and state of the real worker(s) on a real broker, next to the
limit: a plain aiokafka consume -> produce loop moving the same records on the same broker.

One run, in this order (``--quick`` shrinks every size):

1. a local single-node Kafka (``newsroom_dev.kafka``) unless KAFKA_BOOTSTRAP_SERVERS is
   set; the service's topics created up front with ``--partitions`` partitions, and
   ``message.timestamp.type=LogAppendTime`` on the comments and notifications topics so a
   record's timestamp is the moment the broker appended it;
2. setup: one worker processes the articles, subscriptions (members and guests, every scope,
   instant and digest, one hot article with ``--hot-followers`` digest followers) and
   preferences, then the guests' confirmations (not counted in any throughput); the worker is
   stopped and its state measured (RocksDB files, changelog bytes on the broker);
3. a batch of ``--comments`` comment events is written to a copy topic of the comments
   topic's layout (the limit's input);
4. the limit (``bench/limit.py``, its own process) copies the copy topic to another topic;
5. one worker starts and becomes ready (tables recovered), then a batch of comments is
   published at full speed: comment events/s fully processed (every stage done: the group's
   committed offsets on the comments and internal topics reach their ends) and notifications/s
   (end offsets of the notifications topic), sampled every 0.25 s;
6. the limit again on the same copy topic, writing the notifications the service produced in
   step 5 for those comments instead of copies (the records the service moves, no logic);
7. the same as 5 with two workers (separate data dirs and web ports, one group, both ready
   before the batch): throughput of two, with one standby replica and then (a new batch)
   with none; CPU ms per comment event of each next to one worker's;
8. latency: one worker, ready (it recovered what the other did), gets half the comment rate
   one worker sustained in step 5 (or ``--moderate-rate``), then ``--rate`` comments/s (0:
   skipped), each for ``--duration`` s, once per ``--latency-configs`` entry (worker
   settings; interleave them); latency of each notification = its append time - the append
   time of its comment's input record (both LogAppendTime), also cut at the stages' topics
   (LogAppendTime too): per-hop figures; ``--probe`` cuts each hop inside the worker.

9. breaking news: ``--breaking-followers`` instant followers of one section (a million; 10,000
   with ``--quick``), then 1 worker and 2 without standby replicas (``--breaking-workers``)
   each get an article in it: seconds from the article's append to its last notification's,
   RSS, CPU.

``--phases`` skips any of steps 7, 8 and 9.

Prints a table, the issue's targets beside this run's figures (``report.targets``), and writes
every figure to ``bench/results/throughput-<time>.json``;
``--plot out.png`` draws the latency distribution and the throughput over time.

    python -m bench.throughput [--quick] [--comments N] [--rate 500] [--duration 20] [--plot p.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.throughput import ROOT
from bench.throughput.phases.breaking_news import JUDGED_RUNS, NO_STANDBY, worker_runs
from bench.throughput.report import plot, table, targets_table
from bench.throughput.run import bench
from bench.throughput.setup import Sizes
from newsroom_dev.kafka import LocalKafka

DEFAULT_PARTITIONS = 8


def parse_configs(text: str) -> list[tuple[str, dict[str, str]]]:
    """'a:X=1,Y=2;b:;a:' -> [(a, {X: 1, Y: 2}), (b, {}), (a, {X: 1, Y: 2})]."""
    known: dict[str, dict[str, str]] = {}
    out = []
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        name, _, assignments = entry.partition(":")
        pairs = dict(a.split("=", 1) for a in filter(None, assignments.split(",")))
        if pairs or name not in known:
            known[name] = pairs
        out.append((name, known[name]))
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="throughput.py",  # the name it had as one file (bench/throughput.py)
        description=__doc__.splitlines()[0] if __doc__ else "",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about 1-2 minutes")
    parser.add_argument("--comments", type=int, help="comment events per throughput batch")
    parser.add_argument("--articles", type=int)
    parser.add_argument("--members", type=int)
    parser.add_argument("--guests", type=int)
    parser.add_argument("--hot-followers", type=int, help="digest followers of the hot article")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="comments/s of the latency run (0: skipped)"
    )
    parser.add_argument(
        "--moderate-rate",
        type=float,
        help="comments/s of the first latency run (default: half of what 1 worker sustained)",
    )
    parser.add_argument(
        "--latency-configs",
        type=parse_configs,
        default=[("default", {})],
        help="latency runs, each with its own worker settings, in this order: "
        "'name:VAR=value,VAR=value;name2:...' (e.g. 'a:;b:NEWSROOM_KAFKA__LINGER_MS=0;a:;b:' "
        "interleaves the defaults a with b; an entry with no settings reuses its name's)",
    )
    parser.add_argument("--duration", type=float, help="seconds of the latency run")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="latency: each run's worker also times each record's way through it, per stage "
        "(bench/throughput/probe.py)",
    )
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=300.0, help="per phase, seconds")
    parser.add_argument(
        "--max-drain",
        type=float,
        default=90.0,
        help="latency: at most this many seconds after the last comment for its notifications",
    )
    parser.add_argument(
        "--breaking-workers",
        type=worker_runs,
        default=list(JUDGED_RUNS),
        help="runs of the breaking-news phase, one article each: a count of workers, with "
        f"standby replicas, or followed by {NO_STANDBY} (default {','.join(JUDGED_RUNS)}; "
        f"1,2,2{NO_STANDBY} adds two workers with standby replicas)",
    )
    parser.add_argument("--json", type=Path, help="result file (default bench/results/...)")
    parser.add_argument("--plot", type=Path, help="write a PNG: latency and throughput")
    parser.add_argument(
        "--phases",
        type=lambda v: set(v.split(",")),
        default={"breaking", "two", "latency"},
        help="after setup, the limit and 1 worker: any of 'breaking', 'two', 'latency' "
        "(comma-separated; default all three; 'none' for none)",
    )
    parser.add_argument(
        "--breaking-followers",
        type=int,
        help="instant followers of the breaking-news section (default 1,000,000, the issue's "
        "figure; 10,000 with --quick)",
    )
    parser.add_argument(
        "--breaking-seeding",
        choices=("subscribe", "changelog"),
        help="breaking news: subscribe the followers through the pipeline, or write their "
        "profiles and the section's follower chunks straight to the changelogs (fast: for a "
        "million; the default, 'subscribe' with --quick)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.breaking_followers is None:
        args.breaking_followers = 10_000 if args.quick else 1_000_000
    if args.breaking_seeding is None:
        args.breaking_seeding = "subscribe" if args.quick else "changelog"
    # The targets for comment events are for the default workload (report.targets).
    sized = ("comments", "articles", "members", "guests", "hot_followers", "duration")
    args.default_workload = (
        not args.quick
        and all(getattr(args, name) is None for name in sized)
        and args.partitions == DEFAULT_PARTITIONS
    )
    sizes = Sizes.from_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="newsroom-bench-"))
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    cluster: LocalKafka | None = None
    args.broker_dir = None
    args.broker_pids = []
    try:
        if configured:
            bootstrap = configured
            print(f"using the broker at {bootstrap}")
        else:
            cluster = LocalKafka.create(tmp / "kafka", size=1)
            cluster.start()
            bootstrap = cluster.bootstrap_servers
            args.broker_dir = tmp / "kafka"
            args.broker_pids = [n.pid for n in cluster.nodes if n.pid is not None]
            print(f"started a local Kafka at {bootstrap}")
        result = asyncio.run(bench(bootstrap, sizes, tmp, args))
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    samples = result.pop("latency_samples_s", [])
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()}
    out = args.json or ROOT / "bench" / "results" / time.strftime("throughput-%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print()
    print(table(result))
    judged = (
        " (--quick: a smaller workload, not judged)"
        if args.quick
        else ""
        if args.default_workload
        else " (sizes not the default: the comment events' targets not judged)"
    )
    print(f"\nthe issue's targets (issue 19), this run{judged}:")
    print(targets_table(result["targets"]))
    print(f"\nall figures: {out} ({result['total_s']:.0f}s)")
    if args.plot:
        try:
            plot(result, samples, args.plot)
        except ImportError:
            print("no plot: matplotlib is missing (pip install -e '.[bench]')", file=sys.stderr)
            return 1
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
