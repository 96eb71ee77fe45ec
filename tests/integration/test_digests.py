"""README "Digests" on the real broker, with the worker's clock sped up 3600x (an hour per second)
once the story has been told on a stopped clock.

Subscribers in different time zones and frequencies follow an article in digest mode; comments
come in, one is marked spam before the digests are cut, and the worker is restarted in the
middle of the period. Every digest must hold exactly the comments that survived, once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from newsroom_notify.contract import events as ev
from tests.builders import article, comment, member, moderate, preferences, subscribe
from tests.integration.kafka_helpers import (
    WorkerProcess,
    barrier,
    drain,
    drain_until,
    publish_events,
    run,
    worker_env,
)

BEN = member("m-ben", "Ben Okoro")
HOURLY = member("m-hourly", "Hana Hourly", "hana@example.org")
TOKYO = member("m-tokyo", "Taro Yamada", "taro@example.org")
NEWYORK = member("m-ny", "Nia Young", "nia@example.org")
SPEED = 3600  # of the stopped clock (any speed > 1)
# The last worker runs the clock at 600x (ten virtual minutes a second): its own start-up then
# moves the clock by a few virtual hours, not by a whole daily period (at 3600x a 30 s start-up
# was more than a day: the fan-out of the article's activity then went to a later period than
# the recipient's other items, two digests). The daily cuts are 7-9 virtual hours after the
# start (42-54 real seconds); even a start-up slower than that stays within the same period.
RUN_SPEED = 600


def hour_from_now(zone: str, anchor: datetime, hours: int) -> int:
    """A local digest hour ``hours`` (virtual) hours after ``anchor`` in ``zone``."""
    return (anchor.astimezone(ZoneInfo(zone)) + timedelta(hours=hours)).hour


def running_from(virtual: datetime, real: datetime, speed: float) -> datetime:
    """The anchor of a clock of ``speed`` that reads ``virtual`` at the real instant ``real``
    (``Clock``: anchor + (real - anchor) * speed)."""
    return real - (virtual - real) / (speed - 1)


def test_digests_per_time_zone_and_frequency_survive_spam_and_a_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # The story is told on a stopped clock (its anchor far ahead: it reads the anchor until
    # then), across a restart; then the clock starts. No start-up has to fit a time budget.
    stopped_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    env = worker_env(
        kafka_bootstrap,
        tmp_path,
        {
            "NEWSROOM_DIGEST__CLOCK_SPEED": str(SPEED),
            "NEWSROOM_DIGEST__CLOCK_ANCHOR": stopped_at.isoformat(),
            "NEWSROOM_DIGEST__TICK_S": "0.25",
            "NEWSROOM_DIGEST__GRACE_S": str(2 * 3600),  # two virtual hours
        },
    )
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    # Daily periods end 7-9 virtual hours after the clock starts.
    tokyo_hour = hour_from_now("Asia/Tokyo", stopped_at, 8)
    ny_hour = hour_from_now("America/New_York", stopped_at, 9)
    recipients = ["m-hourly", "m-tokyo", "m-ny"]
    worker = WorkerProcess(env, tmp_path / "worker-1.log")
    worker.start()
    worker.wait_ready()
    try:
        publish_events(kafka_bootstrap, prefix, [article("a-1")])
        publish_events(
            kafka_bootstrap,
            prefix,
            [
                preferences("m-hourly", digest="hourly", timezone="UTC", digest_hour=0),
                preferences(
                    "m-tokyo", digest="daily", timezone="Asia/Tokyo", digest_hour=tokyo_hour
                ),
                preferences(
                    "m-ny", digest="daily", timezone="America/New_York", digest_hour=ny_hour
                ),
                subscribe(HOURLY, "article", "a-1"),
                subscribe(TOKYO, "article", "a-1"),
                subscribe(NEWYORK, "article", "a-1"),
                subscribe(NEWYORK, "commenter", "m-ben"),
            ],
        )
        barrier(kafka_bootstrap, prefix, recipients, "subscribed")
        publish_events(
            kafka_bootstrap, prefix, [comment(f"c{i}", BEN, f"Comment {i}") for i in range(1, 5)]
        )
        publish_events(kafka_bootstrap, prefix, [comment("spam", BEN, "Cheap watches")])
        publish_events(kafka_bootstrap, prefix, [moderate("spam", "spam")])
        barrier(kafka_bootstrap, prefix, recipients, "first-half")
    finally:
        assert worker.stop() == 0  # restart in the middle of the daily period
    worker = WorkerProcess(env, tmp_path / "worker-2.log")
    worker.start()
    worker.wait_ready()
    try:
        publish_events(
            kafka_bootstrap, prefix, [comment(f"c{i}", BEN, f"Comment {i}") for i in range(5, 8)]
        )
        barrier(kafka_bootstrap, prefix, recipients, "second-half")
    finally:
        assert worker.stop() == 0
    # The clock starts now, where it stood; the next worker cuts the periods that end.
    started = datetime.now(UTC)
    env["NEWSROOM_DIGEST__CLOCK_SPEED"] = str(RUN_SPEED)
    env["NEWSROOM_DIGEST__CLOCK_ANCHOR"] = running_from(stopped_at, started, RUN_SPEED).isoformat()
    worker = WorkerProcess(env, tmp_path / "worker-3.log")
    worker.start()
    worker.wait_ready()
    try:

        def both_dailies(records: list[Any]) -> bool:
            ids = {orjson.loads(r.value)["data"]["recipient"]["id"] for r in records}
            return {"m-tokyo", "m-ny"} <= ids

        run(drain_until(kafka_bootstrap, f"{prefix}newsroom.digests", both_dailies, timeout=120))
        # Then until the clock is past both cuts, their grace and an hour: nothing more is due.
        past = started + timedelta(hours=9 + 2 + 1) / RUN_SPEED
        while datetime.now(UTC) < past:
            run(drain_until(kafka_bootstrap, f"{prefix}newsroom.digests", lambda _: True, 1))
        records = run(drain(kafka_bootstrap, f"{prefix}newsroom.digests", expect=10_000, timeout=3))
    finally:
        assert worker.stop() == 0

    digests = [ev.DigestReady.model_validate(orjson.loads(r.value)) for r in records]
    ids = Counter(d.id for d in digests)
    assert [i for i, n in ids.items() if n > 1] == [], "a digest was emitted twice"
    by_recipient: dict[str, list[ev.DigestReady]] = {}
    for digest in digests:
        by_recipient.setdefault(digest.data.recipient.id, []).append(digest)
    expected = {f"c{i}" for i in range(1, 8)}

    def comments_in(ds: list[ev.DigestReady]) -> tuple[int, set[str]]:
        total = sum(d.data.total_comments for d in ds)
        seen = {i.comment.id for d in ds for a in d.data.articles for i in a.items}
        return total, seen

    # Daily subscribers: one digest each, every surviving comment counted once, no spam.
    for rid, zone, hour in (
        ("m-tokyo", "Asia/Tokyo", tokyo_hour),
        ("m-ny", "America/New_York", ny_hour),
    ):
        (daily,) = by_recipient[rid]
        assert daily.data.period.frequency == "daily"
        assert daily.data.period.end.astimezone(ZoneInfo(zone)).hour == hour
        (part,) = daily.data.articles
        assert part.new_comments == 7
        assert len(part.items) == 5
        assert {i.comment.id for i in part.items} <= expected
    # New York also follows Ben: his comments come as followed_commenter, the stronger reason.
    assert {i.reason for i in by_recipient["m-ny"][0].data.articles[0].items} == {
        "followed_commenter"
    }
    # Hourly: the comments spread over consecutive hourly digests, each counted exactly once.
    hourly = by_recipient["m-hourly"]
    assert all(d.data.period.frequency == "hourly" for d in hourly)
    assert len({d.data.period.start for d in hourly}) == len(hourly)
    total, seen = comments_in(hourly)
    assert total == 7
    assert seen <= expected
    for digest in hourly:
        (part,) = digest.data.articles
        assert len(part.items) == min(5, part.new_comments)
