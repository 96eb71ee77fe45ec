"""The codec: every valid event decodes; every kind of bad record is rejected with its class;
any bytes at all give an event or a rejection, never another exception."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsroom_dev.samples import sample_events
from newsroom_notify.contract import codec
from newsroom_notify.contract.codec import ErrorClass, Rejected
from newsroom_notify.contract.events import (
    INPUT_EVENTS,
    TYPE_TO_MODEL,
    ArticleRef,
    CommentRef,
    NotificationCreated,
    NotificationCreatedData,
    Recipient,
    event_type_name,
)

SAMPLES = sample_events()
INPUT_TYPES = [event_type_name(m) for m in INPUT_EVENTS]
LIMIT = 1024 * 1024


def _record(event_type: str, mutate: Any = None) -> tuple[str, bytes | None, bytes]:
    event = copy.deepcopy(SAMPLES[event_type])
    if mutate:
        mutate(event)
    model = TYPE_TO_MODEL[event_type]
    key = model.model_validate(SAMPLES[event_type]).partition_key()
    return model.topic_role, (key or "any").encode(), orjson.dumps(event)


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_every_input_sample_decodes(event_type: str) -> None:
    role, key, value = _record(event_type)
    event = codec.decode(role, key, value, LIMIT)
    assert event.type == event_type
    assert event.time.tzinfo is not None


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_unknown_fields_are_tolerated(event_type: str) -> None:
    def add_fields(e: dict[str, Any]) -> None:
        e["traceparent"] = "00-abc-def-01"
        e["data"]["added_in_v1_1"] = {"anything": True}

    role, key, value = _record(event_type, add_fields)
    assert codec.decode(role, key, value, LIMIT).type == event_type


@pytest.mark.parametrize("event_type", INPUT_TYPES)
def test_a_missing_required_data_field_is_a_schema_violation(event_type: str) -> None:
    def drop_first_required(e: dict[str, Any]) -> None:
        model = TYPE_TO_MODEL[event_type]
        data_model = model.model_fields["data"].annotation
        required = [n for n, f in data_model.model_fields.items() if f.is_required()]  # type: ignore[union-attr]
        del e["data"][required[0]]

    role, key, value = _record(event_type, drop_first_required)
    with pytest.raises(Rejected) as info:
        codec.decode(role, key, value, LIMIT)
    assert info.value.error_class is ErrorClass.SCHEMA_VIOLATION


@pytest.mark.parametrize(
    ("event_type", "mutate", "fragment"),
    [
        (
            "newsroom.comment.posted",
            lambda e: e["data"].update(posted_at="2026-11-28T08:00:00"),
            "posted_at",
        ),
        ("newsroom.comment.posted", lambda e: e["data"].update(status="approved-ish"), "status"),
        (
            "newsroom.comment.posted",
            lambda e: e["data"]["author"].update(guest=True, id=None),
            "guest",
        ),
        ("newsroom.comment.posted", lambda e: e["data"].update(parent_id=42), "parent_id"),
        (
            "newsroom.article.published",
            lambda e: e["data"].update(url="javascript:alert(1)"),
            "url",
        ),
        (
            "newsroom.preferences.updated",
            lambda e: e["data"].update(timezone="Mars/Olympus"),
            "timezone",
        ),
        ("newsroom.preferences.updated", lambda e: e["data"].update(digest_hour=24), "digest_hour"),
        (
            "newsroom.subscription.requested",
            lambda e: e["data"].update(scope="article", target=None),
            "target",
        ),
        (
            "newsroom.subscription.requested",
            lambda e: e["data"]["subscriber"].update(id=None, email=None),
            "subscriber",
        ),
        ("newsroom.comment.moderated", lambda e: e.update(time="yesterday"), "time"),
    ],
)
def test_ill_typed_fields_are_rejected_with_the_field_named(
    event_type: str, mutate: Any, fragment: str
) -> None:
    role, key, value = _record(event_type, mutate)
    with pytest.raises(Rejected) as info:
        codec.decode(role, key, value, LIMIT)
    assert info.value.error_class is ErrorClass.SCHEMA_VIOLATION
    assert fragment in info.value.message


def test_schema_violation_message_never_repeats_an_email_address() -> None:
    role, key, value = _record(
        "newsroom.subscription.requested",
        lambda e: e["data"]["subscriber"].update(email="not-an-address@@example.org"),
    )
    with pytest.raises(Rejected) as info:
        codec.decode(role, key, value, LIMIT)
    assert "example.org" not in info.value.message


@pytest.mark.parametrize(
    ("value", "error_class"),
    [
        (b'{"specversion": "1.0", "id": ', ErrorClass.INVALID_JSON),
        (b"\xc3\x28 not utf-8", ErrorClass.INVALID_UTF8),
        (b"", ErrorClass.NOT_A_CLOUDEVENT),
        (b"[1, 2]", ErrorClass.NOT_A_CLOUDEVENT),
        (b'{"hello": "world"}', ErrorClass.NOT_A_CLOUDEVENT),
        (
            b'{"specversion": "0.3", "id": "1", "source": "x", "type": "t"}',
            ErrorClass.NOT_A_CLOUDEVENT,
        ),
        (
            b'{"specversion": "1.0", "id": "1", "source": "x", '
            b'"type": "newsroom.article.published"}',
            ErrorClass.UNKNOWN_EVENT_TYPE,
        ),
    ],
)
def test_malformed_values_on_the_comments_topic(value: bytes, error_class: ErrorClass) -> None:
    with pytest.raises(Rejected) as info:
        codec.decode("comments", b"a-1", value, LIMIT)
    assert info.value.error_class is error_class


def test_oversized_records_are_rejected_before_parsing() -> None:
    with pytest.raises(Rejected) as info:
        codec.decode("comments", b"a-1", b"{" + b" " * 2000, 1000)
    assert info.value.error_class is ErrorClass.RECORD_TOO_LARGE


def test_key_must_match_the_events_partition_key() -> None:
    role, _, value = _record("newsroom.comment.posted")
    with pytest.raises(Rejected) as info:
        codec.decode(role, b"another-article", value, LIMIT)
    assert info.value.error_class is ErrorClass.KEY_MISMATCH
    with pytest.raises(Rejected) as info:
        codec.decode(role, None, value, LIMIT)
    assert info.value.error_class is ErrorClass.KEY_MISMATCH


def test_guest_subscription_is_keyed_by_the_derived_guest_id() -> None:
    role, key, value = _record("newsroom.subscription.requested")
    assert key is not None
    assert key.startswith(b"guest_")
    assert codec.decode(role, key, value, LIMIT).partition_key() == key.decode()


@pytest.mark.parametrize("event_type", list(SAMPLES))
def test_encode_then_decode_round_trips(event_type: str) -> None:
    model = TYPE_TO_MODEL[event_type]
    event = model.model_validate(SAMPLES[event_type])
    explicit = None if event.partition_key() else "subscriber-1"
    key, value = codec.encode(event, key=explicit)
    assert model.model_validate_json(value) == event
    assert key == (event.partition_key() or "subscriber-1").encode()


# What a record's bytes alone can be rejected for (not a processing error, not a token).
BAD_INPUT = {
    ErrorClass.RECORD_TOO_LARGE,
    ErrorClass.INVALID_UTF8,
    ErrorClass.INVALID_JSON,
    ErrorClass.NOT_A_CLOUDEVENT,
    ErrorClass.UNKNOWN_EVENT_TYPE,
    ErrorClass.SCHEMA_VIOLATION,
    ErrorClass.KEY_MISMATCH,
}
# What a well-formed JSON event with one field replaced can be rejected for.
BAD_EVENT = {
    ErrorClass.NOT_A_CLOUDEVENT,
    ErrorClass.UNKNOWN_EVENT_TYPE,
    ErrorClass.SCHEMA_VIOLATION,
    ErrorClass.KEY_MISMATCH,
}


@settings(max_examples=300)
@given(
    role=st.sampled_from(["articles", "comments", "subscriptions"]),
    key=st.binary(max_size=40) | st.none(),
    value=st.binary(max_size=400) | st.none(),
)
def test_any_bytes_give_an_event_or_a_rejection(
    role: str, key: bytes | None, value: bytes | None
) -> None:
    try:
        codec.decode(role, key, value, 300)
    except Rejected as rejected:  # bad input is the sender's fault, said with a reason
        assert rejected.error_class in BAD_INPUT, rejected
        assert rejected.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(event_type=st.sampled_from(INPUT_TYPES), data=st.data())
def test_mutated_events_give_an_event_or_a_rejection(event_type: str, data: st.DataObject) -> None:
    event = copy.deepcopy(SAMPLES[event_type])
    target = event["data"] if data.draw(st.booleans()) else event
    field = data.draw(st.sampled_from(sorted(target)))
    target[field] = data.draw(json_values)
    role, key, _ = _record(event_type)
    try:
        decoded = codec.decode(role, key, orjson.dumps(event), LIMIT)
    except Rejected as rejected:  # a mutated envelope, payload or key: never "processing"
        assert rejected.error_class in BAD_EVENT, rejected
        assert rejected.message
    else:
        assert decoded.type == event["type"]


# ------------------------------------------------------------- notifications, spliced

_text = st.text(max_size=40)  # any character: quotes, backslashes, controls, emoji, U+2028
_zones = st.sampled_from([0, 330, -180, 60]).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def _notifications(draw: st.DrawFn) -> NotificationCreated:
    def ref() -> CommentRef:
        return CommentRef(
            id=draw(_text), author_name=draw(_text), excerpt=draw(_text), url=draw(_text)
        )

    return NotificationCreated(
        id=draw(_text.filter(bool)),
        source=draw(_text.filter(bool)),
        time=draw(st.datetimes(timezones=_zones)),
        subject=draw(st.none() | _text),
        data=NotificationCreatedData(
            notification_id=draw(_text),
            recipient=Recipient(id=draw(_text), name=draw(_text), email=draw(st.none() | _text)),
            reason=draw(st.sampled_from(["reply", "mention", "follow_up", "new_article"])),
            article=ArticleRef(id=draw(_text), title=draw(_text), url=draw(_text)),
            comment=draw(st.none() | st.builds(ref)),
            parent=draw(st.none() | st.builds(ref)),
            unsubscribe_token=draw(_text),
            confirm_token=draw(st.none() | _text),
            manage_token=draw(st.none() | _text),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(_notifications())
def test_a_spliced_notification_is_byte_for_byte_what_pydantic_writes(
    event: NotificationCreated,
) -> None:
    _, value = codec.encode(event, "any")
    assert value == event.model_dump_json().encode("utf-8")
    assert codec.encode(event, "any")[1] == value  # again, from the cached fragments


def test_recipients_of_one_comment_share_its_serialised_parts_but_not_their_own() -> None:
    article = ArticleRef(id="a-1", title="Bus lanes", url="https://n.example/a-1")
    comment = CommentRef(id="c-1", author_name="Ana", excerpt="I agree", url="u#c-1")

    def to(rid: str) -> NotificationCreated:
        return NotificationCreated(
            id=f"n-{rid}",
            source="urn:test",
            time=datetime(2026, 11, 28, 8, 1, 12, tzinfo=UTC),
            subject="c:c-1",
            data=NotificationCreatedData(
                notification_id=f"n-{rid}",
                recipient=Recipient(id=rid, name=rid.upper(), email=None),
                reason="follow_up",
                article=article,
                comment=comment,
                parent=None,
                unsubscribe_token=f"u-{rid}",
                manage_token=f"m-{rid}",
            ),
        )

    first, second = (orjson.loads(codec.encode(to(r))[1]) for r in ("m-1", "m-2"))
    assert first["data"]["recipient"]["id"] == "m-1"
    assert second["data"]["recipient"]["id"] == "m-2"
    assert second["data"]["unsubscribe_token"] == "u-m-2"
    assert first["data"]["comment"] == second["data"]["comment"] == comment.model_dump()
