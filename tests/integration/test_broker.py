"""The real broker works for our clients: aiokafka round trip and a Faust agent with a table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from newsroom_dev.kafka import free_port
from tests.integration.kafka_helpers import create_topics, drain, produce, run, unique


def test_aiokafka_round_trip_through_real_broker(kafka_bootstrap: str) -> None:
    topic = unique("roundtrip")
    run(create_topics(kafka_bootstrap, [topic], partitions=3))
    sent = [(f"k{i % 5}".encode(), f"value-{i}".encode()) for i in range(50)]
    run(produce(kafka_bootstrap, topic, sent))

    got = run(drain(kafka_bootstrap, topic, expect=50))

    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    # Same key, same partition, order kept: what our article-keyed design relies on.
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append(record.value)
        partitions[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())
    for key, values in by_key.items():
        assert values == [v for k, v in sent if k == key]


def test_minimal_faust_app_with_table_counts_per_key(kafka_bootstrap: str, tmp_path: Path) -> None:
    source, sink = unique("words"), unique("counts")
    run(create_topics(kafka_bootstrap, [source, sink], partitions=2))
    env = {
        **os.environ,
        "COUNTER_APP_ID": unique("counter"),
        "COUNTER_BOOTSTRAP": kafka_bootstrap,
        "COUNTER_IN": source,
        "COUNTER_OUT": sink,
        "COUNTER_WEB_PORT": str(free_port()),
    }
    app = Path(__file__).parent / "apps" / "counter_app.py"
    log = (tmp_path / "counter.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(app), "worker", "-l", "info", "--without-web"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "Worker ready" not in (tmp_path / "counter.log").read_text(errors="replace"):
            assert proc.poll() is None, (tmp_path / "counter.log").read_text()
            assert time.monotonic() < deadline, "faust worker did not become ready"
            time.sleep(0.2)
        words = [b"kafka", b"faust", b"kafka", b"news", b"kafka", b"faust"]
        run(produce(kafka_bootstrap, source, [(w, b"") for w in words]))

        got = run(drain(kafka_bootstrap, sink, expect=len(words)))
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()

    finals: dict[bytes, int] = {}
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        finals[record.key] = int(record.value)
    assert len(got) == len(words)
    assert finals == {b"kafka": 3, b"faust": 2, b"news": 1}
