"""The messages the stages pass to each other (the records of the internal topics), in one
place. Each has a ``kind``: ``StageMessage`` is their discriminated union, what an internal
topic's record decodes to."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.events import Delivery, Scope
from newsroom_notify.domain.model import ActivityItem, ArticleInfo, Basis, Message, Subject


class Candidacy(Message):
    """-> inbox: this recipient may be told about this subject. The stages send a fan-out's
    candidacies as one intent (``ToRecipients``), the shell as ``Candidacies`` records; this
    one-recipient form is what the inbox decides (``on_candidacy``), and what versions before
    ``ToRecipients`` wrote to the inbox topic (still read: records in flight at an upgrade)."""

    kind: Literal["candidacy"] = "candidacy"
    recipient_id: str
    subject: Subject
    bases: list[Basis]
    at: datetime
    origin: str = ""  # "<input event id>|<entity>": the same origin again is a replay


class Retraction(Message):
    """follows (or threads) -> inbox: withdraw what this recipient got about this subject."""

    kind: Literal["retraction"] = "retraction"
    recipient_id: str
    subject_key: str
    cause: Literal["spam", "trash", "deleted"]


class Edit(Message):
    """follows (or threads) -> inbox: a comment's text changed (digests not yet emitted show
    the new one)."""

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


CHOICE_CARRIED_FOR = timedelta(days=1)
"""How long after a member's "Notify of" choice the replies to their comments carry it (the
threads stage) and the inbox remembers having handled it (``Profile.chosen``): far more than
the choice can take to reach the inbox, even in a backlog."""


class Chose(Message):
    """A member's "Notify of" choice as the replies to their comments carry it to their inbox
    (``Activity.choices``): which subscription it makes and when, no name and no address."""

    kind: Literal["chose"] = "chose"
    subscriber_id: str
    article_id: str
    choice: Literal["follow_up", "replies"]
    at: datetime


class Participated(Message):
    """threads -> inbox: this subscriber now appears in a thread (for erasure)."""

    kind: Literal["participated"] = "participated"
    subscriber_id: str
    article_id: str


class Command(Message):
    """subscriptions topic -> inbox: a subscription command, re-keyed by subscriber id.

    ``event`` is the validated input event itself (a discriminated union on its ``type``).
    Records written before it was carried typed hold it as JSON text in ``event_json``: they
    still decode (``_legacy``), so a worker upgraded in place handles what is in its topic."""

    kind: Literal["command"] = "command"
    subscriber_id: str
    event: ev.SubscriptionEvent
    at: datetime

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "event" not in data and "event_json" in data:
            return {**data, "event": json.loads(data["event_json"])}
        return data


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
    """timer -> threads (article key) or inbox (subscriber key): periods may have ended.

    ``at`` is the timer's time when it sent the tick: the stage cuts the periods that had ended
    by then, so a tick processed again after a crash (its effects on the tables lost, its
    outputs already published) cuts the same periods and publishes the same digest ids,
    whatever the clock of the worker that takes over says. A tick without it (sent by an
    earlier version) uses the stage's clock."""

    kind: Literal["digest_tick"] = "digest_tick"
    at: datetime | None = None


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


class Forget(Message):
    """inbox -> every inbox partition: an erased author's name and text leave the other
    readers' pending digests and held notifications (the stream shell sends one copy to each
    partition, ``partition`` set; the in-process pipeline one copy, ``partition`` None)."""

    kind: Literal["forget"] = "forget"
    author_id: str
    partition: int | None = None


class ForgetParticipant(Message):
    """inbox -> every threads partition: an erased subscriber whose discussions outgrew their
    ``Traces`` (bounded state): each partition searches its own articles for them, as if told
    under each article's key (the stream shell sends one copy to each partition,
    ``partition`` set; the in-process pipeline one copy, ``partition`` None)."""

    kind: Literal["forget_participant"] = "forget_participant"
    subscriber_id: str
    partition: int | None = None


class NoFollowers(Message):
    """follows -> the threads partition of the comment that asked (keyed by its article id):
    this commenter had no followers when the follows stage handled their comment. That
    partition remembers it and hands the commenter's next comments to the inbox itself,
    without the follows hop (README, "Topics a comment crosses"). Each partition learns a
    commenter the first time they comment there: one record, not one per partition."""

    kind: Literal["no_followers"] = "no_followers"
    entity: str  # commenter:<id>
    partition: int | None = None  # (set by versions that sent a copy to every partition)


class CommenterFollowed(Message):
    """follows -> every threads partition: this commenter gained a follower (or was erased):
    each partition forgets that they had none, so their comments go through the follows stage
    again (the stream shell sends one copy to each partition, ``partition`` set; the
    in-process pipeline one copy, ``partition`` None)."""

    kind: Literal["commenter_followed"] = "commenter_followed"
    entity: str  # commenter:<id>
    partition: int | None = None


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
    # A comment's: the threads stage would remember that its author has no followers (it
    # keeps such a table and it has room): the follows stage tells it (``NoFollowers``).
    learn: bool = False
    # A reply's: its parent's author's "Notify of" choices in this thread (recipient id -> the
    # choices), which the threads stage sent that inbox directly and which may reach it after
    # this activity's candidacies (they come through the follows stage): the inbox applies
    # them first if needed.
    choices: dict[str, list[Chose]] = Field(default_factory=dict)


# Every message between stages, told apart by its ``kind``: what a record of an internal topic
# decodes to (the stream shell adds its own batching record, ``stream.batching.Candidacies``).
class FanoutStep(Message):
    """follows -> follows (the same entity key): the rest of a fan-out to an entity's followers,
    from the chunk after ``after`` on. Each handling takes a bounded number of followers and
    sends the next step, so no handler call, record or process holds all the followers.

    ``activity`` is the fanned-out activity without its candidates; ``skip`` are the thread's
    candidates, who got their one candidacy (all bases merged) in the first step."""

    kind: Literal["fanout_step"] = "fanout_step"
    activity: Activity
    skip: list[str] = Field(default_factory=list)
    after: int


StageMessage = Annotated[
    Activity
    | Candidacy
    | Command
    | CommenterFollowed
    | Contribution
    | DigestTick
    | Edit
    | Erase
    | FanoutMoved
    | FanoutStep
    | FollowChange
    | FollowEnded
    | Forget
    | ForgetParticipant
    | FormChoice
    | Gated
    | NoFollowers
    | Participated
    | Release
    | Retraction,
    Field(discriminator="kind"),
]
