"""Batching a fan-out by inbox partition: a transport concern of the stream shell, not the
domain's. A comment followed by many is one ``Candidacies`` record per inbox partition (the
subject written once), not one record per recipient; the inbox agent hands it to the domain's
``on_candidacies``, which decides each recipient's candidacy as if it had come alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from newsroom_notify.domain.construct import constructor
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.messages import Candidacy
from newsroom_notify.domain.model import Basis, Message, Subject

_candidacy = constructor(Candidacy)


class Candidacies(Message):
    """A record of the inbox topic: the candidacies of one activity for several recipients,
    sent as one record (grouped by the inbox partition of their recipients, so a fan-out to
    many costs one record per partition, and the subject is written once)."""

    kind: Literal["candidacies"] = "candidacies"
    subject: Subject
    at: datetime
    origin: str = ""
    bases: dict[str, list[Basis]]  # recipient id -> bases

    @classmethod
    def of(cls, candidacies: list[Candidacy]) -> Candidacies:
        """Candidacies of one activity (same subject, time and origin) as one message."""
        first = candidacies[0]
        return cls(
            subject=first.subject,
            at=first.at,
            origin=first.origin,
            bases={c.recipient_id: c.bases for c in candidacies},
        )

    def split(self) -> list[Candidacy]:
        """Back to one candidacy per recipient, in the order they were grouped."""
        return [
            _candidacy(
                recipient_id=rid, subject=self.subject, bases=bases, at=self.at, origin=self.origin
            )
            for rid, bases in self.bases.items()
        ]


def fan_out_batches(
    intents: Sequence[Intent], partition_of: Callable[[str], int]
) -> dict[int, Candidacies] | None:
    """A fan-out (two or more candidacies of one activity, nothing else) as one ``Candidacies``
    record per inbox partition (sent keyed by its first recipient); None for anything else.

    Each recipient's candidacy still lands in the partition of its recipient's key, so the
    inbox handles it with that recipient's table partition, in order with their other records.
    """
    if len(intents) < 2:
        return None
    first = intents[0]
    if not isinstance(first, ToStage) or not isinstance(first.message, Candidacy):
        return None
    head = first.message
    groups: dict[int, list[Candidacy]] = {}
    for intent in intents:
        message = intent.message if isinstance(intent, ToStage) else None
        if (
            not isinstance(intent, ToStage)
            or intent.stage is not Stage.INBOX
            or not isinstance(message, Candidacy)
            or message.origin != head.origin
            or message.subject.key != head.subject.key
        ):
            return None
        groups.setdefault(partition_of(message.recipient_id), []).append(message)
    return {p: Candidacies.of(group) for p, group in groups.items()}


def split_fan_out(
    intents: Sequence[Intent], partition_of: Callable[[str], int]
) -> tuple[dict[int, Candidacies], list[Intent]]:
    """The fan-out among ``intents`` (two or more candidacies of the first candidacy's activity)
    as ``fan_out_batches`` groups it, and every other intent, in its order.

    A comment the threads stage fans out itself comes with messages for its author (their
    ``participated``, their "Notify of" choice), and the follows stage's with one for the
    threads stage: batching only a pure fan-out sent those candidacies one record each. The
    batches are sent first: no handler sends a recipient anything that must arrive before
    their candidacy (what follows one, an edit or a retraction after a fan-out step, stays
    after it)."""
    first = next(
        (
            i.message
            for i in intents
            if isinstance(i, ToStage)
            and i.stage is Stage.INBOX
            and isinstance(i.message, Candidacy)
        ),
        None,
    )
    if first is None:
        return {}, list(intents)
    ours = [
        i
        for i in intents
        if isinstance(i, ToStage)
        and i.stage is Stage.INBOX
        and isinstance(i.message, Candidacy)
        and i.message.origin == first.origin
        and i.message.subject.key == first.subject.key
    ]
    batches = fan_out_batches(ours, partition_of)
    if batches is None:
        return {}, list(intents)
    taken = {id(i) for i in ours}
    return batches, [i for i in intents if id(i) not in taken]
