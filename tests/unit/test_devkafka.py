"""The local Kafka harness lays out nodes the way KRaft needs them."""

from __future__ import annotations

import os
import socket
import string
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from newsroom_dev.kafka import (
    DEFAULT_POM,
    KafkaHarnessError,
    LocalKafka,
    ephemeral_ports,
    free_port,
    new_cluster_id,
)

URLSAFE_B64 = set(string.ascii_letters + string.digits + "-_")


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_the_harness_finds_the_pom_of_the_checkout() -> None:
    """`make install` fetches the broker's jars with deploy/local-kafka/pom.xml, found from the
    harness's own place in the checkout (services/dev/newsroom_dev/)."""
    root = Path(__file__).resolve().parents[2]
    assert root / "deploy" / "local-kafka" / "pom.xml" == DEFAULT_POM
    assert "<artifactId>kafka_2.13</artifactId>" in DEFAULT_POM.read_text()


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


def test_no_generated_cluster_id_can_be_read_as_an_option() -> None:
    # One raw draw in 64 starts with "-": 20 000 draws see that about 300 times.
    ids = [new_cluster_id() for _ in range(20_000)]
    assert all(not i.startswith("-") for i in ids)
    assert all(len(i) == 22 and set(i) <= URLSAFE_B64 for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_draw_starting_with_a_dash_is_drawn_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64url "-AAAAAAAAAAAAAAAAAAAAA"
    plain = uuid.UUID(bytes=b"\x10" + bytes(15))  # "EAAAAAAAAAAAAAAAAAAAAA"
    draws = iter([dash, dash, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    cluster = LocalKafka.create(tmp_path, size=1, port=29092)
    assert cluster.cluster_id == "EAAAAAAAAAAAAAAAAAAAAA"


def test_the_cluster_id_is_attached_to_its_option(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=1, port=29092)
    cluster.cluster_id = "-AAAAAAAAAAAAAAAAAAAAA"  # even an id from an older harness
    command = cluster.format_command(Path("/libs"), cluster.nodes[0])
    assert "--cluster-id=-AAAAAAAAAAAAAAAAAAAAA" in command
    assert "-t" not in command


def test_the_broker_runs_with_kafkas_own_jvm_options_and_the_format_tool_without(
    tmp_path: Path,
) -> None:
    """The broker as kafka-server-start.sh starts it (a fixed 1 GiB heap, G1 with 20 ms pauses:
    with a 128-512 MiB heap G1 marked it concurrently through a whole fan-out, on the cores
    the benchmarks share with the worker); the short-lived format tool without them."""
    cluster = LocalKafka.create(tmp_path, size=1, port=29092)
    broker = cluster.broker_command(Path("/libs"), cluster.nodes[0])
    assert broker[broker.index("kafka.Kafka") + 1] == str(cluster.nodes[0].properties_file)
    assert {"-Xms1g", "-Xmx1g", "-XX:MaxGCPauseMillis=20"} <= set(broker)
    assert "-XX:TieredStopAtLevel=1" not in broker
    tool = cluster.format_command(Path("/libs"), cluster.nodes[0])
    assert "-XX:TieredStopAtLevel=1" in tool
    assert not {"-Xmx1g", "-XX:MaxGCPauseMillis=20"} & set(tool)


def test_a_port_the_caller_fixed_is_never_moved_and_a_taken_one_is_refused(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = LocalKafka.create(tmp_path, size=1, port=port)
        with pytest.raises(KafkaHarnessError, match=f"port {port} is in use"):
            cluster.start(libs=tmp_path / "no-jars-needed")
    cluster.redraw_ports()
    assert cluster.nodes[0].port == port


def test_free_ports_are_drawn_below_the_range_outgoing_connections_use() -> None:
    """A port the kernel picks for a listener comes from the ephemeral range, which every
    outgoing connection draws from too: one of them took an API's port in a make test run."""
    ephemeral = ephemeral_ports()
    drawn = [free_port() for _ in range(200)]
    assert [p for p in drawn if p in ephemeral] == []
    assert all(1024 < p < 65536 for p in drawn)
    assert len(set(drawn)) > 150  # at random, not one port again and again


FAKE_MVN = """#!/bin/sh
# Stands in for Maven: logs the call, takes its time, writes one jar where it is told.
echo call >> "$MVN_LOG"
sleep 1
[ -n "$MVN_FAIL" ] && { echo "no network" >&2; exit 1; }
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) dir="${arg#-DoutputDirectory=}";; esac
done
mkdir -p "$dir" && echo jar > "$dir/kafka_2.13.jar"
"""


def _fetch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "NEWSROOM_KAFKA_CACHE": str(tmp_path / "cache"),
        "MVN_LOG": str(tmp_path / "mvn.log"),
        **extra,
    }


def _start_fetch(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsroom_dev.kafka", "fetch"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_checkouts_installing_at_once_fetch_the_jars_once(tmp_path: Path) -> None:
    """`make install` in a clone and in a worktree at the same time share the jar cache: one
    fetches, the other waits and finds the jars (both used to run Maven into one directory,
    and the loser deleted the winner's jars)."""
    env = _fetch_env(tmp_path)
    first, second = _start_fetch(env), _start_fetch(env)
    outputs = [proc.communicate(timeout=60) for proc in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    libs = {out.strip() for out, _err in outputs}
    assert len(libs) == 1
    jar_dir = Path(libs.pop())
    assert (jar_dir / "kafka_2.13.jar").read_text() == "jar\n"
    assert (jar_dir / ".complete").exists()
    assert (tmp_path / "mvn.log").read_text().splitlines() == ["call"]
    assert not [p for p in jar_dir.parent.iterdir() if p.name.endswith(".partial")]


def test_a_failed_fetch_leaves_nothing_a_later_install_would_take_for_jars(
    tmp_path: Path,
) -> None:
    env = _fetch_env(tmp_path, MVN_FAIL="1")
    _out, err = _start_fetch(env).communicate(timeout=60)
    assert "mvn failed" in err
    assert "no network" in err
    (version_dir,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in version_dir.iterdir()) == [".lock"]
    # What fetches killed midway left (no ``finally`` runs on SIGKILL; the old fixed name too).
    for stale in ("libs.k1ll3d.partial", "libs.partial"):
        (version_dir / stale).mkdir()
        (version_dir / stale / "half.jar").write_text("half")
    env.pop("MVN_FAIL")
    again = _start_fetch(env)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0
    assert (Path(out.strip()) / "kafka_2.13.jar").exists()
    assert sorted(p.name for p in version_dir.iterdir()) == [".lock", "libs"]
