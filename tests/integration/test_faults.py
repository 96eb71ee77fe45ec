"""Issue 7, bounded: every fault scenario on the real processes, judged by notification ids.

Zero missing and zero unexpected notifications; under at-least-once, duplicates may occur but
always carry the id of their original (ids are deterministic, so a duplicate cannot differ).
``make soak`` runs the same scenarios with a larger workload and prints the figures.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import Report
from tests.faults.scenarios import SCENARIOS, run_scenario
from tests.workload import Workload, generate

WORKLOAD: Workload | None = None


def workload() -> Workload:
    global WORKLOAD  # noqa: PLW0603 - generated once per session, it is deterministic
    if WORKLOAD is None:
        WORKLOAD = generate(seed=11, articles=12, readers=40, comments=240)
    return WORKLOAD


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_fault_scenario_loses_nothing(key: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    report: Report = asyncio.run(run_scenario(key, kafka_bootstrap, tmp_path, workload()))
    print("\n" + Report.HEADER + "\n" + report.row())
    assert report.missing == 0, report.row()
    assert report.unexpected == 0, report.row()
    assert report.retractions_missing == 0, report.row()
    assert report.dead_letters == (1 if SCENARIOS[key].poison else 0), report.row()
    if key == "sigterm":
        assert report.duplicated == 0, "a graceful stop commits what it processed"
    if key == "broker_restart":
        # /readyz follows the broker; the worker rides the outage out instead of exiting.
        assert report.observations == {
            "readyz_503_while_down": True,
            "readyz_200_after": True,
            "worker_alive": True,
        }
    if key == "burst":
        assert report.peak_rss_mb is not None
        assert report.peak_rss_mb < 400, "memory stays bounded under a 10x burst"
