"""The inbox stage (keyed by subscriber id): one subscriber's consent, subscriptions,
preferences and everything they were sent.

It turns candidacies into notifications: the recipient must exist and (guests) be confirmed,
must not be paused or have muted the article, must not have had this subject already (rules
"Only approved comments notify", "One notification per person per comment"); the strongest
basis whose condition holds wins (rules "One notification per person per comment" to
"Follows"); instant notifications inside quiet hours are held until they end (rule
"Preferences"); digest-mode ones go to the digest buffer. It also owns subscription commands
and consent (rule "Guests confirm first"): a request without authentication (a
guest's) never changes a subscription, a name or an address; it is kept pending and its address
is asked to confirm exactly that request, and the confirm token activates only it. Every
confirmation mail passes the per-address limit, kept in the ``quotas`` table under the
mailbox's key (the untagged address's guest id), so aliases share it and it survives restarts
and holds across replicas. An active subscription is announced to the stage that needs it
(threads for article follows, follows for commenter/journalist/section); erasure removes every
trace (rule "Erasure"), and through a link or by address only once the address confirmed it by mail.

Replays are idempotent: a candidacy for a subject already sent instantly re-emits the same
notification (same id), so an output lost in a crash is not lost for good; consumers drop ids
they have seen.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.events import Delivery
from newsroom_notify.contract.identity import guest_subscriber_id, is_guest_id, mailbox_key
from newsroom_notify.domain.digest import ArticleDigest, add_contribution
from newsroom_notify.domain.ids import digest_id, notification_id, retraction_id
from newsroom_notify.domain.keys import (
    comment_subject,
    confirm_subject,
    contribution_key,
    entity_key,
    sent_key,
    sent_prefix,
    subscription_key,
)
from newsroom_notify.domain.model import (
    DEFAULT_DELIVERY,
    ERASED_NAME,
    UNCONFIRMED_NAME,
    Basis,
    Candidacy,
    CommentSummary,
    Condition,
    Contribution,
    Edit,
    Erase,
    FollowChange,
    FollowEnded,
    Forget,
    FormChoice,
    Gated,
    Participated,
    PendingRequest,
    Preferences,
    Profile,
    QuietHours,
    Quota,
    Reason,
    Release,
    Retraction,
    Sent,
    Subject,
    Subscription,
    Traces,
    anonymised,
)
from newsroom_notify.domain.outbox import Destination, Outbound
from newsroom_notify.domain.schedule import (
    Period,
    Schedule,
    last_closed_period,
    period_containing,
)
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims, Tokens

DIGEST_SCOPE = "digest"  # the scope of a digest's unsubscribe token: all digest-mode follows
MAX_PENDING = 10  # unconfirmed requests kept per subscriber (the oldest is dropped)
MAX_ENDED = 10  # cancelled subscriptions an undo may restore, per subscriber (oldest dropped)
QUOTA_WINDOW = timedelta(days=1)
# How long a digest remembers which period of an article's activity it included (a replay of
# that activity is later by at most the time to recover from a crash; weekly periods need 7d).
ACTIVITY_MEMORY = timedelta(days=8)


def version_at(at: datetime) -> int:
    """The token version of a profile created (or signed out) at ``at``: milliseconds since
    the epoch, so a profile created again after erasure never accepts the old one's tokens."""
    return int(at.timestamp() * 1000)


class Held(BaseModel):
    """Instant notifications held during a recipient's quiet hours, and who wrote the comment
    (and its parent) each one quotes, so an erasure of that author reaches them."""

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
    by article and period, so a replayed message overwrites instead of adding."""

    items: dict[str, DigestEntry] = {}
    contributions: dict[str, Contribution] = {}
    emitted_until: datetime | None = None  # end of the last period a digest was cut for
    # Per article, the end of the latest period whose activity went into a digest cut: the
    # same activity delivered again (a replay) is not added a second time. An article's
    # periods reach a recipient in order (one threads key, fanned out period after period).
    activity_cut: dict[str, datetime] = {}
    due_at: datetime | None = None  # when the timer should look again
    omitted: int = 0  # items and comments left out by the caps since the last digest


def schedule_of(prefs: Preferences) -> Schedule:
    """A subscriber's digest schedule."""
    return Schedule(prefs.digest, prefs.timezone, prefs.digest_hour, prefs.digest_weekday)


def in_quiet_hours(quiet: QuietHours | None, timezone: str, now: datetime) -> bool:
    """Whether ``now`` falls inside the daily quiet window (local time, may cross midnight)."""
    if quiet is None or quiet.start == quiet.end:
        return False
    local = now.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    if quiet.start < quiet.end:
        return quiet.start <= minute < quiet.end
    return minute >= quiet.start or minute < quiet.end


def choose_basis(
    profile: Profile, bases: list[Basis], at: datetime | None = None
) -> tuple[Basis, Subscription | None] | None:
    """The strongest basis whose condition holds, with the subscription that allows it.

    With ``at`` (when the comment was posted or approved), only subscriptions active since
    then count: you hear of what happens after you subscribed. This also makes a replay after
    a crash decide exactly as the first time, although subscriptions made since are in state.
    """
    for basis in bases:
        sub: Subscription | None = None
        if basis.condition is Condition.SUBSCRIBED:
            sub = _active(profile, subscription_key(basis.scope, basis.target), at)
        elif basis.condition is Condition.ASKED_FOR_REPLIES:
            # Rule "Replies": a replies/follow-up choice or subscription, here or site-wide.
            for key in (
                subscription_key("replies", basis.target),
                subscription_key("replies", None),
                subscription_key("article", basis.target),
            ):
                sub = _active(profile, key, at)
                if sub is not None:
                    break
        elif basis.condition is Condition.CONSENTED:
            # Rule "Mentions": any confirmed subscription is consent; the token cancels the longest
            # standing one (earliest ``since``, then key). Not the first by key: a subscription
            # made just before the comment (a "Notify of" tick on another article) reaches the
            # inbox through another partition and may arrive after the candidacy, so the choice
            # would depend on arrival order; the oldest one has long been in place.
            active = [
                (s.since or _EPOCH, k, s)
                for k in profile.subscriptions
                if (s := _active(profile, k, at)) is not None
            ]
            sub = min(active, key=lambda entry: entry[:2])[2] if active else None
        if sub is not None:
            return basis, sub
    return None


