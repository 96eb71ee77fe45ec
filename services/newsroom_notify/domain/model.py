"""The domain's vocabulary: reasons and their priority, the state each stage keeps, and the
messages the stages pass to each other. No Faust or Kafka here.

Three stages, each owning the state its decisions need (see ``domain/__init__``):

* **threads** (key: article id) — the article, its comments, participants and article followers;
* **follows** (key: followed entity, ``commenter:<id>``, ``journalist:<id>``, ``section:<name>``) —
  followers of commenters, journalists and sections, and who each comment finally went to;
* **inbox** (key: subscriber id) — profile, consent, subscriptions, preferences, what was sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from newsroom_notify.contract.events import Delivery, Frequency, Scope


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


# ------------------------------------------------------------------------------- subjects


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


# ------------------------------------------------------------------------------ threads


class CommentInfo(State):
    """A comment in a thread (stored per comment)."""

    id: str
    article_id: str
    author_id: str
    author_name: str
    parent_id: str | None
    status: Status
    text: str
    posted_at: datetime
    notified: bool = False  # it has been fanned out (it was approved once)
    notified_by: str | None = None  # id of the input event that fanned it out
    slot: str | None = None  # activity slot it was counted in, for article digests
    # Whether its parent was approved when it was first fanned out: a reply notifies the
    # parent's author only then, and a replay decides from this, not from the parent's state
    # now (approved since, or removed). None: no parent, or stored before this was kept.
    parent_approved: bool | None = None
    # The text its notifications were sent with, once an edit changed it: a replay of the
    # event that fanned it out repeats them (an edit never notifies, not even replayed).
    notified_text: str | None = None
    # The author's "Notify of" choice, until the comment is first approved (it takes effect
    # then; a comment that is spam, trash or deleted before that subscribes nobody).
    notify: FormChoice | None = None


class Thread(State):
    """One article's discussion: everything but its comments and digest followers."""

    article: ArticleInfo | None = None
    participants: dict[str, str] = Field(default_factory=dict)  # subscriber id -> name
    instant_followers: dict[str, str] = Field(default_factory=dict)  # id -> "article" scope
    # Digest followers live in chunked tables; here only how many per schedule, and up to
    # where each schedule's periods have been fanned out.
    digest_schedules: dict[str, int] = Field(default_factory=dict)  # schedule key -> count
    fanned_until: dict[str, datetime] = Field(default_factory=dict)  # schedule key -> end
    activity_slots: list[datetime] = Field(default_factory=list)  # slots with stored activity
    erased_comments: list[str] = Field(default_factory=list)  # ids of erased authors' comments


class Authored(State):
    """The comments one subscriber wrote under one article (for erasure). Kept apart from the
    thread so a comment rewrites only its author's list, not the whole discussion's."""

    comment_ids: list[str] = Field(default_factory=list)


class ActivityItem(State):
    """One approved comment as remembered for article digests."""

    comment: CommentSummary
    at: datetime


class ActivitySlot(State):
    """An article's approved comments in one time slot (e.g. 15 minutes): a count and the ids
    of the latest few, enough to fill a digest. A small record written once per comment: O(1)
    per comment. The comments' text is read from the comments table when the slot is fanned
    out, so edits made before then show."""

    count: int = 0
    latest: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------ follows


class Followers(State):
    """The followers of one entity (commenter, journalist or section) and their delivery."""

    delivery: dict[str, Delivery] = Field(default_factory=dict)


class Fanout(State):
    """Who a subject was finally handed to, so a retraction reaches exactly them."""

    recipients: list[str] = Field(default_factory=list)


# -------------------------------------------------------------------------------- inbox


class Subscription(State):
    """One subscription of a subscriber."""

    scope: Scope
    target: str | None
    delivery: Delivery
    active: bool  # False while a guest's address is unconfirmed
    since: datetime | None = None  # event time it became active: earlier comments do not count


class QuietHours(State):
    """Local start and end, minutes after midnight."""

    start: int
    end: int


class Preferences(State):
    """Delivery preferences of a subscriber."""

    digest: Frequency = "daily"
    timezone: str = "UTC"
    digest_hour: int = 8
    digest_weekday: int = 0
    quiet_hours: QuietHours | None = None
    paused: bool = False
    muted_articles: list[str] = Field(default_factory=list)


