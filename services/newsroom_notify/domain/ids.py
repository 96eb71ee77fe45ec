"""Deterministic ids: a replay of the same input yields the same ids.

A notification id depends on (recipient, subject, reason family): one comment gives a recipient
at most one notification whatever the reason chosen, so the family of every comment reason is
``comment``. Consumers drop ids they have already handled.
"""

from __future__ import annotations

import hashlib

from newsroom_notify.domain.model import Reason

_FAMILY = {
    Reason.REPLY: "comment",
    Reason.MENTION: "comment",
    Reason.FOLLOWED_COMMENTER: "comment",
    Reason.FOLLOW_UP: "comment",
    Reason.NEW_ARTICLE: "article",
    Reason.CONFIRM_SUBSCRIPTION: "confirm",
    Reason.CONFIRM_ERASURE: "erase",
}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]


def notification_id(recipient_id: str, subject_key: str, reason: Reason) -> str:
    """The id of the notification of ``recipient_id`` about ``subject_key``."""
    return "n-" + _digest("v1", recipient_id, subject_key, _FAMILY[reason])


def retraction_id(notification_id_: str) -> str:
    """The CloudEvent id of the retraction of a notification."""
    return "r-" + notification_id_.removeprefix("n-")


def digest_id(recipient_id: str, frequency: str, period_start: str) -> str:
    """The id of a recipient's digest for one period."""
    return "d-" + _digest("v1", recipient_id, frequency, period_start)
