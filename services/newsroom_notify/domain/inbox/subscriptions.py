"""The inbox's subscriptions and consent (rule "Guests confirm first").

A member's request (authenticated by the newsroom) applies at once; a request without
authentication (a guest's) never changes a subscription, a name or an address: it is kept
pending and its address is asked to confirm exactly that request, and the confirm token
activates only it. Every confirmation mail passes the per-address limit, kept in the ``quotas``
table under the mailbox's key (the untagged address's guest id), so aliases share it and it
survives restarts and holds across replicas. An active subscription is announced to the stage
that needs it (threads for article follows, follows for commenter/journalist/section).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.events import Delivery
from newsroom_notify.contract.identity import is_guest_id, mailbox_key
from newsroom_notify.domain.ids import notification_id
from newsroom_notify.domain.inbox.base import InboxBase, schedule_of
from newsroom_notify.domain.inbox.render import DIGEST_SCOPE
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import confirm_subject, entity_key, subscription_key
from newsroom_notify.domain.messages import (
    CHOICE_CARRIED_FOR,
    Chose,
    FollowChange,
    FormChoice,
    Gated,
    Participated,
)
from newsroom_notify.domain.model import DEFAULT_DELIVERY, UNCONFIRMED_NAME, Reason
from newsroom_notify.domain.state import (
    PendingRequest,
    Preferences,
    Profile,
    QuietHours,
    Quota,
    Subscription,
)
from newsroom_notify.domain.tokens import InvalidToken

MAX_PENDING = 10  # unconfirmed requests kept per subscriber (the oldest is dropped)
MAX_ENDED = 10  # cancelled subscriptions an undo may restore, per subscriber (oldest dropped)
QUOTA_WINDOW = timedelta(days=1)


def version_at(at: datetime) -> int:
    """The token version of a profile created (or signed out) at ``at``: milliseconds since
    the epoch, so a profile created again after erasure never accepts the old one's tokens."""
    return int(at.timestamp() * 1000)


def _form_scope(choice: FormChoice | Chose) -> str:
    """The subscription a comment form's choice makes: follow-ups are the article's."""
    return "article" if choice.choice == "follow_up" else "replies"


MAX_CHOSEN = 100  # choices remembered per subscriber (``Profile.chosen``; the oldest dropped)


def _handled(profile: Profile, key: str, at: datetime) -> bool:
    """Whether this inbox handled this choice (or a later one for the same subscription)."""
    handled = profile.chosen.get(key)
    return handled is not None and handled >= at


def _note_choice(profile: Profile, key: str, at: datetime) -> None:
    """Remember a handled choice for ``CHOICE_CARRIED_FOR`` (what a reply may still carry),
    at most ``MAX_CHOSEN`` of them."""
    chosen = profile.chosen
    if key not in chosen or chosen[key] < at:
        chosen[key] = at
    since = max(chosen.values()) - CHOICE_CARRIED_FOR
    for old in [k for k, t in chosen.items() if t < since]:
        del chosen[old]
    while len(chosen) > MAX_CHOSEN:
        del chosen[min(chosen, key=lambda k: chosen[k])]


def follow_owner(sub: Subscription) -> tuple[str, str] | None:
    """The stage and key that must know about an active subscription (None: inbox only)."""
    if sub.target is None or sub.scope == "replies":
        return None
    if sub.scope == "article":
        return (Stage.THREADS.value, sub.target)
    return (Stage.FOLLOWS.value, entity_key(sub.scope, sub.target))


