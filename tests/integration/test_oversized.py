"""A record too large to write, on a real worker and broker (issue 15 item 6): the input that
caused it is dead-lettered with the reason ``StateTooLarge``, the log says so without quoting
it, and the stream goes on (a later comment still notifies). Before, the write was retried
forever and no offset was committed again."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from newsroom_notify.contract import events as ev
from tests.builders import article, comment, member, subscribe
from tests.integration.kafka_helpers import WorkerProcess, drain, publish_events, run, worker_env

BEN = member("m-ben", "Ben Okoro")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
LIMIT = 8 * 1024


def test_a_comment_too_large_to_store_is_dead_lettered_and_the_rest_flows(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path, {"NEWSROOM_LIMITS__STATE_RECORD_BYTES": str(LIMIT)})
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    worker.wait_ready()
    huge = "Long-winded secret words. " * 700  # ~18 KB of text: its comment record is too large
    try:
        publish_events(kafka_bootstrap, prefix, [article("a-1")])
        publish_events(kafka_bootstrap, prefix, [subscribe(CAL, "article", "a-1", "instant")])
        # Cal's follow has reached the article's thread (poll its changelog) before comments.
        threads = f"{env['NEWSROOM_APP_ID']}-threads-changelog"
        deadline = time.monotonic() + 60
        while not any(
            b"m-cal" in (r.value or b"")
            for r in run(drain(kafka_bootstrap, threads, expect=10**6, timeout=1, settle=0))
        ):
            assert time.monotonic() < deadline, "Cal's follow never reached the thread"
        publish_events(
            kafka_bootstrap,
            prefix,
            [comment("c-huge", BEN, huge[:19_000]), comment("c-after", BEN, "Short and sweet")],
        )
        dead = run(drain(kafka_bootstrap, f"{prefix}newsroom.deadletter", expect=1, timeout=60))
        notes = run(drain(kafka_bootstrap, f"{prefix}newsroom.notifications", expect=1, timeout=60))
    finally:
        assert worker.stop() == 0
    (record,) = dead
    headers = dict(record.headers)
    assert headers["newsroom.dlt.error.class"] == b"StateTooLarge"
    assert huge[:50].encode() in (record.value or b"")  # the original record, byte for byte
    created = [ev.NotificationCreated.model_validate(orjson.loads(r.value)) for r in notes]
    assert [
        (n.data.recipient.id, n.data.comment.id if n.data.comment else None) for n in created
    ] == [("m-cal", "c-after")]
    log = worker.log_text()
    assert "too large" in log
    assert "secret words" not in log
