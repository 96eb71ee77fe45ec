"""What a stage's handler asks for: typed intents, carried out by whoever runs the stages (the
Faust shell, or ``LocalPipeline`` in one process). The domain names stages and events, never
topics, partitions or encodings: those are the shell's (``stream/stages.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from newsroom_notify.contract import events as ev


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


Intent = ToStage | Publish
