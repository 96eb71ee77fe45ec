"""The follows stage (keyed by followed entity: ``commenter:<id>``, ``journalist:<id>``,
``section:<name>``).

It owns the followers of each entity. For a comment it adds the author's followers
(``followed_commenter``) to the candidates the threads stage found, merges all bases of each
recipient into one candidacy (so the inbox can pick the strongest, rule "One notification per
person per comment"), and remembers who it handed the comment to, so that a retraction or an
edit reaches exactly them (rule "Removed after the fact"). For a new article it hands it to
the journalist's or section's followers (``new_article``), a bounded number of them per
handler call (``FanoutStep``): a section can have millions.

A commenter without followers needs none of this: the follows stage tells the threads
partition whose comment asked (``NoFollowers``, keyed by the article), which from then on
sends their comments' candidacies to the inbox
itself (one topic fewer); their first follower is told to every threads partition too
(``CommenterFollowed``), and their comments come through here again.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

from newsroom_notify.contract.events import Delivery
from newsroom_notify.domain.candidacies import candidacies, follower_basis, merge_candidates
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import (
    ENTITY_FOLLOWER_CHUNKS,
    entity_key,
    fanout_key,
    fanout_prefix,
    follower_chunk,
    follower_chunk_key,
)
from newsroom_notify.domain.messages import (
    Activity,
    CommenterFollowed,
    Edit,
    Erase,
    FanoutMoved,
    FanoutStep,
    FollowChange,
    FollowEnded,
    NoFollowers,
    Retraction,
)
from newsroom_notify.domain.model import Basis, erased_author_id
from newsroom_notify.domain.state import Fanout, FollowerHead, Followers


@dataclass
class FanoutWalk:
    """One step of a fan-out: the candidates it found and where the walk stopped."""

    merged: dict[str, list[Basis]]  # recipient -> bases, strongest first
    last: int  # the last chunk taken (-1: none)
    more: bool  # chunks after ``last`` remain


def walk_followers(
    entity: str,
    activity: Activity,
    head: FollowerHead | None,
    chunk_of: Callable[[int], Followers | None],
    *,
    after: int,
    skip: set[str],
    budget: int,
) -> FanoutWalk:
    """The followers in the chunks after ``after``, taken whole, one chunk at least and no
    more once ``budget`` followers are taken; the subject's author and ``skip`` left out.

    When ``after`` is -1 (the first step) the thread's candidates come first, each merged with
    their own follower basis if they follow ``entity`` (rule "One notification per person per
    comment"); later steps skip them."""
    author = activity.subject.author_id
    merged: dict[str, list[Basis]] = {}
    if after < 0:

        def follows(sid: str) -> Delivery | None:
            if head is None:
                return None
            chunk = chunk_of(follower_chunk(sid))
            return chunk.delivery.get(sid) if chunk is not None else None

        merged = merge_candidates(entity, activity, follows)
    chunks = head.chunks[bisect.bisect_right(head.chunks, after) :] if head else []
    shared: dict[str, Basis] = {}  # one frozen Basis per delivery, shared by the followers
    taken, last = 0, after
    for number in chunks:
        if taken >= budget:
            break
        last = number
        chunk = chunk_of(number)
        for sid, delivery in (chunk.delivery if chunk else {}).items():
            if sid == author or sid in skip or sid in merged:
                continue
            basis = shared.get(delivery)
            if basis is None:
                basis = shared[delivery] = follower_basis(entity, delivery)
            merged[sid] = [basis]
            taken += 1
    return FanoutWalk(merged, last, bool(chunks) and chunks[-1] > last)


@dataclass
class FollowsStage:
    """Handlers of the follows stage over its tables.

    An entity's followers are kept in chunks (``keys.follower_chunk``: a hash of the follower's
    id) and a small head (their count and which chunks hold any), so a follow, an unfollow or
    an erasure of a follower reads and rewrites one chunk and the head, whatever the number of
    followers. A fan-out takes about ``step_recipients`` followers per handler call and sends
    itself a ``FanoutStep`` for the rest (docs/security.md, bounded state)."""

    heads: MutableMapping[str, FollowerHead]  # entity -> head
    chunks: MutableMapping[str, Followers]  # "<entity>|<chunk>" -> followers
    fanout: MutableMapping[str, Fanout]  # "<entity>|<subject key>" -> recipients
    followers_max: int = 10_000  # per commenter (who got each comment is remembered)
    publisher_followers_max: int = 10_000_000  # per journalist or section
    step_recipients: int = 2_000  # followers taken per handler call of a fan-out
    on_capped: Callable[[str], None] = lambda record: None
    # Followers as versions before the chunks stored them: one record per entity. Each moves
    # into chunks the first time its entity is touched (``_migrate``); None: nothing to move.
    legacy: MutableMapping[str, Followers] | None = None
    # Whether the threads stage is told of commenters without followers (``NoFollowers``),
    # so their comments skip this stage; off, every comment comes through here.
    tell_no_followers: bool = True

    def _migrate(self, entity: str) -> None:
        """Move an entity's followers from its old single record into chunks (an upgrade in
        place keeps every follower). The old record goes last: replayed after a crash, the move
        finds the followers already in their chunks and counts none twice."""
        if self.legacy is None:
            return
        old = self.legacy.get(entity)
        if old is None:
            return
        head = self.heads.get(entity) or FollowerHead()
        groups: dict[int, dict[str, Delivery]] = {}
        for sid, delivery in old.delivery.items():
            groups.setdefault(follower_chunk(sid), {})[sid] = delivery
        for number, moving in sorted(groups.items()):
            key = follower_chunk_key(entity, number)
            chunk = self.chunks.get(key) or Followers()
            new = {sid: d for sid, d in moving.items() if sid not in chunk.delivery}
            head.count += len(new)
            chunk.delivery.update(new)  # a choice made in a chunk since is newer: it stays
            self.chunks[key] = chunk
            if number not in head.chunks:
                bisect.insort(head.chunks, number)
        self.heads[entity] = head
        del self.legacy[entity]

    def on_activity(self, entity: str, activity: Activity) -> list[Intent]:
        """Fan a comment or article out, or withdraw/update what was fanned out."""
        self._migrate(entity)
        if activity.event in ("comment", "article"):
            out = self._fan_out(entity, activity, -1, set())
            asked = activity.learn and activity.event == "comment"
            if asked and self.tell_no_followers and not self.followed(entity):
                # The threads stage hands this commenter's next comments to the inbox
                # itself, until told of a follower (``CommenterFollowed``).
                # Told to the partition that asked (the article's), not to every one: a
                # commenter is learnt where they comment, at one record per partition.
                article = activity.subject.article.id
                out.append(ToStage(Stage.THREADS, article, NoFollowers(entity=entity)))
            return out
        record_key = fanout_key(entity, activity.subject.key)
        sent_to = self.fanout.get(record_key)
        if sent_to is not None or entity in self.heads:
            # A fan-out of this comment may still be walking the followers (FanoutStep, same
            # key, so after this): its later steps pass the edit or retraction on too.
            sent_to = sent_to or Fanout()
            if activity.event == "retract":
                sent_to.retracted = activity.cause
            else:
                sent_to.excerpt = activity.excerpt or ""
            self.fanout[record_key] = sent_to
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

    def on_fanout_step(self, entity: str, step: FanoutStep) -> list[Intent]:
        """The next followers of a fan-out begun by ``on_activity``.

        A replayed step is handled again like the first time (the inbox sends each recipient
        one notification per subject, the same one again on a replay), and sends its next
        step again: a walk repeated after a crash costs work, never a missing notification."""
        return self._fan_out(entity, step.activity, step.after, set(step.skip))

    def _fan_out(self, entity: str, activity: Activity, after: int, skip: set[str]) -> list[Intent]:
        since: Fanout | None = None  # what happened to the comment since the walk began
        if activity.event == "comment":
            record = self.fanout.get(fanout_key(entity, activity.subject.key))
            if record is not None and (record.retracted or record.excerpt is not None):
                if after >= 0:
                    # Edited or removed while its fan-out was under way: the rest of the
                    # followers get what they would have had, had the walk ended before (the
                    # candidacy, then the edit and the retraction: rule "Removed after the
                    # fact").
                    since = record
                else:  # posted or approved again: a new fan-out (the inbox tells nobody twice)
                    record.retracted, record.excerpt = None, None
                    self.fanout[fanout_key(entity, activity.subject.key)] = record
        walk = walk_followers(
            entity,
            activity,
            self.heads.get(entity),
            lambda n: self.chunks.get(follower_chunk_key(entity, n)),
            after=after,
            skip=skip,
            budget=self.step_recipients,
        )
        if activity.event == "comment" and walk.merged:
            # Only a comment is retracted or edited later (rule "Removed after the fact"):
            # who got it is kept (a commenter's followers are capped, so this record is).
            # An article's fan-out (every follower of a section or journalist) is not:
            # nothing reads it, and it would be as large as the follower list.
            record_key = fanout_key(entity, activity.subject.key)
            record = self.fanout.get(record_key) or Fanout()
            known = set(record.recipients)
            new = [sid for sid in walk.merged if sid not in known]
            if new:
                record.recipients.extend(new)
                self.fanout[record_key] = record
        out = candidacies(entity, activity, walk.merged)
        if since is not None:
            # After the candidacies (the shell sends them first, each recipient's in their
            # partition): what those before them were sent about the comment since.
            subject_key = activity.subject.key
            out += [item for rid in walk.merged for item in self._since(rid, subject_key, since)]
        if walk.more:
            if after < 0:
                skip = set(activity.candidates)
                activity = activity.model_copy(update={"candidates": {}, "choices": {}})
            rest = FanoutStep(activity=activity, skip=sorted(skip), after=walk.last)
            out.append(ToStage(Stage.FOLLOWS, entity, rest))
        return out

    @staticmethod
    def _since(rid: str, subject_key: str, record: Fanout) -> list[Intent]:
        """What the recipients told before ``rid`` were sent about the comment since its walk
        began (an edit, a retraction), for ``rid``, told of it after (same key as their
        candidacy: the inbox takes them in order)."""
        out: list[Intent] = []
        if record.excerpt is not None:
            edit = Edit(recipient_id=rid, subject_key=subject_key, excerpt=record.excerpt)
            out.append(ToStage(Stage.INBOX, rid, edit))
        if record.retracted is not None:
            retraction = Retraction(
                recipient_id=rid, subject_key=subject_key, cause=record.retracted
            )
            out.append(ToStage(Stage.INBOX, rid, retraction))
        return out

    def on_follow_change(self, entity: str, change: FollowChange) -> list[Intent]:
        """A commenter/journalist/section subscription became active or ended."""
        self._migrate(entity)
        sid = change.subscriber_id
        if not change.active:
            self._unfollow(entity, sid)
            return []
        number = follower_chunk(sid)
        key = follower_chunk_key(entity, number)
        chunk = self.chunks.get(key) or Followers()
        head = self.heads.get(entity) or FollowerHead()
        listed = number in head.chunks
        if chunk.delivery.get(sid) == change.delivery and listed:
            # Perhaps a replay after a crash that lost the first time's ``CommenterFollowed``:
            # sent again (threads partitions that had it already just drop nothing).
            return self._tell_followed(entity)
        was_followed = bool(head.chunks)
        new = sid not in chunk.delivery
        if new:
            commenter = entity.startswith("commenter:")
            cap = self.followers_max if commenter else self.publisher_followers_max
            if head.count >= cap:
                self.on_capped("followers")  # not recorded (docs/security.md, bounded state)
                return []
            head.count += 1
        if not listed:
            bisect.insort(head.chunks, number)
        if new or not listed:
            # The head first: replayed after a crash between the two writes, the change finds
            # the chunk listed and writes it (the count may be one too high: the cap comes
            # that much early).
            self.heads[entity] = head
        chunk.delivery[sid] = change.delivery
        self.chunks[key] = chunk
        return [] if was_followed else self._tell_followed(entity)

    def followed(self, entity: str) -> bool:
        """Whether ``entity`` has a follower."""
        head = self.heads.get(entity)
        return head is not None and bool(head.chunks)

    @staticmethod
    def _tell_followed(entity: str) -> list[Intent]:
        """A commenter has a follower now (or is erased): every threads partition forgets that
        they had none, and sends their comments through this stage again."""
        if not entity.startswith("commenter:"):
            return []
        return [ToStage(Stage.THREADS, entity, CommenterFollowed(entity=entity))]

    def _unfollow(self, entity: str, sid: str) -> None:
        """``sid`` no longer follows ``entity`` (one chunk and the head rewritten)."""
        number = follower_chunk(sid)
        key = follower_chunk_key(entity, number)
        chunk = self.chunks.get(key)
        if chunk is None or chunk.delivery.pop(sid, None) is None:
            return
        if chunk.delivery:
            self.chunks[key] = chunk
        else:
            del self.chunks[key]
        head = self.heads.get(entity)
        if head is None:
            return
        head.count = max(head.count - 1, 0)
        if not chunk.delivery and number in head.chunks:
            head.chunks.remove(number)
        if head.chunks:
            self.heads[entity] = head
        else:
            del self.heads[entity]

    def followers_of(self, entity: str) -> dict[str, Delivery]:
        """Every follower of ``entity`` and their delivery (all chunks: for tests and tools,
        never on a fan-out's path)."""
        head = self.heads.get(entity)
        every: dict[str, Delivery] = {}
        for number in head.chunks if head else []:
            chunk = self.chunks.get(follower_chunk_key(entity, number))
            every.update(chunk.delivery if chunk else {})
        return every

    def on_erase(self, entity: str, erase: Erase) -> list[Intent]:
        """Forget a subscriber (rule "Erasure"): as a follower of this entity and as a recipient of
        its subjects; if the entity is the subscriber, its followers, and move who each of
        their comments went to where a later removal of the comment looks for it."""
        self._migrate(entity)
        sid = erase.subscriber_id
        prefix = fanout_prefix(entity)
        if erase.subjects:
            keys = [prefix + subject for subject in erase.subjects]
        else:
            keys = [k for k in self.fanout if k.startswith(prefix)]  # rare: a scan is fine
        if entity == entity_key("commenter", sid):
            # Every chunk key names the erased commenter: all go, whatever the head lists (a
            # crash may have left one unlisted), the head last so a replay finds the rest.
            followers: list[str] = []
            for number in range(ENTITY_FOLLOWER_CHUNKS):
                chunk = self.chunks.pop(follower_chunk_key(entity, number), None)
                followers.extend(chunk.delivery if chunk else {})
            self.heads.pop(entity, None)
            out: list[Intent] = [
                ToStage(
                    Stage.INBOX,
                    follower,
                    FollowEnded(subscriber_id=follower, scope="commenter", target=sid),
                )
                for follower in followers
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
            # The threads partitions' ``Unfollowed`` records name the erased commenter.
            return out + self._tell_followed(entity)
        self._unfollow(entity, sid)
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
