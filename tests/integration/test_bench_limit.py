"""``make bench``'s limit on a real broker, read over several passes of its input batch (its
figure then covers seconds, not a fraction of one): every pass is copied, and the limit writing
the outputs writes all of them again for each pass, in order, keyed like the service's."""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

from bench.throughput.phases.limit import run_limit

from tests.integration.kafka_helpers import create_topics, drain, produce, run, unique

HEADERS = [("content-type", b"application/cloudevents+json")]


def test_the_limit_copies_every_pass_and_writes_the_outputs_once_per_pass(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    source, copy, notify = unique("limit-in"), unique("limit-out"), unique("limit-notify")
    run(create_topics(kafka_bootstrap, [source, copy, notify], partitions=3))
    batch = [(f"article-{i % 7}".encode(), f"comment {i}".encode(), HEADERS) for i in range(40)]
    passes = 3
    run(produce(kafka_bootstrap, source, batch * passes))
    # what "the service" wrote for the batch: more records than inputs, under other keys
    outputs = [
        (f"reader-{i % 11}".encode(), f"notification {i}".encode(), HEADERS) for i in range(90)
    ]
    pickled = tmp_path / "outputs.pickle"
    pickled.write_bytes(pickle.dumps(outputs * passes))

    copied = run_limit(kafka_bootstrap, source, copy, len(batch) * passes, 60)
    written = run_limit(kafka_bootstrap, source, notify, len(batch) * passes, 60, outputs=pickled)

    assert (copied["copied"], copied["written"]) == (120, 120)
    assert (written["copied"], written["written"]) == (120, 270)
    assert written["rate"] > 0
    assert written["written_per_s"] > written["rate"]
    copies = run(drain(kafka_bootstrap, copy, 120))
    assert sorted(r.value for r in copies) == sorted(v for _, v, _ in batch * passes)
    notifications = run(drain(kafka_bootstrap, notify, 270))
    per_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    for record in notifications:  # one partition per key: in the order written
        per_key[record.key].append(record.value)
    expected: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    for key, value, _ in outputs * passes:
        expected[key].append(value)
    assert per_key == expected
