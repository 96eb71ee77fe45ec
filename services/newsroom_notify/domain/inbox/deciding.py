"""The inbox deciding: whether, why and how a recipient hears of a subject.

A candidacy becomes a notification only if the recipient exists and (guests) confirmed, is not
paused and has not muted the article, and has not had this subject already (rules "Only
approved comments notify", "One notification per person per comment"); the strongest basis
whose condition holds wins (rules "One notification per person per comment" to "Follows");
instant notifications inside quiet hours are held until they end (rule "Preferences");
digest-mode ones go to the digest buffer. A removed comment's notifications are withdrawn, an
edited one's pending digests show the new text (rule "Removed after the fact").

Replays are idempotent: a candidacy for a subject already sent instantly re-emits the same
notification (same id), so an output lost in a crash is not lost for good; consumers drop ids
they have seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from newsroom_notify.contract.events import Delivery
from newsroom_notify.domain.construct import constructor
from newsroom_notify.domain.ids import notification_id
from newsroom_notify.domain.inbox.base import in_quiet_hours, quiet_hours_end, schedule_of
from newsroom_notify.domain.inbox.digests import Digests
from newsroom_notify.domain.intents import Intent
from newsroom_notify.domain.keys import sent_key, subscription_key
from newsroom_notify.domain.messages import Candidacy, Edit, Release, Retraction
from newsroom_notify.domain.model import DEFAULT_DELIVERY, Basis, Condition, Reason, Subject
from newsroom_notify.domain.schedule import period_containing
from newsroom_notify.domain.state import (
    DigestBuffer,
    DigestEntry,
    Held,
    Profile,
    Sent,
    Subscription,
)

_sent = constructor(Sent)
_Mode = Literal["instant", "held", "digest"]  # how a recipient got a subject (``Sent.mode``)
_candidacy = constructor(Candidacy)


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


class Deciding(Digests):
    """Handlers of the inbox stage for candidacies, removals, edits and quiet hours."""

    def on_candidacy(self, msg: Candidacy) -> list[Intent]:
        """Decide whether, why and how this recipient hears of this subject."""
        profile = self._listener(msg.recipient_id, msg.subject)
        if profile is None:
            return []
        key = sent_key(msg.recipient_id, msg.subject.key)
        return self._decide(profile, msg, key, self.sent.get(key))

    def on_candidacies(
        self, subject: Subject, at: datetime, origin: str, bases: Mapping[str, list[Basis]]
    ) -> list[Intent]:
        """The candidacies of one activity (``subject``, ``at``, ``origin``) for several
        recipients (recipient id -> bases, in order): each decided exactly as ``on_candidacy``
        decides it alone, what they ask for in the same order.

        A fan-out's common case, a recipient new to the subject who hears of it at once, is
        decided here without a ``Candidacy`` object each; every other (a replay, a digest,
        quiet hours) as ``on_candidacy`` decides it, from the state already read."""
        out: list[Intent] = []
        sent_table, render = self.sent, self.render
        for rid, rbases in bases.items():
            profile = self._listener(rid, subject)
            if profile is None:
                continue
            key = sent_key(rid, subject.key)
            sent = sent_table.get(key)
            if sent is None and profile.preferences.quiet_hours is None:
                chosen = choose_basis(profile, rbases, at)
                if chosen is None:
                    continue
                basis, sub = chosen
                if delivery_for(basis, sub) == "instant":  # what ``_decide`` does then
                    nid = notification_id(rid, subject.key, basis.reason)
                    notification = render.notification(profile, subject, basis, sub, nid)
                    out.append(self._emit(notification))
                    self._record(key, nid, basis.reason, "instant", origin=origin, digest_id=None)
                    continue
            candidacy = _candidacy(
                recipient_id=rid, subject=subject, bases=rbases, at=at, origin=origin
            )
            out += self._decide(profile, candidacy, key, sent)
        return out

    def _listener(self, rid: str, subject: Subject) -> Profile | None:
        """The recipient's profile if they may hear of ``subject`` at all, else None."""
        profile = self.profiles.get(rid)
        if profile is None or (profile.guest and not profile.confirmed):
            # No consent (rule "Guests confirm first"): nothing reaches an unconfirmed address.
            return None
        if rid == subject.author_id:
            return None  # rule "Nobody hears about their own comment"
        prefs = profile.preferences
        if prefs.paused or subject.article.id in prefs.muted_articles:
            return None  # rule "Preferences"
        return profile

    def _decide(
        self, profile: Profile, msg: Candidacy, key: str, sent: Sent | None
    ) -> list[Intent]:
        """``on_candidacy``'s decision once the recipient may hear of the subject (``key`` and
        ``sent``: its ``sent`` record's key and value)."""
        rid, subject, prefs = msg.recipient_id, msg.subject, profile.preferences
        if sent is not None and (not sent.listed_only or sent.retracted):
            return self._replay(profile, msg, sent)
        chosen = choose_basis(profile, msg.bases, msg.at)
        if chosen is None:
            return []
        basis, sub = chosen
        nid = notification_id(rid, subject.key, basis.reason)
        delivery = delivery_for(basis, sub)
        quiet = (
            delivery == "instant"
            and prefs.quiet_hours is not None  # the clock read only for a window
            and in_quiet_hours(prefs.quiet_hours, prefs.timezone, self.clock())
        )
        held = (self.held.get(rid) or Held()) if quiet else None
        if held is not None and len(held.notifications) >= self.held_max:
            self.on_capped("held")  # the quiet night's overflow goes to the next digest
            delivery, held = "digest", None
        if sent is not None and delivery == "digest":
            return []  # a digest already listed it (its article's activity): once per comment
        out: list[Intent] = []
        mode: _Mode
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
            notification = self.render.notification(profile, subject, basis, sub, nid)
            if held is not None:
                held.notifications.append(notification)
                held.authors[nid] = [
                    subject.comment.author_id if subject.comment else None,
                    subject.parent.author_id if subject.parent else None,
                ]
                if held.release_at is None:  # the quiet-hours timer asks from then on
                    held.release_at = quiet_hours_end(
                        prefs.quiet_hours, prefs.timezone, self.clock()
                    )
                self.held[rid] = held
                mode, out = "held", []
            else:
                mode, out = "instant", [self._emit(notification)]
        self._record(
            key,
            nid,
            basis.reason,
            mode,
            origin=msg.origin,
            digest_id=sent.digest_id if sent is not None else None,
        )
        return out

    def _record(
        self,
        key: str,
        nid: str,
        reason: Reason,
        mode: _Mode,
        *,
        origin: str,
        digest_id: str | None,
    ) -> None:
        """What the recipient got for the subject (its ``sent`` record, under ``key``)."""
        self.sent[key] = _sent(  # constructed: every value is ours, and checked before
            notification_id=nid, reason=reason, mode=mode, origin=origin, digest_id=digest_id
        )

    def _replay(self, profile: Profile, msg: Candidacy, sent: Sent) -> list[Intent]:
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
        notification = self.render.notification(
            profile, msg.subject, basis, sub, sent.notification_id
        )
        return [self._emit(notification)]

    def on_retraction(self, msg: Retraction) -> list[Intent]:
        """Withdraw what this recipient got about a removed comment (rule "Removed after the
        fact")."""
        rid = msg.recipient_id
        key = sent_key(rid, msg.subject_key)
        sent = self.sent.get(key)
        if sent is None:
            self._retract_from_contributions(rid, msg.subject_key)
            return []
        out: list[Intent] = []
        if sent.mode == "instant":
            retraction = self.render.retraction(
                sent.notification_id, rid, msg.subject_key, msg.cause
            )
            out.append(self._emit(retraction))
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

    def on_edit(self, msg: Edit) -> list[Intent]:
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

    def on_release(self, msg: Release) -> list[Intent]:
        """Send what was held once the recipient's quiet hours are over."""
        rid = msg.recipient_id
        held = self.held.get(rid)
        profile = self.profiles.get(rid)
        if held is None or profile is None:
            return []
        prefs = profile.preferences
        now = self.clock()
        if in_quiet_hours(prefs.quiet_hours, prefs.timezone, now):
            # Not yet (asked early: held before ``release_at`` was kept, or the preferences
            # changed since): the timer asks again when these quiet hours end.
            release_at = quiet_hours_end(prefs.quiet_hours, prefs.timezone, now)
            if held.release_at != release_at:
                held.release_at = release_at
                self.held[rid] = held
            return []
        out: list[Intent] = []
        for notification in held.notifications:
            key = sent_key(rid, notification.subject or "")
            sent = self.sent.get(key)
            if sent is not None and not sent.retracted and not prefs.paused:
                sent.mode = "instant"
                self.sent[key] = sent
                out.append(self._emit(notification))
        self._store_held(rid, Held())
        return out
