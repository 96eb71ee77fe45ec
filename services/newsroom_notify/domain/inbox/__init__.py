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

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.inbox.deciding import Deciding
from newsroom_notify.domain.inbox.erasure import Erasure
from newsroom_notify.domain.outbox import Outbound


class InboxStage(Deciding, Erasure):
    """Handlers of the inbox stage over its tables."""

    def on_command(self, event: ev.CloudEvent, subscriber_id: str) -> list[Outbound]:
        """A subscription command from the subscriptions topic."""
        if isinstance(event, ev.SubscriptionRequested):
            data = event.data
            return self._subscribe(
                sid=subscriber_id,
                name=data.subscriber.name,
                email=data.subscriber.email,
                guest=data.subscriber.id is None,
                scope=data.scope,
                target=data.target,
                delivery=data.delivery,
                request_id=event.id,
                at=event.time,
            )
        version = getattr(event.data, "token_version", None)
        if version is not None and not self.token_current(subscriber_id, version):
            return []  # authorised by a link minted before a sign-out (or an erasure)
        if isinstance(event, ev.SubscriptionCancelled):
            return self.cancel(subscriber_id, event.data.scope, event.data.target)
        if isinstance(event, ev.SubscriptionRestored):
            return self.restore(subscriber_id, event.data.scope, event.data.target, event.time)
        if isinstance(event, ev.SubscriptionDeliveryChanged):
            change = event.data
            return self.change_delivery(subscriber_id, change.scope, change.target, change.delivery)
        if isinstance(event, ev.SubscriptionConfirmed):
            return self.confirm(event.data.token, event.time)
        if isinstance(event, ev.PreferencesUpdated):
            return self._preferences(event.data, event.time)
        if isinstance(event, ev.SubscriberErased):
            return self.erase(subscriber_id)
        if isinstance(event, ev.SubscriberSignedOut):
            return self.sign_out(subscriber_id, event.time)
        if isinstance(event, ev.ErasureRequested):
            return self.request_erasure(subscriber_id, event.data.email, event.id)
        if isinstance(event, ev.ErasureConfirmed):
            return self.confirm_erasure(event.data.token)
        raise TypeError(f"not a subscription command: {event.type}")
