"""The breaking-news phase: one article in a section with many instant followers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from bench.throughput.broker import Record, Watch, producer, publish, records_of
from bench.throughput.sampling import _round, settle
from bench.throughput.setup import Run
from bench.throughput.workers import cpu_seconds, vm_hwm_mb, vm_rss_mb
from newsroom_dev.builders import article, member, subscribe
from newsroom_dev.workload import TOKEN_KEY
from newsroom_notify.contract import codec
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.keys import entity_key
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import FollowChange
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.stream.stages import key_partition


def breaking_news_records(
    prefix: str, followers: int, seed: int, articles: int
) -> tuple[list[Record], list[Record]]:
    """``followers`` members subscribed (instant) to one section, and ``articles`` articles
    published in it (one per measurement): their journalist has no followers of their own, so
    every notification is ``new_article`` from the section."""
    section = f"breaking-{seed}"
    subscriptions = records_of(
        (
            subscribe(member(f"bn-{i}", f"Reader {i}"), "section", section, "instant")
            for i in range(followers)
        ),
        prefix,
    )
    alerts = records_of(
        [
            article(f"a-breaking-{seed}-{n}", journalist=f"j-breaking-{seed}", section=section)
            for n in range(articles)
        ],
        prefix,
    )
    return subscriptions, alerts


def follower_state(
    followers: int, section: str, partitions: int, changelogs: dict[str, str]
) -> Iterator[tuple[str, int, bytes, bytes]]:
    """What ``followers`` members subscribed (instant) to ``section`` leave in the tables, as
    changelog records (topic, partition, key, value): each member's profile (the inbox's, in
    their key's partition) as the domain writes it for the first member (their ``traces``,
    read only by an erasure, are left out: half the records to recover), and the
    section's follower chunks and head built by the follows stage's own code
    (``FollowsStage.on_follow_change``): the storage the workers then recover is the real one."""
    pipe = LocalPipeline(tokens=Tokens([TOKEN_KEY], 3600, 3600))
    pipe.feed([subscribe(member("bn-0", "Reader 0"), "section", section, "instant")])
    profile = pipe.tables["profiles"]["bn-0"].model_dump_json()
    follows = FollowsStage(heads={}, chunks={}, fanout={})
    entity = entity_key("section", section)
    for i in range(followers):
        sid = f"bn-{i}"
        part = key_partition(sid, partitions)
        key = sid.encode()
        value = profile.replace('"bn-0"', f'"{sid}"').replace('"Reader 0"', f'"Reader {i}"')
        yield changelogs["profiles"], part, key, value.encode()
        change = FollowChange.model_construct(
            subscriber_id=sid,
            scope="section",
            target=section,
            delivery="instant",
            active=True,
            schedule=None,
        )
        follows.on_follow_change(entity, change)
    part = key_partition(entity, partitions)
    for name, chunk in follows.chunks.items():
        yield changelogs["follower-chunks"], part, name.encode(), chunk.model_dump_json().encode()
    for name, head in follows.heads.items():
        yield changelogs["follower-heads"], part, name.encode(), head.model_dump_json().encode()


async def seed_followers(run: Run, followers: int, section: str) -> int:
    """Write ``follower_state`` straight to the (existing) changelog topics; return the count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    group = run.service.group
    changelogs = {
        table: f"{group}-{table}-changelog"
        for table in ("profiles", "follower-chunks", "follower-heads")
    }
    missing = [name for name in changelogs.values() if name not in names]
    if missing:
        raise RuntimeError(f"changelog topics missing: {missing}")
    prod = producer(run.bootstrap, linger_ms=20)
    await prod.start()
    count = 0
    try:
        pending = []
        records = follower_state(followers, section, run.sizes.partitions, changelogs)
        for topic, partition, key, value in records:
            pending.append(await prod.send(topic, key=key, value=value, partition=partition))
            count += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return count


