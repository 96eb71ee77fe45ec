"""The workload, the service's topics and the setup phase (state measured afterwards)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.throughput.broker import Record, Watch, create_topics, publish, records_of
from bench.throughput.sampling import settle
from bench.throughput.workers import Service, dir_bytes, vm_hwm_mb
from newsroom_dev.workload import BenchWorkload, generate_bench
from newsroom_notify.stream.admin import internal_topic_names, topic_layout


@dataclass
class Sizes:
    articles: int
    members: int
    guests: int
    hot_followers: int
    comments: int
    rate: float
    duration: float
    partitions: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Sizes:
        quick = args.quick
        return cls(
            articles=args.articles or (200 if quick else 2000),
            members=args.members or (300 if quick else 2000),
            guests=args.guests or (50 if quick else 500),
            hot_followers=args.hot_followers or (2000 if quick else 10_000),
            comments=args.comments or (1000 if quick else 3000),
            rate=args.rate,
            duration=args.duration or (5.0 if quick else 20.0),
            partitions=args.partitions,
        )


@dataclass
class Run:
    """The workload as records, the service and its topic names."""

    bootstrap: str
    sizes: Sizes
    workload: BenchWorkload
    service: Service
    batches: dict[str, list[Record]]
    setup: list[Record]
    confirmations: list[Record]

    def latency_batch(self, kind: str, n: int, count: int | None) -> list[Record]:
        """New comments (never processed before) for latency run ``n``: ``count`` of them, or
        ``--rate`` x ``--duration``."""
        if count is None:
            count = int(self.sizes.rate * self.sizes.duration)
        name = f"{kind}-{n}"
        if name not in self.batches:
            self.batches[name] = records_of(self.workload.comments(count), self.service.prefix)
        return self.batches[name]

    @property
    def topics(self) -> dict[str, str]:
        settings = self.service.settings()
        t = settings.topics
        return {
            "articles": t.name(t.articles),
            "comments": t.name(t.comments),
            "subscriptions": t.name(t.subscriptions),
            "notifications": t.name(t.notifications),
            "limit_in": f"{self.service.prefix}bench.limit-in",
            "limit_out": f"{self.service.prefix}bench.limit-out",
            "limit_notify": f"{self.service.prefix}bench.limit-notifications",
        }

    @property
    def internal(self) -> list[str]:
        return internal_topic_names(self.service.settings())

    @property
    def consumed(self) -> list[str]:
        """Every topic the service's group consumes."""
        t = self.topics
        return [t["articles"], t["comments"], t["subscriptions"], *self.internal]


def prepare(bootstrap: str, sizes: Sizes, tmp: Path, seed: int) -> tuple[Run, dict[str, Any]]:
    """Generate the workload and encode it."""
    started = time.monotonic()
    workload = generate_bench(
        seed=seed,
        articles=sizes.articles,
        members=sizes.members,
        guests=sizes.guests,
        hot_followers=sizes.hot_followers,
    )
    service = Service(bootstrap, tmp, sizes.partitions)
    prefix = service.prefix
    batches = {
        "one": records_of(workload.comments(sizes.comments), prefix),
        "two": records_of(workload.comments(sizes.comments), prefix),
        "two_no_standby": records_of(workload.comments(sizes.comments), prefix),
    }
    run = Run(
        bootstrap=bootstrap,
        sizes=sizes,
        workload=workload,
        service=service,
        batches=batches,
        setup=records_of(workload.setup, prefix),
        confirmations=records_of(workload.confirmations, prefix),
    )
    one = batches["one"]
    figures = {
        "seed": seed,
        "setup_events": len(run.setup) + len(run.confirmations),
        "subscriptions": workload.subscriptions,
        "hot_article_digest_followers": workload.hot_followers,
        "comment_events_per_batch": len(one),
        "mean_comment_record_bytes": round(sum(len(k) + len(v) for _, k, v in one) / len(one), 1),
        "generate_s": round(time.monotonic() - started, 1),
    }
    print(
        f"workload: {figures['setup_events']} setup events ({workload.subscriptions} "
        f"subscriptions), comment batches of {len(one)} events, in {figures['generate_s']}s"
    )
    return run, figures


async def make_topics(run: Run) -> None:
    """The service's topics and the limit's; ``LogAppendTime`` on the articles, comments and
    notifications topics and on the stages' own topics (the latency's per-hop figures; the
    service reads no record timestamp)."""
    layout = topic_layout(run.service.settings())
    topics = run.topics
    for name in (
        topics["articles"],
        topics["comments"],
        topics["notifications"],
        *run.internal,
    ):
        layout[name]["message.timestamp.type"] = "LogAppendTime"
    layout[topics["limit_in"]] = dict(layout[topics["comments"]])
    layout[topics["limit_out"]] = dict(layout[topics["notifications"]])
    layout[topics["limit_notify"]] = dict(layout[topics["notifications"]])
    await create_topics(run.bootstrap, layout, run.sizes.partitions)


async def run_setup(run: Run, watch: Watch, within_s: float) -> dict[str, Any]:
    """One worker processes the setup, then the confirmations; stopped afterwards."""
    service = run.service
    started = time.monotonic()
    service.start(1)
    await service.ready()
    await publish(run.bootstrap, run.setup)
    await settle(watch, service.group, run.consumed, within_s, "setup")
    await publish(run.bootstrap, run.confirmations)
    await settle(watch, service.group, run.consumed, within_s, "confirmations")
    seconds = time.monotonic() - started
    rss = {str(pid): round(vm_hwm_mb(pid) or 0.0, 1) for pid in service.pids()}
    service.stop()
    print(f"setup processed in {seconds:.1f}s")
    events = len(run.setup) + len(run.confirmations)
    return {
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds, 1),
        "peak_rss_mb": rss,
    }


def state_figures(
    service: Service, workload: BenchWorkload, broker_dir: Path | None
) -> dict[str, Any]:
    """Bytes of state after the setup, per subscription (the worker is stopped: flushed)."""
    data = service.data_dir(0)
    rocks_live = dir_bytes(data, (".sst", ".log"))
    changelog = None
    if broker_dir is not None:
        changelog = sum(
            dir_bytes(d, (".log",))
            for d in broker_dir.rglob(f"{service.group}-*-changelog-*")
            if d.is_dir()
        )
    n = workload.subscriptions
    return {
        "subscriptions": n,
        "rocksdb_bytes": rocks_live,
        "rocksdb_bytes_per_subscription": round(rocks_live / n, 1),
        "data_dir_bytes": dir_bytes(data),
        "changelog_bytes": changelog,
        "changelog_bytes_per_subscription": round(changelog / n, 1) if changelog else None,
    }
