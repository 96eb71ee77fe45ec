"""Table recovery and standby replicas read the changelog records in chunks
(``stream.faust_ext.recovery``) and still apply each record once, in order, to its own table,
and end the recovery exactly when the active partitions are caught up."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from newsroom_notify.bootstrap import build_tokens
from newsroom_notify.settings import Settings
from newsroom_notify.stream.app import create_app
from newsroom_notify.stream.faust_ext import recovery as chunked
from newsroom_notify.stream.faust_ext.recovery import ChunkedRecovery


class FakeTable:
    """What recovery uses of a table: its buffer sizes, its persisted offsets, the batches."""

    def __init__(self, name: str, buffer_size: int, fail_at: int | None = None) -> None:
        self.name = name
        self.fail_at = fail_at  # an offset whose callback raises (a broken record)
        self.recovery_buffer_size = buffer_size
        self.standby_buffer_size = buffer_size
        self.applied: list[list[tuple[TP, int]]] = []
        self.seen: list[tuple[TP, int]] = []

    def persisted_offset(self, tp: TP) -> int | None:
        return None

    def apply_changelog_batch(self, batch: list[Any]) -> None:
        self.applied.append([(e.message.tp, e.message.offset) for e in batch])

    async def on_changelog_event(self, event: Any) -> None:
        if event.message.offset == self.fail_at:
            raise OSError("this record cannot be applied")
        self.seen.append((event.message.tp, event.message.offset))


def record(tp: TP, offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=tp, offset=offset))


@pytest.fixture
def recovery(tmp_path: Path) -> ChunkedRecovery:
    settings = Settings(dev_mode=True, store="memory://", data_dir=str(tmp_path))
    app = create_app(settings, build_tokens(settings))
    found = app.tables.recovery
    assert isinstance(found, ChunkedRecovery)  # the app's tables recover with it
    return found


ACTIVE_0, ACTIVE_1 = TP("t-profiles-changelog", 0), TP("t-profiles-changelog", 1)
STANDBY = TP("t-sent-changelog", 3)
GONE = TP("t-sent-changelog", 5)  # revoked meanwhile: neither active nor standby


def test_the_apps_recovery_runs_the_chunked_loop_only(recovery: ChunkedRecovery) -> None:
    tasks = list(recovery._get_tasks())
    loops = [t for t in tasks if t.fun.__name__ == "_slurp_changelogs"]
    assert [t.fun for t in loops] == [ChunkedRecovery._slurp_changelogs.fun]


async def test_a_recovery_applies_every_record_once_in_order_and_then_ends(
    recovery: ChunkedRecovery, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunked, "CHUNK", 2)  # several chunks out of what the queue holds
    profiles, sent = FakeTable("profiles", 3), FakeTable("sent", 2)
    recovery.add_active(profiles, ACTIVE_0)
    recovery.add_active(profiles, ACTIVE_1)
    recovery.add_standby(sent, STANDBY)
    recovery.active_highwaters.update({ACTIVE_0: 4, ACTIVE_1: 1})
    recovery._set_recovery_started()
    queue = recovery.tables.changelog_queue
    arrivals = [
        *(record(ACTIVE_0, o) for o in range(3)),
        record(STANDBY, 7),
        record(ACTIVE_1, 0),
        record(ACTIVE_0, 1),  # read twice (a fetch after a seek): applied once
        record(GONE, 2),
        record(STANDBY, 8),
        record(ACTIVE_1, 1),
        record(ACTIVE_0, 3),
        record(ACTIVE_0, 4),
    ]
    slurp = asyncio.ensure_future(ChunkedRecovery._slurp_changelogs.fun(recovery))
    try:
        for arrival in arrivals[:5]:  # not caught up yet: the end is not signalled
            queue.put_nowait(arrival)
        await asyncio.sleep(0.01)
        assert recovery.in_recovery
        assert not recovery.signal_recovery_end.is_set()
        for arrival in arrivals[5:]:
            queue.put_nowait(arrival)
        await asyncio.wait_for(recovery.signal_recovery_end.wait(), 2)
    finally:
        recovery._stopped.set()
        slurp.cancel()
    assert not recovery.in_recovery
    expected = [(ACTIVE_0, 0), (ACTIVE_0, 1), (ACTIVE_0, 2), (ACTIVE_1, 0), (ACTIVE_1, 1)]
    expected += [(ACTIVE_0, 3), (ACTIVE_0, 4)]
    assert profiles.seen == expected
    # full buffers (3) applied as they filled, the rest flushed when the recovery ended
    assert profiles.applied == [expected[:3], expected[3:6], expected[6:]]
    assert sent.seen == [(STANDBY, 7), (STANDBY, 8)]
    assert [(STANDBY, 7), (STANDBY, 8)] in sent.applied
    assert recovery.active_offsets[ACTIVE_0] == 4
    assert recovery.standby_offsets[STANDBY] == 8


def test_need_recovery_answers_as_faust_does(recovery: ChunkedRecovery) -> None:
    rng = random.Random(7)
    values = [None, -1, 0, 1, 5, 9]
    for _ in range(500):
        tps = [TP("t", p) for p in range(rng.randint(0, 6))]
        recovery.active_highwaters.clear()
        recovery.active_offsets.clear()
        for tp in tps:
            recovery.active_highwaters[tp] = rng.choice(values)  # type: ignore[assignment]
            if rng.random() < 0.8:
                recovery.active_offsets[tp] = rng.choice(values)  # type: ignore[assignment]
        assert recovery.need_recovery() == Recovery.need_recovery(recovery)


async def test_a_record_that_fails_is_skipped_and_the_rest_of_its_chunk_still_applies(
    recovery: ChunkedRecovery,
) -> None:
    # Faust logs a record whose table fails and goes on with the next: the records taken in
    # the same chunk must not be lost with it, or the recovery would never end.
    profiles = FakeTable("profiles", 100, fail_at=1)
    recovery.add_active(profiles, ACTIVE_0)
    recovery.active_highwaters.update({ACTIVE_0: 5})
    recovery._set_recovery_started()
    queue = recovery.tables.changelog_queue
    for offset in range(6):
        queue.put_nowait(record(ACTIVE_0, offset))
    ended = asyncio.ensure_future(recovery.signal_recovery_end.wait())  # waiting already
    slurp = asyncio.ensure_future(ChunkedRecovery._slurp_changelogs.fun(recovery))
    try:
        await asyncio.wait_for(ended, 2)
    finally:
        recovery._stopped.set()
        slurp.cancel()
    assert profiles.seen == [(ACTIVE_0, o) for o in (0, 2, 3, 4, 5)]
    assert recovery.active_offsets[ACTIVE_0] == 5
    assert not recovery.in_recovery


async def test_a_standby_partition_a_rebalance_added_mid_recovery_is_read_from_its_start(
    recovery: ChunkedRecovery,
) -> None:
    """A rebalance while a recovery runs adds its partitions with no offset (None); Faust's
    recovery loop then sought them as they were, aiokafka refused ("Offset must be a positive
    integer") and the worker crashed. Now such a partition is read from its start, as one
    whose offset is -1; a known offset is sought as Faust seeks it."""
    known, added = TP("t-sent-changelog", 3), TP("t-sent-changelog", 5)
    table = FakeTable("sent", 1)
    recovery.add_standby(table, known)  # type: ignore[arg-type]
    recovery.standby_offsets[known] = 41
    recovery.add_standby(table, added)  # type: ignore[arg-type]  # the rebalance's: None
    assert recovery.standby_offsets[added] is None
    sought: dict[TP, int] = {}

    class Consumer:
        async def seek_wait(self, partitions: dict[TP, int]) -> None:
            for offset in partitions.values():
                if not isinstance(offset, int) or offset < 0:  # aiokafka's own check
                    raise ValueError("Offset must be a positive integer")
            sought.update(partitions)

    await recovery._seek_offsets(Consumer(), {known, added}, recovery.standby_offsets, "standby")
    assert sought == {known: 41, added: 0}
