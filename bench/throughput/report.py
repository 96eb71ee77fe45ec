"""The benchmark's report: the table printed at the end, and the plot."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from operator import ge, le, lt
from pathlib import Path
from typing import Any

from bench.throughput.phases.breaking_news import JUDGED_RUNS, describe_run


def table(result: dict[str, Any]) -> str:
    one, two = result.get("one_worker", {}), result.get("two_workers", {})
    limit, lat = result.get("limit", {}), result.get("latency", {})
    lw, mod = result.get("limit_with_outputs", {}), result.get("latency_moderate", {})
    state, ratio = result.get("state", {}), result.get("ratios", {})
    bn = result.get("breaking_news", {})
    nsb, cpu2 = result.get("two_workers_no_standby", {}), result.get("cpu_two_over_one", {})

    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value:,}{unit}"
        if isinstance(value, float):
            return f"{value:,.1f}{unit}"
        return f"{value}{unit}"

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f} %"

    rss = [v for phase in (one, two) for v in phase.get("peak_rss_mb", {}).values()]
    rows = [
        ("limit (plain aiokafka copy)", fmt(limit.get("rate"), " rec/s")),
        ("1 worker: comment events/s, all stages done", fmt(one.get("input_per_s"))),
        ("1 worker: intake of the first stage (10-90%)", fmt(one.get("intake_per_s_sustained"))),
        ("1 worker: notifications/s (sustained)", fmt(one.get("notifications_per_s_sustained"))),
        ("1 worker: CPU ms per comment event", fmt(one.get("cpu_ms_per_comment"))),
        ("1 worker / limit", pct(ratio.get("service_over_limit"))),
        (
            "limit writing the service's outputs: in / out",
            f"{fmt(lw.get('rate'))} / {fmt(lw.get('written_per_s'))} rec/s",
        ),
        ("1 worker / limit writing the outputs", pct(ratio.get("service_over_limit_with_outputs"))),
        ("2 workers: comment events/s, all stages done", fmt(two.get("input_per_s"))),
        ("2 workers: notifications/s (sustained)", fmt(two.get("notifications_per_s_sustained"))),
        ("2 workers: CPU ms per comment event", fmt(two.get("cpu_ms_per_comment"))),
        ("2 workers, no standby: comment events/s", fmt(nsb.get("input_per_s"))),
        ("2 workers, no standby: CPU ms per comment", fmt(nsb.get("cpu_ms_per_comment"))),
        (
            "CPU per comment, 2 workers / 1: standby / none",
            f"{pct(cpu2.get('two_workers_standby'))} / {pct(cpu2.get('two_workers_no_standby'))}",
        ),
        (
            "machine CPU busy (all cores), 1 / 2 workers",
            f"{fmt(one.get('machine_cpu_busy_percent'), ' %')} / "
            f"{fmt(two.get('machine_cpu_busy_percent'), ' %')}",
        ),
        (
            "broker CPU s, 1 / 2 workers (worker CPU s)",
            f"{fmt(one.get('broker_cpu_s'))} / {fmt(two.get('broker_cpu_s'))} "
            f"({fmt(sum(one.get('cpu_s', {}).values()) or None)} / "
            f"{fmt(sum(two.get('cpu_s', {}).values()) or None)})",
        ),
        ("2 workers / 1 worker", pct(ratio.get("two_over_one"))),
        (
            f"latency at {lat.get('rate_target', 0):.0f}/s: p50 / p99 / max",
            f"{fmt(lat.get('p50_ms'))} / {fmt(lat.get('p99_ms'))} / {fmt(lat.get('max_ms'))} ms",
        ),
        ("latency: notifications measured", fmt(lat.get("count"))),
        (
            f"latency at {mod.get('rate_target', 0):.0f}/s (half of 1 worker's): p50 / p99 / max",
            f"{fmt(mod.get('p50_ms'))} / {fmt(mod.get('p99_ms'))} / {fmt(mod.get('max_ms'))} ms",
        ),
        *(
            (
                f"breaking news, {describe_run(n)}: {fmt(bn.get('followers'))} followers, "
                "article -> last",
                f"{fmt(b.get('seconds'), ' s')} ({fmt(b.get('notifications_per_s'))} notif./s; "
                f"RSS {fmt(b.get('rss_before_mb'))} -> peak {fmt(b.get('peak_rss_mb'), ' MiB')})",
            )
            for n, b in bn.get("by_workers", {}).items()
        ),
        *(
            (
                f"latency run {n + 1}, {r['config']}: p50 / p99 at "
                f"{r['moderate']['rate_target']:.0f}/s"
                + (f", at {r['high']['rate_target']:.0f}/s" if r["high"] else ""),
                f"{fmt(r['moderate']['p50_ms'])} / {fmt(r['moderate']['p99_ms'])} ms"
                + (
                    f"; {fmt(r['high']['p50_ms'])} / {fmt(r['high']['p99_ms'])} ms"
                    if r["high"]
                    else ""
                ),
            )
            for n, r in enumerate(result.get("latency_runs", []))
            if len(result.get("latency_runs", [])) > 1
        ),
        ("worker peak RSS", fmt(max(rss) if rss else None, " MiB")),
        ("state: RocksDB bytes / subscription", fmt(state.get("rocksdb_bytes_per_subscription"))),
        ("state: changelog bytes / subscr.", fmt(state.get("changelog_bytes_per_subscription"))),
        ("setup events/s (not counted above)", fmt(result.get("setup", {}).get("events_per_s"))),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


MILLION = "1,000,000 followers, article -> last notification, 1 worker (s)"
MILLION_TWO = "1,000,000 followers, article -> last notification, 2 workers, no standby (s)"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets (issue 19) against this run's figures, each with its value (None:
    not measured in this run, never counted as met), its target and whether it was met. None
    too for the targets of comment events unless the run had the default workload and its
    first latency run the default settings, and for the million followers in a ``--quick``
    run. The million is judged for one worker and for two without standby replicas (each
    worker then has only its own tables to keep; with standby replicas each also applies the
    other's ``sent`` records, reported beside it, not judged). A million followers' fan-out
    cut off by the phase's timeout is missed, without a value. The RSS growth is reported, not
    judged."""
    quick = bool(result.get("quick"))
    first_run = (result.get("latency_runs") or [{}])[0]
    workload = not quick and bool(result.get("default_workload"))
    latency = workload and not first_run.get("settings")
    one, mod, high = (result.get(k, {}) for k in ("one_worker", "latency_moderate", "latency"))
    bn = result.get("breaking_news", {})
    one_run, two_run = JUDGED_RUNS
    first = bn.get("by_workers", {}).get(one_run, {})
    # A million followers' fan-out: its seconds if it ended, missed if cut off by the timeout.
    million = bn.get("followers") == 1_000_000 and bool(first)
    ended = million and bool(first.get("completed"))
    two_runs = bn.get("by_workers", {}).get(two_run, {})
    two_million = bn.get("followers") == 1_000_000 and bool(two_runs)
    two_ended = two_million and bool(two_runs.get("completed"))
    at_half = bool(mod.get("half_of_one_worker"))  # not a rate given with --moderate-rate
    at_500 = high.get("rate_target") == 500  # the issue names this rate
    ratio = result.get("ratios", {}).get("service_over_limit_with_outputs")
    two = result.get("cpu_two_over_one", {}).get("two_workers_no_standby")
    # figure, value, target as printed, the bound, how the value must compare with it, judged
    checks: list[tuple[str, float | None, str, float, Callable[[float, float], bool], bool]] = [
        ("CPU ms per comment event, 1 worker", one.get("cpu_ms_per_comment"), "<= 1.0", 1.0, le,
         workload),
        ("1 worker / limit writing the outputs (%)", ratio and 100 * ratio, ">= 25", 25.0, ge,
         workload),
        (MILLION, first.get("seconds") if ended else None, "<= 60", 60.0, le, not quick),
        (MILLION_TWO, two_runs.get("seconds") if two_ended else None, "<= 60", 60.0, le,
         not quick),
        ("p99 at half of 1 worker's rate (ms)", mod.get("p99_ms") if at_half else None, "< 100",
         100.0, lt, latency),
        ("p99 at 500 comments/s (ms)", high.get("p99_ms") if at_500 else None, "< 250", 250.0, lt,
         latency),
        ("CPU per comment, 2 workers (no standby) / 1 (%)", two and 100 * two, "<= 115", 115.0,
         le, workload),
    ]  # fmt: skip
    rows = [
        {
            "figure": figure,
            "value": value,
            "target": shown,
            "met": None if value is None or not judged else holds(value, bound),
        }
        for figure, value, shown, bound, holds, judged in checks
    ]
    cut_off = {MILLION: million and not ended, MILLION_TWO: two_million and not two_ended}
    for row in rows:
        if cut_off.get(str(row["figure"])) and not quick:
            row["met"] = False  # not every follower heard within the timeout
    growth = first.get("rss_growth_second_half_mb") if ended else None
    rows.append(
        {
            "figure": "RSS growth while the second half of those followers were notified (MiB)",
            "value": growth,
            "target": "flat",
            "met": None,  # reported: RocksDB's memtables fill up to their bound meanwhile
        }
    )
    return rows


