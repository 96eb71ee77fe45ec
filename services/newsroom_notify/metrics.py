"""Prometheus metrics of the service (served at ``/metrics`` by the worker's web server, and
by ``metrics_app`` on the stand-alone API's and the mailer's internal ports)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_CONSUMED = Counter(
    "newsroom_events_consumed_total",
    "Input records consumed, by topic role and outcome (ok or deadlettered).",
    ["topic", "outcome"],
)
BATCH_RECORDS = Histogram(
    "newsroom_batch_records",
    "Records an agent handled as one batch (those already fetched when it started it).",
    ["agent"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000),
)
DEAD_LETTERS = Counter(
    "newsroom_deadletters_total",
    "Records sent to the dead-letter topic, by error class.",
    ["error_class"],
)
NOTIFICATIONS = Counter(
    "newsroom_notifications_total",
    "Events published on the notifications topic, by type and reason.",
    ["type", "reason"],
)
REWINDS = Counter(
    "newsroom_consumer_rewinds_total",
    "Partitions sought back because a fetch returned records beyond the position (no record "
    "is skipped; see stream.faust_ext.continuity).",
    ["topic"],
)
UNDELIVERED = Counter(
    "newsroom_undelivered_records_total",
    "Records the producer gave up on after its retries; the worker stops committing and "
    "crashes, so a restart processes their input again.",
)
DIGESTS = Counter(
    "newsroom_digests_total",
    "Digests published on the digests topic, by schedule (hourly, daily, weekly).",
    ["schedule"],
)
LATENCY = Histogram(
    "newsroom_notification_latency_seconds",
    "Event time of the comment (or mention) to its instant notification being published.",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """Record ``count`` observations of ``amount`` in a histogram (a labelled child): what
    ``observe(amount)`` called ``count`` times records (the same counts; the sum to within
    floating-point rounding), in one step. The notifications of one fan-out record share
    their latency, and a thousand ``observe`` calls cost 1.5 ms."""
    if count == 1:
        histogram.observe(amount)
        return
    histogram._sum.inc(amount * count)
    for bucket, bound in zip(histogram._buckets, histogram._upper_bounds, strict=True):
        if amount <= bound:
            bucket.inc(count)
            break


TABLE_KEYS = Gauge(
    "newsroom_table_keys",
    "Keys held by this worker in each state table (active partitions; sampled).",
    ["table"],
)
CONSUMER_LAG = Gauge(
    "newsroom_consumer_lag",
    "Records between the committed offset and the end of each assigned partition (sampled).",
    ["topic", "partition"],
)
OVERSIZED = Counter(
    "newsroom_oversized_records_total",
    "Records the service did not write because they were larger than "
    "NEWSROOM_LIMITS__STATE_RECORD_BYTES or the broker refused them as too large, by where "
    "(table: a state write, its input dead-lettered; send: a message to a stage or output "
    "topic, its input dead-lettered; changelog: a changelog record left out; delivery: a "
    "record the broker refused after it was sent).",
    ["where"],
)
CAPPED = Counter(
    "newsroom_state_capped_total",
    "Times a per-key state record reached its cap (docs/security.md: bounded state), by record.",
    ["record"],
)

# The mailer (`newsroom-notify mailer`, served on its own /metrics port).
MAILER_MESSAGES = Counter(
    "newsroom_mailer_messages_total",
    "Notifications and digests the mailer handled, by kind (notification, digest) and outcome "
    "(sent, skipped_duplicate, skipped_retracted, skipped_no_address, failed: dead-lettered).",
    ["kind", "outcome"],
)
MAILER_RETRIES = Counter(
    "newsroom_mailer_retries_total",
    "SMTP tries that failed transiently (4xx, connection, timeout) and were tried again.",
)
MAILER_RETRACTED_AFTER_SEND = Counter(
    "newsroom_mailer_retractions_after_send_total",
    "Retractions of notifications the mailer had already sent (nothing can be done; logged).",
)
MAILER_DELIVERY = Histogram(
    "newsroom_mailer_delivery_seconds",
    "Time of the notification or digest event to the SMTP server accepting its mail.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)


def metrics_app() -> web.Application:
    """An aiohttp application serving this process's metrics at ``/metrics`` (for an internal
    port: the stand-alone API's and the mailer's)."""

    async def metrics(_: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app
