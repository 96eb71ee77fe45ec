"""Bytes on the wire <-> contract models, and the precise reason a record is rejected.

Topics carry bytes. This is the one place that turns a consumed record into an event (orjson
to parse, pydantic to validate) and an event into a record. A record that cannot become an
event raises ``Rejected`` with an error class from ``ErrorClass`` and a short message that is
safe to log and to put in a dead-letter header: it never contains the record's values.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from newsroom_notify.contract.events import (
    CONTENT_TYPE,
    ArticleEvent,
    CloudEvent,
    CommentEvent,
    DigestReady,
    NotificationCreated,
    NotificationCreatedData,
    NotificationEvent,
    Recipient,
    SubscriptionEvent,
)

CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())


class ErrorClass(StrEnum):
    """Why a record was dead-lettered (the value of the ``error.class`` header)."""

    RECORD_TOO_LARGE = "RecordTooLarge"
    INVALID_UTF8 = "InvalidUtf8"
    INVALID_JSON = "InvalidJson"
    NOT_A_CLOUDEVENT = "NotACloudEvent"
    UNKNOWN_EVENT_TYPE = "UnknownEventType"
    SCHEMA_VIOLATION = "SchemaViolation"
    KEY_MISMATCH = "KeyMismatch"
    INVALID_TOKEN = "InvalidToken"  # noqa: S105 - an error class, not a secret
    PROCESSING_ERROR = "ProcessingError"
    STATE_TOO_LARGE = "StateTooLarge"  # a record it caused would exceed the size limit


class Rejected(Exception):
    """A record that cannot be processed, with its error class and a loggable message."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(f"{error_class}: {message}")
        self.error_class = error_class
        self.message = scrub(message)


_EMAIL = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")


def scrub(message: str, limit: int = 500) -> str:
    """Remove anything that looks like an e-mail address and cap the length."""
    return _EMAIL.sub("[email]", message)[:limit]


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "articles": TypeAdapter(ArticleEvent),
    "comments": TypeAdapter(CommentEvent),
    "subscriptions": TypeAdapter(SubscriptionEvent),
    # The service's own outputs, for consumers of them (the mailer).
    "notifications": TypeAdapter(NotificationEvent),
    "digests": TypeAdapter(DigestReady),
}
_ENVELOPE_REQUIRED = ("specversion", "id", "source", "type")
_SINGLE_TYPE = frozenset({"digests"})  # one event type, no union: no tag in error locations


def _types_of(adapter: TypeAdapter[Any]) -> frozenset[str]:
    schema = adapter.json_schema()
    mapping = schema.get("discriminator", {}).get("mapping", {})
    if not mapping:  # a single event type, not a union
        return frozenset([schema["properties"]["type"]["const"]])
    return frozenset(mapping)


TYPES_BY_ROLE: dict[str, frozenset[str]] = {
    role: _types_of(adapter) for role, adapter in _ADAPTERS.items()
}


def _summarise(exc: ValidationError, limit: int = 5, tagged: bool = True) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        path = err["loc"][1:] if tagged else err["loc"]  # a union's [0] is its tag
        loc = ".".join(str(p) for p in path) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def decode(role: str, key: bytes | None, value: bytes | None, max_bytes: int) -> CloudEvent:
    """Decode and validate one consumed record of an input topic.

    ``role`` is the topic's role in the contract: ``articles``, ``comments``,
    ``subscriptions`` (or, for consumers of the outputs, ``notifications`` and ``digests``).
    Raises ``Rejected`` for anything that is not a valid event of that topic with the right
    key.
    """
    size = len(key or b"") + len(value or b"")
    if size > max_bytes:
        raise Rejected(ErrorClass.RECORD_TOO_LARGE, f"{size} bytes > limit {max_bytes}")
    if not value:
        raise Rejected(ErrorClass.NOT_A_CLOUDEVENT, "empty value (tombstone?)")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise Rejected(ErrorClass.INVALID_UTF8, f"value is not UTF-8: {uexc.reason}") from uexc
        raise Rejected(ErrorClass.INVALID_JSON, f"value is not JSON: {exc.msg}") from exc
    if not isinstance(obj, dict) or any(f not in obj for f in _ENVELOPE_REQUIRED):
        raise Rejected(
            ErrorClass.NOT_A_CLOUDEVENT,
            f"value is not a CloudEvents 1.0 JSON object (needs {', '.join(_ENVELOPE_REQUIRED)})",
        )
    if obj["specversion"] != "1.0":
        raise Rejected(ErrorClass.NOT_A_CLOUDEVENT, "specversion must be '1.0'")
    event_type = obj["type"]
    if not isinstance(event_type, str) or event_type not in TYPES_BY_ROLE[role]:
        shown = str(event_type)[:100]
        raise Rejected(
            ErrorClass.UNKNOWN_EVENT_TYPE,
            f"type {shown!r} is not accepted on the {role} topic "
            f"(accepted: {', '.join(sorted(TYPES_BY_ROLE[role]))})",
        )
    try:
        event: CloudEvent = _ADAPTERS[role].validate_python(obj)
    except ValidationError as exc:
        tagged = role not in _SINGLE_TYPE
        raise Rejected(ErrorClass.SCHEMA_VIOLATION, _summarise(exc, tagged=tagged)) from exc
    expected = event.partition_key()
    if key is None or not key:
        raise Rejected(ErrorClass.KEY_MISMATCH, "record has no key")
    if expected is not None and key != expected.encode("utf-8"):
        raise Rejected(ErrorClass.KEY_MISMATCH, f"key must be the {_KEY_NAMES[role]} of the event")
    return event


