"""Dead-lettering: copy a record that cannot be processed to ``newsroom.deadletter``.

The dead letter keeps the original key, value and headers byte-for-byte and appends the
headers saying why (``contract.deadletter``).

``send`` returns only once the broker acknowledged the dead letter, so the agent acknowledges
(and Faust later commits) the source offset only after the record is safe elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from newsroom_notify.contract.codec import Rejected
from newsroom_notify.contract.deadletter import RawRecord, dead_letter_headers
from newsroom_notify.metrics import DEAD_LETTERS


class DeadLetterTopic(Protocol):
    """Where dead letters go: ``send`` returns an awaitable that resolves when the broker
    acked the record (a Faust ``Topic`` fits)."""

    async def send(self, *, key: Any, value: Any, headers: Any) -> Any: ...


@dataclass
class DeadLetterer:
    """Sends rejected records to the dead-letter topic and waits for the broker's ack."""

    topic: DeadLetterTopic
    group: str

    async def send(self, record: RawRecord, rejected: Rejected) -> None:
        pending = await self.topic.send(
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, rejected, self.group),
        )
        await pending
        DEAD_LETTERS.labels(error_class=str(rejected.error_class)).inc()
