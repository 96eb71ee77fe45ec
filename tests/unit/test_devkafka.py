"""The local Kafka harness lays out nodes the way KRaft needs them."""

from __future__ import annotations

from pathlib import Path

from newsroom_notify.devkafka import LocalKafka


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_single_node_uses_replication_factor_one(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=1, port=29092)
    props = _props(cluster._properties(cluster.nodes[0]))
    assert cluster.bootstrap_servers == "127.0.0.1:29092"
    assert props["process.roles"] == "broker,controller"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{cluster.nodes[0].controller_port}"


def test_three_nodes_share_one_quorum_and_replicate_three_ways(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=3)
    all_props = [_props(cluster._properties(n)) for n in cluster.nodes]
    ports = {n.port for n in cluster.nodes} | {n.controller_port for n in cluster.nodes}
    assert len(ports) == 6
    assert len({p["controller.quorum.voters"] for p in all_props}) == 1
    assert [p["node.id"] for p in all_props] == ["1", "2", "3"]
    for props in all_props:
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"


def test_cluster_state_survives_reload(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=3)
    cluster._save()
    loaded = LocalKafka.load(tmp_path)
    assert loaded is not None
    assert loaded.bootstrap_servers == cluster.bootstrap_servers
    assert loaded.cluster_id == cluster.cluster_id
