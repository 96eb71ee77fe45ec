"""The local Kafka harness: a port taken after it was chosen is drawn again; a format says why."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from newsroom_dev.kafka import KafkaHarnessError, LocalKafka, fetch_jars
from tests.integration.kafka_helpers import (
    WorkerProcess,
    create_topics,
    run,
    unique,
    worker_env,
)


def test_a_port_taken_after_it_was_chosen_is_drawn_again(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=1)
    with socket.socket() as squatter:  # another process binds the port free_port() chose
        squatter.bind(("127.0.0.1", cluster.nodes[0].controller_port))
        squatter.listen()
        taken = cluster.nodes[0].controller_port
        try:
            cluster.start()
            assert cluster.running()
            assert cluster.nodes[0].controller_port != taken
            run(create_topics(cluster.bootstrap_servers, [unique("harness")]))
        finally:
            cluster.stop()
    assert "Address already in use" in cluster.nodes[0].log_file.read_text()


def test_a_failed_format_says_why_and_is_not_retried(tmp_path: Path) -> None:
    cluster = LocalKafka.create(tmp_path, size=1)
    data = cluster.nodes[0].directory / "data"  # the node's log dir, already taken by a file
    data.parent.mkdir(parents=True)
    data.write_text("not a directory")
    with pytest.raises(KafkaHarnessError) as error:
        cluster.format(fetch_jars())
    command, output = str(error.value).split("\n", 1)
    assert "format of node 1 failed" in command
    assert f"--cluster-id={cluster.cluster_id}" in command
    assert str(data) in output, "the tool's own words say which directory failed"


def test_a_worker_whose_web_port_was_taken_starts_on_another(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        env = worker_env(kafka_bootstrap, tmp_path, {"NEWSROOM_WEB_PORT": str(taken)})
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.start()
        try:
            worker.wait_ready()
            port = int(worker.env["NEWSROOM_WEB_PORT"])
            assert port != taken
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                assert r.status == 200
        finally:
            assert worker.stop() == 0
    assert "address already in use" in worker.log_text().lower()