class PendingRequest(State):
    """A subscription asked for without authentication, waiting for the address's owner to
    confirm exactly this request (its id is in the confirm token)."""

    request: str  # the id of the request (input event) that asked for it
    scope: Scope
    target: str | None
    delivery: Delivery | None  # None: keep the existing subscription's, or the default
    at: datetime
    # The name typed with the request: a guest's name from their first confirmed request on
    # (before that, whoever typed the address chose it; see UNCONFIRMED_NAME).
    name: str | None = None


UNCONFIRMED_NAME = "reader"
"""What a guest who has not confirmed is called in mails: not the name typed with a request,
which anybody could have typed (a phishing line in the greeting of the newsroom's own mail)."""


class Profile(State):
    """A subscriber as the inbox knows them.

    ``subscriptions`` holds what the subscriber has (``active`` False only in records stored
    before requests were kept apart); ``pending`` what somebody asked for in their name and the
    address's owner has not confirmed yet; ``ended`` the last few subscriptions they cancelled,
    oldest first, which an "undo" of the unsubscribe page may restore as they were.
    ``token_version`` is in every token minted for them: signing out everywhere changes it, so
    older tokens stop working; a profile created (again, after erasure) starts at its creation
    time in milliseconds, never at an earlier one's."""

    id: str
    name: str
    email: str | None = None
    guest: bool = False
    confirmed: bool = False
    subscriptions: dict[str, Subscription] = Field(default_factory=dict)
    pending: dict[str, PendingRequest] = Field(default_factory=dict)
    ended: dict[str, Subscription] = Field(default_factory=dict)
    preferences: Preferences = Field(default_factory=Preferences)
    token_version: int = 0


class Quota(State):
    """Confirmation mails recently sent to one mailbox (key: the guest id of the normalised
    address without its ``+tag``), by notification id: the per-address limit."""

    sent: dict[str, datetime] = Field(default_factory=dict)


class Sent(State):
    """What a recipient got for one subject (dedupe and retraction)."""

    notification_id: str
    reason: Reason
    mode: Literal["instant", "held", "digest"]
    origin: str = ""  # the candidacy's origin: only the same one again is a replay
    retracted: bool = False
    # The digest that listed this comment (one digest per comment per recipient, whichever
    # path brought it: a candidacy's digest item or an article's activity).
    digest_id: str | None = None
    # Written by a digest listing only (an article's activity): no candidacy decided yet,
    # so a later instant one still notifies; a later digest-mode one adds nothing.
    listed_only: bool = False


class Traces(State):
    """Where else a subscriber appears (stage, key), so erasure can reach it."""

    keys: list[tuple[str, str]] = Field(default_factory=list)


# ----------------------------------------------------------------------------- messages


class Candidacy(Message):
    """threads/follows -> inbox: this recipient may be told about this subject."""

    kind: Literal["candidacy"] = "candidacy"
    recipient_id: str
    subject: Subject
    bases: list[Basis]
    at: datetime
    origin: str = ""  # "<input event id>|<entity>": the same origin again is a replay


class Candidacies(Message):
    """follows -> inbox: the candidacies of one activity for several recipients, sent as one
    record (the stream shell groups them by the inbox partition of their recipients, so a
    fan-out to many costs one record per partition, and the subject is written once)."""

    kind: Literal["candidacies"] = "candidacies"
    subject: Subject
    at: datetime
    origin: str = ""
    bases: dict[str, list[Basis]]  # recipient id -> bases

    @classmethod
    def of(cls, candidacies: list[Candidacy]) -> Candidacies:
        """Candidacies of one activity (same subject, time and origin) as one message."""
        first = candidacies[0]
        return cls(
            subject=first.subject,
            at=first.at,
            origin=first.origin,
            bases={c.recipient_id: c.bases for c in candidacies},
        )

    def split(self) -> list[Candidacy]:
        """Back to one candidacy per recipient, in the order they were grouped."""
        return [
            Candidacy.model_construct(
                recipient_id=rid, subject=self.subject, bases=bases, at=self.at, origin=self.origin
            )
            for rid, bases in self.bases.items()
        ]


class Retraction(Message):
    """follows -> inbox: withdraw what this recipient got about this subject."""

    kind: Literal["retraction"] = "retraction"
    recipient_id: str
    subject_key: str
    cause: Literal["spam", "trash", "deleted"]


