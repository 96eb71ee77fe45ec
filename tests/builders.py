"""Factories for contract events (from the package) and helpers to read outputs in tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from newsroom_dev.builders import (
    T0,
    article,
    cancel,
    change_delivery,
    comment,
    confirm,
    delete,
    edit,
    erase,
    guest,
    member,
    moderate,
    preferences,
    sid_of,
    subscribe,
)
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.tokens import LINKS, UNSUBSCRIBE, TokenClaims

__all__ = [
    "T0",
    "Clock",
    "article",
    "cancel",
    "change_delivery",
    "comment",
    "confirm",
    "created",
    "delete",
    "edit",
    "erase",
    "guest",
    "member",
    "moderate",
    "names",
    "preferences",
    "retracted",
    "sid_of",
    "subscribe",
    "summary",
]


class Clock:
    """A clock a story sets by hand (``clock.now = ...``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, *args: int) -> None:
        self.now = datetime(*args, tzinfo=UTC)  # type: ignore[misc,arg-type]


def names(claims: TokenClaims) -> tuple[str, str, str | None]:
    """Whose subscription a token names, and which (its version is the service's business)."""
    return (claims.subscriber_id, claims.scope, claims.target)


def created(outputs: list[ev.CloudEvent]) -> list[ev.NotificationCreated]:
    return [o for o in outputs if isinstance(o, ev.NotificationCreated)]


def retracted(outputs: list[ev.CloudEvent]) -> list[ev.NotificationRetracted]:
    return [o for o in outputs if isinstance(o, ev.NotificationRetracted)]


def summary(outputs: list[ev.CloudEvent]) -> set[tuple[str, str, str | None]]:
    """(recipient, reason, comment id) of every notification created."""
    return {
        (n.data.recipient.id, n.data.reason, n.data.comment.id if n.data.comment else None)
        for n in created(outputs)
    }


def tampered(token: str) -> str:
    """``token`` with the first character of its signature changed: every bit of that
    character counts (a base64 signature's last character carries padding bits, so changing
    only the end can decode to the very same signature)."""
    payload, _, signature = token.rpartition(".")
    return f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def link(purpose: str, claims: Any, key: str, stamp: int | None = None) -> str:
    """A link token (unsubscribe or manage) written from the format ``domain/tokens.py``
    documents, not from its code: ``claims`` (JSON, or bytes as they are) signed with ``key``
    at ``stamp`` (now by default)."""
    payload = claims if isinstance(claims, bytes) else orjson.dumps(claims)
    stamp = int(time.time()) if stamp is None else stamp
    derived = hmac.new(key.encode(), LINKS.encode(), hashlib.sha256).digest()
    body = f"{b64url(payload)}.{b64url(stamp.to_bytes((stamp.bit_length() + 7) // 8, 'big'))}"
    mac = hmac.new(derived, body.encode(), hashlib.sha256).digest()
    mark, half = ("u2.", mac[:16]) if purpose == UNSUBSCRIBE else ("m2.", mac[16:])
    return f"{mark}{body}.{b64url(half)}"


def link_claims(token: str) -> Any:
    """The claims a link token carries (unverified)."""
    return orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def b64url(data: bytes) -> str:
    """``data`` as base64url without padding (how the links write each part)."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
