"""Metrics recorded in bulk read as if each had been recorded alone: the notifications of one
fan-out record are observed together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.intents import Publish
from newsroom_notify.metrics import observe_many
from newsroom_notify.stream.stages import observe_latency

BUCKETS = (0.01, 0.1, 1.0, 10.0)


def samples(registry: CollectorRegistry) -> dict[str, float]:
    return {
        f"{s.name}{s.labels}": s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("amount", [0.0, 0.01, 0.05, 1.0, 9.9, 10.0, 11.0, 1e6])
@pytest.mark.parametrize("count", [1, 2, 1000])
def test_many_observations_at_once_are_what_as_many_observe_calls_record(
    amount: float, count: int
) -> None:
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    a = Histogram("h", "h", ["type"], buckets=BUCKETS, registry=one_by_one)
    b = Histogram("h", "h", ["type"], buckets=BUCKETS, registry=at_once)
    for _ in range(count):
        a.labels(type="x").observe(amount)
    observe_many(b.labels(type="x"), amount, count)
    expected, got = samples(one_by_one), samples(at_once)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def notification(nid: str) -> ev.NotificationCreated:
    return ev.NotificationCreated(
        id=nid,
        source="test",
        time=datetime.now(UTC),
        subject="c:a-1/c-1",
        data=ev.NotificationCreatedData(
            notification_id=nid,
            recipient=ev.Recipient(id="m-1", name="Ana", email=None),
            reason="reply",
            article=ev.ArticleRef(id="a-1", title="T", url="u"),
            comment=None,
            parent=None,
            unsubscribe_token="t",
        ),
    )


def test_each_instant_notification_of_a_record_is_one_latency_observation() -> None:
    labels = {"type": "newsroom.notification.created"}

    def recorded() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("newsroom_notification_latency_seconds_count", labels)
        total = REGISTRY.get_sample_value("newsroom_notification_latency_seconds_sum", labels)
        return count or 0.0, total or 0.0

    before = recorded()
    retraction = ev.NotificationRetracted(
        id="r-1",
        source="test",
        time=datetime.now(UTC),
        subject="c:a-1/c-1",
        data=ev.NotificationRetractedData(notification_id="n-0", recipient_id="m-1", cause="spam"),
    )
    intents = [Publish.of(notification(f"n-{i}")) for i in range(3)] + [Publish.of(retraction)]
    observe_latency(datetime.now(UTC) - timedelta(seconds=2), intents)
    count, total = recorded()
    assert count - before[0] == 3
    assert 3 * 2 <= total - before[1] < 3 * 3
