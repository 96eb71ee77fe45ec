"""One realistic example of every event type, as the JSON a producer would write.

Used to document the contract (``schemas/examples/``), in tests (each must validate against
both the pydantic models and the generated JSON Schemas), and by the demo.
"""

from __future__ import annotations

from typing import Any

from newsroom_notify.contract.identity import guest_subscriber_id

ARTICLE = {
    "article_id": "a-20261128-council",
    "title": "City council votes to pedestrianise the old town",
    "url": "https://news.example.com/2026/11/28/city-council-votes",
    "author": {"id": "j-1042", "name": "Maria Okafor"},
    "section": "local",
    "published_at": "2026-11-28T07:30:00Z",
}
GUEST_EMAIL = "geoff.roach@example.org"
GUEST_ID = guest_subscriber_id(GUEST_EMAIL)
# An unsubscribe link as the service writes one (``domain/tokens.py``: ``u2.``, the claims,
# the time, half of an HMAC).
LINK_EXAMPLE = "u2.WyJndWVzdF9xZjZiNGt2MyIsInJlcGxpZXMiLG51bGwsMF0.axGgSg.Zfw5vq4RIRTQ1r6xVgt1KQ"


def _envelope(event_type: str, event_id: str, source: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": "2026-11-28T08:01:12Z",
        "datacontenttype": "application/json",
        "data": data,
    }


def sample_events() -> dict[str, dict[str, Any]]:
    """Event type -> one valid example event of that type."""
    cms, comments, web = "urn:newsroom:cms", "urn:newsroom:comments", "urn:newsroom:web"
    svc = "urn:newsroom-notify"
    comment_ref = {
        "id": "c-88120",
        "author_name": "Ana Lima",
        "excerpt": "@Geoff Roach the bus lanes stay, read the second paragraph.",
        "url": "https://news.example.com/2026/11/28/city-council-votes#comment-c-88120",
    }
    parent_ref = {
        "id": "c-88101",
        "author_name": "Geoff Roach",
        "excerpt": "So where do the buses go?",
        "url": "https://news.example.com/2026/11/28/city-council-votes#comment-c-88101",
    }
    article_ref = {"id": ARTICLE["article_id"], "title": ARTICLE["title"], "url": ARTICLE["url"]}
    recipient = {"id": GUEST_ID, "name": "Geoff Roach", "email": GUEST_EMAIL}
    samples = [
        _envelope("newsroom.article.published", "evt-a-1", cms, ARTICLE),
        _envelope("newsroom.article.updated", "evt-a-2", cms, {**ARTICLE, "title": "Updated"}),
        _envelope(
            "newsroom.comment.posted",
            "evt-c-1",
            comments,
            {
                "comment_id": "c-88120",
                "article_id": ARTICLE["article_id"],
                "parent_id": "c-88101",
                "author": {"id": "m-3381", "name": "Ana Lima", "email": None, "guest": False},
                "text": "@Geoff Roach the bus lanes stay, read the second paragraph.",
                "status": "approved",
                "posted_at": "2026-11-28T08:01:12Z",
                "notify": "replies",
            },
        ),
        _envelope(
            "newsroom.comment.moderated",
            "evt-c-2",
            comments,
            {"comment_id": "c-88120", "article_id": ARTICLE["article_id"], "status": "spam"},
        ),
        _envelope(
            "newsroom.comment.edited",
            "evt-c-3",
            comments,
            {
                "comment_id": "c-88120",
                "article_id": ARTICLE["article_id"],
                "text": "@Geoff Roach the bus lanes stay (see paragraph two).",
            },
        ),
        _envelope(
            "newsroom.comment.deleted",
            "evt-c-4",
            comments,
            {"comment_id": "c-88120", "article_id": ARTICLE["article_id"]},
        ),
        _envelope(
            "newsroom.subscription.requested",
            "evt-s-1",
            web,
            {
                "subscriber": {"id": None, "name": "Geoff Roach", "email": GUEST_EMAIL},
                "scope": "article",
                "target": ARTICLE["article_id"],
                "delivery": "digest",
            },
        ),
        _envelope(
            "newsroom.subscription.cancelled",
            "evt-s-2",
            web,
            {"subscriber_id": "m-3381", "scope": "article", "target": ARTICLE["article_id"]},
        ),
        _envelope(
            "newsroom.subscription.restored",
            "evt-s-9",
            web,
            {"subscriber_id": "m-3381", "scope": "article", "target": ARTICLE["article_id"]},
        ),
        _envelope(
            "newsroom.subscription.delivery_changed",
            "evt-s-10",
            web,
            {
                "subscriber_id": "m-3381",
                "scope": "article",
                "target": ARTICLE["article_id"],
                "delivery": "instant",
            },
        ),
        _envelope(
            "newsroom.subscription.confirmed",
            "evt-s-3",
            web,
            {"token": "eyJzIjoiZ3Vlc3RfcWY2YjRrdjMifQ.aGVsbG8.c2lnbmF0dXJl"},
        ),
        _envelope(
            "newsroom.preferences.updated",
            "evt-s-4",
            web,
            {
                "subscriber_id": "m-3381",
                "digest": "daily",
                "timezone": "Europe/Berlin",
                "digest_hour": 8,
                "digest_weekday": 0,
                "quiet_hours": {"start": "22:00", "end": "07:00"},
                "paused": False,
                "muted_articles": ["a-20261101-budget"],
            },
        ),
        _envelope("newsroom.subscriber.erased", "evt-s-5", web, {"subscriber_id": GUEST_ID}),
        _envelope("newsroom.subscriber.signed_out", "evt-s-6", web, {"subscriber_id": GUEST_ID}),
        _envelope(
            "newsroom.erasure.requested",
            "evt-s-7",
            web,
            {"subscriber_id": GUEST_ID, "email": "geoff.roach@example.org"},
        ),
        _envelope(
            "newsroom.erasure.confirmed",
            "evt-s-8",
            web,
            {"token": "eyJzIjoiZ3Vlc3RfcWY2YjRrdjMifQ.aGVsbG8.c2lnbmF0dXJl"},
        ),
        _envelope(
            "newsroom.notification.created",
            "n-5d1c0a6f9b2e4c7a8f3e",
            svc,
            {
                "notification_id": "n-5d1c0a6f9b2e4c7a8f3e",
                "recipient": recipient,
                "reason": "reply",
                "article": article_ref,
                "comment": comment_ref,
                "parent": parent_ref,
                "unsubscribe_token": LINK_EXAMPLE,
                "confirm_token": None,
            },
        ),
        _envelope(
            "newsroom.notification.retracted",
            "r-5d1c0a6f9b2e4c7a8f3e",
            svc,
            {
                "notification_id": "n-5d1c0a6f9b2e4c7a8f3e",
                "recipient_id": GUEST_ID,
                "cause": "spam",
            },
        ),
        _envelope(
            "newsroom.digest.ready",
            "d-0c3e9a1f2b7d4e6a",
            svc,
            {
                "digest_id": "d-0c3e9a1f2b7d4e6a",
                "recipient": recipient,
                "period": {
                    "frequency": "daily",
                    "start": "2026-11-27T07:00:00Z",
                    "end": "2026-11-28T07:00:00Z",
                },
                "articles": [
                    {
                        "article": article_ref,
                        "new_comments": 14,
                        "items": [{"comment": comment_ref, "reason": "follow_up"}],
                    }
                ],
                "total_comments": 14,
                "unsubscribe_token": LINK_EXAMPLE,
            },
        ),
    ]
    return {s["type"]: s for s in samples}
