"""Progress of a throughput phase, sampled from the broker until the group is done."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import sustained_rate
from bench.throughput.broker import Watch
from bench.throughput.workers import Service, cpu_seconds, machine_jiffies, vm_hwm_mb


@dataclass
class Phase:
    """Progress of one throughput phase, sampled from the broker."""

    name: str
    total_in: int
    series_in: list[tuple[float, float]] = field(default_factory=list)
    series_out: list[tuple[float, float]] = field(default_factory=list)
    done_s: float | None = None
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)
    system_cpu_s: dict[int, float] = field(default_factory=dict)  # of which in the kernel
    machine_busy: float | None = None  # share of all cores busy (any process) until done
    broker_cpu_s: float | None = None  # the local broker's CPU until done (if started here)

    def figures(self) -> dict[str, Any]:
        first_in = next((t for t, p in self.series_in if p > 0), None)
        first_out = next((t for t, p in self.series_out if p > 0), None)
        produced = self.series_out[-1][1] if self.series_out else 0
        last_change = next(
            (t for t, p in self.series_out if p >= produced), None
        )  # first time the final count was seen
        if first_out is not None:  # committed offsets lag up to a commit interval behind
            first_in = first_out if first_in is None else min(first_in, first_out)
        overall_in = (
            self.total_in / (self.done_s - first_in)
            if self.done_s and first_in is not None and self.done_s > first_in
            else None
        )
        overall_out = (
            produced / (last_change - first_out)
            if last_change and first_out is not None and last_change > first_out
            else None
        )
        busy = (self.done_s - first_in) if self.done_s and first_in is not None else None
        return {
            "input_events": self.total_in,
            "notifications": int(produced),
            "completed": self.done_s is not None,
            "first_progress_s": _round(first_in, 2),
            "done_s": _round(self.done_s, 2),
            # comment events fully processed (every stage done) per second of processing
            "input_per_s": _round(overall_in),
            # how fast the first stage took them off the input topic (10-90 % slope)
            "intake_per_s_sustained": _round(sustained_rate(self.series_in)),
            "notifications_per_s_sustained": _round(sustained_rate(self.series_out)),
            "notifications_per_s_overall": _round(overall_out),
            "peak_rss_mb": {str(k): round(v, 1) for k, v in self.peak_rss_mb.items()},
            "cpu_s": {str(k): round(v, 1) for k, v in self.cpu_s.items()},
            "system_cpu_s": {str(k): round(v, 1) for k, v in self.system_cpu_s.items()},
            # worker CPU (all processes) per comment event: steadier than rates on a shared box
            "cpu_ms_per_comment": _round(1000 * sum(self.cpu_s.values()) / self.total_in, 2),
            "machine_cpu_busy_percent": _round(
                100 * self.machine_busy if self.machine_busy is not None else None
            ),
            "broker_cpu_s": _round(self.broker_cpu_s) if self.broker_cpu_s else None,
            "cpu_percent_while_busy": {
                str(k): round(100 * v / busy, 0) for k, v in self.cpu_s.items() if busy
            },
        }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def follow(
    *,
    watch: Watch,
    service: Service,
    phase: Phase,
    inputs: str,
    outputs: str,
    internal: list[str],
    base_in: int,
    base_out: int,
    within_s: float,
    interval: float = 0.25,
) -> None:
    """Sample the group's progress until every input and internal record is processed."""
    started = time.monotonic()
    cpu0 = {pid: cpu_seconds(pid) or 0.0 for pid in service.pids()}
    sys0 = {pid: cpu_seconds(pid, system_only=True) or 0.0 for pid in service.pids()}
    broker0 = {pid: cpu_seconds(pid) or 0.0 for pid in service.broker_pids}
    busy0, total0 = machine_jiffies()
    settled = 0
    while time.monotonic() - started < within_s:
        committed = await watch.committed(service.group, [inputs, *internal])
        ends = await watch.end([outputs, *internal])
        now = time.monotonic() - started
        consumed = committed[inputs] - base_in
        phase.series_in.append((now, consumed))
        phase.series_out.append((now, ends[outputs] - base_out))
        for pid in service.pids():
            rss = vm_hwm_mb(pid)
            if rss is not None:
                phase.peak_rss_mb[pid] = max(phase.peak_rss_mb.get(pid, 0.0), rss)
            cpu = cpu_seconds(pid)
            if cpu is not None:
                phase.cpu_s[pid] = cpu - cpu0.get(pid, 0.0)
                phase.system_cpu_s[pid] = (cpu_seconds(pid, True) or 0.0) - sys0.get(pid, 0.0)
        lag = sum(ends[t] - committed[t] for t in internal)
        settled = settled + 1 if consumed >= phase.total_in and lag <= 0 else 0
        if settled == 1:
            phase.done_s = now
            busy, total = machine_jiffies()
            if total > total0:
                phase.machine_busy = (busy - busy0) / (total - total0)
            phase.broker_cpu_s = sum(
                (cpu_seconds(pid) or 0.0) - broker0[pid] for pid in service.broker_pids
            )
        if settled >= 3:
            return
        await asyncio.sleep(interval)
    phase.done_s = None
    print(f"  {phase.name}: not finished after {within_s:.0f}s", file=sys.stderr)


async def settle(watch: Watch, group: str, topics: list[str], within_s: float, label: str) -> float:
    """Wait until the group has committed every record of ``topics``; return the seconds."""
    started = time.monotonic()
    stable, lag = 0, -1
    while time.monotonic() - started < within_s:
        ends = await watch.end(topics)
        committed = await watch.committed(group, topics)
        lag = sum(ends[t] - committed[t] for t in topics)
        stable = stable + 1 if lag <= 0 else 0
        if stable >= 3:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{label}: still {lag} records behind after {within_s:.0f}s")
