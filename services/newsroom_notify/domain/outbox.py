"""Where a stage's decisions go: ``Outbound`` records, routed by the stream shell."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel


class Destination(StrEnum):
    """The stage or output topic a message is for."""

    THREADS = "threads"  # keyed by article id
    FOLLOWS = "follows"  # keyed by followed entity
    INBOX = "inbox"  # keyed by subscriber id
    NOTIFICATIONS = "notifications"  # output topic, keyed by recipient id
    DIGESTS = "digests"  # output topic, keyed by recipient id

    @property
    def is_output(self) -> bool:
        """Whether this is a contract output topic (not another stage)."""
        return self in (Destination.NOTIFICATIONS, Destination.DIGESTS)


@dataclass(frozen=True)
class Outbound:
    """One message to send: where, under which key, what."""

    to: Destination
    key: str
    message: BaseModel