class Subscriptions(InboxBase):
    """Handlers of the inbox stage for subscriptions, preferences and consent."""

    def on_form_choice(self, msg: FormChoice) -> list[Intent]:
        """The comment form's 'Notify of' choice is a subscription to that article.

        A member's choice handled before (``Profile.chosen``: it came, or a reply brought it,
        ``choice_first``) subscribes nobody again: if its subscription is gone (cancelled, or
        refused at the cap) it changes nothing; if it stands, it is handled as before."""
        self._trace(msg.subscriber_id, Stage.THREADS, msg.article_id)
        return self.subscribe(
            sid=msg.subscriber_id,
            name=msg.name,
            email=msg.email,
            guest=msg.guest,
            scope=_form_scope(msg),
            target=msg.article_id,
            delivery=None,
            request_id=f"form:{msg.article_id}:{msg.choice}",
            at=msg.at,
            chosen=True,
        )

    def choice_first(self, msg: Chose) -> list[Intent]:
        """A member's "Notify of" choice that a reply's candidacy carries (``Activity.choices``),
        applied before the candidacy is decided if it has not reached this inbox yet: it was
        sent here directly, the candidacy came through the follows stage, and the parent's
        author asked for replies before the reply was written (a fault-suite run lost such a
        reply, 3 December 2026). Its subscription is made as the choice's own arrival makes
        it (which then changes nothing but the name and address it brings).

        Only if this inbox never handled it (``Profile.chosen``) and the profile has never had
        that subscription (active, or cancelled: a cancellation may have come after the
        choice), and only to a profile that exists and is not newer than the choice (an
        erasure and a new profile, a sign-out): otherwise the profile decides alone. Never to
        a missing profile: nothing tells a member whose choice is the first thing the inbox
        hears of them from one erased while the reply was in transit, and an erased reader
        must not come back (docs/operations.md)."""
        sid = msg.subscriber_id
        if is_guest_id(sid):
            return []  # a guest's choice waits for their confirmation: no reply stands in
        profile = self.profiles.get(sid)
        if profile is None or profile.token_version > version_at(msg.at):
            return []
        scope = _form_scope(msg)
        key = subscription_key(scope, msg.article_id)
        if key in profile.subscriptions or key in profile.ended or _handled(profile, key, msg.at):
            return []
        self._trace(sid, Stage.THREADS, msg.article_id)
        _note_choice(profile, key, msg.at)
        sub = self._activate(profile, scope, msg.article_id, None, msg.at)
        self.profiles[sid] = profile
        return [] if sub is None else self._announce(profile, sub, active=True)

    def on_participated(self, msg: Participated) -> list[Intent]:
        """Remember the thread, so erasure reaches it."""
        self._trace(msg.subscriber_id, Stage.THREADS, msg.article_id)
        return []

    def subscribe(
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
        chosen: bool = False,
    ) -> list[Intent]:
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
        if chosen:  # the comment form's (``on_form_choice``)
            if _handled(profile, key, at) and (sub is None or not sub.active):
                return []  # handled before, and its subscription is gone: it stays gone
            _note_choice(profile, key, at)  # handled, whatever comes of it
        profile.name = name
        if email is not None:
            profile.email = email
        profile.confirmed = True  # members are authenticated by the newsroom
        sub = self._activate(profile, scope, target, delivery, at)
        self.profiles[sid] = profile
        return [] if sub is None else self._announce(profile, sub, active=True)

    def _activate(
        self,
        profile: Profile,
        scope: str,
        target: str | None,
        delivery: Delivery | None,
        at: datetime,
    ) -> Subscription | None:
        """Make a subscription active with this delivery (None: keep the one chosen before, so
        the order of a form tick and an explicit choice does not matter). None: a new one
        past the subscriber's cap, not recorded (docs/security.md, bounded state)."""
        key = subscription_key(scope, target)
        sub = profile.subscriptions.get(key)
        if sub is None and len(profile.subscriptions) >= self.subscriptions_max:
            self.on_capped("subscriptions")
            return None
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
    ) -> list[Intent]:
        subject_key = confirm_subject(subscription_key(scope, target), request_id)
        nid = notification_id(profile.id, subject_key, Reason.CONFIRM_SUBSCRIPTION)
        event = self.render.confirmation_request(
            profile, scope, target, request_id, subject_key=subject_key, nid=nid
        )
        return self._gate(profile.email, event)

    def _gate(self, email: str | None, event: ev.NotificationCreated) -> list[Intent]:
        """A confirmation mail goes to its mailbox's quota key first (the per-address limit).
        The quota of an address without a ``+tag`` is its owner's own key: no extra hop."""
        if email is None:
            return []
        key = mailbox_key(email)
        if key == event.data.recipient.id:
            return self._within_quota(key, event)
        return [ToStage(Stage.INBOX, key, Gated(notification=event.model_dump_json()))]

    def on_gated(self, key: str, msg: Gated) -> list[Intent]:
        """A confirmation mail for a ``+tag`` address, at its mailbox's quota key."""
        return self._within_quota(key, ev.NotificationCreated.model_validate_json(msg.notification))

    def _within_quota(self, key: str, event: ev.NotificationCreated) -> list[Intent]:
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

    def confirm(self, token: str, at: datetime | None = None) -> list[Intent]:
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
            activated = self._activate(
                profile, pending.scope, pending.target, pending.delivery, at or pending.at
            )
            if activated is None:  # past the cap: the request is used up, nothing activated
                self.profiles[profile.id] = profile
                return []
            sub = activated
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

    def cancel(self, sid: str, scope: str, target: str | None) -> list[Intent]:
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

    def restore(self, sid: str, scope: str, target: str | None, at: datetime) -> list[Intent]:
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
            if key in profile.subscriptions:
                profile.ended.pop(key, None)
            if key not in profile.ended:
                continue
            if len(profile.subscriptions) >= self.subscriptions_max:
                self.on_capped("subscriptions")  # past the cap: left where it was, not restored
                break
            sub = profile.ended.pop(key)
            sub = sub.model_copy(update={"active": True, "since": at})
            profile.subscriptions[key] = sub
            restored.append(sub)
        if not restored:
            return []
        self.profiles[sid] = profile
        return [out for sub in restored for out in self._announce(profile, sub, active=True)]

    def change_delivery(
        self, sid: str, scope: str, target: str | None, delivery: Delivery
    ) -> list[Intent]:
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

    def unsubscribe(self, token: str) -> list[Intent]:
        """Cancel exactly the subscription an unsubscribe token names."""
        claims = self.tokens.read_unsubscribe(token)
        return self.cancel(claims.subscriber_id, claims.scope, claims.target)

    def preferences(self, data: ev.PreferencesUpdatedData, at: datetime) -> list[Intent]:
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
        held = self.held.get(data.subscriber_id)
        if held is not None and held.release_at is not None:
            held.release_at = None  # other quiet hours: the timer's next check decides
            self.held[data.subscriber_id] = held
        # Article followers in digest mode are grouped by schedule at the threads stage.
        return [
            out
            for sub in profile.subscriptions.values()
            if sub.active and sub.delivery == "digest" and sub.scope == "article"
            for out in self._announce(profile, sub, active=True)
        ]

    def sign_out(self, sid: str, at: datetime) -> list[Intent]:
        """Sign me out everywhere: every token minted for this subscriber so far stops working
        (notifications sent from now on carry tokens of the new version)."""
        profile = self.profiles.get(sid)
        if profile is None:
            return []
        profile.token_version = max(profile.token_version + 1, version_at(at))
        self.profiles[sid] = profile
        return []

    def _announce(self, profile: Profile, sub: Subscription, active: bool) -> list[Intent]:
        owner = follow_owner(sub)
        if owner is None or sub.target is None:
            return []
        stage, key = owner
        if active:
            self._trace(profile.id, Stage(stage), key)
        change = FollowChange(
            subscriber_id=profile.id,
            scope=sub.scope,
            target=sub.target,
            delivery=sub.delivery,
            active=active,
            schedule=schedule_of(profile.preferences).key if sub.delivery == "digest" else None,
        )
        return [ToStage(Stage(stage), key, change)]
