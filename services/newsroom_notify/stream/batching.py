"""Batching a fan-out by inbox partition: a transport concern of the stream shell, not the
domain's. The domain asks for the candidacies of one activity for many recipients as one
intent (``ToRecipients``); the shell sends them as one ``Candidacies`` record per inbox
partition (the subject written once), not one record per recipient, and the inbox agent hands
each record to the domain's ``on_candidacies``, which decides each recipient's candidacy as if
it had come alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Literal

from pydantic import Field

from newsroom_notify.domain.construct import constructor
from newsroom_notify.domain.intents import ToRecipients
from newsroom_notify.domain.messages import Chose
from newsroom_notify.domain.model import Basis, Message, Subject


class Candidacies(Message):
    """A record of the inbox topic: the candidacies of one activity for several recipients,
    sent as one record (grouped by the inbox partition of their recipients, so a fan-out to
    many costs one record per partition, and the subject is written once)."""

    kind: Literal["candidacies"] = "candidacies"
    subject: Subject
    at: datetime
    origin: str = ""
    bases: dict[str, list[Basis]]  # recipient id -> bases
    # The "Notify of" choices some of them depend on (``ToRecipients.choices``), of this record's
    # recipients only.
    choices: dict[str, list[Chose]] = Field(default_factory=dict)


_candidacies = constructor(Candidacies)


def partition_records(
    fan: ToRecipients, partition_of: Callable[[str], int], most: int
) -> Iterator[tuple[int, str, Candidacies]]:
    """``fan``'s candidacies as records of the inbox topic: (partition, key, record), one
    record per inbox partition of at most ``most`` recipients (a larger group is cut), each
    keyed by its first recipient, recipients in ``fan``'s order within each.

    Each recipient's candidacy lands in the partition of their key, so the inbox handles it
    with that recipient's table partition, in order with their other records. Constructed, not
    validated: every value comes from a message this service built or validated."""
    groups: dict[int, dict[str, list[Basis]]] = {}
    for rid, bases in fan.bases.items():
        group = groups.get(partition := partition_of(rid))
        if group is None:
            group = groups[partition] = {}
        group[rid] = bases
    for partition, group in groups.items():
        for piece in _pieces(group, most):
            choices = {r: c for r, c in fan.choices.items() if r in piece} if fan.choices else {}
            record = _candidacies(
                subject=fan.subject, at=fan.at, origin=fan.origin, bases=piece, choices=choices
            )
            yield partition, next(iter(piece)), record


def _pieces(group: dict[str, list[Basis]], most: int) -> Iterator[Mapping[str, list[Basis]]]:
    if len(group) <= most:
        yield group
        return
    items = list(group.items())
    for start in range(0, len(items), most):
        yield dict(items[start : start + most])
