"""Small factories for contract events: the stories of the tests and of the demo.

Events are numbered (``evt-1``, ``evt-2``, ...) and, unless given a time, stepped one second
apart from ``T0`` by an ``EventFactory``. The functions below use the current one: by default
one for the whole process (the demo, the benches), while ``fresh_events()`` starts a new one for
a block, so what a test builds does not depend on what was built before it (tests/conftest.py
gives every test its own; a Hypothesis strategy opens one per example).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


class EventFactory:
    """Numbers events from 1 and times them one second apart after ``t0``."""

    def __init__(self, t0: datetime = T0) -> None:
        self.t0 = t0
        self._ids = itertools.count(1)

    def envelope(
        self, event_type: str, data: dict[str, Any], at: datetime | None = None
    ) -> dict[str, Any]:
        """The CloudEvent envelope of the next event (comments: posted at the event's time)."""
        n = next(self._ids)
        moment = (at or self.t0 + timedelta(seconds=n)).isoformat()
        if "posted_at" in data:
            data = {**data, "posted_at": moment}  # comments are posted in the order they are built
        return {
            "specversion": "1.0",
            "id": f"evt-{n}",
            "source": "urn:test",
            "type": event_type,
            "time": moment,
            "data": data,
        }


_PROCESS_FACTORY = EventFactory()
_current: ContextVar[EventFactory | None] = ContextVar("event_factory", default=None)


@contextmanager
def fresh_events(factory: EventFactory | None = None) -> Iterator[EventFactory]:
    """Build with ``factory`` (a new one by default) inside the block: ids from ``evt-1``."""
    active = factory or EventFactory()
    token = _current.set(active)
    try:
        yield active
    finally:
        _current.reset(token)


def _envelope(event_type: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    return (_current.get() or _PROCESS_FACTORY).envelope(event_type, data, at)


def member(mid: str, name: str, email: str | None = None) -> dict[str, Any]:
    return {"id": mid, "name": name, "email": email, "guest": False}


def guest(name: str, email: str) -> dict[str, Any]:
    return {"id": None, "name": name, "email": email, "guest": True}


def sid_of(author: dict[str, Any]) -> str:
    return author["id"] or guest_subscriber_id(author["email"])


def article(
    aid: str = "a-1",
    journalist: str = "j-1",
    section: str | None = "local",
    *,
    updated: bool = False,
) -> ev.CloudEvent:
    data = {
        "article_id": aid,
        "title": f"Title of {aid}",
        "url": f"https://news.example.com/{aid}",
        "author": {"id": journalist, "name": "Maria Okafor"},
        "section": section,
        "published_at": T0.isoformat(),
    }
    kind = "newsroom.article.updated" if updated else "newsroom.article.published"
    return ev.TYPE_TO_MODEL[kind].model_validate(_envelope(kind, data))


def comment(
    cid: str,
    author: dict[str, Any],
    text: str = "A thoughtful comment.",
    *,
    aid: str = "a-1",
    parent: str | None = None,
    status: str = "approved",
    notify: str | None = None,
    at: datetime | None = None,
) -> ev.CommentPosted:
    """A comment event; ``at`` (default: a step after ``T0``) is its time and posting time.
    A test that subscribes through the API (on the service's real clock) posts at now."""
    data = {
        "comment_id": cid,
        "article_id": aid,
        "parent_id": parent,
        "author": author,
        "text": text,
        "status": status,
        "posted_at": T0.isoformat(),
        "notify": notify,
    }
    return ev.CommentPosted.model_validate(_envelope("newsroom.comment.posted", data, at))


def moderate(cid: str, status: str, aid: str = "a-1") -> ev.CommentModerated:
    data = {"comment_id": cid, "article_id": aid, "status": status}
    return ev.CommentModerated.model_validate(_envelope("newsroom.comment.moderated", data))


def edit(cid: str, text: str, aid: str = "a-1") -> ev.CommentEdited:
    data = {"comment_id": cid, "article_id": aid, "text": text}
    return ev.CommentEdited.model_validate(_envelope("newsroom.comment.edited", data))


def delete(cid: str, aid: str = "a-1") -> ev.CommentDeleted:
    data = {"comment_id": cid, "article_id": aid}
    return ev.CommentDeleted.model_validate(_envelope("newsroom.comment.deleted", data))


def subscribe(
    who: dict[str, Any], scope: str, target: str | None, delivery: str | None = None
) -> ev.SubscriptionRequested:
    data = {
        "subscriber": {"id": who["id"], "name": who["name"], "email": who.get("email")},
        "scope": scope,
        "target": target,
        "delivery": delivery,
    }
    return ev.SubscriptionRequested.model_validate(
        _envelope("newsroom.subscription.requested", data)
    )


def cancel(sid: str, scope: str, target: str | None) -> ev.SubscriptionCancelled:
    data = {"subscriber_id": sid, "scope": scope, "target": target}
    return ev.SubscriptionCancelled.model_validate(
        _envelope("newsroom.subscription.cancelled", data)
    )


def change_delivery(
    sid: str, scope: str, target: str | None, delivery: str, token_version: int | None = None
) -> ev.SubscriptionDeliveryChanged:
    data = {
        "subscriber_id": sid,
        "scope": scope,
        "target": target,
        "delivery": delivery,
        "token_version": token_version,
    }
    return ev.SubscriptionDeliveryChanged.model_validate(
        _envelope("newsroom.subscription.delivery_changed", data)
    )


def confirm(token: str) -> ev.SubscriptionConfirmed:
    data = {"token": token}
    return ev.SubscriptionConfirmed.model_validate(
        _envelope("newsroom.subscription.confirmed", data)
    )


def preferences(sid: str, **changes: Any) -> ev.PreferencesUpdated:
    data = {"subscriber_id": sid, "digest": "daily", "timezone": "UTC", "digest_hour": 8, **changes}
    return ev.PreferencesUpdated.model_validate(_envelope("newsroom.preferences.updated", data))


def erase(sid: str) -> ev.SubscriberErased:
    return ev.SubscriberErased.model_validate(
        _envelope("newsroom.subscriber.erased", {"subscriber_id": sid})
    )


def event_records(events: Iterable[ev.CloudEvent], prefix: str) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of each event, keyed as the contract says (confirmations: any key),
    for a worker whose topic names start with ``prefix``."""
    out = []
    for event in events:
        key, value = codec.encode(event, event.partition_key() or "x")
        out.append((f"{prefix}newsroom.{event.topic_role}", key, value))
    return out
