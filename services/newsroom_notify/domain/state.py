"""The state the stages keep in their tables, in one place (the tables' keys are in
``domain/keys.py``). Stored as JSON; unknown fields are dropped on load (``State``), so a
record written by a newer version still loads.

* threads: ``Thread``, ``CommentInfo``, ``Authored``, ``ActivitySlot``, ``Followers`` (digest
  follower chunks), ``DigestMember``, ``Pending``;
* follows: ``Followers``, ``Fanout``;
* inbox: ``Profile`` (with ``Subscription``, ``Preferences``, ``PendingRequest``), ``Sent``,
  ``Held``, ``DigestBuffer``, ``Traces``, ``Quota``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.events import Delivery, Frequency, Scope
from newsroom_notify.domain.messages import Chose, Contribution, FormChoice
from newsroom_notify.domain.model import ArticleInfo, Reason, State, Status, Subject

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
    # Who its fan-out went to when the threads stage sent it to the inbox itself (its author
    # had no followers: the follows hop skipped); an edit or a removal goes to them, from here.
    # None: it went through the follows stage, which keeps who it went to (``Fanout``).
    direct: list[str] | None = None


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


class Unfollowed(State):
    """threads ``unfollowed`` (key ``commenter:<id>``, one copy per threads partition): the
    follows stage said this commenter had no followers (``NoFollowers``), and has not said
    otherwise since (``CommenterFollowed``). Absent: not known, ask the follows stage."""


class Authored(State):
    """The comments one subscriber wrote under one article (for erasure). Kept apart from the
    thread so a comment rewrites only its author's list, not the whole discussion's."""

    comment_ids: list[str] = Field(default_factory=list)
    # More comments than the cap (docs/security.md, bounded state): the ids beyond it are not
    # listed, and an erasure searches the article's comments for the author's instead.
    overflow: bool = False
    # A member's latest "Notify of" choice of each kind here (choice -> what it subscribes
    # them to, and when), as sent to their inbox when its comment was first approved: a reply
    # to any of their comments here within a day carries them (``Activity.choices``), since
    # the reply's candidacy can reach the inbox before the choice (another path). Erased
    # with the list.
    chosen: dict[str, Chose] = Field(default_factory=dict)


class ActivitySlot(State):
    """An article's approved comments in one time slot (e.g. 15 minutes): a count and the ids
    of the latest few, enough to fill a digest. A small record written once per comment: O(1)
    per comment. The comments' text is read from the comments table when the slot is fanned
    out, so edits made before then show."""

    count: int = 0
    latest: list[str] = Field(default_factory=list)


class DigestMember(State):
    """Which schedule group a digest-mode follower of an article is in."""

    schedule: str


class Pending(State):
    """An article with activity not yet fanned out to every schedule group."""

    since: datetime


# ------------------------------------------------------------------------------ follows


class Followers(State):
    """Followers and their delivery: one chunk of an entity's (commenter, journalist or
    section; ``keys.follower_chunk``), or one chunk of an article's digest followers."""

    delivery: dict[str, Delivery] = Field(default_factory=dict)


class FollowerHead(State):
    """How many followers an entity has (for its cap) and which of its chunks hold any, in
    ascending order (what a fan-out walks)."""

    count: int = 0
    chunks: list[int] = Field(default_factory=list)


class Fanout(State):
    """Who a subject was finally handed to, so a retraction reaches exactly them; and its
    latest text and why it was retracted, so the rest of a fan-out still walking the followers
    gets them too."""

    recipients: list[str] = Field(default_factory=list)
    retracted: Literal["spam", "trash", "deleted"] | None = None
    excerpt: str | None = None  # the text of the latest edit


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
    # (before that, whoever typed the address chose it; see model.UNCONFIRMED_NAME).
    name: str | None = None


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
    # The comment form's choices handled in the last day (subscription key -> the latest
    # one's time, ``CHOICE_CARRIED_FOR``): a choice handled once, by its own arrival or by a
    # reply that carried it, never subscribes them again (cancelled since, or refused at the
    # cap), however often it comes (late, carried by another reply, replayed).
    chosen: dict[str, datetime] = Field(default_factory=dict)


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
    # More discussions than the cap (docs/security.md, bounded state): the ones beyond it are
    # not listed, and an erasure asks every threads partition to search for the subscriber.
    overflow: bool = False


class Held(BaseModel):
    """Instant notifications held during a recipient's quiet hours, and who wrote the comment
    (and its parent) each one quotes, so an erasure of that author reaches them.

    ``release_at`` is the first field, so the start of its stored JSON: the quiet-hours timer
    reads it from every recipient's every minute (``stored_release_at``) and asks for a release
    only once it has come (None: at its next check)."""

    release_at: datetime | None = None  # when the quiet hours end, as they were when held
    notifications: list[ev.NotificationCreated] = []
    authors: dict[str, list[str | None]] = {}  # notification id -> [comment's, parent's]


class DigestEntry(BaseModel):
    """One digest-mode item waiting for the recipient's next digest."""

    subject: Subject
    reason: Reason
    scope: str
    target: str | None
    at: datetime


class DigestBuffer(BaseModel):
    """What waits for a recipient's next digest. Items are keyed by subject and contributions
    by article and period, so a replayed message overwrites instead of adding.

    ``due_at`` is the first field, so the start of its stored JSON: the digest timer reads it
    from every buffer every tick (``stored_due_at``), without decoding the rest."""

    due_at: datetime | None = None  # when the timer should look again
    items: dict[str, DigestEntry] = {}
    contributions: dict[str, Contribution] = {}
    emitted_until: datetime | None = None  # end of the last period a digest was cut for
    # Per article, the end of the latest period whose activity went into a digest cut: the
    # same activity delivered again (a replay) is not added a second time. An article's
    # periods reach a recipient in order (one threads key, fanned out period after period).
    activity_cut: dict[str, datetime] = {}
    omitted: int = 0  # items and comments left out by the caps since the last digest


def _leading_datetime(stored: bytes, field: str) -> tuple[bool, datetime | None]:
    """(True, its value) when the JSON ``stored`` begins with the nullable date-time ``field``
    as ``model_dump_json`` writes it; (False, None) otherwise."""
    prefix = b'{"' + field.encode("ascii") + b'":'
    if not stored.startswith(prefix):
        return False, None
    rest = stored[len(prefix) : len(prefix) + 64]
    if rest.startswith(b"null"):
        return True, None
    end = rest.find(b'"', 1)
    if rest.startswith(b'"') and end > 0:
        try:
            return True, datetime.fromisoformat(rest[1:end].decode("ascii"))
        except ValueError:
            pass
    return False, None


def stored_due_at(stored: bytes) -> datetime | None:
    """The ``due_at`` of a stored ``DigestBuffer`` (its JSON as written), read from the start of
    the JSON: a buffer holds up to 200 items and 200 article activities (tens of KB), and the
    timer looks at every recipient's every tick. A value stored before ``due_at`` came first,
    or not in the form read here, is decoded whole."""
    read, due_at = _leading_datetime(stored, "due_at")
    return due_at if read else DigestBuffer.model_validate_json(stored).due_at


def stored_release_at(stored: bytes) -> datetime | None:
    """The ``release_at`` of a stored ``Held`` (up to 50 notifications), as ``stored_due_at``
    reads a buffer's ``due_at``."""
    read, release_at = _leading_datetime(stored, "release_at")
    return release_at if read else Held.model_validate_json(stored).release_at
