"""A comment's candidacies for the inbox, built in one place for the two stages that send them:
the follows stage (the thread's candidates merged with the author's followers) and the threads
stage (the thread's candidates alone, for an author known to have no followers: the follows
hop skipped). Both must hand the inbox the very same candidacies for the same candidates, or a
comment would notify differently depending on the route it took."""

from __future__ import annotations

import functools
from collections.abc import Callable

from newsroom_notify.contract.events import Delivery
from newsroom_notify.domain.intents import Intent, ToRecipients
from newsroom_notify.domain.messages import Activity
from newsroom_notify.domain.model import PRIORITY, Basis, Condition, Reason


@functools.lru_cache(maxsize=1024)
def follower_basis(entity: str, delivery: Delivery) -> Basis:
    """Why a follower of ``entity`` may hear of its comment or article (one frozen object for
    all of a fan-out's followers in the same delivery mode)."""
    scope, _, target = entity.partition(":")
    return Basis.model_construct(
        reason=Reason.FOLLOWED_COMMENTER if scope == "commenter" else Reason.NEW_ARTICLE,
        condition=Condition.SUBSCRIBED,
        scope=scope,  # type: ignore[arg-type] # an entity key's scope: one of Scope
        target=target,
        delivery=delivery,
    )


def merge_candidates(
    entity: str, activity: Activity, follows: Callable[[str], Delivery | None]
) -> dict[str, list[Basis]]:
    """The thread's candidates of ``activity`` (its author left out), each with their follower
    basis if they follow ``entity`` (``follows``: their delivery, None if they do not), bases
    strongest first (rule "One notification per person per comment")."""
    author = activity.subject.author_id
    merged: dict[str, list[Basis]] = {}
    for sid, bases in activity.candidates.items():
        if sid == author:
            continue
        mine = list(bases)
        delivery = follows(sid)
        if delivery is not None:
            mine.append(follower_basis(entity, delivery))
        mine.sort(key=lambda b: PRIORITY[b.reason])
        merged[sid] = mine
    return merged


def candidacies(entity: str, activity: Activity, merged: dict[str, list[Basis]]) -> list[Intent]:
    """The candidacies of every recipient of ``merged`` for the inbox (one intent)."""
    if not merged:
        return []
    # The kind of entity, not its id: a candidacy's origin is kept in the recipient's state,
    # which must not name an erased commenter.
    origin = f"{activity.origin}|{entity.partition(':')[0]}"
    choices = {r: c for r, c in activity.choices.items() if r in merged} if activity.choices else {}
    return [ToRecipients(activity.subject, activity.at, origin, merged, choices)]


def no_follower(_: str) -> Delivery | None:
    """``follows`` for an entity without followers."""
    return None