_EPOCH = datetime.min.replace(tzinfo=UTC)


def delivery_for(basis: Basis, sub: Subscription | None) -> Delivery:
    """Instant or digest: the basis's own, else its subscription's, else the default."""
    if basis.delivery is not None:
        return basis.delivery
    if basis.reason in (Reason.REPLY, Reason.MENTION):
        # Replies and mentions follow a replies subscription's choice; otherwise instant.
        return sub.delivery if sub is not None and sub.scope == "replies" else "instant"
    return sub.delivery if sub is not None else DEFAULT_DELIVERY[basis.scope]


def _active(profile: Profile, key: str, at: datetime | None = None) -> Subscription | None:
    sub = profile.subscriptions.get(key)
    if sub is None or not sub.active:
        return None
    if at is not None and sub.since is not None and sub.since > at:
        return None  # subscribed after the fact
    return sub


def _everywhere(_: str, __: int | None) -> bool:
    return True


def _uncounted(_: str) -> None:
    return None


_Refs = tuple[ev.ArticleRef, ev.CommentRef | None, ev.CommentRef | None]


@dataclass
class InboxStage:
    """Handlers of the inbox stage over its tables."""

    profiles: MutableMapping[str, Profile]
    sent: MutableMapping[str, Sent]  # sent_key(recipient, subject) -> what was sent
    held: MutableMapping[str, Held]
    digests: MutableMapping[str, DigestBuffer]
    traces: MutableMapping[str, Traces]
    tokens: Tokens
    clock: Callable[[], datetime]
    quotas: MutableMapping[str, Quota] | None = None  # mailbox key -> confirmation mails sent
    confirmations_per_day: int = 3  # per mailbox (the per-address limit)
    source: str = "urn:newsroom-notify"
    digest_grace: timedelta = timedelta(minutes=2)  # late contributions still make it
    items_per_article: int = 5
    # Whether a recipient's state lives in the given partition of the inbox topic (the stream
    # shell's partitioner; None: the in-process pipeline, one partition holds everyone).
    owns: Callable[[str, int | None], bool] = _everywhere
    # Caps of the per-recipient records (docs/security.md, bounded state), and who hears of
    # a cap hit.
    held_max: int = 50
    digest_items_max: int = 200
    digest_contributions_max: int = 200
    on_capped: Callable[[str], None] = _uncounted
    # The last subject's references (``_refs``): the candidacies of one fan-out share it.
    _refs_memo: tuple[Subject, _Refs] | None = field(default=None, init=False, repr=False)

    # --------------------------------------------------------------- candidacies

    def on_candidacy(self, msg: Candidacy) -> list[Outbound]:
        """Decide whether, why and how this recipient hears of this subject."""
        rid, subject = msg.recipient_id, msg.subject
        profile = self.profiles.get(rid)
        if profile is None or (profile.guest and not profile.confirmed):
            # No consent (rule "Guests confirm first"): nothing reaches an unconfirmed address.
            return []
        if rid == subject.author_id:
            return []  # rule "Nobody hears about their own comment"
        prefs = profile.preferences
        if prefs.paused or subject.article.id in prefs.muted_articles:
            return []  # rule "Preferences"
        key = sent_key(rid, subject.key)
        sent = self.sent.get(key)
        if sent is not None and (not sent.listed_only or sent.retracted):
            return self._replay(profile, msg, sent)
        chosen = choose_basis(profile, msg.bases, msg.at)
        if chosen is None:
            return []
        basis, sub = chosen
        nid = notification_id(rid, subject.key, basis.reason)
        delivery = delivery_for(basis, sub)
        quiet = delivery == "instant" and in_quiet_hours(
            prefs.quiet_hours, prefs.timezone, self.clock()
        )
        held = (self.held.get(rid) or Held()) if quiet else None
        if held is not None and len(held.notifications) >= self.held_max:
            self.on_capped("held")  # the quiet night's overflow goes to the next digest
            delivery, held = "digest", None
        if sent is not None and delivery == "digest":
            return []  # a digest already listed it (its article's activity): once per comment
        out: list[Outbound] = []
        if delivery == "digest":
            buffer = self.digests.get(rid) or DigestBuffer()
            now = self.clock()
            buffer.items[subject.key] = DigestEntry(
                subject=subject,
                reason=basis.reason,
                scope=basis.scope,
                target=basis.target,
                at=now,
            )
            self._cap_items(buffer)
            self._schedule_digest(buffer, period_containing(schedule_of(prefs), now).end)
            self.digests[rid] = buffer
            mode = "digest"
        else:
            notification = self._notification(profile, subject, basis, sub, nid)
            if held is not None:
                held.notifications.append(notification)
                held.authors[nid] = [
                    subject.comment.author_id if subject.comment else None,
                    subject.parent.author_id if subject.parent else None,
                ]
                self.held[rid] = held
                mode, out = "held", []
            else:
                mode, out = "instant", [self._emit(notification)]
        self.sent[key] = Sent(
            notification_id=nid,
            reason=basis.reason,
            mode=mode,
            origin=msg.origin,
            digest_id=sent.digest_id if sent is not None else None,
        )
        return out

    def _replay(self, profile: Profile, msg: Candidacy, sent: Sent) -> list[Outbound]:
        """The same candidacy again (a replay): re-emit the same notification, same id.

        Any other candidacy for a subject already handled (another path to the same article,
        a later re-approval) sends nothing: one notification per recipient and subject.
        """
        if sent.retracted or sent.mode != "instant" or sent.origin != msg.origin:
            return []
        basis = next((b for b in msg.bases if b.reason == sent.reason), None)
        if basis is None:
            return []
        chosen = choose_basis(profile, [basis], msg.at)
        sub = chosen[1] if chosen else None
        notification = self._notification(profile, msg.subject, basis, sub, sent.notification_id)
        return [self._emit(notification)]

    def _notification(
        self,
        profile: Profile,
        subject: Subject,
        basis: Basis,
        sub: Subscription | None,
        nid: str,
    ) -> ev.NotificationCreated:
        claims = TokenClaims(
            profile.id,
            sub.scope if sub else basis.scope,
            sub.target if sub else basis.target,
            profile.token_version,
        )
        article, comment, parent = self._refs(subject)
        # Built from values this service made and validated on the way in: constructed, not
        # validated again (the contract tests check the result against the schemas).
        return ev.NotificationCreated.model_construct(
            id=nid,
            source=self.source,
            time=self.clock(),
            subject=subject.key,
            data=ev.NotificationCreatedData.model_construct(
                notification_id=nid,
                recipient=ev.Recipient.model_construct(
                    id=profile.id, name=profile.name, email=profile.email
                ),
                reason=basis.reason.value,
                article=article,
                comment=comment,
                parent=parent,
                unsubscribe_token=self.tokens.unsubscribe(claims),
                manage_token=self.tokens.manage(profile.id, profile.token_version),
            ),
        )

    def _refs(self, subject: Subject) -> _Refs:
        """The article, comment and parent of a notification about ``subject``: built once per
        subject and shared (frozen) by every recipient's notification, so the stream shell
        serialises them once per comment (``contract.codec.encode``)."""
        cached = self._refs_memo
        if cached is not None and cached[0] is subject:
            return cached[1]
        article = subject.article
        refs = (
            ev.ArticleRef.model_construct(id=article.id, title=article.title, url=article.url),
            _comment_ref(subject.comment),
            _comment_ref(subject.parent),
        )
        self._refs_memo = (subject, refs)
        return refs

    def _emit(self, event: ev.CloudEvent) -> Outbound:
        to = Destination.DIGESTS if isinstance(event, ev.DigestReady) else Destination.NOTIFICATIONS
        return Outbound(to, event.partition_key() or "", event)

    # ------------------------------------------------------- retractions, edits

    def on_retraction(self, msg: Retraction) -> list[Outbound]:
        """Withdraw what this recipient got about a removed comment (rule "Removed after the
        fact")."""
        rid = msg.recipient_id
        key = sent_key(rid, msg.subject_key)
        sent = self.sent.get(key)
        if sent is None:
            self._retract_from_contributions(rid, msg.subject_key)
            return []
        out: list[Outbound] = []
        if sent.mode == "instant":
            out.append(
                self._emit(
                    ev.NotificationRetracted(
                        id=retraction_id(sent.notification_id),
                        source=self.source,
                        time=self.clock(),
                        subject=msg.subject_key,
                        data=ev.NotificationRetractedData(
                            notification_id=sent.notification_id,
                            recipient_id=rid,
                            cause=msg.cause,
                        ),
                    )
                )
            )
        elif sent.mode == "held":
            held = self.held.get(rid)
            if held is not None:
                held.notifications = [
                    n for n in held.notifications if n.data.notification_id != sent.notification_id
                ]
                held.authors.pop(sent.notification_id, None)
                self._store_held(rid, held)
        else:
            buffer = self.digests.get(rid)
            if buffer is not None and buffer.items.pop(msg.subject_key, None) is not None:
                self.digests[rid] = buffer
            self._retract_from_contributions(rid, msg.subject_key)  # it may be there too
        if not sent.retracted:
            sent.retracted = True
            self.sent[key] = sent
        return out

    def _retract_from_contributions(self, rid: str, subject_key: str) -> None:
        """A removed comment leaves the article activity already handed to this recipient."""
        buffer = self.digests.get(rid)
        if buffer is None:
            return
        comment_id = subject_key.removeprefix("c:")
        changed = False
        for key, contribution in list(buffer.contributions.items()):
            items = [i for i in contribution.items if i.comment.id != comment_id]
            if len(items) != len(contribution.items):
                buffer.contributions[key] = contribution.model_copy(
                    update={"items": items, "new_comments": max(0, contribution.new_comments - 1)}
                )
                changed = True
        if changed:
            self.digests[rid] = buffer

    def on_edit(self, msg: Edit) -> list[Outbound]:
        """A digest not yet emitted shows the comment's latest text (rule "Removed after the
        fact")."""
        buffer = self.digests.get(msg.recipient_id)
        entry = buffer.items.get(msg.subject_key) if buffer else None
        if buffer is None or entry is None or entry.subject.comment is None:
            return []
        comment = entry.subject.comment.model_copy(update={"excerpt": msg.excerpt})
        entry.subject = entry.subject.model_copy(update={"comment": comment})
        self.digests[msg.recipient_id] = buffer
        return []

    # ------------------------------------------------------------------ digests

    def _cap_items(self, buffer: DigestBuffer) -> None:
        """Keep the newest ``digest_items_max`` items; count the ones left out."""
        excess = len(buffer.items) - self.digest_items_max
        if excess <= 0:
            return
        self.on_capped("digest_items")
        oldest = sorted(buffer.items.items(), key=lambda kv: (kv[1].at, kv[0]))
        for key, _ in oldest[:excess]:
            del buffer.items[key]
        buffer.omitted += excess

    def _schedule_digest(self, buffer: DigestBuffer, period_end: datetime) -> None:
        due = period_end + self.digest_grace
        if buffer.due_at is None or due < buffer.due_at:
            buffer.due_at = due

    def on_contribution(self, msg: Contribution) -> list[Outbound]:
        """An article's activity for one of this recipient's periods (fan-out on read)."""
        profile = self.profiles.get(msg.recipient_id)
        if profile is None:
            return []
        follow = profile.subscriptions.get(subscription_key("article", msg.article.id))
        if follow is None or not follow.active or follow.delivery != "digest":
            return []  # the follow ended while this was on its way
        buffer = self.digests.get(msg.recipient_id) or DigestBuffer()
        done = buffer.activity_cut.get(msg.article.id)
        if done is not None and msg.period_end <= done:
            return []  # in a digest already: the same activity again (a replay)
        buffer.contributions[contribution_key(msg.article.id, msg.period_end)] = msg
        excess = len(buffer.contributions) - self.digest_contributions_max
        if excess > 0:  # the oldest periods' activity goes; its comments are counted
            self.on_capped("digest_contributions")
            oldest = sorted(buffer.contributions.items(), key=lambda kv: (kv[1].period_end, kv[0]))
            for key, dropped in oldest[:excess]:
                del buffer.contributions[key]
                buffer.omitted += dropped.new_comments
        self._schedule_digest(buffer, msg.period_end)
        self.digests[msg.recipient_id] = buffer
        return []

    def digest_due(self, rid: str) -> bool:
        """Whether the timer should send this recipient a tick now (cheap, no decisions)."""
        buffer = self.digests.get(rid)
        return buffer is not None and buffer.due_at is not None and buffer.due_at <= self.clock()

    def on_digest_tick(self, rid: str) -> list[Outbound]:
        """Cut the digest of the period that ended, once, outside quiet hours."""
        buffer = self.digests.get(rid)
        profile = self.profiles.get(rid)
        if buffer is None:
            return []
        if profile is None:
            self.digests.pop(rid, None)
            return []
        now = self.clock()
        if buffer.due_at is not None and now < buffer.due_at:
            return []
        prefs = profile.preferences
        schedule = schedule_of(prefs)
        if in_quiet_hours(prefs.quiet_hours, prefs.timezone, now):
            return []  # rule "Preferences": no digest inside quiet hours; the next tick tries again
        period = last_closed_period(schedule, now - self.digest_grace)
        out: list[Outbound] = []
        if buffer.emitted_until is None or buffer.emitted_until < period.end:
            entries = [e for e in buffer.items.values() if e.at < period.end]
            contributions = [c for c in buffer.contributions.values() if c.period_end <= period.end]
            for key in [k for k, e in buffer.items.items() if e.at < period.end]:
                del buffer.items[key]
            for key in [k for k, c in buffer.contributions.items() if c.period_end <= period.end]:
                del buffer.contributions[key]
            digest = None if prefs.paused else self._digest(profile, period, entries, contributions)
            buffer.omitted = 0  # counted by the metric when they were left out
            for contribution in contributions:
                aid, end = contribution.article.id, contribution.period_end
                if aid not in buffer.activity_cut or buffer.activity_cut[aid] < end:
                    buffer.activity_cut[aid] = end
            self._forget_old_activity(buffer, period.end)
            if digest is not None:
                self._record_listed(rid, digest)
                out.append(self._emit(digest))
            buffer.emitted_until = period.end
        buffer.due_at = None
        pending_ends = [period_containing(schedule, e.at).end for e in buffer.items.values()]
        pending_ends += [c.period_end for c in buffer.contributions.values()]
        if pending_ends:
            self._schedule_digest(buffer, max(min(pending_ends), period.end))
            if buffer.due_at is not None and buffer.due_at <= now:
                buffer.due_at = period_containing(schedule, now).end + self.digest_grace
        self.digests[rid] = buffer
        return out

    def _forget_old_activity(self, buffer: DigestBuffer, now: datetime) -> None:
        """Keep ``activity_cut`` small: an article whose last activity is older than any replay
        can be late is forgotten (its next activity is of a later period anyway)."""
        horizon = now - ACTIVITY_MEMORY
        for aid in [a for a, end in buffer.activity_cut.items() if end < horizon]:
            del buffer.activity_cut[aid]

    def _shown_before(self, rid: str, did: str, comment_ids: set[str]) -> frozenset[str]:
        """The comments of ``comment_ids`` an earlier digest (not ``did``) already listed."""
        shown = set()
        for cid in comment_ids:
            sent = self.sent.get(sent_key(rid, comment_subject(cid)))
            if sent is not None and sent.digest_id is not None and sent.digest_id != did:
                shown.add(cid)
        return frozenset(shown)

    def _record_listed(self, rid: str, digest: ev.DigestReady) -> None:
        """Remember, per comment, the digest that listed it (``Sent``): no other digest of
        this recipient lists it again, whichever path brings it (rule "One notification per
        person per comment")."""
        did = digest.data.digest_id
        for part in digest.data.articles:
            for item in part.items:
                subject = comment_subject(item.comment.id)
                key = sent_key(rid, subject)
                sent = self.sent.get(key)
                if sent is None:
                    reason = Reason(item.reason)
                    sent = Sent(
                        notification_id=notification_id(rid, subject, reason),
                        reason=reason,
                        mode="digest",
                        listed_only=True,
                    )
                elif sent.digest_id is not None:
                    continue  # this digest again (a replay), or listed before
                sent.digest_id = did
                self.sent[key] = sent

    def _digest(
        self,
        profile: Profile,
        period: Period,
        entries: list[DigestEntry],
        contributions: list[Contribution],
    ) -> ev.DigestReady | None:
        muted = set(profile.preferences.muted_articles)
        did = digest_id(profile.id, period.frequency, period.start.isoformat())
        mentioned = {e.subject.comment.id for e in entries if e.subject.comment is not None}
        mentioned |= {i.comment.id for c in contributions for i in c.items}
        shown = self._shown_before(profile.id, did, mentioned)
        articles: dict[str, ArticleDigest] = {}
        for entry in entries:
            if entry.subject.article.id in muted:
                continue
            if entry.subject.comment is not None and entry.subject.comment.id in shown:
                continue  # an earlier digest listed it (through the article's activity)
            part = articles.setdefault(
                entry.subject.article.id, ArticleDigest(entry.subject.article)
            )
            part.token_scope = part.token_scope or (entry.scope, entry.target)
            if entry.subject.comment is None:
                part.new_article = True
            else:
                part.add_item(entry.reason, entry.subject.comment, entry.at)
        for contribution in contributions:
            if contribution.article.id not in muted:
                add_contribution(articles, contribution, profile.id, shown)
        parts = []
        for part in articles.values():
            new_comments = part.new_comments if part.counted else len(part.items)
            if not (new_comments or part.items or part.new_article):
                continue
            scope, target = part.token_scope or ("article", part.article.id)
            parts.append(
                ev.DigestArticle(
                    article=ev.ArticleRef(
                        id=part.article.id, title=part.article.title, url=part.article.url
                    ),
                    new_comments=new_comments,
                    items=part.ordered(self.items_per_article),
                    new_article=part.new_article,
                    unsubscribe_token=self.tokens.unsubscribe(
                        TokenClaims(profile.id, scope, target, profile.token_version)
                    ),
                )
            )
        if not parts:
            return None  # empty periods emit nothing
        parts.sort(key=lambda p: (-p.new_comments, p.article.id))
        return ev.DigestReady(
            id=did,
            source=self.source,
            time=self.clock(),
            data=ev.DigestReadyData(
                digest_id=did,
                recipient=ev.Recipient(id=profile.id, name=profile.name, email=profile.email),
                period=ev.Period(frequency=period.frequency, start=period.start, end=period.end),
                articles=parts,
                total_comments=sum(p.new_comments for p in parts),
                unsubscribe_token=self.tokens.unsubscribe(
                    TokenClaims(profile.id, DIGEST_SCOPE, period.frequency, profile.token_version)
                ),
            ),
        )

    # ------------------------------------------------------------- quiet hours

    def on_release(self, msg: Release) -> list[Outbound]:
        """Send what was held once the recipient's quiet hours are over."""
        rid = msg.recipient_id
        held = self.held.get(rid)
        profile = self.profiles.get(rid)
        if held is None or profile is None:
            return []
        prefs = profile.preferences
        if in_quiet_hours(prefs.quiet_hours, prefs.timezone, self.clock()):
            return []
        out = []
        for notification in held.notifications:
            key = sent_key(rid, notification.subject or "")
            sent = self.sent.get(key)
            if sent is not None and not sent.retracted and not prefs.paused:
                sent.mode = "instant"
                self.sent[key] = sent
                out.append(self._emit(notification))
        self._store_held(rid, Held())
        return out

    def _store_held(self, rid: str, held: Held) -> None:
        if held.notifications:
            self.held[rid] = held
        else:
            self.held.pop(rid, None)

    # ----------------------------------------------------------- subscriptions

    def on_form_choice(self, msg: FormChoice) -> list[Outbound]:
        """The comment form's 'Notify of' choice is a subscription to that article."""
        scope = "article" if msg.choice == "follow_up" else "replies"
        self._trace(msg.subscriber_id, Destination.THREADS, msg.article_id)
        return self._subscribe(
            sid=msg.subscriber_id,
            name=msg.name,
            email=msg.email,
            guest=msg.guest,
            scope=scope,
            target=msg.article_id,
            delivery=None,
            request_id=f"form:{msg.article_id}:{msg.choice}",
            at=msg.at,
        )

    def on_participated(self, msg: Participated) -> list[Outbound]:
        """Remember the thread, so erasure reaches it."""
        self._trace(msg.subscriber_id, Destination.THREADS, msg.article_id)
        return []

    def on_command(self, event: ev.CloudEvent, subscriber_id: str) -> list[Outbound]:
        """A subscription command from the subscriptions topic."""
        if isinstance(event, ev.SubscriptionRequested):
            data = event.data
            return self._subscribe(
                sid=subscriber_id,
                name=data.subscriber.name,
                email=data.subscriber.email,
                guest=data.subscriber.id is None,
                scope=data.scope,
                target=data.target,
                delivery=data.delivery,
                request_id=event.id,
                at=event.time,
            )
        version = getattr(event.data, "token_version", None)
        if version is not None and not self.token_current(subscriber_id, version):
            return []  # authorised by a link minted before a sign-out (or an erasure)
        if isinstance(event, ev.SubscriptionCancelled):
            return self.cancel(subscriber_id, event.data.scope, event.data.target)
        if isinstance(event, ev.SubscriptionRestored):
            return self.restore(subscriber_id, event.data.scope, event.data.target, event.time)
        if isinstance(event, ev.SubscriptionDeliveryChanged):
            change = event.data
            return self.change_delivery(subscriber_id, change.scope, change.target, change.delivery)
        if isinstance(event, ev.SubscriptionConfirmed):
            return self.confirm(event.data.token, event.time)
        if isinstance(event, ev.PreferencesUpdated):
            return self._preferences(event.data, event.time)
        if isinstance(event, ev.SubscriberErased):
            return self.erase(subscriber_id)
        if isinstance(event, ev.SubscriberSignedOut):
            return self.sign_out(subscriber_id, event.time)
        if isinstance(event, ev.ErasureRequested):
            return self.request_erasure(subscriber_id, event.data.email, event.id)
        if isinstance(event, ev.ErasureConfirmed):
            return self.confirm_erasure(event.data.token)
        raise TypeError(f"not a subscription command: {event.type}")

    def _subscribe(
        self,
        *,
        sid: str,
        name: str,
        email: str | None,
        guest: bool,
        scope: str,
        target: str | None,
        delivery: Delivery | None,
        request_id: str,
        at: datetime,
    ) -> list[Outbound]:
        """A subscription request. A member's (authenticated by the newsroom) applies at once
        and keeps their name and address up to date; a guest's (anybody can type an address)
        changes nothing but a pending request, and asks the address to confirm it."""
        if guest != is_guest_id(sid):
            return []  # a member id of the guest form, or a guest without one: never mixed
        profile = self.profiles.get(sid)
        if profile is None:
            shown = UNCONFIRMED_NAME if guest else name  # a guest's: once confirmed
            profile = Profile(id=sid, name=shown, guest=guest, token_version=version_at(at))
        elif profile.guest != guest:
            return []
        key = subscription_key(scope, target)
        sub = profile.subscriptions.get(key)
        if guest:
            if profile.email is None:
                profile.email = email
            if sub is not None and sub.active and delivery in (None, sub.delivery):
                return []  # they have it already: nothing to ask
            profile.pending[request_id] = PendingRequest(
                request=request_id,
                scope=scope,
                target=target,
                delivery=delivery,
                at=at,
                name=name,
            )
            while len(profile.pending) > MAX_PENDING:
                oldest = min(profile.pending.values(), key=lambda p: p.at)
                del profile.pending[oldest.request]
            self.profiles[sid] = profile
            return self._confirm_request(profile, scope, target, request_id)
        profile.name = name
        if email is not None:
            profile.email = email
        profile.confirmed = True  # members are authenticated by the newsroom
        sub = self._activate(profile, scope, target, delivery, at)
        self.profiles[sid] = profile
        return self._announce(profile, sub, active=True)

    def _activate(
        self,
        profile: Profile,
        scope: str,
        target: str | None,
        delivery: Delivery | None,
        at: datetime,
    ) -> Subscription:
        """Make a subscription active with this delivery (None: keep the one chosen before, so
        the order of a form tick and an explicit choice does not matter)."""
        key = subscription_key(scope, target)
        sub = profile.subscriptions.get(key)
        wanted = delivery or (sub.delivery if sub is not None else DEFAULT_DELIVERY[scope])
        if sub is None or sub.delivery != wanted or not sub.active:
            sub = Subscription(
                scope=scope,
                target=target,
                delivery=wanted,
                active=True,
                # A delivery change keeps the date the subscription began.
                since=sub.since if sub is not None and sub.active else at,
            )
            profile.subscriptions[key] = sub
        return sub

    def _confirm_request(
        self, profile: Profile, scope: str, target: str | None, request_id: str
    ) -> list[Outbound]:
        subject_key = confirm_subject(subscription_key(scope, target), request_id)
        nid = notification_id(profile.id, subject_key, Reason.CONFIRM_SUBSCRIPTION)
        version = profile.token_version
        claims = TokenClaims(profile.id, scope, target, version)
        event = ev.NotificationCreated(
            id=nid,
            source=self.source,
            time=self.clock(),
            subject=subject_key,
            data=ev.NotificationCreatedData(
                notification_id=nid,
                recipient=ev.Recipient(id=profile.id, name=profile.name, email=profile.email),
                reason="confirm_subscription",
                article=_confirm_article(scope, target),
                comment=None,
                parent=None,
                unsubscribe_token=self.tokens.unsubscribe(claims),
                confirm_token=self.tokens.confirm(
                    TokenClaims(profile.id, scope, target, version, request_id)
                ),
                manage_token=self.tokens.manage(profile.id, version),
            ),
        )
        return self._gate(profile.email, event)

    def _gate(self, email: str | None, event: ev.NotificationCreated) -> list[Outbound]:
        """A confirmation mail goes to its mailbox's quota key first (the per-address limit).
        The quota of an address without a ``+tag`` is its owner's own key: no extra hop."""
        if email is None:
            return []
        key = mailbox_key(email)
        if key == event.data.recipient.id:
            return self._within_quota(key, event)
        return [Outbound(Destination.INBOX, key, Gated(notification=event.model_dump_json()))]

    def on_gated(self, key: str, msg: Gated) -> list[Outbound]:
        """A confirmation mail for a ``+tag`` address, at its mailbox's quota key."""
        return self._within_quota(key, ev.NotificationCreated.model_validate_json(msg.notification))

    def _within_quota(self, key: str, event: ev.NotificationCreated) -> list[Outbound]:
        """Send a confirmation mail if its mailbox is under the per-address limit (the same
        mail again, a replay, is sent again without counting twice)."""
        if self.quotas is None:
            return [self._emit(event)]
        nid = event.data.notification_id
        quota = self.quotas.get(key) or Quota()
        if nid not in quota.sent:
            since = event.time - QUOTA_WINDOW
            quota.sent = {n: t for n, t in quota.sent.items() if t > since}
            if len(quota.sent) >= self.confirmations_per_day:
                self.quotas[key] = quota
                return []
            quota.sent[nid] = event.time
            self.quotas[key] = quota
        return [self._emit(event)]

    def confirm(self, token: str, at: datetime | None = None) -> list[Outbound]:
        """Double opt-in: the token confirms the address and exactly the request it was sent
        for, which starts (from ``at``, the confirmation's time). Tokens of an older token
        version (signed out, or a profile since erased) confirm nothing."""
        try:
            claims = self.tokens.read_confirm(token)
        except InvalidToken:
            return []
        profile = self.profiles.get(claims.subscriber_id)
        if profile is None or claims.version != profile.token_version:
            return []
        key = subscription_key(claims.scope, claims.target)
        pending = profile.pending.pop(claims.request, None) if claims.request else None
        if pending is not None:
            if pending.scope != claims.scope or pending.target != claims.target:
                return []
            sub = self._activate(
                profile, pending.scope, pending.target, pending.delivery, at or pending.at
            )
            if not profile.confirmed and pending.name:  # the owner's own request: their name
                profile.name = pending.name
        else:
            found = profile.subscriptions.get(key)
            if found is None:
                return []  # superseded, dropped, or cancelled since
            sub = found
            if claims.request is None and not sub.active:
                # A token minted before requests were kept apart: this subscription only.
                sub.active = True
                if at is not None and (sub.since is None or sub.since < at):
                    sub.since = at
            elif not sub.active:
                return []
            # else: the same confirmation again (a replay): announce it again below.
        profile.confirmed = True
        self.profiles[profile.id] = profile
        return self._announce(profile, sub, active=True)

    def cancel(self, sid: str, scope: str, target: str | None) -> list[Outbound]:
        """End one subscription (also what an unsubscribe token does). The scope ``digest``
        (a digest's own token) ends every digest-mode subscription."""
        profile = self.profiles.get(sid)
        if profile is None:
            return []
        if scope == DIGEST_SCOPE:
            keys = [k for k, sub in profile.subscriptions.items() if sub.delivery == "digest"]
            # Everything waiting came from those subscriptions: no further digest at all.
            buffer = self.digests.get(sid)
            if buffer is not None and (buffer.items or buffer.contributions):
                buffer.items.clear()
                buffer.contributions.clear()
                buffer.due_at = None
                self.digests[sid] = buffer
        else:
            keys = [subscription_key(scope, target)]
        ended = [sub for k in keys if (sub := profile.subscriptions.pop(k, None)) is not None]
        if not ended:
            return []
        for sub in ended:  # what an undo may restore: the newest MAX_ENDED
            key = subscription_key(sub.scope, sub.target)
            profile.ended.pop(key, None)
            profile.ended[key] = sub
        while len(profile.ended) > MAX_ENDED:
            del profile.ended[next(iter(profile.ended))]
        self.profiles[sid] = profile
        return [out for sub in ended for out in self._announce(profile, sub, active=False)]

    def restore(self, sid: str, scope: str, target: str | None, at: datetime) -> list[Outbound]:
        """The undo of an unsubscribe: the subscription(s) that cancel ended come back with the
        delivery they had, from ``at`` on (nothing in between is notified), without a new
        confirmation: they were the subscriber's own. One taken up again since, or never
        cancelled, is left alone. The scope ``digest`` restores every digest-mode one."""
        profile = self.profiles.get(sid)
        if profile is None:
            return []
        if scope == DIGEST_SCOPE:
            keys = [k for k, sub in profile.ended.items() if sub.delivery == "digest"]
        else:
            keys = [subscription_key(scope, target)]
        restored = []
        for key in keys:
            sub = profile.ended.pop(key, None)
            if sub is None or key in profile.subscriptions:
                continue
            sub = sub.model_copy(update={"active": True, "since": at})
            profile.subscriptions[key] = sub
            restored.append(sub)
        if not restored:
            return []
        self.profiles[sid] = profile
        return [out for sub in restored for out in self._announce(profile, sub, active=True)]

    def change_delivery(
        self, sid: str, scope: str, target: str | None, delivery: Delivery
    ) -> list[Outbound]:
        """Deliver one existing, active subscription instantly or in the digest from now on,
        without a new confirmation (the subscriber consented to it already; the address is
        unchanged). The stage that owns the follow is told, as on a subscription, so an article
        follow moves into or out of its digest group. A subscription the subscriber does not
        have (never had, cancelled, or a guest's still unconfirmed request) is left alone."""
        profile = self.profiles.get(sid)
        if profile is None:
            return []
        sub = profile.subscriptions.get(subscription_key(scope, target))
        if sub is None or not sub.active or sub.delivery == delivery:
            return []
        sub = sub.model_copy(update={"delivery": delivery})  # the date it began is kept
        profile.subscriptions[subscription_key(scope, target)] = sub
        self.profiles[sid] = profile
        return self._announce(profile, sub, active=True)

    def on_follow_ended(self, msg: FollowEnded) -> list[Outbound]:
        """The followed commenter was erased: forget the follow and where it led."""
        sid = msg.subscriber_id
        profile = self.profiles.get(sid)
        key = subscription_key(msg.scope, msg.target)
        if profile is not None and key in profile.subscriptions:
            del profile.subscriptions[key]
            self.profiles[sid] = profile
        traces = self.traces.get(sid)
        entry = [Destination.FOLLOWS.value, f"{msg.scope}:{msg.target}"]
        if traces is not None and entry in [list(k) for k in traces.keys]:
            traces.keys = [k for k in traces.keys if list(k) != entry]
            self.traces[sid] = traces
        return []

    def unsubscribe(self, token: str) -> list[Outbound]:
        """Cancel exactly the subscription an unsubscribe token names."""
        claims = self.tokens.read_unsubscribe(token)
        return self.cancel(claims.subscriber_id, claims.scope, claims.target)

    def _preferences(self, data: ev.PreferencesUpdatedData, at: datetime) -> list[Outbound]:
        profile = self.profiles.get(data.subscriber_id) or Profile(
            id=data.subscriber_id,
            name=data.subscriber_id,
            guest=is_guest_id(data.subscriber_id),
            token_version=version_at(at),
        )
        quiet = (
            QuietHours(
                start=data.quiet_hours.start.hour * 60 + data.quiet_hours.start.minute,
                end=data.quiet_hours.end.hour * 60 + data.quiet_hours.end.minute,
            )
            if data.quiet_hours
            else None
        )
        profile.preferences = Preferences(
            digest=data.digest,
            timezone=data.timezone,
            digest_hour=data.digest_hour,
            digest_weekday=data.digest_weekday,
            quiet_hours=quiet,
            paused=data.paused,
            muted_articles=list(data.muted_articles),
        )
        self.profiles[data.subscriber_id] = profile
        # Article followers in digest mode are grouped by schedule at the threads stage.
        return [
            out
            for sub in profile.subscriptions.values()
            if sub.active and sub.delivery == "digest" and sub.scope == "article"
            for out in self._announce(profile, sub, active=True)
        ]

    def token_current(self, sid: str, version: int) -> bool:
        """Whether a token of this version still speaks for this subscriber (no sign-out or
        erasure since it was minted). With no profile only version 0 does: the version of an
        erase token mailed to a commenter who never subscribed."""
        profile = self.profiles.get(sid)
        return version == (profile.token_version if profile is not None else 0)

    def sign_out(self, sid: str, at: datetime) -> list[Outbound]:
        """Sign me out everywhere: every token minted for this subscriber so far stops working
        (notifications sent from now on carry tokens of the new version)."""
        profile = self.profiles.get(sid)
        if profile is None:
            return []
        profile.token_version = max(profile.token_version + 1, version_at(at))
        self.profiles[sid] = profile
        return []

    def request_erasure(self, sid: str, email: str | None, request_id: str) -> list[Outbound]:
        """Erasure asked for without proof of the address (a manage link, or an address typed
        in): mail the address an erase token. The stored address if there is one; else the one
        typed in, if it is this guest's (a commenter who never subscribed)."""
        profile = self.profiles.get(sid)
        if profile is not None and profile.email is not None:
            address, name, version = profile.email, profile.name, profile.token_version
        elif email is not None and is_guest_id(sid) and guest_subscriber_id(email) == sid:
            address, name = email, profile.name if profile else "reader"
            version = profile.token_version if profile else 0
        else:
            return []
        subject_key = f"erase:{request_id}"
        nid = notification_id(sid, subject_key, Reason.CONFIRM_ERASURE)
        event = ev.NotificationCreated(
            id=nid,
            source=self.source,
            time=self.clock(),
            subject=subject_key,
            data=ev.NotificationCreatedData(
                notification_id=nid,
                recipient=ev.Recipient(id=sid, name=name, email=address),
                reason="confirm_erasure",
                article=ev.ArticleRef(id="", title="Confirm the erasure of your data", url=""),
                comment=None,
                parent=None,
                unsubscribe_token="",
                confirm_token=self.tokens.erase(sid, version),
                manage_token=None,
            ),
        )
        return self._gate(address, event)

    def confirm_erasure(self, token: str) -> list[Outbound]:
        """The address confirmed an erasure: erase, unless the token is of an older token
        version (signed out since, or a profile created since the mail was sent)."""
        try:
            claims = self.tokens.read_erase(token)
        except InvalidToken:
            return []
        if not self.token_current(claims.subscriber_id, claims.version):
            return []
        return self.erase(claims.subscriber_id)

    def erase(self, sid: str) -> list[Outbound]:
        """Right to erasure: every table forgets the subscriber; other stages are told."""
        profile = self.profiles.pop(sid, None)
        traces = self.traces.pop(sid, None)
        for table in (self.held, self.digests):
            table.pop(sid, None)
        if self.quotas is not None:
            self.quotas.pop(sid, None)  # its mailbox's limit, kept here if it has no +tag
        prefix = sent_prefix(sid)
        for key in [k for k in self.sent if k.startswith(prefix)]:  # rare: a scan is fine
            del self.sent[key]
        keys: set[tuple[str, str]] = {tuple(k) for k in (traces.keys if traces else [])}  # type: ignore[misc]
        for sub in profile.subscriptions.values() if profile else []:
            owner = _owner(sub)
            if owner is not None:
                keys.add(owner)
        keys.add((Destination.FOLLOWS.value, entity_key("commenter", sid)))
        erase = Erase(subscriber_id=sid)
        out = [Outbound(Destination(stage), key, erase) for stage, key in sorted(keys)]
        # Other readers' pending digests and held notifications quoting them: every inbox
        # partition looks (the stream shell sends it to each).
        return [*out, Outbound(Destination.INBOX, sid, Forget(author_id=sid))]

    def on_forget(self, msg: Forget) -> list[Outbound]:
        """An erased author leaves what other readers of this partition have pending.

        Digest items about their comments and held notifications of their comments are
        dropped (the digest still counts the comment: it is on the site, anonymised); where
        their comment is only quoted as the parent of a reply it is anonymised (``[erased]``,
        no text). A scan of this partition's pending digests and held notifications: erasures
        are rare, and nothing else knows every reader a comment reached."""
        aid = msg.author_id
        recipients = {*self.held, *self.digests}
        for rid in sorted(r for r in recipients if self.owns(r, msg.partition)):
            if rid == aid:
                continue
            buffer = self.digests.get(rid)
            if buffer is not None and _forget_in_digest(buffer, aid):
                self.digests[rid] = buffer
            held = self.held.get(rid)
            if held is not None and _forget_in_held(held, aid):
                self._store_held(rid, held)
        return []

    def _announce(self, profile: Profile, sub: Subscription, active: bool) -> list[Outbound]:
        owner = _owner(sub)
        if owner is None or sub.target is None:
            return []
        stage, key = owner
        if active:
            self._trace(profile.id, Destination(stage), key)
        change = FollowChange(
            subscriber_id=profile.id,
            scope=sub.scope,
            target=sub.target,
            delivery=sub.delivery,
            active=active,
            schedule=schedule_of(profile.preferences).key if sub.delivery == "digest" else None,
        )
        return [Outbound(Destination(stage), key, change)]

    def _trace(self, sid: str, stage: Destination, key: str) -> None:
        traces = self.traces.get(sid) or Traces()
        entry = (stage.value, key)
        if entry not in [tuple(k) for k in traces.keys]:
            traces.keys.append(entry)
            self.traces[sid] = traces


