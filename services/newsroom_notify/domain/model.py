"""The domain's vocabulary: reasons and their priority, the conditions a basis needs, and the
subjects shared by state and messages (what a notification is about, and why). No Faust or
Kafka here.

Stored state is in ``domain/state.py``, the messages between stages in ``domain/messages.py``,
the tables' composite keys in ``domain/keys.py``. Three stages, each owning the state its
decisions need (see ``domain/__init__``):

* **threads** (key: article id) — the article, its comments, participants and article followers;
* **follows** (key: followed entity, ``commenter:<id>``, ``journalist:<id>``, ``section:<name>``) —
  followers of commenters, journalists and sections, and who each comment finally went to;
* **inbox** (key: subscriber id) — profile, consent, subscriptions, preferences, what was sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from newsroom_notify.contract.events import Delivery, Scope


class Reason(StrEnum):
    """Why somebody is notified."""

    REPLY = "reply"
    MENTION = "mention"
    FOLLOWED_COMMENTER = "followed_commenter"
    FOLLOW_UP = "follow_up"
    NEW_ARTICLE = "new_article"
    CONFIRM_SUBSCRIPTION = "confirm_subscription"
    CONFIRM_ERASURE = "confirm_erasure"


# Rule "One notification per person per comment": when several reasons apply, the strongest wins.
PRIORITY: dict[Reason, int] = {
    Reason.REPLY: 0,
    Reason.MENTION: 1,
    Reason.FOLLOWED_COMMENTER: 2,
    Reason.FOLLOW_UP: 3,
    Reason.NEW_ARTICLE: 4,
    Reason.CONFIRM_SUBSCRIPTION: 5,
    Reason.CONFIRM_ERASURE: 6,
}


class Condition(StrEnum):
    """What the inbox must still check before a basis may notify."""

    SUBSCRIBED = "subscribed"  # the basis's own subscription must be active
    ASKED_FOR_REPLIES = "asked_for_replies"  # rule "Replies": a choice or subscription
    CONSENTED = "consented"  # rule "Mentions": any confirmed subscription


Status = Literal["approved", "pending", "spam", "trash", "deleted"]


# Defaults (DESIGN.md): replies and mentions instant, follows in the daily digest.
DEFAULT_DELIVERY: dict[str, Delivery] = {
    "replies": "instant",
    "article": "digest",
    "commenter": "digest",
    "journalist": "digest",
    "section": "digest",
}


class State(BaseModel):
    """Base of stored state: mutable, unknown fields dropped on load (forward compatible)."""

    model_config = ConfigDict(extra="ignore")


class Message(BaseModel):
    """Base of the messages between stages (internal topics)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ArticleInfo(State):
    """What a notification needs to know about an article."""

    id: str
    title: str
    url: str
    journalist_id: str
    section: str | None = None


class CommentSummary(Message):
    """A comment as shown in notifications."""

    id: str
    author_id: str
    author_name: str
    excerpt: str
    url: str


class Subject(Message):
    """What a notification is about: an article, and a comment (and its parent) if any."""

    key: str  # "c:<comment id>" or "a:<article id>": one notification per (recipient, key)
    article: ArticleInfo
    comment: CommentSummary | None = None
    parent: CommentSummary | None = None

    @property
    def author_id(self) -> str | None:
        """Who caused it (never notified about it, rule "Nobody hears about their own comment")."""
        return self.comment.author_id if self.comment else self.article.journalist_id


class Basis(Message):
    """One reason a recipient may be notified, and the subscription it stems from."""

    reason: Reason
    condition: Condition
    scope: Scope
    target: str | None
    delivery: Delivery | None = None  # None: the subscription's delivery or the default


class ActivityItem(State):
    """One approved comment as remembered for article digests."""

    comment: CommentSummary
    at: datetime


def erased_author_id(comment_id: str) -> str:
    """The author id a comment keeps once its author is erased (no trace of who it was)."""
    return f"erased:{comment_id}"


ERASED_NAME = "[erased]"  # the author name of an erased person's comment, wherever it is shown
UNCONFIRMED_NAME = "reader"
"""What a guest who has not confirmed is called in mails: not the name typed with a request,
which anybody could have typed (a phishing line in the greeting of the newsroom's own mail)."""


def anonymised(comment: CommentSummary) -> CommentSummary:
    """An erased person's comment as other readers may still see it quoted (as the parent of
    a reply): no author id or name, no text; only the link to where it stood."""
    return CommentSummary(
        id=comment.id,
        author_id=f"erased:{comment.id}",
        author_name=ERASED_NAME,
        excerpt="",
        url=comment.url,
    )
