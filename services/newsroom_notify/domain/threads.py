"""The threads stage (keyed by article id): the discussion under one article.

It owns the article, its comments, its participants (for mentions) and its article-scope
followers, decides the candidates each approved comment has (reply, mention, follow_up), and
hands them to the follows stage under the comment author's key, which adds the author's
followers and merges everything per recipient. Handlers are idempotent: a replayed event
re-emits the same messages and changes no state twice.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.mentions import find_mentions
from newsroom_notify.domain.model import (
    Activity,
    ArticleInfo,
    Basis,
    CommentInfo,
    CommentSummary,
    Condition,
    Erase,
    FollowChange,
    Followers,
    FormChoice,
    Participated,
    Reason,
    Subject,
    Thread,
)
from newsroom_notify.domain.outbox import Destination, Outbound

RETRACTING = {"spam", "trash", "deleted"}
ERASED_NAME = "[erased]"


def comment_key(article_id: str, comment_id: str) -> str:
    """Key of a comment in the comments table."""
    return f"{article_id}/{comment_id}"


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


def comment_candidates(
    thread: Thread, comment: CommentInfo, parent: CommentInfo | None
) -> dict[str, list[Basis]]:
    """Rules 2-6 as far as the thread knows them: who may hear of this comment, and why.

    The inbox still checks each basis's condition (consent, subscriptions) and picks the
    strongest basis that holds (rule 3).
    """
    author = comment.author_id
    aid = comment.article_id
    candidates: dict[str, list[Basis]] = {}

    def add(recipient: str, basis: Basis) -> None:
        if recipient != author:  # rule 2
            candidates.setdefault(recipient, []).append(basis)

    if parent is not None and parent.status == "approved":
        add(
            parent.author_id,
            Basis(
                reason=Reason.REPLY,
                condition=Condition.ASKED_FOR_REPLIES,
                scope="replies",
                target=aid,
            ),
        )
    for mentioned in sorted(find_mentions(comment.text, thread.participants)):
        add(
            mentioned,
            Basis(
                reason=Reason.MENTION, condition=Condition.CONSENTED, scope="replies", target=aid
            ),
        )
    for follower in thread.instant_followers:
        add(
            follower,
            Basis(
                reason=Reason.FOLLOW_UP,
                condition=Condition.SUBSCRIBED,
                scope="article",
                target=aid,
                delivery="instant",
            ),
        )
    return candidates


@dataclass
class ThreadsStage:
    """Handlers of the threads stage over its tables."""

    threads: MutableMapping[str, Thread]
    comments: MutableMapping[str, CommentInfo]
    digest_followers: MutableMapping[str, Followers]

    # ---------------------------------------------------------------- articles

    def on_article(self, event: ev.ArticlePublished | ev.ArticleUpdated) -> list[Outbound]:
        """Store the article; a publication goes to its journalist's and section's followers."""
        data = event.data
        thread = self.threads.get(data.article_id) or Thread()
        info = ArticleInfo(
            id=data.article_id,
            title=data.title,
            url=data.url,
            journalist_id=data.author.id,
            section=data.section,
        )
        if thread.article != info:
            thread.article = info
            self.threads[data.article_id] = thread
        if event.type != "newsroom.article.published":
            return []
        activity = Activity(
            event="article",
            subject=Subject(key=f"a:{info.id}", article=info),
            at=event.time,
            origin=event.id,
        )
        keys = [f"journalist:{info.journalist_id}"]
        if info.section:
            keys.append(f"section:{info.section}")
        return [Outbound(Destination.FOLLOWS, key, activity) for key in keys]

    # ---------------------------------------------------------------- comments

    def on_comment_posted(self, event: ev.CommentPosted) -> list[Outbound]:
        """Record the comment and its author; fan out if it is approved (rule 1)."""
        data = event.data
        aid, sid = data.article_id, data.author.subscriber_id
        out: list[Outbound] = []
        thread = self.threads.get(aid) or Thread()
        changed = False
        if thread.participants.get(sid) != data.author.name:
            if sid not in thread.participants:
                out.append(
                    Outbound(
                        Destination.INBOX, sid, Participated(subscriber_id=sid, article_id=aid)
                    )
                )
            thread.participants[sid] = data.author.name
            changed = True
        authored = thread.authored.setdefault(sid, [])
        if data.comment_id not in authored:
            authored.append(data.comment_id)
            changed = True
        if changed:
            self.threads[aid] = thread
        if data.notify is not None:
            out.append(
                Outbound(
                    Destination.INBOX,
                    sid,
                    FormChoice(
                        subscriber_id=sid,
                        name=data.author.name,
                        email=data.author.email,
                        guest=data.author.guest,
                        article_id=aid,
                        choice=data.notify,
                        at=event.time,
                    ),
                )
            )
        key = comment_key(aid, data.comment_id)
        comment = self.comments.get(key)
        if comment is None:  # a replay finds it stored and only re-emits
            comment = CommentInfo(
                id=data.comment_id,
                article_id=aid,
                author_id=sid,
                author_name=data.author.name,
                parent_id=data.parent_id,
                status=data.status,
                text=data.text,
                posted_at=data.posted_at,
            )
        if comment.status == "approved" and comment.notified_by in (None, event.id):
            # First time, or this very event again (a replay): the same messages again.
            out.extend(self._fan_out(thread, comment, event))
        self.comments[key] = comment
        return out

    def on_moderated(self, event: ev.CommentModerated) -> list[Outbound]:
        """Approve (notify once), or remove (retract what it caused, rule 7)."""
        data = event.data
        return self._set_status(data.article_id, data.comment_id, data.status, event)

    def on_deleted(self, event: ev.CommentDeleted) -> list[Outbound]:
        """A deleted comment is retracted like spam."""
        data = event.data
        return self._set_status(data.article_id, data.comment_id, "deleted", event)

    def on_edited(self, event: ev.CommentEdited) -> list[Outbound]:
        """Update the text; never notify again. Recipients' pending digests get the new text."""
        data = event.data
        key = comment_key(data.article_id, data.comment_id)
        comment = self.comments.get(key)
        if comment is None:
            return []
        comment.text = data.text
        self.comments[key] = comment
        if not comment.notified:
            return []
        thread = self.threads.get(data.article_id) or Thread()
        subject = self._subject(thread, comment)
        activity = Activity(
            event="edit",
            subject=subject,
            excerpt=ev.excerpt(data.text),
            at=event.time,
            origin=event.id,
        )
        return [Outbound(Destination.FOLLOWS, f"commenter:{comment.author_id}", activity)]

    def _set_status(
        self, article_id: str, comment_id: str, status: str, event: ev.CloudEvent
    ) -> list[Outbound]:
        key = comment_key(article_id, comment_id)
        comment = self.comments.get(key)
        if comment is None:
            return []
        comment.status = status  # type: ignore[assignment]
        thread = self.threads.get(article_id) or Thread()
        out: list[Outbound] = []
        if status == "approved" and comment.notified_by in (None, event.id):
            # The first approval notifies, and so does the same event replayed (same ids).
            # Another approval later (again, or after a removal) does not: rule 1.
            out = self._fan_out(thread, comment, event)
        elif status in RETRACTING and comment.notified:
            activity = Activity(
                event="retract",
                subject=self._subject(thread, comment),
                cause=status,
                at=event.time,
                origin=event.id,
            )
            out = [Outbound(Destination.FOLLOWS, f"commenter:{comment.author_id}", activity)]
        self.comments[key] = comment
        return out

    def _parent(self, comment: CommentInfo) -> CommentInfo | None:
        if comment.parent_id is None:
            return None
        return self.comments.get(comment_key(comment.article_id, comment.parent_id))

    def _subject(self, thread: Thread, comment: CommentInfo) -> Subject:
        article = thread.article or placeholder_article(comment.article_id)
        parent = self._parent(comment)
        return Subject(
            key=f"c:{comment.id}",
            article=article,
            comment=summarise(comment, article),
            parent=summarise(parent, article) if parent else None,
        )

    def _fan_out(
        self, thread: Thread, comment: CommentInfo, event: ev.CloudEvent
    ) -> list[Outbound]:
        comment.notified = True
        comment.notified_by = event.id
        activity = Activity(
            event="comment",
            subject=self._subject(thread, comment),
            candidates=comment_candidates(thread, comment, self._parent(comment)),
            at=event.time,
            origin=event.id,
        )
        return [Outbound(Destination.FOLLOWS, f"commenter:{comment.author_id}", activity)]

    # ------------------------------------------------------------ subscriptions

    def on_follow_change(self, article_id: str, change: FollowChange) -> list[Outbound]:
        """An article-scope subscription became active or ended."""
        thread = self.threads.get(article_id) or Thread()
        digest = self.digest_followers.get(article_id) or Followers()
        sid = change.subscriber_id
        instant_changed = digest_changed = False
        if change.active and change.delivery == "instant":
            instant_changed = thread.instant_followers.get(sid) != "article"
            thread.instant_followers[sid] = "article"
            digest_changed = digest.delivery.pop(sid, None) is not None
        elif change.active:
            digest_changed = digest.delivery.get(sid) != "digest"
            digest.delivery[sid] = "digest"
            instant_changed = thread.instant_followers.pop(sid, None) is not None
        else:
            instant_changed = thread.instant_followers.pop(sid, None) is not None
            digest_changed = digest.delivery.pop(sid, None) is not None
        if instant_changed:
            self.threads[article_id] = thread
        if digest_changed:
            self.digest_followers[article_id] = digest
        return []

    def on_erase(self, article_id: str, erase: Erase) -> list[Outbound]:
        """Forget a subscriber in this thread: follower, participant, author name (rule 11)."""
        sid = erase.subscriber_id
        thread = self.threads.get(article_id)
        if thread is not None:
            thread.participants.pop(sid, None)
            thread.instant_followers.pop(sid, None)
            for comment_id in thread.authored.pop(sid, []):
                key = comment_key(article_id, comment_id)
                comment = self.comments.get(key)
                if comment is not None:
                    comment.author_id = f"erased:{comment_id}"
                    comment.author_name = ERASED_NAME
                    comment.text = ""
                    self.comments[key] = comment
            self.threads[article_id] = thread
        digest = self.digest_followers.get(article_id)
        if digest is not None and digest.delivery.pop(sid, None) is not None:
            self.digest_followers[article_id] = digest
        return []
