"""README "What happens when things fail", bounded: every fault scenario on the real processes,
judged against the workload.

Per notification id: present, not unexpected, and the same content as the reference's (minus
``time``, tokens compared by their claims); every copy of a duplicate identical; the count of
each reason; digests collected and "one digest per recipient per period, each comment once"
checked; what the workload's construction implies (``Facts``) holds. Each fault is triggered
by progress (a share of the faulted stream's notifications observed) and must land while the
stream is still flowing. ``make soak`` runs the same scenarios with a larger workload.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from newsroom_dev.workload import Workload, generate
from tests.faults.harness import CONSENT_TOKEN, Report
from tests.faults.scenarios import SCENARIOS, run_scenario

WORKLOAD: Workload | None = None

# The burst may raise the worker's peak RSS by at most this much over its peak after the normal
# workload (same process: the baseline already holds the start-up, the tables and the caches).
# Stream buffers are bounded; the burst's own state (1,200 more comments and their ~5,000
# notifications' table entries, RocksDB memtables) is what may grow.
BURST_RSS_GROWTH_MB = 60.0


def workload() -> Workload:
    global WORKLOAD  # noqa: PLW0603 - generated once per session, it is deterministic
    if WORKLOAD is None:
        WORKLOAD = generate(seed=11, articles=12, readers=40, comments=240, burst=1200)
    return WORKLOAD


def test_the_workload_means_what_the_fault_tests_assume() -> None:
    w = workload()
    facts = w.facts
    # Erasures and pauses silence people the tail would otherwise notify (not vacuous).
    assert len(facts.erased) == 2
    assert len(facts.paused) == 2
    assert all(n > 0 for n in facts.notified_if_unchanged.values()), facts.notified_if_unchanged
    # Independent of the pipeline: one confirmation request per guest, every reason present.
    reasons = w.expected_reasons(w.phases)
    assert reasons["confirm_subscription"] == len(facts.guests) == 12
    assert {"reply", "mention", "followed_commenter", "follow_up", "new_article"} <= set(reasons)
    assert facts.unconfirmed
    assert facts.never_approved
    assert facts.digest_mode
    kinds = {e.type.rsplit(".", 1)[-1] for p in w.phases for e in p.events}
    assert {"confirmed", "cancelled", "erased", "edited", "deleted", "moderated"} <= kinds
    assert len(w.burst.events) >= 5 * len(w.phase("tail").events)


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_fault_scenario_loses_nothing(key: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[key]
    report: Report = asyncio.run(run_scenario(key, kafka_bootstrap, tmp_path, workload()))
    print("\n" + Report.HEADER + "\n" + report.row())
    assert all(report.observations.values()), report.observations  # every phase settled
    assert report.missing == 0, report.row()
    assert report.unexpected == 0, report.row()
    assert report.retractions_missing == 0, report.row()
    assert report.wrong_content == 0, report.row()
    assert report.duplicates_differ == 0, report.row()
    assert report.reasons_seen == report.reasons_expected
    assert report.reasons_seen["confirm_subscription"] == len(workload().facts.guests)
    assert report.fact_violations == []
    assert report.digests > 0, "the sped-up clock cut digests during the run"
    assert report.digest_problems == []
    assert report.dead_letters == (1 if scenario.poison else 0), report.row()
    # Each fault came from progress, with input still to publish and output still to come.
    assert len(report.hits) == scenario.hits
    for hit in report.hits:
        assert [hit["by_progress"], hit["input_left"], hit["output_left"]] == [True] * 3, hit
    if key == "sigterm":
        # A graceful stop commits what it processed, and the restart reads on from there.
        assert report.duplicated == 0, report.row()
    known: list[str] = []
    if report.token_choice:
        # Seen in rebalance runs while a mention's token named the first subscription by key
        # (it depended on arrival order across partitions); reported, never a pass.
        known.append(f"{CONSENT_TOKEN}: {report.token_choice[:2]}")
    if key == "broker_restart":
        # /readyz follows the broker; the worker rides the outage out instead of exiting.
        assert {k: v for k, v in report.observations.items() if ":" not in k} == {
            "readyz_503_while_down": True,
            "readyz_200_after": True,
            "worker_alive": True,
        }
    if key == "burst":
        assert report.baseline_rss_mb is not None
        assert report.peak_rss_mb is not None
        growth = report.peak_rss_mb - report.baseline_rss_mb
        assert growth <= BURST_RSS_GROWTH_MB, f"burst raised peak RSS by {growth:.0f} MB"
    if known:
        # Found by this oracle and reported: every other check above held, but the run is
        # not a pass.
        pytest.xfail("; ".join(known[:3]))