async def breaking_news_phase(
    run: Run,
    watch: Watch,
    *,
    followers: int,
    seed: int,
    within_s: float,
    workers: list[str],
    seeding: str = "subscribe",
) -> dict[str, Any]:
    """``followers`` instant followers of a section (not timed): subscribed through the
    pipeline (``seeding`` "subscribe", one worker), or their profiles and the section's
    follower chunks written straight to the changelogs the workers recover (``changelog``);
    then, for each run of ``workers`` (``worker_runs``: a count, with the settings' standby
    replicas or none), that many workers, ready, and one article in the section: seconds from
    its append to the last notification's append (both LogAppendTime), the workers' RSS
    before and at their peak, and their CPU; by run in ``by_workers``."""
    service = run.service
    section = f"breaking-{seed}"
    service.start(1)
    await service.ready()
    started = time.monotonic()
    if seeding == "changelog":
        service.stop()  # it created the changelog topics; its tables recover what is written
        written = await seed_followers(run, followers, section)
        alerts = breaking_news_records(service.prefix, 0, seed, len(workers))[1]
        how = f"written straight to the changelogs ({written} records)"
    else:
        subscriptions, alerts = breaking_news_records(service.prefix, followers, seed, len(workers))
        await publish(run.bootstrap, subscriptions)
        await settle(watch, service.group, run.consumed, within_s, "breaking-news followers")
        service.stop()
        how = "subscribed"
    seeded_s = time.monotonic() - started
    print(f"breaking news: {followers} section followers {how} in {seeded_s:.1f}s (not timed)")
    by_workers: dict[str, Any] = {}
    for run_name, alert in zip(workers, alerts, strict=True):
        count, overrides = worker_run(run_name)
        service.start(count, overrides)
        ready_s = await service.ready(within_s)
        print(f"breaking news: {describe_run(run_name)} ready in {ready_s:.1f}s")
        try:
            figures = await breaking_news_alert(run, alert, followers, within_s)
        finally:
            service.stop()
        by_workers[run_name] = figures
        print(
            f"breaking news, {describe_run(run_name)}: {figures['notifications']} of {followers} "
            f"notifications ({figures['repeated_notifications']} repeated), the last "
            f"{figures['seconds']}s after the article; RSS "
            f"{figures['rss_before_mb']} MiB before, at most {figures['max_rss_during_mb']} "
            f"MiB during, peak {figures['peak_rss_mb']} MiB"
        )
    first = by_workers[workers[0]]
    return {
        "followers": followers,
        "seeding": seeding,
        "seeding_s": round(seeded_s, 1),
        **first,
        "by_workers": by_workers,
    }


NO_STANDBY = "_no_standby"  # a run's name: a count, then this for no standby replicas
# The runs the issue's targets judge (report.targets), and ``--breaking-workers``'s default.
# Two workers with standby replicas ("2") are left out of ``make bench``: a third million,
# a third more of its time, for a figure the targets do not judge.
JUDGED_RUNS = ("1", "2" + NO_STANDBY)


def worker_runs(value: str) -> list[str]:
    """``--breaking-workers``: comma-separated runs, each a count of workers ("2": with the
    settings' standby replicas, one by default) or a count and ``_no_standby`` ("2_no_standby":
    ``NEWSROOM_STANDBY_REPLICAS=0``); ``ValueError`` for anything else."""
    runs = value.split(",")
    for run_name in runs:
        count = run_name.removesuffix(NO_STANDBY)
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"not a run of workers: {run_name!r} (e.g. 1, 2, 2{NO_STANDBY})")
    return runs


def worker_run(run_name: str) -> tuple[int, dict[str, str] | None]:
    """The count of workers of a run (``worker_runs``) and the settings it overrides."""
    if run_name.endswith(NO_STANDBY):
        return int(run_name.removesuffix(NO_STANDBY)), {"NEWSROOM_STANDBY_REPLICAS": "0"}
    return int(run_name), None


def describe_run(run_name: str) -> str:
    """A run as printed: "2 worker(s)", "2 worker(s), no standby"."""
    count, overrides = worker_run(run_name)
    return f"{count} worker(s)" + (", no standby" if overrides else "")


