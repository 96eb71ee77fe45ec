"""Pydantic models of every event of contract v1, as CloudEvents 1.0 structured-mode envelopes.

Each event type is one envelope class (``CommentPosted``, ``NotificationCreated``...) whose
``type`` field is a literal, so a topic's events form a discriminated union on ``type``.

Inputs tolerate unknown fields (producers may add fields before we read them); outputs are
exactly what we document. Timestamps are timezone-aware RFC 3339. ``schemas/`` is generated from
these classes (``make schemas``): change a model, regenerate, commit both.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, ClassVar, Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from newsroom_notify.contract.identity import guest_subscriber_id, is_guest_id

SPECVERSION: Literal["1.0"] = "1.0"
DATACONTENTTYPE: Literal["application/json"] = "application/json"
CONTENT_TYPE = "application/cloudevents+json"

_URL_PATTERN = r"^https?://[^\s]+$"

Url = Annotated[
    str,
    Field(
        pattern=_URL_PATTERN,
        max_length=2048,
        description="Absolute http(s) URL.",
        examples=["https://news.example.com/2026/11/28/city-council-votes"],
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=200)]
CommentStatus = Literal["approved", "pending", "spam"]
ModerationStatus = Literal["approved", "pending", "spam", "trash"]
NotifyChoice = Literal["follow_up", "replies"]
Scope = Literal["article", "replies", "commenter", "journalist", "section"]
Delivery = Literal["instant", "digest"]
Frequency = Literal["hourly", "daily", "weekly"]
Reason = Literal[
    "reply",
    "mention",
    "followed_commenter",
    "follow_up",
    "new_article",
    "confirm_subscription",
    "confirm_erasure",
]


TokenVersion = Annotated[
    int | None,
    Field(
        description="Set by the API when a link token (not a member's login) authorised the "
        "command: the token's version. The command is ignored if the subscriber has signed out "
        "everywhere (or was erased) since the token was minted.",
        examples=[None],
    ),
]


class InputData(BaseModel):
    """Base of input payloads: unknown fields are ignored (forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class OutputData(BaseModel):
    """Base of output payloads: exactly the documented fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- input payloads


class ArticleAuthor(InputData):
    """The journalist who wrote an article."""

    id: Id = Field(description="Journalist id in the CMS.", examples=["j-1042"])
    name: str = Field(description="Byline name.", examples=["Maria Okafor"])


class ArticleData(InputData):
    """An article as published or updated by the CMS."""

    article_id: Id = Field(description="Article id in the CMS.", examples=["a-20261128-council"])
    title: str = Field(
        min_length=1,
        max_length=500,
        description="Headline.",
        examples=["City council votes to pedestrianise the old town"],
    )
    url: Url = Field(description="Canonical URL of the article.")
    author: ArticleAuthor = Field(description="The journalist.")
    section: str | None = Field(
        None, description="Section name, if any.", examples=["local", "politics"]
    )
    published_at: AwareDatetime = Field(
        description="Publication time (RFC 3339 with offset).",
        examples=["2026-11-28T07:30:00Z"],
    )


class CommentAuthor(InputData):
    """Who wrote a comment: a member (account id) or a guest (name and e-mail only)."""

    id: Id | None = Field(
        description="Member account id; null for guests.", examples=["m-3381", None]
    )
    name: str = Field(
        min_length=1, max_length=200, description="Display name.", examples=["Geoff Roach"]
    )
    email: EmailStr | None = Field(
        None,
        description="E-mail address. Required for guests, optional for members. Never logged.",
        examples=["geoff.roach@example.org"],
    )
    guest: bool = Field(description="True for guest commenters.", examples=[False])

    @model_validator(mode="after")
    def _guest_or_member(self) -> Self:
        if self.guest and self.email is None:
            raise ValueError("a guest author needs an email")
        if self.guest and self.id is not None:
            raise ValueError("a guest author has no id (id must be null)")
        if not self.guest and self.id is None:
            raise ValueError("a member author needs an id")
        if self.id is not None and is_guest_id(self.id):
            raise ValueError("a member id cannot have the form of a guest id")
        return self

    @property
    def subscriber_id(self) -> str:
        """The author's subscriber id (member id, or the derived guest id)."""
        if self.id is not None:
            return self.id
        assert self.email is not None  # guaranteed by the validator
        return guest_subscriber_id(self.email)


class CommentPostedData(InputData):
    """A new comment, as saved by the comment system."""

    comment_id: Id = Field(description="Comment id.", examples=["c-88120"])
    article_id: Id = Field(
        description="Article the comment is under.", examples=["a-20261128-council"]
    )
    parent_id: Id | None = Field(
        description="Comment this one replies to; null for a top-level comment.",
        examples=["c-88101", None],
    )
    author: CommentAuthor = Field(description="Who wrote it.")
    text: str = Field(
        max_length=20000,
        description="Comment text (plain text).",
        examples=["@Geoff Roach the bus lanes stay, read the second paragraph."],
    )
    status: CommentStatus = Field(
        description="Moderation status at posting.", examples=["approved"]
    )
    posted_at: AwareDatetime = Field(
        description="When it was posted (RFC 3339).", examples=["2026-11-28T08:01:12Z"]
    )
    notify: NotifyChoice | None = Field(
        None,
        description=(
            "The commenter's 'Notify of' choice: follow_up = every new approved comment on this "
            "article, replies = replies to my comments, null = nothing."
        ),
        examples=["replies"],
    )


class CommentModeratedData(InputData):
    """A moderator changed a comment's status."""

    comment_id: Id = Field(description="Comment id.", examples=["c-88120"])
    article_id: Id = Field(description="Article id.", examples=["a-20261128-council"])
    status: ModerationStatus = Field(description="New status.", examples=["spam"])


class CommentEditedData(InputData):
    """A comment's text was edited."""

    comment_id: Id = Field(description="Comment id.", examples=["c-88120"])
    article_id: Id = Field(description="Article id.", examples=["a-20261128-council"])
    text: str = Field(max_length=20000, description="New text.", examples=["(edited) Thanks!"])


class CommentDeletedData(InputData):
    """A comment was deleted."""

    comment_id: Id = Field(description="Comment id.", examples=["c-88120"])
    article_id: Id = Field(description="Article id.", examples=["a-20261128-council"])


class Subscriber(InputData):
    """Who subscribes: a member (id) or a guest (id null, e-mail address)."""

    id: Id | None = Field(description="Member account id; null for guests.", examples=["m-3381"])
    name: str = Field(min_length=1, max_length=200, description="Display name.", examples=["Ana"])
    email: EmailStr | None = Field(
        None, description="E-mail address; required for guests.", examples=["ana@example.org"]
    )

    @model_validator(mode="after")
    def _has_identity(self) -> Self:
        if self.id is None and self.email is None:
            raise ValueError("a subscriber needs an id (member) or an email (guest)")
        if self.id is not None and is_guest_id(self.id):
            raise ValueError("a member id cannot have the form of a guest id")
        return self

    @property
    def subscriber_id(self) -> str:
        """The subscriber id (member id, or the derived guest id)."""
        if self.id is not None:
            return self.id
        assert self.email is not None  # guaranteed by the validator
        return guest_subscriber_id(self.email)


class SubscriptionRequestedData(InputData):
    """Somebody asked to be notified about something."""

    subscriber: Subscriber = Field(description="Who.")
    scope: Scope = Field(
        description=(
            "What: article (its follow-up comments), replies (replies to my comments), "
            "commenter (a commenter's new comments), journalist (their new articles), "
            "section (new articles in a section)."
        ),
        examples=["article"],
    )
    target: Id | None = Field(
        description=(
            "Article id, commenter id, journalist id or section name; null only for "
            "site-wide replies."
        ),
        examples=["a-20261128-council"],
    )
    delivery: Delivery | None = Field(
        None,
        description=(
            "instant or digest; null = keep the delivery of an existing subscription to the "
            "same scope and target, or the scope's default for a new one."
        ),
        examples=["digest", None],
    )

    @model_validator(mode="after")
    def _target_matches_scope(self) -> Self:
        if self.target is None and self.scope != "replies":
            raise ValueError(f"scope {self.scope!r} needs a target")
        return self


class SubscriptionCancelledData(InputData):
    """A subscription was cancelled."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["m-3381"])
    scope: Scope | Literal["digest"] = Field(
        description="Scope of the subscription; 'digest' cancels every digest-mode one "
        "(what a digest's own unsubscribe token does).",
        examples=["article"],
    )
    target: Id | None = Field(description="Its target.", examples=["a-20261128-council"])
    token_version: TokenVersion = None


class SubscriptionRestoredData(SubscriptionCancelledData):
    """The 'undo' of an unsubscribe: the subscription just cancelled is restored as it was
    (delivery included), without a new confirmation. Only a subscription the subscriber
    cancelled themselves and has not taken up again since is restored; anything else is
    ignored."""


class SubscriptionDeliveryChangedData(InputData):
    """The subscriber changes how one of their subscriptions is delivered (instant or digest),
    without a new confirmation: consent to the subscription was given already. Only an existing
    (active) subscription changes; anything else is ignored."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["m-3381"])
    scope: Scope = Field(description="Scope of the subscription.", examples=["article"])
    target: Id | None = Field(description="Its target.", examples=["a-20261128-council"])
    delivery: Delivery = Field(description="The new delivery.", examples=["digest"])
    token_version: TokenVersion = None


class SubscriptionConfirmedData(InputData):
    """A guest clicked the confirmation link (double opt-in)."""

    token: str = Field(
        min_length=1,
        max_length=2000,
        description="The confirm token from the confirm_subscription notification.",
        examples=["eyJzIjoiZ3Vlc3RfIn0.Z2Fh.c2lnbmF0dXJl"],
    )


class QuietHours(InputData):
    """A daily window (subscriber-local) in which nothing instant is delivered."""

    start: time = Field(description="Local start, HH:MM.", examples=["22:00"])
    end: time = Field(description="Local end, HH:MM (may be past midnight).", examples=["07:00"])


class PreferencesUpdatedData(InputData):
    """A subscriber's delivery preferences."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["m-3381"])
    digest: Frequency = Field(description="Digest frequency.", examples=["daily"])
    timezone: str = Field(description="IANA time zone.", examples=["Europe/Berlin"])
    digest_hour: int = Field(ge=0, le=23, description="Local hour digests go out.", examples=[8])
    digest_weekday: int = Field(
        0, ge=0, le=6, description="Weekday of weekly digests, 0 = Monday.", examples=[0]
    )
    quiet_hours: QuietHours | None = Field(None, description="Optional quiet hours.")
    paused: bool = Field(False, description="Deliver nothing while true.", examples=[False])
    muted_articles: list[Id] = Field(
        default_factory=list,
        description="Articles to deliver nothing from.",
        examples=[["a-20261101-budget"]],
    )
    token_version: TokenVersion = None

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class SubscriberErasedData(InputData):
    """Right to erasure: forget this subscriber."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["guest_k3v7..."])


class SubscriberSignedOutData(InputData):
    """Sign me out everywhere: every token minted for this subscriber so far stops working."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["guest_k3v7..."])
    token_version: TokenVersion = None


class ErasureRequestedData(InputData):
    """Somebody asked for this subscriber's erasure without proving they own the address (a
    manage link, or a guest's address typed in): the address is asked to confirm by mail."""

    subscriber_id: Id = Field(description="Subscriber id.", examples=["guest_k3v7..."])
    email: EmailStr | None = Field(
        None,
        description="The address typed in (guests asking by address). Used only if the "
        "subscriber has no stored address and its guest id is this subscriber id.",
        examples=["ana@example.org"],
    )
    token_version: TokenVersion = None


class ErasureConfirmedData(InputData):
    """The owner of the address clicked the erasure confirmation link."""

    token: str = Field(
        min_length=1,
        max_length=2000,
        description="The erase token from the confirm_erasure notification.",
        examples=["eyJzIjoiZ3Vlc3RfIn0.Z2Fh.c2lnbmF0dXJl"],
    )


# -------------------------------------------------------------------------- output payloads


class Recipient(OutputData):
    """Who a notification or digest is for."""

    id: str = Field(description="Subscriber id.", examples=["m-3381"])
    name: str = Field(description="Display name.", examples=["Geoff Roach"])
    email: str | None = Field(
        description="Address to send to (null if only in-app delivery is possible).",
        examples=["geoff.roach@example.org"],
    )


class ArticleRef(OutputData):
    """The article a notification is about."""

    id: str = Field(description="Article id.", examples=["a-20261128-council"])
    title: str = Field(description="Headline.", examples=["City council votes..."])
    url: str = Field(description="Article URL.", examples=["https://news.example.com/a/1"])


class CommentRef(OutputData):
    """A comment, as shown in a notification."""

    id: str = Field(description="Comment id.", examples=["c-88120"])
    author_name: str = Field(description="Display name of its author.", examples=["Ana"])
    excerpt: str = Field(
        max_length=300, description="First characters of the text.", examples=["I agree..."]
    )
    url: str = Field(
        description="Link to the comment.",
        examples=["https://news.example.com/a/1#comment-c-88120"],
    )


class NotificationCreatedData(OutputData):
    """Somebody must be told about something, now."""

    notification_id: str = Field(
        description="Deterministic id: a replay yields the same id. Consumers drop repeats.",
        examples=["n-5d1c0a6f9b2e4c7a8f3e"],
    )
    recipient: Recipient = Field(description="Who to notify.")
    reason: Reason = Field(description="Why.", examples=["reply"])
    article: ArticleRef = Field(description="The article concerned.")
    comment: CommentRef | None = Field(description="The comment concerned, if any.")
    parent: CommentRef | None = Field(description="The comment replied to, for replies.")
    unsubscribe_token: str = Field(
        description="Signed, expiring token cancelling the subscription this came from.",
        examples=["u2.WyJtLTMzODEiLCJhcnRpY2xlIiwiYS0xIiwwXQ.axGgSg.wOyEmAa3v3S7F8R-Z0Vj9Q"],
    )
    confirm_token: str | None = Field(
        None,
        description="Only for confirm_subscription: the double opt-in token (POST /v1/confirm), "
        "which confirms exactly the request it was sent for; for confirm_erasure: the erasure "
        "token (POST /v1/erasure/confirm). Its unsubscribe_token is then empty.",
    )
    manage_token: str | None = Field(
        None,
        description="Signed token for the recipient's 'manage my subscriptions' link "
        "(GET /v1/subscribers/{id}/subscriptions?token=...).",
    )


class NotificationRetractedData(OutputData):
    """A notification sent earlier should be withdrawn (its comment was removed)."""

    notification_id: str = Field(description="Id of the retracted notification.")
    recipient_id: str = Field(description="Its recipient.", examples=["m-3381"])
    cause: Literal["spam", "trash", "deleted"] = Field(
        description="What happened to the comment.", examples=["spam"]
    )


class Period(OutputData):
    """The period a digest covers."""

    frequency: Frequency = Field(description="hourly, daily or weekly.", examples=["daily"])
    start: AwareDatetime = Field(description="Inclusive start.", examples=["2026-11-27T08:00:00Z"])
    end: AwareDatetime = Field(description="Exclusive end.", examples=["2026-11-28T08:00:00Z"])


class DigestItem(OutputData):
    """One comment in a digest, with why it is there."""

    comment: CommentRef = Field(description="The comment.")
    reason: Reason = Field(description="Why it is in the digest.", examples=["follow_up"])


class DigestArticle(OutputData):
    """One article's activity in a digest."""

    article: ArticleRef = Field(description="The article.")
    new_comments: int = Field(ge=0, description="New approved comments in the period.")
    items: list[DigestItem] = Field(description="Up to N comments, replies and mentions first.")
    new_article: bool = Field(
        False, description="The article itself is new (a followed journalist or section)."
    )
    unsubscribe_token: str | None = Field(
        None, description="Cancels the subscription that brought this article into the digest."
    )


class DigestReadyData(OutputData):
    """A periodic digest for one recipient."""

    digest_id: str = Field(
        description="Deterministic id from recipient + frequency + period.",
        examples=["d-0c3e9a1f2b7d4e6a"],
    )
    recipient: Recipient = Field(description="Who it is for.")
    period: Period = Field(description="The period covered.")
    articles: list[DigestArticle] = Field(description="Activity per article.")
    total_comments: int = Field(ge=0, description="Sum of new_comments.")
    unsubscribe_token: str = Field(description="Cancels the subscription(s) of this digest.")


# ------------------------------------------------------------------------------ envelopes


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes shared by every event (structured JSON mode)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = Field(
        SPECVERSION, description="CloudEvents version.", examples=["1.0"]
    )
    id: Id = Field(
        description="Event id, unique per source.", examples=["6f1c3a0e-2b7d-4c55-9a51-1f0e"]
    )
    source: str = Field(
        min_length=1,
        description="URI-reference of the producer.",
        examples=["urn:newsroom:comments", "https://cms.news.example.com"],
    )
    type: str
    time: AwareDatetime = Field(
        description="When the occurrence happened (RFC 3339).",
        examples=["2026-11-28T08:01:12Z"],
    )
    datacontenttype: Literal["application/json"] = Field(
        DATACONTENTTYPE, description="Media type of data.", examples=["application/json"]
    )
    subject: str | None = Field(None, description="Optional subject (e.g. the comment id).")
    data: Any

    topic_role: ClassVar[str]  # which contract topic carries this event type

    def partition_key(self) -> str | None:
        """The record key this event must travel with (None: any non-empty key)."""
        return None


class _KeyedByArticle(CloudEvent):
    """Events keyed by the article they are about (articles and comments topics)."""

    def partition_key(self) -> str:
        return str(self.data.article_id)


class _KeyedBySubscriber(CloudEvent):
    """Subscription commands keyed by the subscriber id in their data."""

    def partition_key(self) -> str:
        return str(self.data.subscriber_id)


class ArticlePublished(_KeyedByArticle):
    """newsroom.article.published (topic newsroom.articles, key article_id)."""

    topic_role: ClassVar[str] = "articles"
    type: Literal["newsroom.article.published"] = Field(description="Event type.")
    data: ArticleData


class ArticleUpdated(_KeyedByArticle):
    """newsroom.article.updated (topic newsroom.articles, key article_id)."""

    topic_role: ClassVar[str] = "articles"
    type: Literal["newsroom.article.updated"] = Field(description="Event type.")
    data: ArticleData


class CommentPosted(_KeyedByArticle):
    """newsroom.comment.posted (topic newsroom.comments, key article_id)."""

    topic_role: ClassVar[str] = "comments"
    type: Literal["newsroom.comment.posted"] = Field(description="Event type.")
    data: CommentPostedData


class CommentModerated(_KeyedByArticle):
    """newsroom.comment.moderated (topic newsroom.comments, key article_id)."""

    topic_role: ClassVar[str] = "comments"
    type: Literal["newsroom.comment.moderated"] = Field(description="Event type.")
    data: CommentModeratedData


class CommentEdited(_KeyedByArticle):
    """newsroom.comment.edited (topic newsroom.comments, key article_id)."""

    topic_role: ClassVar[str] = "comments"
    type: Literal["newsroom.comment.edited"] = Field(description="Event type.")
    data: CommentEditedData


class CommentDeleted(_KeyedByArticle):
    """newsroom.comment.deleted (topic newsroom.comments, key article_id)."""

    topic_role: ClassVar[str] = "comments"
    type: Literal["newsroom.comment.deleted"] = Field(description="Event type.")
    data: CommentDeletedData


class SubscriptionRequested(CloudEvent):
    """newsroom.subscription.requested (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscription.requested"] = Field(description="Event type.")
    data: SubscriptionRequestedData

    def partition_key(self) -> str:
        return self.data.subscriber.subscriber_id


class SubscriptionCancelled(_KeyedBySubscriber):
    """newsroom.subscription.cancelled (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscription.cancelled"] = Field(description="Event type.")
    data: SubscriptionCancelledData


class SubscriptionRestored(_KeyedBySubscriber):
    """newsroom.subscription.restored (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscription.restored"] = Field(description="Event type.")
    data: SubscriptionRestoredData


class SubscriptionDeliveryChanged(_KeyedBySubscriber):
    """newsroom.subscription.delivery_changed (topic newsroom.subscriptions, key subscriber
    id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscription.delivery_changed"] = Field(description="Event type.")
    data: SubscriptionDeliveryChangedData


class SubscriptionConfirmed(CloudEvent):
    """newsroom.subscription.confirmed (topic newsroom.subscriptions, key subscriber id).

    The subscriber id is inside the signed token; the key is not checked against it.
    """

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscription.confirmed"] = Field(description="Event type.")
    data: SubscriptionConfirmedData


class PreferencesUpdated(_KeyedBySubscriber):
    """newsroom.preferences.updated (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.preferences.updated"] = Field(description="Event type.")
    data: PreferencesUpdatedData


class SubscriberErased(_KeyedBySubscriber):
    """newsroom.subscriber.erased (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscriber.erased"] = Field(description="Event type.")
    data: SubscriberErasedData


class SubscriberSignedOut(_KeyedBySubscriber):
    """newsroom.subscriber.signed_out (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.subscriber.signed_out"] = Field(description="Event type.")
    data: SubscriberSignedOutData


class ErasureRequested(_KeyedBySubscriber):
    """newsroom.erasure.requested (topic newsroom.subscriptions, key subscriber id)."""

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.erasure.requested"] = Field(description="Event type.")
    data: ErasureRequestedData


class ErasureConfirmed(CloudEvent):
    """newsroom.erasure.confirmed (topic newsroom.subscriptions, key subscriber id).

    The subscriber id is inside the signed token; the key is not checked against it.
    """

    topic_role: ClassVar[str] = "subscriptions"
    type: Literal["newsroom.erasure.confirmed"] = Field(description="Event type.")
    data: ErasureConfirmedData


class OutputEvent(CloudEvent):
    """Base of the events this service emits (no unknown attributes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotificationCreated(OutputEvent):
    """newsroom.notification.created (topic newsroom.notifications, key recipient id)."""

    topic_role: ClassVar[str] = "notifications"
    type: Literal["newsroom.notification.created"] = Field(
        "newsroom.notification.created", description="Event type."
    )
    data: NotificationCreatedData

    def partition_key(self) -> str:
        return self.data.recipient.id


class NotificationRetracted(OutputEvent):
    """newsroom.notification.retracted (topic newsroom.notifications, key recipient id)."""

    topic_role: ClassVar[str] = "notifications"
    type: Literal["newsroom.notification.retracted"] = Field(
        "newsroom.notification.retracted", description="Event type."
    )
    data: NotificationRetractedData

    def partition_key(self) -> str:
        return self.data.recipient_id


class DigestReady(OutputEvent):
    """newsroom.digest.ready (topic newsroom.digests, key recipient id)."""

    topic_role: ClassVar[str] = "digests"
    type: Literal["newsroom.digest.ready"] = Field(
        "newsroom.digest.ready", description="Event type."
    )
    data: DigestReadyData

    def partition_key(self) -> str:
        return self.data.recipient.id


ArticleEvent = Annotated[ArticlePublished | ArticleUpdated, Field(discriminator="type")]
CommentEvent = Annotated[
    CommentPosted | CommentModerated | CommentEdited | CommentDeleted,
    Field(discriminator="type"),
]
SubscriptionEvent = Annotated[
    SubscriptionRequested
    | SubscriptionCancelled
    | SubscriptionRestored
    | SubscriptionDeliveryChanged
    | SubscriptionConfirmed
    | PreferencesUpdated
    | SubscriberErased
    | SubscriberSignedOut
    | ErasureRequested
    | ErasureConfirmed,
    Field(discriminator="type"),
]
NotificationEvent = Annotated[
    NotificationCreated | NotificationRetracted, Field(discriminator="type")
]

INPUT_EVENTS: tuple[type[CloudEvent], ...] = (
    ArticlePublished,
    ArticleUpdated,
    CommentPosted,
    CommentModerated,
    CommentEdited,
    CommentDeleted,
    SubscriptionRequested,
    SubscriptionCancelled,
    SubscriptionRestored,
    SubscriptionDeliveryChanged,
    SubscriptionConfirmed,
    PreferencesUpdated,
    SubscriberErased,
    SubscriberSignedOut,
    ErasureRequested,
    ErasureConfirmed,
)
OUTPUT_EVENTS: tuple[type[CloudEvent], ...] = (
    NotificationCreated,
    NotificationRetracted,
    DigestReady,
)
ALL_EVENTS = INPUT_EVENTS + OUTPUT_EVENTS


def event_type_name(model: type[CloudEvent]) -> str:
    """The CloudEvents ``type`` of an envelope class."""
    (name,) = get_args(model.model_fields["type"].annotation)
    return str(name)


TYPE_TO_MODEL: dict[str, type[CloudEvent]] = {event_type_name(m): m for m in ALL_EVENTS}

_EXCERPT_WS = re.compile(r"\s+")


def excerpt(text: str, limit: int = 200) -> str:
    """A one-line excerpt of a comment's text, cut at a word boundary."""
    flat = _EXCERPT_WS.sub(" ", text).strip()
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