_KEY_NAMES = {
    "articles": "article_id",
    "comments": "article_id",
    "subscriptions": "subscriber id",
    "notifications": "recipient id",
    "digests": "recipient id",
}


def parse(role: str, value: bytes | str) -> CloudEvent:
    """Validate an event this service already accepted once (its own re-keyed copy)."""
    event: CloudEvent = _ADAPTERS[role].validate_json(value)
    return event


def encode(event: CloudEvent, key: str | None = None) -> tuple[bytes, bytes]:
    """The (key, value) of an event as a record: key = its partition key (or ``key``)."""
    key = key if key is not None else event.partition_key()
    if key is None:
        raise ValueError(f"{event.type} has no partition key: pass the key")
    if type(event) is NotificationCreated:
        return key.encode("utf-8"), notification_json(event)
    return key.encode("utf-8"), event.model_dump_json().encode("utf-8")


# A notification's JSON, spliced: what every recipient of a comment shares (the article, the
# comment and its parent, one frozen object each, see ``InboxStage._refs``) is serialised once
# and reused as an orjson fragment; the rest is a few strings. The bytes are exactly pydantic's
# ``model_dump_json`` (tests/unit/test_codec.py compares them); the field lists below are
# checked against the models at import, so a new field cannot be left out silently.
_ENVELOPE = ("specversion", "id", "source", "type", "time", "datacontenttype", "subject", "data")
_NOTIFICATION = (
    "notification_id",
    "recipient",
    "reason",
    "article",
    "comment",
    "parent",
    "unsubscribe_token",
    "confirm_token",
    "manage_token",
)
if (
    tuple(NotificationCreated.model_fields) != _ENVELOPE
    or tuple(NotificationCreatedData.model_fields) != _NOTIFICATION
    or tuple(Recipient.model_fields) != ("id", "name", "email")
):  # pragma: no cover - a contract change must revisit notification_json
    raise RuntimeError("notification_json no longer matches the NotificationCreated model")
_FRAGMENTS: dict[int, tuple[BaseModel, orjson.Fragment]] = {}  # id -> (model kept alive, JSON)
_FRAGMENTS_MAX = 256


def _fragment(model: BaseModel | None) -> orjson.Fragment | None:
    if model is None:
        return None
    hit = _FRAGMENTS.get(id(model))
    if hit is not None and hit[0] is model:  # the entry keeps it alive: its id is not reused
        return hit[1]
    if len(_FRAGMENTS) >= _FRAGMENTS_MAX:
        _FRAGMENTS.clear()
    fragment = orjson.Fragment(model.__pydantic_serializer__.to_json(model))
    _FRAGMENTS[id(model)] = (model, fragment)
    return fragment


def notification_json(event: NotificationCreated) -> bytes:
    """``event.model_dump_json()`` as bytes, with its shared parts serialised once."""
    data = event.data
    recipient = data.recipient
    return orjson.dumps(
        {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": event.time,
            "datacontenttype": event.datacontenttype,
            "subject": event.subject,
            "data": {
                "notification_id": data.notification_id,
                "recipient": {"id": recipient.id, "name": recipient.name, "email": recipient.email},
                "reason": data.reason,
                "article": _fragment(data.article),
                "comment": _fragment(data.comment),
                "parent": _fragment(data.parent),
                "unsubscribe_token": data.unsubscribe_token,
                "confirm_token": data.confirm_token,
                "manage_token": data.manage_token,
            },
        },
        option=orjson.OPT_UTC_Z,
    )