def targets_table(rows: list[dict[str, Any]]) -> str:
    """The targets as printed: figure, value, target, and met, missed or "-" (not measured,
    or only reported)."""
    verdict = {True: "met", False: "missed", None: "-"}
    lines = [
        (r["figure"], "-" if r["value"] is None else f"{r['value']:,.2f}", r["target"],
         verdict[r["met"]])
        for r in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "\n".join(
        f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in lines
    )


def plot(result: dict[str, Any], samples: list[float], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - optional extra 'bench'

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if samples:
        ms = sorted(s * 1000 for s in samples)
        left.hist(ms, bins=60, color="tab:blue", alpha=0.8)
        left.set_xlabel("end-to-end latency (ms)")
        left.set_ylabel("notifications")
        lat = result["latency"]
        left.set_title(
            f"latency at {lat['rate_target']:.0f} comments/s: "
            f"p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms"
        )
    for key, label in (("one_worker", "1 worker"), ("two_workers", "2 workers")):
        series = result.get(key, {}).get("series", {}).get("input", [])
        if len(series) > 1:
            times = [t for t, _ in series]
            rates = [0.0] + [(p1 - p0) / (t1 - t0) for (t0, p0), (t1, p1) in pairwise(series)]
            window = 8  # committed offsets move once a second: smooth over ~2 s
            smooth = [
                sum(rates[max(0, i - window + 1) : i + 1]) / min(i + 1, window)
                for i in range(len(rates))
            ]
            right.plot(times, smooth, label=f"{label}: input events/s")
    limit = result.get("limit", {}).get("rate")
    if limit:
        right.axhline(limit, color="grey", linestyle="--", label="limit (plain aiokafka copy)")
    right.set_xlabel("seconds since the workers started")
    right.set_ylabel("events/s")
    right.set_yscale("log")
    right.legend()
    right.set_title("throughput over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