class Edit(Message):
    """follows -> inbox: a comment's text changed (digests not yet emitted show the new one)."""

    kind: Literal["edit"] = "edit"
    recipient_id: str
    subject_key: str
    excerpt: str


class FormChoice(Message):
    """threads -> inbox: a commenter chose 'Notify of' on the comment form."""

    kind: Literal["form_choice"] = "form_choice"
    subscriber_id: str
    name: str
    email: str | None
    guest: bool
    article_id: str
    choice: Literal["follow_up", "replies"]
    at: datetime


class Participated(Message):
    """threads -> inbox: this subscriber now appears in a thread (for erasure)."""

    kind: Literal["participated"] = "participated"
    subscriber_id: str
    article_id: str


class Command(Message):
    """subscriptions topic -> inbox: a subscription command, re-keyed by subscriber id."""

    kind: Literal["command"] = "command"
    subscriber_id: str
    event_json: str  # the validated input event, re-encoded
    at: datetime


class Gated(Message):
    """inbox -> inbox (key: the mailbox's quota key): a confirmation mail, sent only if the
    mailbox is under its per-address limit."""

    kind: Literal["gated"] = "gated"
    notification: str  # the NotificationCreated event, JSON


class Release(Message):
    """timer -> inbox: quiet hours may have ended; release what was held."""

    kind: Literal["release"] = "release"
    recipient_id: str


class FollowChange(Message):
    """inbox -> threads/follows: a subscription became active or ended.

    ``schedule`` (digest-mode article follows) is the follower's digest schedule key, so the
    threads stage can fan an article's activity out once per period of each schedule."""

    kind: Literal["follow_change"] = "follow_change"
    subscriber_id: str
    scope: Scope
    target: str
    delivery: Delivery
    active: bool
    schedule: str | None = None


class DigestTick(Message):
    """timer -> threads (article key) or inbox (subscriber key): periods may have ended."""

    kind: Literal["digest_tick"] = "digest_tick"


class Contribution(Message):
    """threads -> inbox: an article's activity in one period of the recipient's schedule
    (fan-out on read: one per follower per article per period, not per comment)."""

    kind: Literal["contribution"] = "contribution"
    recipient_id: str
    article: ArticleInfo
    period_end: datetime
    new_comments: int
    items: list[ActivityItem]


class Erase(Message):
    """inbox -> threads/follows, threads -> follows: forget this subscriber in this key's state.

    ``subjects`` (from the threads stage) names the subjects of this follows key to look at;
    empty, every subject of the key is looked at (a scan: erasure is rare)."""

    kind: Literal["erase"] = "erase"
    subscriber_id: str
    subjects: list[str] = Field(default_factory=list)


class FanoutMoved(Message):
    """follows -> follows: who an erased author's comment was handed to, moved to the key a
    later removal of that comment looks under (``commenter:<erased_author_id(comment id)>``)."""

    kind: Literal["fanout_moved"] = "fanout_moved"
    subject_key: str
    recipients: list[str]


class FollowEnded(Message):
    """follows -> inbox: the commenter this subscriber followed was erased; the follow ends
    (and with it the last place the subscriber's own state names them)."""

    kind: Literal["follow_ended"] = "follow_ended"
    subscriber_id: str
    scope: Scope
    target: str


def erased_author_id(comment_id: str) -> str:
    """The author id a comment keeps once its author is erased (no trace of who it was)."""
    return f"erased:{comment_id}"


class Forget(Message):
    """inbox -> every inbox partition: an erased author's name and text leave the other
    readers' pending digests and held notifications (the stream shell sends one copy to each
    partition, ``partition`` set; the in-process pipeline one copy, ``partition`` None)."""

    kind: Literal["forget"] = "forget"
    author_id: str
    partition: int | None = None


ERASED_NAME = "[erased]"  # the author name of an erased person's comment, wherever it is shown


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


class Activity(Message):
    """threads -> follows: something happened that followers of an entity may want.

    ``candidates`` carries the recipients the threads stage already found, so the follows
    stage can merge all bases of one recipient into one candidacy (rule "One notification per
    person per comment").
    """

    kind: Literal["activity"] = "activity"
    event: Literal["comment", "article", "retract", "edit"]
    subject: Subject
    candidates: dict[str, list[Basis]] = Field(default_factory=dict)
    cause: Literal["spam", "trash", "deleted"] | None = None
    excerpt: str | None = None
    at: datetime
    origin: str = ""  # id of the input event behind it
