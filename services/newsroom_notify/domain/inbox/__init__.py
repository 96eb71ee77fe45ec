"""The inbox stage (keyed by subscriber id): one subscriber's consent, subscriptions,
preferences and everything they were sent. One module per capability:

* ``deciding``: candidacies become notifications, held or digest items (and removals, edits,
  quiet hours);
* ``subscriptions``: subscription commands, preferences and consent (confirmation mails, the
  per-address limit);
* ``digests``: the digest buffer and cutting digests;
* ``erasure``: forgetting a subscriber, and an erased author in other readers' state;
* ``render``: the wire events it sends (notifications, retractions, digests);
* ``base``: the tables and what the others share.

``InboxStage`` puts them together over the stage's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.inbox.deciding import Deciding
from newsroom_notify.domain.inbox.erasure import Erasure
from newsroom_notify.domain.intents import Intent
from newsroom_notify.domain.messages import Chose, Command
from newsroom_notify.domain.model import Basis, Subject


class InboxStage(Deciding, Erasure):
    """Handlers of the inbox stage over its tables."""

    def on_candidacies(
        self,
        subject: Subject,
        at: datetime,
        origin: str,
        bases: Mapping[str, list[Basis]],
        choices: Mapping[str, list[Chose]] | None = None,
    ) -> list[Intent]:
        """``Deciding.on_candidacies``, after the choices they depend on (``choice_first``)."""
        first = (
            [i for theirs in choices.values() for c in theirs for i in self.choice_first(c)]
            if choices
            else []
        )
        return first + super().on_candidacies(subject, at, origin, bases)

    def on_command(self, command: Command) -> list[Intent]:
        """A subscription command from the subscriptions topic (key: its subscriber)."""
        event, sid = command.event, command.subscriber_id
        if not isinstance(event, ev.SubscriptionRequested):
            version = getattr(event.data, "token_version", None)
            if version is not None and not self.token_current(sid, version):
                return []  # authorised by a link minted before a sign-out (or an erasure)
        return _COMMANDS[type(event)](self, sid, event)


def _requested(inbox: InboxStage, sid: str, event: ev.SubscriptionRequested) -> list[Intent]:
    data = event.data
    return inbox.subscribe(
        sid=sid,
        name=data.subscriber.name,
        email=data.subscriber.email,
        guest=data.subscriber.id is None,
        scope=data.scope,
        target=data.target,
        delivery=data.delivery,
        request_id=event.id,
        at=event.time,
    )


_Command = Callable[[InboxStage, str, Any], list[Intent]]

# Which handler takes which subscription command (the inbox's part of the router).
_COMMANDS: dict[type[ev.CloudEvent], _Command] = {
    ev.SubscriptionRequested: _requested,
    ev.SubscriptionCancelled: lambda i, sid, e: i.cancel(sid, e.data.scope, e.data.target),
    ev.SubscriptionRestored: lambda i, sid, e: i.restore(sid, e.data.scope, e.data.target, e.time),
    ev.SubscriptionDeliveryChanged: lambda i, sid, e: i.change_delivery(
        sid, e.data.scope, e.data.target, e.data.delivery
    ),
    ev.SubscriptionConfirmed: lambda i, sid, e: i.confirm(e.data.token, e.time),
    ev.PreferencesUpdated: lambda i, sid, e: i.preferences(e.data, e.time),
    ev.SubscriberErased: lambda i, sid, e: i.erase(sid),
    ev.SubscriberSignedOut: lambda i, sid, e: i.sign_out(sid, e.time),
    ev.ErasureRequested: lambda i, sid, e: i.request_erasure(sid, e.data.email, e.id),
    ev.ErasureConfirmed: lambda i, sid, e: i.confirm_erasure(e.data.token),
}
