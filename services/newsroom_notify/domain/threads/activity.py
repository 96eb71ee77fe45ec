"""Article digests on the threads stage (fan-out on read, see ``domain/digest.py``): each
approved comment counted once in its article's activity slot, digest-mode followers grouped by
schedule, and one ``Contribution`` per follower per article per period, when a period of their
group ends."""

from __future__ import annotations

from datetime import datetime

from newsroom_notify.domain.digest import (
    forget_comment,
    record_comment,
    slot_start,
    summarise_slots,
)
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import (
    FOLLOWER_CHUNKS,
    activity_key,
    chunk_key,
    chunk_key_of,
    comment_key,
    comment_subject,
    member_key,
)
from newsroom_notify.domain.messages import Contribution, Retraction
from newsroom_notify.domain.model import ActivityItem
from newsroom_notify.domain.schedule import Schedule, last_closed_period
from newsroom_notify.domain.state import (
    ActivitySlot,
    CommentInfo,
    DigestMember,
    Followers,
    Pending,
    Thread,
)
from newsroom_notify.domain.threads.base import ThreadsBase, placeholder_article, summarise


class ArticleActivity(ThreadsBase):
    """Handlers and helpers of the threads stage for article digests."""

    def _record_activity(self, thread: Thread, comment: CommentInfo) -> None:
        """Count an approved comment once in the article's current slot: O(1) per comment."""
        now = self.clock()
        start = slot_start(now, self.slot_minutes)
        key = activity_key(comment.article_id, start)
        slot = self.activity.get(key) or ActivitySlot()
        record_comment(slot, comment.id, self._keep)
        self.activity[key] = slot
        comment.slot = key
        if start not in thread.activity_slots:
            thread.activity_slots.append(start)
            self.threads[comment.article_id] = thread
        if comment.article_id not in self.pending:
            self.pending[comment.article_id] = Pending(since=now)

    @property
    def _keep(self) -> int:
        return self.items_per_article * 2  # room for the recipient's own comments, removed later

    def _forget_activity(self, thread: Thread, comment: CommentInfo, cause: str) -> list[Intent]:
        """A removed comment leaves its slot; followers who already got it are told."""
        if comment.slot is None:
            return []
        slot = self.activity.get(comment.slot)
        if slot is not None:
            forget_comment(slot, comment.id)
            self.activity[comment.slot] = slot
        start = datetime.fromisoformat(comment.slot.rsplit("|", 1)[1])
        fanned = [k for k, end in thread.fanned_until.items() if end > start]
        retraction = Retraction(
            recipient_id="",
            subject_key=comment_subject(comment.id),
            cause=cause,
        )
        return [
            ToStage(Stage.INBOX, sid, retraction.model_copy(update={"recipient_id": sid}))
            for schedule in fanned
            for sid in self._digest_followers(comment.article_id, schedule)
        ]

    def _digest_followers(self, article_id: str, schedule: str) -> list[str]:
        followers: list[str] = []
        for chunk in range(FOLLOWER_CHUNKS):
            group = self.digest_followers.get(chunk_key_of(article_id, schedule, chunk))
            if group is not None:
                followers.extend(group.delivery)
        return followers

    def on_tick(self, article_id: str, at: datetime | None = None) -> list[Intent]:
        """Fan out each schedule group's period of activity that had ended at the tick's time
        ``at`` (the clock's now if None), once (the timer sends the ticks)."""
        thread = self.threads.get(article_id)
        if thread is None or not thread.activity_slots:
            self.pending.pop(article_id, None)
            return []
        now = self.clock() if at is None else at
        article = thread.article or placeholder_article(article_id)
        out: list[Intent] = []
        # Most ticks end no period (every 30 s, a daily period ends once a day): the thread,
        # up to its participants' cap, is written back only if the tick changed it.
        before = (dict(thread.fanned_until), list(thread.activity_slots))
        for schedule, followers in sorted(thread.digest_schedules.items()):
            period = last_closed_period(Schedule.from_key(schedule), now)
            done = thread.fanned_until.get(schedule)
            if followers <= 0 or (done is not None and done >= period.end):
                continue
            slots = [
                slot
                for start in thread.activity_slots
                if (done is None or start >= done)
                and start < period.end
                and (slot := self.activity.get(activity_key(article_id, start))) is not None
            ]
            thread.fanned_until[schedule] = period.end
            count, latest = summarise_slots(slots, self._keep)
            if count == 0:
                continue
            items = [
                ActivityItem(comment=summarise(c, article), at=c.posted_at)
                for cid in latest
                if (c := self.comments.get(comment_key(article_id, cid))) is not None
                and c.status == "approved"
                and not c.author_id.startswith("erased:")  # counted, never quoted
            ]
            contribution = Contribution(
                recipient_id="",
                article=article,
                period_end=period.end,
                new_comments=count,
                items=items,
            )
            out.extend(
                ToStage(Stage.INBOX, sid, contribution.model_copy(update={"recipient_id": sid}))
                for sid in self._digest_followers(article_id, schedule)
            )
        self._drop_fanned_slots(article_id, thread)
        if (thread.fanned_until, thread.activity_slots) != before:
            self.threads[article_id] = thread
        return out

    def _drop_fanned_slots(self, article_id: str, thread: Thread) -> None:
        """Delete slots every schedule group has been given; forget the article when idle."""
        ends = [thread.fanned_until.get(k) for k, n in thread.digest_schedules.items() if n > 0]
        if not ends or any(end is None for end in ends):
            if not ends:  # nobody follows in digest mode any more
                for start in thread.activity_slots:
                    self.activity.pop(activity_key(article_id, start), None)
                thread.activity_slots = []
                self.pending.pop(article_id, None)
            return
        horizon = min(end for end in ends if end is not None)
        keep = [s for s in thread.activity_slots if s >= horizon]
        for start in thread.activity_slots:
            if start < horizon:
                self.activity.pop(activity_key(article_id, start), None)
        thread.activity_slots = keep
        if not keep:
            self.pending.pop(article_id, None)

    def _join_group(self, article_id: str, thread: Thread, sid: str, schedule: str) -> bool:
        key = chunk_key(article_id, schedule, sid)
        group = self.digest_followers.get(key) or Followers()
        if sid not in group.delivery and len(group.delivery) >= self.followers_max:
            self.on_capped("digest_followers")  # not recorded (docs/security.md, bounded state)
            return False
        group.delivery[sid] = "digest"
        self.digest_followers[key] = group
        self.digest_members[member_key(article_id, sid)] = DigestMember(schedule=schedule)
        thread.digest_schedules[schedule] = thread.digest_schedules.get(schedule, 0) + 1
        return True

    def _leave_group(self, article_id: str, thread: Thread, sid: str, schedule: str) -> None:
        key = chunk_key(article_id, schedule, sid)
        group = self.digest_followers.get(key)
        if group is not None and group.delivery.pop(sid, None) is not None:
            if group.delivery:
                self.digest_followers[key] = group
            else:
                del self.digest_followers[key]
        self.digest_members.pop(member_key(article_id, sid), None)
        left = thread.digest_schedules.get(schedule, 1) - 1
        if left > 0:
            thread.digest_schedules[schedule] = left
        else:
            thread.digest_schedules.pop(schedule, None)
            thread.fanned_until.pop(schedule, None)