def _forget_in_digest(buffer: DigestBuffer, author_id: str) -> bool:
    """Drop an erased author's items from a digest buffer, anonymise them as a parent."""
    changed = False
    for key, entry in list(buffer.items.items()):
        comment, parent = entry.subject.comment, entry.subject.parent
        if comment is not None and comment.author_id == author_id:
            del buffer.items[key]
            changed = True
        elif parent is not None and parent.author_id == author_id:
            entry.subject = entry.subject.model_copy(update={"parent": anonymised(parent)})
            changed = True
    for key, contribution in list(buffer.contributions.items()):
        items = [i for i in contribution.items if i.comment.author_id != author_id]
        if len(items) != len(contribution.items):
            buffer.contributions[key] = contribution.model_copy(update={"items": items})
            changed = True
    return changed


def _forget_in_held(held: Held, author_id: str) -> bool:
    """Drop held notifications of an erased author's comments, anonymise them as a parent."""
    changed = False
    kept: list[ev.NotificationCreated] = []
    for notification in held.notifications:
        nid = notification.data.notification_id
        comment_author, parent_author = (held.authors.get(nid) or [None, None])[:2]
        if comment_author == author_id:
            held.authors.pop(nid, None)
            changed = True
            continue
        if parent_author == author_id and notification.data.parent is not None:
            parent = notification.data.parent
            data = notification.data.model_copy(
                update={
                    "parent": parent.model_copy(update={"author_name": ERASED_NAME, "excerpt": ""})
                }
            )
            held.authors[nid] = [comment_author, None]
            changed = True
            kept.append(notification.model_copy(update={"data": data}))
        else:
            kept.append(notification)
    held.notifications = kept
    return changed


def _owner(sub: Subscription) -> tuple[str, str] | None:
    """The stage and key that must know about an active subscription (None: inbox only)."""
    if sub.target is None or sub.scope == "replies":
        return None
    if sub.scope == "article":
        return (Destination.THREADS.value, sub.target)
    return (Destination.FOLLOWS.value, f"{sub.scope}:{sub.target}")


def _comment_ref(summary: CommentSummary | None) -> ev.CommentRef | None:
    if summary is None:
        return None
    return ev.CommentRef.model_construct(
        id=summary.id, author_name=summary.author_name, excerpt=summary.excerpt, url=summary.url
    )


def _confirm_article(scope: str, target: str | None) -> ev.ArticleRef:
    """What a confirmation request is about, shown in place of an article."""
    return ev.ArticleRef(id=target or "", title=f"Confirm your {scope} subscription", url="")
