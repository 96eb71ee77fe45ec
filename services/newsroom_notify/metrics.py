"""Prometheus metrics of the service (served at ``/metrics`` by the worker's web server)."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_CONSUMED = Counter(
    "newsroom_events_consumed_total",
    "Input records consumed, by topic role and outcome (ok or deadlettered).",
    ["topic", "outcome"],
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
    "is skipped; see stream.continuity).",
    ["topic"],
)
