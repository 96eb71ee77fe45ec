"""The one router (``domain.dispatch``): every message between stages has a handler, a message
sent to a stage that does not take it is an error, and a subscription command written by the
previous version of the service (its event as JSON text, ``event_json``) is still handled
after an upgrade in place."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.dispatch import ROUTES, command, deliver
from newsroom_notify.domain.inbox import _COMMANDS
from newsroom_notify.domain.intents import Stage, ToStage
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import Command, Release, StageMessage
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.stream.stages import decode_stage_message
from tests.builders import Clock, member, subscribe

TOKENS = Tokens(["router-key"], 3600, 3600)
ANA = member("m-ana", "Ana Lima", "ana@example.org")


def test_every_message_between_stages_has_a_route() -> None:
    union = typing.get_args(typing.get_args(StageMessage)[0])
    routed = {message for _, message in ROUTES}
    assert [m.__name__ for m in union if m not in routed] == []


def test_a_message_the_stage_does_not_take_is_refused() -> None:
    pipe = LocalPipeline(tokens=TOKENS)
    with pytest.raises(TypeError, match="follows stage cannot handle Release"):
        deliver(pipe.stages, Stage.FOLLOWS, "commenter:m-ana", Release(recipient_id="x"))


def test_a_command_carries_its_event_typed_and_decodes_to_the_same() -> None:
    event = subscribe(ANA, "article", "a-1", "instant")
    cmd = command(event, TOKENS)
    assert cmd.subscriber_id == "m-ana"
    assert isinstance(cmd.event, ev.SubscriptionRequested)
    decoded = decode_stage_message(b"m-ana", cmd.model_dump_json().encode())
    assert decoded == cmd


def test_a_command_written_by_the_previous_version_is_still_handled() -> None:
    """The record of a worker before the upgrade: the event as JSON text in ``event_json``."""
    event = subscribe(ANA, "article", "a-1", "instant")
    old_record = {
        "kind": "command",
        "subscriber_id": "m-ana",
        "event_json": event.model_dump_json(),
        "at": event.time.isoformat(),
    }
    legacy = decode_stage_message(b"m-ana", json.dumps(old_record).encode())
    assert isinstance(legacy, Command)
    assert legacy == command(event, TOKENS)
    clock = Clock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    upgraded = LocalPipeline(tokens=TOKENS, clock=clock)
    reference = LocalPipeline(tokens=TOKENS, clock=clock)
    upgraded.run([ToStage(Stage.INBOX, "m-ana", legacy)])
    reference.feed([event])
    profile = upgraded.tables["profiles"]["m-ana"]
    assert profile.subscriptions["article|a-1"].active
    assert profile == reference.tables["profiles"]["m-ana"]


def test_every_subscription_event_has_a_command_handler() -> None:
    union = typing.get_args(typing.get_args(ev.SubscriptionEvent)[0])
    assert [e.__name__ for e in union if e not in _COMMANDS] == []
