"""What a digest contains, and the arithmetic of article activity (fan-out on read).

**Why fan-out on read.** An article can have 50,000 digest-mode followers and 1,000 comments an
hour. Writing each comment into 50,000 digest buffers would cost 50,000,000 writes an hour.
Instead the threads stage (keyed by article) records each approved comment once, into the
article's *activity slot* (a count and the latest few comments of a 15-minute slot: O(1) per
comment, whatever the number of followers). Digest followers are grouped by *schedule*
(frequency, time zone, hour, weekday): everyone in a group shares the same periods. When a
period of a group ends, the article's slots in that period are summed once and one
``Contribution`` per follower is sent to the inbox stage: 50,000 contributions per article per
period, not per comment. The inbox then merges a recipient's contributions with their own
digest-mode items (followed commenters, new articles, digest-mode replies) into one digest.

Slots are 15 minutes because every time zone's offset is a multiple of 15 minutes, so a slot
never straddles a period boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from newsroom_notify.domain.messages import Contribution
from newsroom_notify.domain.model import PRIORITY, ArticleInfo, CommentSummary, Reason
from newsroom_notify.domain.state import ActivitySlot

EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday 00:00 UTC: slots are aligned on it


def slot_start(moment: datetime, slot_minutes: int) -> datetime:
    """The start of the activity slot that contains ``moment``."""
    length = timedelta(minutes=slot_minutes)
    return EPOCH + ((moment.astimezone(UTC) - EPOCH) // length) * length


def record_comment(slot: ActivitySlot, comment_id: str, keep: int) -> None:
    """Count an approved comment in its slot, remembering only the ``keep`` latest ids."""
    slot.count += 1
    slot.latest = [*slot.latest, comment_id][-keep:]


def forget_comment(slot: ActivitySlot, comment_id: str) -> None:
    """Take a removed comment out of its slot's count and ids."""
    slot.count = max(0, slot.count - 1)
    slot.latest = [i for i in slot.latest if i != comment_id]


def summarise_slots(slots: Iterable[ActivitySlot], keep: int) -> tuple[int, list[str]]:
    """Total count and the ids of the ``keep`` latest comments of slots given oldest first."""
    total, ids = 0, []
    for slot in slots:
        total += slot.count
        ids.extend(slot.latest)
    return total, ids[-keep:]


class ArticleDigest:
    """One article's part of a digest while it is being put together."""

    def __init__(self, article: ArticleInfo) -> None:
        self.article = article
        self.new_comments = 0
        self.counted = False  # new_comments came from contributions (the article's activity)
        self.items: dict[str, tuple[Reason, CommentSummary, datetime]] = {}
        self.new_article = False
        self.token_scope: tuple[str, str | None] | None = None

    def add_item(self, reason: Reason, comment: CommentSummary, at: datetime) -> None:
        """Keep the strongest reason for each comment (rule "One notification per person per
        comment")."""
        current = self.items.get(comment.id)
        if current is None or PRIORITY[reason] < PRIORITY[current[0]]:
            self.items[comment.id] = (reason, comment, at)

    def ordered(self, limit: int) -> list[tuple[Reason, CommentSummary]]:
        """Replies and mentions first, then the latest follow-ups, at most ``limit`` (the wire
        items are the renderer's: ``inbox/render.py``)."""
        ranked = sorted(self.items.values(), key=lambda x: (PRIORITY[x[0]], -x[2].timestamp()))
        return [(reason, comment) for reason, comment, _ in ranked[:limit]]


def add_contribution(
    articles: dict[str, ArticleDigest],
    contribution: Contribution,
    me: str,
    shown: frozenset[str] = frozenset(),
) -> None:
    """Merge one article-activity contribution into a digest being built. Comments in
    ``shown`` (already in an earlier digest of this recipient) are neither listed nor counted
    again."""
    again = sum(1 for item in contribution.items if item.comment.id in shown)
    new_comments = max(0, contribution.new_comments - again)
    items = [
        i for i in contribution.items if i.comment.author_id != me and i.comment.id not in shown
    ]
    if not new_comments and not items:
        return  # nothing new (e.g. the same activity again, all shown already)
    part = articles.setdefault(contribution.article.id, ArticleDigest(contribution.article))
    part.new_comments += new_comments
    part.counted = True
    part.token_scope = part.token_scope or ("article", contribution.article.id)
    for item in items:
        part.add_item(Reason.FOLLOW_UP, item.comment, item.at)
