"""Dead letters on the wire: the headers that say why a record was rejected.

A dead letter keeps the original key, value and headers byte-for-byte and appends headers
saying why (modelled on Kafka Connect's ``__connect.errors.*`` and Spring's ``kafka_dlt-*``):

==============================  =====================================================
header                          value (UTF-8)
==============================  =====================================================
``newsroom.dlt.error.class``    an ``ErrorClass`` (``InvalidJson``, ``SchemaViolation``...)
``newsroom.dlt.error.message``  short reason, never containing record values
``newsroom.dlt.source.topic``   topic the record was consumed from
``newsroom.dlt.source.partition``  its partition (decimal)
``newsroom.dlt.source.offset``  its offset (decimal)
``newsroom.dlt.consumer.group`` consumer group (the app id) that rejected it
``newsroom.dlt.failed.at``      RFC 3339 UTC time of the rejection
==============================  =====================================================

Part of the contract (the AsyncAPI document describes them); written by the worker
(``stream.deadletter``) and by the mailer alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from newsroom_notify.contract.codec import Rejected

HEADER_PREFIX = "newsroom.dlt."

REASON_HEADERS = (
    "error.class",
    "error.message",
    "source.topic",
    "source.partition",
    "source.offset",
    "consumer.group",
    "failed.at",
)
"""The headers a dead letter gains, each after ``HEADER_PREFIX``, in this order."""


class RawRecord(Protocol):
    """What we need of a consumed record (Faust's ``Message`` and aiokafka's record fit)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


def dead_letter_headers(
    record: RawRecord, rejected: Rejected, group: str, now: datetime | None = None
) -> list[tuple[str, bytes]]:
    """The original headers followed by the ``newsroom.dlt.*`` headers."""
    original = list(
        record.headers.items() if isinstance(record.headers, dict) else record.headers or []
    )
    failed_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    why = dict(
        zip(
            REASON_HEADERS,
            (
                str(rejected.error_class),
                rejected.message,
                record.topic,
                str(record.partition),
                str(record.offset),
                group,
                failed_at,
            ),
            strict=True,
        )
    )
    return original + [(HEADER_PREFIX + k, v.encode("utf-8")) for k, v in why.items()]
