"""The inbox's part of erasure (rule "Erasure"): every table forgets the subscriber, the other
stages are told where else they appear (``Traces``), and other readers' pending digests and
held notifications forget what an erased author wrote. Through a link or by address, only
once the address confirmed it by mail."""

from __future__ import annotations

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id, is_guest_id
from newsroom_notify.domain.ids import notification_id
from newsroom_notify.domain.inbox.subscriptions import Subscriptions, follow_owner
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import entity_key, sent_prefix, subscription_key
from newsroom_notify.domain.messages import Erase, FollowEnded, Forget, ForgetParticipant
from newsroom_notify.domain.model import ERASED_NAME, Reason, anonymised
from newsroom_notify.domain.state import DigestBuffer, Held
from newsroom_notify.domain.tokens import InvalidToken


class Erasure(Subscriptions):
    """Handlers of the inbox stage for erasure."""

    def on_follow_ended(self, msg: FollowEnded) -> list[Intent]:
        """The followed commenter was erased: forget the follow and where it led."""
        sid = msg.subscriber_id
        profile = self.profiles.get(sid)
        key = subscription_key(msg.scope, msg.target)
        if profile is not None and key in profile.subscriptions:
            del profile.subscriptions[key]
            self.profiles[sid] = profile
        traces = self.traces.get(sid)
        entry = [Stage.FOLLOWS.value, entity_key(msg.scope, msg.target)]
        if traces is not None and entry in [list(k) for k in traces.keys]:
            traces.keys = [k for k in traces.keys if list(k) != entry]
            self.traces[sid] = traces
        return []

    def request_erasure(self, sid: str, email: str | None, request_id: str) -> list[Intent]:
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
        event = self.render.erasure_request(
            sid, name, address, version, subject_key=subject_key, nid=nid
        )
        return self._gate(address, event)

    def confirm_erasure(self, token: str) -> list[Intent]:
        """The address confirmed an erasure: erase, unless the token is of an older token
        version (signed out since, or a profile created since the mail was sent)."""
        try:
            claims = self.tokens.read_erase(token)
        except InvalidToken:
            return []
        if not self.token_current(claims.subscriber_id, claims.version):
            return []
        return self.erase(claims.subscriber_id)

    def erase(self, sid: str) -> list[Intent]:
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
            owner = follow_owner(sub)
            if owner is not None:
                keys.add(owner)
        keys.add((Stage.FOLLOWS.value, entity_key("commenter", sid)))
        erase = Erase(subscriber_id=sid)
        out: list[Intent] = [ToStage(Stage(stage), key, erase) for stage, key in sorted(keys)]
        if traces is not None and traces.overflow:  # not every discussion is listed
            out.append(ToStage(Stage.THREADS, sid, ForgetParticipant(subscriber_id=sid)))
        # Other readers' pending digests and held notifications quoting them: every inbox
        # partition looks (the stream shell sends it to each).
        return [*out, ToStage(Stage.INBOX, sid, Forget(author_id=sid))]

    def on_forget(self, msg: Forget) -> list[Intent]:
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
