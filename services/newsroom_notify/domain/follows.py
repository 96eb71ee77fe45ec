"""The follows stage (keyed by followed entity: ``commenter:<id>``, ``journalist:<id>``,
``section:<name>``).

It owns the followers of each entity. For a comment it adds the author's followers
(``followed_commenter``) to the candidates the threads stage found, merges all bases of each
recipient into one candidacy (so the inbox can pick the strongest, rule "One notification per
person per comment"), and remembers who it handed the comment to, so that a retraction or an
edit reaches exactly them (rule "Removed after the fact"). For a new article it hands it to
the journalist's or section's followers (``new_article``).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import entity_key, fanout_key, fanout_prefix
from newsroom_notify.domain.messages import (
    Activity,
    Candidacy,
    Edit,
    Erase,
    FanoutMoved,
    FollowChange,
    FollowEnded,
    Retraction,
)
from newsroom_notify.domain.model import PRIORITY, Basis, Condition, Reason, erased_author_id
from newsroom_notify.domain.state import Fanout, Followers


def merge_followers(
    entity: str, activity: Activity, followers: Followers | None
) -> dict[str, list[Basis]]:
    """All candidates of an activity: the thread's plus the entity's followers, each
    recipient's bases sorted strongest first; the subject's author never included."""
    scope, _, target = entity.partition(":")
    reason = Reason.FOLLOWED_COMMENTER if scope == "commenter" else Reason.NEW_ARTICLE
    author = activity.subject.author_id
    merged = {sid: list(bases) for sid, bases in activity.candidates.items() if sid != author}
    shared: dict[str, Basis] = {}  # one frozen Basis per delivery, shared by the followers
    for sid, delivery in (followers.delivery if followers else {}).items():
        if sid == author:
            continue
        basis = shared.get(delivery)
        if basis is None:
            basis = shared[delivery] = Basis.model_construct(
                reason=reason,
                condition=Condition.SUBSCRIBED,
                scope=scope,  # type: ignore[arg-type] # an entity key's scope: one of Scope
                target=target,
                delivery=delivery,
            )
        merged.setdefault(sid, []).append(basis)
    for bases in merged.values():
        bases.sort(key=lambda b: PRIORITY[b.reason])
    return merged


@dataclass
class FollowsStage:
    """Handlers of the follows stage over its tables."""

    followers: MutableMapping[str, Followers]
    fanout: MutableMapping[str, Fanout]  # "<entity>|<subject key>" -> recipients
    followers_max: int = 10_000  # per entity (docs/security.md, bounded state)
    on_capped: Callable[[str], None] = lambda record: None

    def on_activity(self, entity: str, activity: Activity) -> list[Intent]:
        """Fan a comment or article out, or withdraw/update what was fanned out."""
        record_key = fanout_key(entity, activity.subject.key)
        if activity.event in ("comment", "article"):
            merged = merge_followers(entity, activity, self.followers.get(entity))
            if activity.event == "comment":
                # Only a comment is retracted or edited later (rule "Removed after the fact"):
                # who got it is kept. An article's fan-out (every follower of a section or
                # journalist) is not: nothing reads it, and a replay would rewrite a record as
                # large as the follower list.
                record = self.fanout.get(record_key) or Fanout()
                known = set(record.recipients)
                new = [sid for sid in merged if sid not in known]
                if new:
                    record.recipients.extend(new)
                    self.fanout[record_key] = record
            return [
                ToStage(
                    Stage.INBOX,
                    sid,
                    Candidacy.model_construct(
                        recipient_id=sid,
                        subject=activity.subject,
                        bases=bases,
                        at=activity.at,
                        # The kind of entity, not its id: a candidacy's origin is kept in
                        # the recipient's state, which must not name an erased commenter.
                        origin=f"{activity.origin}|{entity.partition(':')[0]}",
                    ),
                )
                for sid, bases in merged.items()
            ]
        sent_to = self.fanout.get(record_key)
        if sent_to is None:
            return []
        if activity.event == "retract":
            assert activity.cause is not None
            return [
                ToStage(
                    Stage.INBOX,
                    sid,
                    Retraction(
                        recipient_id=sid, subject_key=activity.subject.key, cause=activity.cause
                    ),
                )
                for sid in sent_to.recipients
            ]
        return [
            ToStage(
                Stage.INBOX,
                sid,
                Edit(
                    recipient_id=sid,
                    subject_key=activity.subject.key,
                    excerpt=activity.excerpt or "",
                ),
            )
            for sid in sent_to.recipients
        ]

    def on_follow_change(self, entity: str, change: FollowChange) -> list[Intent]:
        """A commenter/journalist/section subscription became active or ended."""
        followers = self.followers.get(entity) or Followers()
        sid = change.subscriber_id
        if change.active and followers.delivery.get(sid) != change.delivery:
            if sid not in followers.delivery and len(followers.delivery) >= self.followers_max:
                self.on_capped("followers")  # not recorded (docs/security.md, bounded state)
                return []
            followers.delivery[sid] = change.delivery
            self.followers[entity] = followers
        elif not change.active and followers.delivery.pop(sid, None) is not None:
            self.followers[entity] = followers
        return []

    def on_erase(self, entity: str, erase: Erase) -> list[Intent]:
        """Forget a subscriber (rule "Erasure"): as a follower of this entity and as a recipient of
        its subjects; if the entity is the subscriber, its followers, and move who each of
        their comments went to where a later removal of the comment looks for it."""
        sid = erase.subscriber_id
        prefix = fanout_prefix(entity)
        if erase.subjects:
            keys = [prefix + subject for subject in erase.subjects]
        else:
            keys = [k for k in self.fanout if k.startswith(prefix)]  # rare: a scan is fine
        if entity == entity_key("commenter", sid):
            followers = self.followers.pop(entity, None)
            out: list[Intent] = [
                ToStage(
                    Stage.INBOX,
                    follower,
                    FollowEnded(subscriber_id=follower, scope="commenter", target=sid),
                )
                for follower in (followers.delivery if followers else {})
            ]
            for key in keys:
                record = self.fanout.pop(key, None)
                subject_key = key[len(prefix) :]
                if record is not None and subject_key.startswith("c:"):
                    comment_id = subject_key.removeprefix("c:")
                    out.append(
                        ToStage(
                            Stage.FOLLOWS,
                            entity_key("commenter", erased_author_id(comment_id)),
                            FanoutMoved(subject_key=subject_key, recipients=record.recipients),
                        )
                    )
            return out
        followers = self.followers.get(entity)
        if followers is not None and followers.delivery.pop(sid, None) is not None:
            self.followers[entity] = followers
        for key in keys:
            record = self.fanout.get(key)
            if record is not None and sid in record.recipients:
                record.recipients = [r for r in record.recipients if r != sid]
                if record.recipients:
                    self.fanout[key] = record
                else:
                    del self.fanout[key]
        return []

    def on_fanout_moved(self, entity: str, moved: FanoutMoved) -> list[Intent]:
        """Keep who an erased author's comment went to under its new key."""
        key = fanout_key(entity, moved.subject_key)
        record = self.fanout.get(key) or Fanout()
        new = [sid for sid in moved.recipients if sid not in record.recipients]
        if new:
            record.recipients.extend(new)
            self.fanout[key] = record
        return []
