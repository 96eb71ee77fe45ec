"""The inbox's digests: what waits for a recipient's next digest (their digest-mode items and
the activity of the articles they follow in digest mode, fan-out on read, see
``domain/digest.py``), cut once per period of their schedule, outside quiet hours; each comment
listed in one digest only (rule "One notification per person per comment")."""

from __future__ import annotations

from datetime import datetime, timedelta

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.digest import ArticleDigest, add_contribution
from newsroom_notify.domain.ids import digest_id, notification_id
from newsroom_notify.domain.inbox.base import InboxBase, in_quiet_hours, schedule_of
from newsroom_notify.domain.intents import Intent
from newsroom_notify.domain.keys import (
    comment_subject,
    contribution_key,
    sent_key,
    subscription_key,
)
from newsroom_notify.domain.messages import Contribution
from newsroom_notify.domain.model import Reason
from newsroom_notify.domain.schedule import Period, last_closed_period, period_containing
from newsroom_notify.domain.state import DigestBuffer, DigestEntry, Profile, Sent

# How long a digest remembers which period of an article's activity it included (a replay of
# that activity is later by at most the time to recover from a crash; weekly periods need 7d).
ACTIVITY_MEMORY = timedelta(days=8)


def is_due(due_at: datetime | None, now: datetime) -> bool:
    """Whether a digest buffer due at ``due_at`` should get a tick at ``now`` (the timer asks
    for every buffer: ``stored_due_at`` reads ``due_at`` without decoding the buffer)."""
    return due_at is not None and due_at <= now


class Digests(InboxBase):
    """Handlers and helpers of the inbox stage for digests."""

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

    def on_contribution(self, msg: Contribution) -> list[Intent]:
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

    def digest_due(self, rid: str, at: datetime | None = None) -> bool:
        """Whether the timer should send this recipient a tick at ``at`` (the clock's now if
        None; cheap, no decisions)."""
        buffer = self.digests.get(rid)
        now = self.clock() if at is None else at
        return buffer is not None and is_due(buffer.due_at, now)

    def on_digest_tick(self, rid: str, at: datetime | None = None) -> list[Intent]:
        """Cut the digest of the period that had ended at the tick's time ``at`` (the clock's
        now if None), once, outside quiet hours."""
        buffer = self.digests.get(rid)
        profile = self.profiles.get(rid)
        if buffer is None:
            return []
        if profile is None:
            self.digests.pop(rid, None)
            return []
        now = self.clock() if at is None else at
        if buffer.due_at is not None and now < buffer.due_at:
            return []
        prefs = profile.preferences
        schedule = schedule_of(prefs)
        if in_quiet_hours(prefs.quiet_hours, prefs.timezone, now):
            return []  # rule "Preferences": no digest inside quiet hours; the next tick tries again
        period = last_closed_period(schedule, now - self.digest_grace)
        out: list[Intent] = []
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
        return self.render.digest(
            profile, period, did, list(articles.values()), self.items_per_article
        )
