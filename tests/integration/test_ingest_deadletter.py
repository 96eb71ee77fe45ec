"""README "Dead letters", on the real broker: bad records go to the dead-letter topic
byte-for-byte; good ones flow; no crash."""

from __future__ import annotations

from pathlib import Path

import orjson

from newsroom_dev.samples import sample_events
from tests.integration.kafka_helpers import WorkerProcess, drain, produce, run, worker_env


def test_bad_records_are_dead_lettered_and_the_stream_keeps_flowing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # DEBUG: the worker logs one canonical line per processed record, with its event id.
    env = worker_env(kafka_bootstrap, tmp_path, {"NEWSROOM_LOG_LEVEL": "DEBUG"})
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        worker.wait_ready()
        samples = sample_events()
        posted = samples["newsroom.comment.posted"]
        good = orjson.dumps(posted)
        article = posted["data"]["article_id"].encode()
        missing_field = orjson.dumps({**posted, "data": {**posted["data"], "author": None}})
        wrong_type = orjson.dumps({**posted, "type": "newsroom.comment.liked"})
        bad = [
            (article, good[:-17], [("trace", b"t-1")], "InvalidJson"),
            (article, b'{"id": "\xff\xfe"}', [], "InvalidUtf8"),
            (article, wrong_type, [], "UnknownEventType"),
            (article, missing_field, [], "SchemaViolation"),
            (article, b"x" * (2 * 1024 * 1024), [("big", b"1")], "RecordTooLarge"),
            (b"some-other-article", good, [], "KeyMismatch"),
            (article, b'["not", "an", "event"]', [], "NotACloudEvent"),
        ]
        records = []
        for i, (key, value, headers, _) in enumerate(bad):
            records.append((article, orjson.dumps({**posted, "id": f"good-{i}"}), []))
            records.append((key, value, headers))
        records.append((article, orjson.dumps({**posted, "id": "good-last"}), []))
        run(
            produce(
                kafka_bootstrap, prefix + "newsroom.comments", records, max_request_size=4 << 20
            )
        )

        dead = run(drain(kafka_bootstrap, prefix + "newsroom.deadletter", expect=len(bad)))
        # Every good record was processed: the worker logged each event id as accepted.
        log = worker.log_text()
        for i in range(len(bad)):
            assert f'"event_id": "good-{i}"' in log
        assert '"event_id": "good-last"' in log
        assert worker.proc is not None
        assert worker.proc.poll() is None, "worker stopped"
    finally:
        exit_code = worker.stop()

    assert exit_code == 0, worker.log_text()[-3000:]

    assert len(dead) == len(bad)
    by_class = {}
    for record in dead:
        headers = dict(record.headers)
        by_class[headers["newsroom.dlt.error.class"].decode()] = (record, headers)
    assert set(by_class) == {c for *_, c in bad}
    for key, value, original_headers, error_class in bad:
        record, headers = by_class[error_class]
        assert record.key == key
        assert record.value == value  # byte-for-byte, even the 2 MiB one
        for name, header_value in original_headers:
            assert headers[name] == header_value
        assert headers["newsroom.dlt.source.topic"] == (prefix + "newsroom.comments").encode()
        assert int(headers["newsroom.dlt.source.offset"]) >= 0
        assert int(headers["newsroom.dlt.source.partition"]) in range(4)
        assert headers["newsroom.dlt.consumer.group"] == env["NEWSROOM_APP_ID"].encode()
        assert headers["newsroom.dlt.error.message"]
        assert b"@" not in headers["newsroom.dlt.error.message"]
