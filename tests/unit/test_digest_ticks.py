"""The digest timer looks at every recipient's buffer every tick: it reads ``due_at`` from the
start of the stored JSON (``stored_due_at``) instead of decoding buffers of up to 200 items.
What it reads must be what a decode gives, whatever the buffer holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom_notify.domain import state
from newsroom_notify.domain.inbox.digests import is_due
from newsroom_notify.domain.state import DigestBuffer, stored_due_at
from tests.unit.test_copier import decoded

_DUE = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
        ),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(buffer=decoded(state.DigestBuffer), due=_DUE)
def test_the_due_time_read_from_the_start_is_the_decoded_one(
    buffer: DigestBuffer, due: datetime | None
) -> None:
    buffer.due_at = due
    stored = buffer.model_dump_json().encode("utf-8")
    assert stored.startswith(b'{"due_at":')  # the first field: read without the rest
    read = stored_due_at(stored)
    assert read == DigestBuffer.model_validate_json(stored).due_at == due
    if due is not None:
        assert read is not None
        assert read.utcoffset() == due.utcoffset()
        instant = timedelta(microseconds=1)
        assert is_due(read, due)
        assert is_due(read, due + instant)
        assert not is_due(read, due - instant)


def test_what_a_buffer_holds_cannot_pass_for_its_due_time() -> None:
    # An article id or a comment's text is the reader's or the commenter's to choose.
    fake = '{"due_at":"2000-01-01T00:00:00Z"}'
    buffer = DigestBuffer.model_validate(
        {
            "activity_cut": {"due_at": "2000-01-01T00:00:00Z", fake: "2000-01-01T00:00:00Z"},
            "due_at": None,
        }
    )
    stored = buffer.model_dump_json().encode("utf-8")
    assert b'"due_at":"2000-01-01' in stored
    assert stored_due_at(stored) is None
    buffer.due_at = datetime(2026, 12, 3, 6, tzinfo=UTC)
    assert stored_due_at(buffer.model_dump_json().encode("utf-8")) == buffer.due_at


def test_a_buffer_stored_before_due_at_came_first_is_decoded() -> None:
    due = datetime(2026, 12, 3, 6, 0, 0, 250_000, tzinfo=UTC)
    older = DigestBuffer(due_at=due, omitted=3).model_dump(mode="json")
    layout = {key: older[key] for key in [*(k for k in older if k != "due_at"), "due_at"]}
    stored = json.dumps(layout, separators=(",", ":")).encode("utf-8")
    assert not stored.startswith(b'{"due_at":')
    assert stored_due_at(stored) == due
    assert stored_due_at(b'{"due_at":null,"omitted":0}') is None
