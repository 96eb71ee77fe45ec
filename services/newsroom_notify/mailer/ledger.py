"""What the mailer remembers: ids it sent, retractions it saw. Pure and bounded.

The sent ids are also written to a compacted topic (``consumer.SentLog``) and read back at start,
so "never the same id twice" survives a restart; this class is the in-memory side of it.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import StrEnum


class Decision(StrEnum):
    """What to do with a notification or digest."""

    SEND = "send"
    DUPLICATE = "skipped_duplicate"
    RETRACTED = "skipped_retracted"


class _BoundedSet:
    """Insertion-ordered set keeping the ``limit`` most recently added ids."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, item: str) -> None:
        self._ids[item] = None
        self._ids.move_to_end(item)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class Ledger:
    """Sent ids and retracted notification ids, each bounded (oldest forgotten first).

    Retractions travel on the notifications topic with the recipient's key, so a retraction is
    always later in its partition than its notification: the consumer announces the
    retractions of a fetched batch (``retract``) before it sends the batch's notifications.
    """

    def __init__(self, max_sent: int, max_retracted: int) -> None:
        self._sent = _BoundedSet(max_sent)
        self._retracted = _BoundedSet(max_retracted)

    def decide(self, event_id: str, *, retractable: bool) -> Decision:
        """Send, or skip as a duplicate or as retracted (only notifications are retractable)."""
        if event_id in self._sent:
            return Decision.DUPLICATE
        if retractable and event_id in self._retracted:
            return Decision.RETRACTED
        return Decision.SEND

    def sent(self, event_id: str) -> None:
        """The SMTP server accepted the mail of ``event_id`` (or the sent log says so)."""
        self._sent.add(event_id)

    def retract(self, notification_id: str) -> bool:
        """Remember a retraction; True when the notification had already been sent."""
        already = notification_id in self._sent
        if not already:
            self._retracted.add(notification_id)
        return already

    @property
    def sizes(self) -> tuple[int, int]:
        """(sent ids held, retracted ids held)."""
        return len(self._sent), len(self._retracted)
