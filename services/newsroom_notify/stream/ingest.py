"""Ingestion of input records: decode, validate, hand on, or dead-letter. Never crash.

Every input agent calls ``Ingestor.process`` with the raw record. A record that the codec
rejects, or whose handler fails in a way a retry cannot fix, goes to the dead-letter topic and
the stream moves on. Errors talking to Kafka are not the record's fault: they propagate, so the
record is not acknowledged and is processed again after recovery.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiokafka.errors import KafkaError

from newsroom_notify.contract import codec
from newsroom_notify.contract.events import CloudEvent
from newsroom_notify.metrics import EVENTS_CONSUMED
from newsroom_notify.stream.deadletter import DeadLetterer, RawRecord

log = structlog.get_logger(__name__)

EventHandler = Callable[[CloudEvent], Awaitable[None]]


@dataclass
class Ingestor:
    """Turns the raw records of one input topic into events for ``handle``."""

    role: str
    max_bytes: int
    dead_letters: DeadLetterer
    handle: EventHandler

    async def process(self, record: RawRecord) -> bool:
        """Process one record; True if it was handled, False if it was dead-lettered."""
        structlog.contextvars.bind_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        )
        try:
            try:
                event = codec.decode(self.role, record.key, record.value, self.max_bytes)
                structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
                await self.handle(event)
            except codec.Rejected as rejected:
                return await self._reject(record, rejected)
            except KafkaError:
                raise
            except Exception as exc:  # a bug on one record must not stop the stream
                log.exception("handler failed; dead-lettering the record")
                failure = codec.Rejected(
                    codec.ErrorClass.PROCESSING_ERROR, f"{type(exc).__name__} while handling"
                )
                return await self._reject(record, failure)
            EVENTS_CONSUMED.labels(topic=self.role, outcome="ok").inc()
            log.debug("event processed")
            return True
        finally:
            structlog.contextvars.clear_contextvars()

    async def _reject(self, record: RawRecord, rejected: codec.Rejected) -> bool:
        log.warning(
            "record dead-lettered", error_class=str(rejected.error_class), reason=rejected.message
        )
        await self.dead_letters.send(record, rejected)
        EVENTS_CONSUMED.labels(topic=self.role, outcome="deadlettered").inc()
        return False