@dataclass
class RssWatch:
    """The workers' memory during a fan-out, sampled at each look at its progress."""

    pids: list[int]
    followers: int
    peak: float  # the largest VmHWM (start-up included)
    during: float  # the largest VmRSS of one worker since the article
    at_half: float | None = None  # the largest VmRSS once half the followers were notified
    after_half: float | None = None  # the largest VmRSS of one worker sampled after that
    series: list[tuple[int, int, float]] = field(default_factory=list)  # every 10 s
    started: float = field(default_factory=time.monotonic)

    @property
    def second_half_growth(self) -> float | None:
        """What the largest worker's RSS grew by after half the followers were notified (None
        if no sample came after the one that saw half of them)."""
        if self.at_half is None or self.after_half is None:
            return None
        return self.after_half - self.at_half

    def sample(self, notified: int) -> None:
        """Sample the workers' RSS now that ``notified`` followers were notified."""
        rss = [vm_rss_mb(pid) or 0.0 for pid in self.pids]
        self.peak = max([self.peak] + [vm_hwm_mb(pid) or 0.0 for pid in self.pids])
        self.during = max([self.during, *rss])
        if self.at_half is not None:  # samples after the one that saw half the followers
            self.after_half = max(self.after_half or 0.0, *rss)
        elif 2 * notified >= self.followers:
            self.at_half = max(rss)
        elapsed = time.monotonic() - self.started
        if elapsed >= 10 * (len(self.series) + 1):  # RSS against progress, every 10 s
            self.series.append((round(elapsed), notified, round(sum(rss), 1)))
            print(f"  {elapsed:.0f}s: {notified} notifications, workers' RSS {sum(rss):.0f} MiB")


async def breaking_news_alert(
    run: Run, alert: Record, followers: int, within_s: float
) -> dict[str, Any]:
    """Publish ``alert`` (an article) to the ready workers; follow its notifications."""
    topics, pids = run.topics, run.service.pids()
    rss_before = max(vm_rss_mb(pid) or 0.0 for pid in pids)
    hwm_before = max(vm_hwm_mb(pid) or 0.0 for pid in pids)
    cpu0 = {pid: cpu_seconds(pid) or 0.0 for pid in pids}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    watched = [TopicPartition(topics["notifications"], p) for p in range(run.sizes.partitions)]
    consumer.assign(watched)
    await consumer.seek_to_end(*watched)
    for tp in watched:
        await consumer.position(tp)
    aid = orjson.loads(alert[2])["data"]["article_id"]
    prod = producer(run.bootstrap)
    await prod.start()
    try:
        meta = await (
            await prod.send(
                alert[0], key=alert[1], value=alert[2], headers=[codec.CONTENT_TYPE_HEADER]
            )
        )
    finally:
        await prod.stop()
    appended_ms = meta.timestamp
    # At-least-once: a rebalance (a busy machine can miss a heartbeat) repeats notifications
    # with the same id; the figure counts each id once and reports the repeats apart.
    seen: set[str] = set()
    repeats, last_ms = 0, None
    deadline = time.monotonic() + within_s
    rss = RssWatch(pids, followers, peak=hwm_before, during=rss_before)
    try:
        while len(seen) < followers and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    value = orjson.loads(record.value)
                    data = value.get("data", {})
                    if (
                        value.get("type") == "newsroom.notification.created"
                        and data.get("article", {}).get("id") == aid
                    ):
                        if data["notification_id"] in seen:
                            repeats += 1
                            continue
                        seen.add(data["notification_id"])
                        last_ms = max(last_ms or 0, record.timestamp)
            rss.sample(len(seen))
    finally:
        await consumer.stop()
    cpu = sum((cpu_seconds(pid) or 0.0) - cpu0[pid] for pid in pids)
    count = len(seen)
    seconds = (last_ms - appended_ms) / 1000 if last_ms is not None else None
    return {
        "notifications": count,
        "completed": count >= followers,
        "repeated_notifications": repeats,
        "seconds": _round(seconds, 2),
        "notifications_per_s": _round(count / seconds) if seconds else None,
        "rss_before_mb": _round(rss_before),
        "peak_rss_before_mb": _round(hwm_before),  # VmHWM: start-up and recovery included
        "peak_rss_mb": _round(rss.peak),
        # the largest VmRSS sampled (every 0.5 s) from the article to the last notification:
        # what the fan-out itself held, without start-up and recovery
        "max_rss_during_mb": _round(rss.during),
        # Flat memory: what the largest worker's RSS grew by while the second half of the
        # followers were notified (start-up, recovery and RocksDB's first fill left out).
        "rss_growth_second_half_mb": _round(rss.second_half_growth),
        "rss_series": rss.series,  # [seconds, notifications so far, VmRSS of the workers (MiB)]
        "worker_cpu_s": _round(cpu),
        "cpu_ms_per_notification": _round(1000 * cpu / count, 3) if count else None,
    }
