"""Small factories for contract events: the stories of the tests and of the demo."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id

_ids = itertools.count(1)
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _envelope(event_type: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    n = next(_ids)
    moment = (at or T0 + timedelta(seconds=n)).isoformat()
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
