"""What a stage's handler asks for: typed intents, carried out by whoever runs the stages (the
Faust shell, or ``LocalPipeline`` in one process). The domain names stages and events, never
topics, partitions or encodings: those are the shell's (``stream/stages.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.messages import Chose
from newsroom_notify.domain.model import Basis, Subject


class Stage(StrEnum):
    """A stage of the pipeline, by the key its records are kept under."""

    THREADS = "threads"  # keyed by article id
    FOLLOWS = "follows"  # keyed by followed entity
    INBOX = "inbox"  # keyed by subscriber id


@dataclass(frozen=True, slots=True)
class ToStage:
    """Send ``message`` to ``stage``, under ``key`` (the stage owning that key handles it)."""

    stage: Stage
    key: str
    message: BaseModel  # a message between stages (an input event, to the threads stage)


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish an output event of the contract (a notification, a retraction, a digest)."""

    event: ev.CloudEvent
    key: str  # its partition key: the recipient id

    @classmethod
    def of(cls, event: ev.CloudEvent) -> Publish:
        """Publish ``event`` under its own partition key."""
        return cls(event, event.partition_key() or "")


@dataclass(frozen=True, slots=True)
class ToRecipients:
    """Send the inbox the candidacies of one activity (``subject`` at ``at``, from ``origin``)
    for several recipients (recipient id -> bases, strongest first; in order), each under its
    recipient's key: what a ``ToStage`` of a ``Candidacy`` per recipient would ask, without an
    object each (a fan-out's followers come by the thousand). The Faust shell sends them as one
    record per inbox partition; ``LocalPipeline`` hands them to the inbox's ``on_candidacies``;
    both before the other intents of the same handler call (``dispatch.in_sending_order``).

    ``choices``: the "Notify of" choices some of these candidacies depend on (recipient id ->
    their choices), which may reach the inbox after them: the inbox applies each first if it
    has not yet (``InboxStage.on_candidacies``)."""

    subject: Subject
    at: datetime
    origin: str
    bases: Mapping[str, list[Basis]]
    choices: Mapping[str, list[Chose]] = field(default_factory=dict)


Intent = ToStage | Publish | ToRecipients
