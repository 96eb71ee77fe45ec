"""The erasure messages between stages survive the internal topics (the worker decodes them)."""

from __future__ import annotations

from newsroom_notify.domain.messages import Erase, FanoutMoved
from newsroom_notify.stream.stages import decode_stage_message


def test_erase_with_subjects_and_a_moved_fanout_decode_as_sent() -> None:
    erase = Erase(subscriber_id="guest_abc", subjects=["c:c1", "c:c2"])
    moved = FanoutMoved(subject_key="c:c1", recipients=["m-ana", "m-cal"])
    for message in (erase, moved):
        decoded = decode_stage_message(b"commenter:m-ben", message.model_dump_json().encode())
        assert decoded == message
    older = b'{"kind": "erase", "subscriber_id": "guest_abc"}'  # written before `subjects`
    assert decode_stage_message(b"k", older) == Erase(subscriber_id="guest_abc", subjects=[])
