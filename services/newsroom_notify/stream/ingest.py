"""Processing one consumed record: decode, hand on, or dead-letter. Never crash.

Every agent calls ``Ingestor.process`` with the raw record. The decoder registered for the
record's topic turns it into a message (contract events for input topics, stage messages for
internal ones); a record it rejects, or whose handler fails in a way a retry cannot fix, goes to
the dead-letter topic and the stream moves on. Errors talking to Kafka are not the record's
fault: the handler is retried (it is idempotent) until its messages are sent, holding the stream
back meanwhile; the record is never acknowledged unprocessed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from newsroom_notify.contract import codec
from newsroom_notify.contract.deadletter import RawRecord
from newsroom_notify.contract.events import CloudEvent
from newsroom_notify.logs import RECORD
from newsroom_notify.metrics import EVENTS_CONSUMED, OVERSIZED
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.faust_ext.tables import StateTooLarge

log = structlog.get_logger(__name__)
# The level check of a debug line on the hot path: the stdlib logger's own (a cached look-up),
# not a structlog call, which costs the processors' chain up to its level filter (3 µs).
_debugging = logging.getLogger(__name__)

Decoder = Callable[[bytes | None, bytes | None], BaseModel]
Handler = Callable[[str, BaseModel], Awaitable[None]]


def event_decoder(role: str, max_bytes: int) -> Decoder:
    """The decoder of an input topic of the contract (``articles``, ``comments``...)."""

    def decode(key: bytes | None, value: bytes | None) -> BaseModel:
        return codec.decode(role, key, value, max_bytes)

    return decode


@dataclass
class Ingestor:
    """Turns the raw records of an agent's topics into messages for ``handle``."""

    name: str
    decoders: Mapping[str, Decoder]  # topic name -> decoder
    dead_letters: DeadLetterer
    handle: Handler

    def __post_init__(self) -> None:
        self._handled = EVENTS_CONSUMED.labels(topic=self.name, outcome="ok")

    async def process(self, record: RawRecord) -> bool:
        """Process one record; True if it was handled, False if it was dead-lettered."""
        context = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        bound = RECORD.set(context)  # every log line of this record carries it
        try:
            try:
                message = self.decoders[record.topic](record.key, record.value)
                if isinstance(message, CloudEvent):
                    context["event_id"] = message.id
                    context["event_type"] = message.type
                await self._handle_until_sent(record, message)
            except codec.Rejected as rejected:
                return await self._reject(record, rejected)
            except StateTooLarge as exc:  # retrying cannot help; the rest must flow
                OVERSIZED.labels(where="table" if str(exc).startswith("table") else "send").inc()
                log.error("a record this input caused is too large", error=str(exc))  # noqa: TRY400
                failure = codec.Rejected(codec.ErrorClass.STATE_TOO_LARGE, str(exc))
                return await self._reject(record, failure)
            except Exception as exc:  # a bug on one record must not stop the stream
                log.exception("handler failed; dead-lettering the record")
                failure = codec.Rejected(
                    codec.ErrorClass.PROCESSING_ERROR, f"{type(exc).__name__} while handling"
                )
                return await self._reject(record, failure)
            self._handled.inc()
            if _debugging.isEnabledFor(logging.DEBUG):
                log.debug("record processed")
            return True
        finally:
            RECORD.reset(bound)

    async def _handle_until_sent(self, record: RawRecord, message: BaseModel) -> None:
        """Run the handler; on a Kafka error retry it (handlers are idempotent) instead of
        letting the agent crash, which would acknowledge the record unprocessed."""
        key = (record.key or b"").decode("utf-8", "replace")
        delay = 0.2
        while True:
            try:
                await self.handle(key, message)
            except KafkaError as exc:
                log.warning("kafka error while handling; retrying", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return

    async def _reject(self, record: RawRecord, rejected: codec.Rejected) -> bool:
        log.warning(
            "record dead-lettered", error_class=str(rejected.error_class), reason=rejected.message
        )
        await self.dead_letters.send(record, rejected)
        EVENTS_CONSUMED.labels(topic=self.name, outcome="deadlettered").inc()
        return False
