"""``make soak``: every fault scenario with a larger workload; prints the figures.

    python -m tests.faults.soak [--comments 1500] [--burst 6000] [--json bench/results/soak.json]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else starts a local broker for the run (scenarios that
stop brokers start their own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from newsroom_dev.kafka import LocalKafka
from newsroom_dev.workload import generate
from tests.faults.harness import Report
from tests.faults.scenarios import SCENARIOS, run_scenario

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description="fault scenarios with figures")
    parser.add_argument("--comments", type=int, default=1500)
    parser.add_argument("--burst", type=int, default=6000, help="comments of the burst phase")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    workload = generate(
        seed=23, articles=30, readers=150, comments=args.comments, guests=40, burst=args.burst
    )
    phases = workload.phases
    print(
        f"workload: {sum(len(p.events) for p in phases)} events "
        f"({', '.join(f'{p.name} {len(p.events)}' for p in phases)}; burst "
        f"{len(workload.burst.events)}), {sum(len(p.created) for p in phases)} notifications "
        f"and {sum(len(p.retracted) for p in phases)} retractions expected"
    )
    reports: list[Report] = []
    with tempfile.TemporaryDirectory() as tmp:
        shared = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        cluster = None
        if not shared:
            cluster = LocalKafka.create(Path(tmp) / "shared-kafka", size=1)
            cluster.start()
            shared = cluster.bootstrap_servers
        try:
            print(Report.HEADER)
            for key in SCENARIOS:
                started = time.monotonic()
                scenario_dir = Path(tmp) / key
                scenario_dir.mkdir()
                report = asyncio.run(run_scenario(key, shared, scenario_dir, workload))
                reports.append(report)
                print(report.row(), f"({time.monotonic() - started:.0f}s)", flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2))
    failed = [
        r
        for r in reports
        if r.missing
        or r.unexpected
        or r.retractions_missing
        or r.wrong_content
        or r.duplicates_differ
        or r.reasons_seen != r.reasons_expected
        or r.digest_problems
        or r.fact_violations
        or not all(r.observations.values())
    ]
    for report in failed:
        print(f"FAILED {report.scenario}: {report.row()}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
