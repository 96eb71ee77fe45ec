"""Ingestor: good records reach the handler; bad ones are dead-lettered with the reason, after
the broker acknowledged them; broker errors are not blamed on the record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import structlog
from aiokafka.errors import KafkaConnectionError
from pydantic import BaseModel

from newsroom_dev.samples import sample_events
from newsroom_notify.contract.codec import ErrorClass, Rejected
from newsroom_notify.contract.deadletter import dead_letter_headers
from newsroom_notify.contract.events import CloudEvent
from newsroom_notify.logs import configure_logging
from newsroom_notify.metrics import DEAD_LETTERS
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.ingest import Ingestor, event_decoder

POSTED = sample_events()["newsroom.comment.posted"]
ARTICLE = POSTED["data"]["article_id"].encode()


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    headers: Any = field(default_factory=list)
    topic: str = "newsroom.comments"
    partition: int = 3
    offset: int = 41


@dataclass
class FakeTopic:
    """Records sends; the returned awaitable marks the send acknowledged when awaited."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    acked: list[bool] = field(default_factory=list)

    async def send(self, *, key: Any, value: Any, headers: Any) -> Any:
        self.sent.append({"key": key, "value": value, "headers": headers})
        self.acked.append(False)
        index = len(self.acked) - 1

        async def ack() -> None:
            self.acked[index] = True

        return ack()


def make(handler: Any = None) -> tuple[Ingestor, FakeTopic, list[CloudEvent]]:
    topic = FakeTopic()
    seen: list[CloudEvent] = []

    async def default(key: str, event: BaseModel) -> None:
        assert isinstance(event, CloudEvent)
        seen.append(event)

    decoders = {"newsroom.comments": event_decoder("comments", 1024 * 1024)}
    ingestor = Ingestor("comments", decoders, DeadLetterer(topic, "notify"), handler or default)
    return ingestor, topic, seen


async def test_a_valid_record_reaches_the_handler() -> None:
    ingestor, topic, seen = make()
    assert await ingestor.process(Record(ARTICLE, orjson.dumps(POSTED))) is True
    assert [e.id for e in seen] == [POSTED["id"]]
    assert topic.sent == []


async def test_a_bad_record_is_dead_lettered_unchanged_with_reason_and_acked() -> None:
    ingestor, topic, seen = make()
    before = DEAD_LETTERS.labels(error_class="InvalidJson")._value.get()
    record = Record(ARTICLE, b'{"trunc', headers=[("traceparent", b"00-1-2-01")])
    assert await ingestor.process(record) is False
    assert seen == []
    (sent,) = topic.sent
    assert sent["key"] == ARTICLE
    assert sent["value"] == b'{"trunc'
    headers = dict(sent["headers"])
    assert sent["headers"][0] == ("traceparent", b"00-1-2-01")
    assert headers["newsroom.dlt.error.class"] == b"InvalidJson"
    assert headers["newsroom.dlt.source.topic"] == b"newsroom.comments"
    assert headers["newsroom.dlt.source.partition"] == b"3"
    assert headers["newsroom.dlt.source.offset"] == b"41"
    assert headers["newsroom.dlt.consumer.group"] == b"notify"
    assert topic.acked == [True], "process() must wait for the broker's ack"
    assert DEAD_LETTERS.labels(error_class="InvalidJson")._value.get() == before + 1


async def test_a_handler_bug_dead_letters_that_record_only() -> None:
    calls = 0

    async def flaky(key: str, event: BaseModel) -> None:
        nonlocal calls
        calls += 1
        assert isinstance(event, CloudEvent)
        if event.id == "boom":
            raise KeyError("thread missing")

    ingestor, topic, _ = make(flaky)
    assert await ingestor.process(Record(ARTICLE, orjson.dumps({**POSTED, "id": "boom"}))) is False
    assert await ingestor.process(Record(ARTICLE, orjson.dumps(POSTED))) is True
    (sent,) = topic.sent
    assert dict(sent["headers"])["newsroom.dlt.error.class"] == b"ProcessingError"
    assert calls == 2


async def test_broker_errors_are_retried_not_dead_lettered_nor_skipped() -> None:
    calls = 0

    async def broker_flaky(key: str, event: BaseModel) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise KafkaConnectionError()

    ingestor, topic, _ = make(broker_flaky)
    assert await ingestor.process(Record(ARTICLE, orjson.dumps(POSTED))) is True
    assert calls == 3  # retried until the handler's messages could be sent
    assert topic.sent == []


def test_dead_letter_headers_accept_dict_headers_and_stamp_time() -> None:
    record = Record(b"k", b"v", headers={"a": b"1"})
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    headers = dead_letter_headers(record, Rejected(ErrorClass.KEY_MISMATCH, "x"), "g", now)
    assert headers[0] == ("a", b"1")
    assert ("newsroom.dlt.failed.at", b"2026-11-28T08:00:00Z") in headers


async def test_log_lines_of_a_record_name_it_and_the_next_record_does_not_inherit_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every line logged while a record is handled (the handler's, the dead-lettering's) says
    which record: topic, partition, offset, and the event's id and type once decoded; a line
    after it carries none of that."""
    configure_logging("INFO", "json")
    log = structlog.get_logger("handler")

    async def chatty(key: str, event: BaseModel) -> None:
        log.info("handling", partition="the handler's own")  # a field the call gives wins

    ingestor, _, _ = make(chatty)
    assert await ingestor.process(Record(ARTICLE, orjson.dumps(POSTED))) is True
    assert await ingestor.process(Record(ARTICLE, b"{", offset=42)) is False
    log.info("between records")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    handling, dead_lettered, between = (
        next(x for x in lines if x["event"] == name)
        for name in ("handling", "record dead-lettered", "between records")
    )
    assert handling["topic"] == "newsroom.comments"
    assert handling["offset"] == 41
    assert handling["partition"] == "the handler's own"
    assert (handling["event_id"], handling["event_type"]) == (POSTED["id"], POSTED["type"])
    assert (dead_lettered["offset"], dead_lettered["partition"]) == (42, 3)
    assert "event_id" not in dead_lettered  # it never decoded
    assert not {"topic", "partition", "offset", "event_id"} & between.keys()
