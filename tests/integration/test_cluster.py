"""The harness's 3-node KRaft cluster: replicated writes with acks=all, clean stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from newsroom_dev.kafka import LocalKafka, _alive
from tests.integration.kafka_helpers import create_topics, drain, produce, run

pytestmark = pytest.mark.cluster


async def _describe(bootstrap: str, topic: str, within_s: float = 30.0) -> list[dict[str, object]]:
    """The topic's partitions, once the broker that answers knows them (metadata propagates
    between brokers; under load a just-created topic can look empty on another node)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + within_s
        while True:
            (description,) = await admin.describe_topics([topic])
            partitions = list(description["partitions"])
            if partitions or time.monotonic() > deadline:
                return partitions
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def test_three_node_cluster_replicates_and_stops_cleanly(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path / "cluster", size=3)
    cluster.start()
    try:
        assert cluster.running()
        bootstrap = cluster.bootstrap_servers
        run(create_topics(bootstrap, ["replicated"], partitions=3, replication=3))
        partitions = run(_describe(bootstrap, "replicated"))
        assert len(partitions) == 3
        assert all(len(p["replicas"]) == 3 for p in partitions)  # type: ignore[arg-type]

        records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(30)]
        run(produce(bootstrap, "replicated", records))  # acks=all, idempotent
        got = run(drain(bootstrap, "replicated", expect=30))
        assert sorted((r.key, r.value) for r in got) == sorted(records)
    finally:
        pids = [n.pid for n in cluster.nodes]
        cluster.stop()
    assert not any(pid is not None and _alive(pid) for pid in pids)
    for node in cluster.nodes:
        assert "Kafka Server started" in node.log_file.read_text()
