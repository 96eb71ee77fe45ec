"""Which events travel on which topic, with which key, produced and consumed by whom.

The single catalogue used to create topics, to document them (AsyncAPI) and to route records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from newsroom_notify.contract.events import ALL_EVENTS, CloudEvent


class TopicNames(Protocol):
    """Configured topic names (the service's ``TopicSettings``): one attribute per role, and
    the full name of a topic with its prefix."""

    def name(self, base: str) -> str: ...


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    role: str
    key: str
    description: str
    produced_by: str
    consumed_by: str
    is_input: bool

    def name(self, topics: TopicNames) -> str:
        """The configured, prefixed topic name."""
        return topics.name(getattr(topics, self.role))

    def events(self) -> list[type[CloudEvent]]:
        """The envelope classes that travel on this topic."""
        return [m for m in ALL_EVENTS if m.topic_role == self.role]


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(
        "articles",
        "article_id",
        "Articles published or updated by the CMS.",
        "the CMS",
        "newsroom-notify",
        is_input=True,
    ),
    TopicSpec(
        "comments",
        "article_id",
        "Comments posted, moderated, edited and deleted; one article's comments stay ordered.",
        "the comment system",
        "newsroom-notify",
        is_input=True,
    ),
    TopicSpec(
        "subscriptions",
        "subscriber id (member id, or guest id derived from the e-mail address)",
        "Subscription commands, preferences and erasure requests.",
        "the website, the subscription API",
        "newsroom-notify",
        is_input=True,
    ),
    TopicSpec(
        "notifications",
        "recipient id",
        "Instant notifications and their retractions.",
        "newsroom-notify",
        "e-mail sender, push gateway, in-app inbox",
        is_input=False,
    ),
    TopicSpec(
        "digests",
        "recipient id",
        "Periodic digests, one per recipient per period.",
        "newsroom-notify",
        "e-mail sender, in-app inbox",
        is_input=False,
    ),
)

INPUT_ROLES = tuple(t.role for t in CATALOGUE if t.is_input)
