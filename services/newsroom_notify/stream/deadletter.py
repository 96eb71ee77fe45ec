"""Dead-lettering: copy a record that cannot be processed to ``newsroom.deadletter``.

The dead letter keeps the original key, value and headers byte-for-byte and appends headers
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

``send`` returns only once the broker acknowledged the dead letter, so the agent acknowledges
(and Faust later commits) the source offset only after the record is safe elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from newsroom_notify.contract.codec import Rejected
from newsroom_notify.metrics import DEAD_LETTERS

HEADER_PREFIX = "newsroom.dlt."


class RawRecord(Protocol):
    """What we need of a consumed record (Faust's ``Message`` fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class Sender(Protocol):
    """Sends a record and returns an awaitable that resolves when the broker acked it."""

    async def send(self, *, key: Any, value: Any, headers: Any) -> Any: ...


def dead_letter_headers(
    record: RawRecord, rejected: Rejected, group: str, now: datetime | None = None
) -> list[tuple[str, bytes]]:
    """The original headers followed by the ``newsroom.dlt.*`` headers."""
    original = list(
        record.headers.items() if isinstance(record.headers, dict) else record.headers or []
    )
    failed_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    why = {
        "error.class": str(rejected.error_class),
        "error.message": rejected.message,
        "source.topic": record.topic,
        "source.partition": str(record.partition),
        "source.offset": str(record.offset),
        "consumer.group": group,
        "failed.at": failed_at,
    }
    return original + [(HEADER_PREFIX + k, v.encode("utf-8")) for k, v in why.items()]


@dataclass
class DeadLetterer:
    """Sends rejected records to the dead-letter topic and waits for the broker's ack."""

    topic: Sender
    group: str

    async def send(self, record: RawRecord, rejected: Rejected) -> None:
        pending = await self.topic.send(
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, rejected, self.group),
        )
        await pending
        DEAD_LETTERS.labels(error_class=str(rejected.error_class)).inc()
