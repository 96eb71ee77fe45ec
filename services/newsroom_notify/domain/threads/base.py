"""The threads stage's tables and settings, and how a comment is shown (shared by the
discussion and the article-digest activity)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.model import ArticleInfo, CommentSummary
from newsroom_notify.domain.state import (
    ActivitySlot,
    Authored,
    CommentInfo,
    DigestMember,
    Followers,
    Pending,
    Thread,
    Unfollowed,
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _uncounted(_: str) -> None:
    return None


def _everywhere(_: str, __: int | None) -> bool:
    return True


def placeholder_article(article_id: str) -> ArticleInfo:
    """Used when a comment arrives before its article's event (different topics, no order)."""
    return ArticleInfo(id=article_id, title=article_id, url="", journalist_id="")


def summarise(comment: CommentInfo, article: ArticleInfo) -> CommentSummary:
    """A comment as shown in a notification."""
    url = f"{article.url}#comment-{comment.id}" if article.url else f"#comment-{comment.id}"
    return CommentSummary(
        id=comment.id,
        author_id=comment.author_id,
        author_name=comment.author_name,
        excerpt=ev.excerpt(comment.text),
        url=url,
    )


@dataclass
class ThreadsBase:
    """The threads stage's tables and settings (the handlers are in the modules beside)."""

    threads: MutableMapping[str, Thread]
    comments: MutableMapping[str, CommentInfo]
    digest_followers: MutableMapping[str, Followers]  # chunk_key -> followers
    digest_members: MutableMapping[str, DigestMember]  # "<article>|<subscriber>" -> group
    activity: MutableMapping[str, ActivitySlot]  # "<article>|<slot start>" -> slot
    pending: MutableMapping[str, Pending]  # article ids with activity not fanned out yet
    authored: MutableMapping[str, Authored]  # "<article>|<subscriber>" -> their comments
    clock: Callable[[], datetime] = _utcnow
    slot_minutes: int = 15
    items_per_article: int = 5
    # Caps of the per-article records (docs/security.md, bounded state), and who hears of a cap hit.
    participants_max: int = 5_000
    instant_followers_max: int = 5_000
    followers_max: int = 10_000  # per digest-follower chunk
    authored_max: int = 2_000  # comment ids per author per article (more: erasure searches)
    on_capped: Callable[[str], None] = _uncounted
    # Whether an article's state lives in the given partition of the threads topic (the stream
    # shell's partitioner; None: the in-process pipeline, one partition holds every article).
    owns: Callable[[str, int | None], bool] = _everywhere
    # Commenters the follows stage said have no followers (``NoFollowers``): their comments
    # skip the follows hop. None: none is known, every comment goes through the follows stage.
    unfollowed: MutableMapping[str, Unfollowed] | None = None
    # Past this many records (``unfollowed_count``: the stream shell's estimate for the
    # worker's partitions) no commenter is added: their comments take the follows hop, which
    # is always correct (docs/security.md, bounded state).
    unfollowed_max: int = 1_000_000
    unfollowed_count: Callable[[], int] | None = None
