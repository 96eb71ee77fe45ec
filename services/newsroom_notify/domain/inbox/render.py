"""The wire events the inbox sends, built in one place: notifications (``NotificationCreated``:
about a comment or an article, or asking to confirm a subscription or an erasure), their
retraction (``NotificationRetracted``) and digests (``DigestReady``). What goes into them is
decided elsewhere in the inbox; here only how they look on the wire, with their tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.construct import constructor
from newsroom_notify.domain.digest import ArticleDigest
from newsroom_notify.domain.ids import retraction_id
from newsroom_notify.domain.model import Basis, CommentSummary, Reason, Subject
from newsroom_notify.domain.schedule import Period
from newsroom_notify.domain.state import Profile, Subscription
from newsroom_notify.domain.tokens import TokenClaims, Tokens

DIGEST_SCOPE = "digest"  # the scope of a digest's unsubscribe token: all digest-mode follows

Removal = Literal["spam", "trash", "deleted"]
_Refs = tuple[ev.ArticleRef, ev.CommentRef | None, ev.CommentRef | None]
_notification = constructor(ev.NotificationCreated)
_notification_data = constructor(ev.NotificationCreatedData)
_recipient = constructor(ev.Recipient)


def _comment_ref(summary: CommentSummary | None) -> ev.CommentRef | None:
    if summary is None:
        return None
    return ev.CommentRef.model_construct(
        id=summary.id, author_name=summary.author_name, excerpt=summary.excerpt, url=summary.url
    )


def _digest_item(reason: Reason, comment: CommentSummary) -> ev.DigestItem:
    ref = ev.CommentRef(
        id=comment.id, author_name=comment.author_name, excerpt=comment.excerpt, url=comment.url
    )
    return ev.DigestItem(comment=ref, reason=reason.value)


def _confirm_article(scope: str, target: str | None) -> ev.ArticleRef:
    """What a confirmation request is about, shown in place of an article."""
    return ev.ArticleRef(id=target or "", title=f"Confirm your {scope} subscription", url="")


@dataclass
class Renderer:
    """Builds the inbox's output events (with the tokens they carry)."""

    tokens: Tokens
    source: str
    clock: Callable[[], datetime]
    # The last subject's references (``_refs``): the candidacies of one fan-out share it.
    _refs_memo: tuple[Subject, _Refs] | None = field(default=None, init=False, repr=False)

    def notification(
        self,
        profile: Profile,
        subject: Subject,
        basis: Basis,
        sub: Subscription | None,
        nid: str,
    ) -> ev.NotificationCreated:
        """A notification about a comment or an article, for the reason ``basis`` gives."""
        claims = TokenClaims(
            profile.id,
            sub.scope if sub else basis.scope,
            sub.target if sub else basis.target,
            profile.token_version,
        )
        article, comment, parent = self._refs(subject)
        links = self.tokens.links(claims)  # both from one HMAC
        # Built from values this service made and validated on the way in: constructed, not
        # validated again (the contract tests check the result against the schemas).
        return _notification(
            id=nid,
            source=self.source,
            time=self.clock(),
            subject=subject.key,
            data=_notification_data(
                notification_id=nid,
                recipient=_recipient(id=profile.id, name=profile.name, email=profile.email),
                reason=basis.reason.value,
                article=article,
                comment=comment,
                parent=parent,
                unsubscribe_token=links.unsubscribe,
                manage_token=links.manage,
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

    def retraction(
        self, notification_id: str, recipient_id: str, subject_key: str, cause: Removal
    ) -> ev.NotificationRetracted:
        """The withdrawal of a notification sent instantly."""
        return ev.NotificationRetracted(
            id=retraction_id(notification_id),
            source=self.source,
            time=self.clock(),
            subject=subject_key,
            data=ev.NotificationRetractedData(
                notification_id=notification_id,
                recipient_id=recipient_id,
                cause=cause,
            ),
        )

    def confirmation_request(
        self,
        profile: Profile,
        scope: str,
        target: str | None,
        request_id: str,
        *,
        subject_key: str,
        nid: str,
    ) -> ev.NotificationCreated:
        """The mail asking a guest's address to confirm exactly this subscription request."""
        version = profile.token_version
        links = self.tokens.links(TokenClaims(profile.id, scope, target, version))
        return ev.NotificationCreated(
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
                unsubscribe_token=links.unsubscribe,
                confirm_token=self.tokens.confirm(
                    TokenClaims(profile.id, scope, target, version, request_id)
                ),
                manage_token=links.manage,
            ),
        )

    def erasure_request(
        self, sid: str, name: str, address: str, version: int, *, subject_key: str, nid: str
    ) -> ev.NotificationCreated:
        """The mail asking an address to confirm the erasure of its subscriber's data."""
        return ev.NotificationCreated(
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

    def digest(
        self,
        profile: Profile,
        period: Period,
        did: str,
        articles: list[ArticleDigest],
        items_per_article: int,
    ) -> ev.DigestReady | None:
        """A recipient's digest of these articles' parts, most active first; None when no part
        has anything new (empty periods emit nothing)."""
        parts = []
        for part in articles:
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
                    items=[_digest_item(r, c) for r, c in part.ordered(items_per_article)],
                    new_article=part.new_article,
                    unsubscribe_token=self.tokens.unsubscribe(
                        TokenClaims(profile.id, scope, target, profile.token_version)
                    ),
                )
            )
        if not parts:
            return None
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
