"""The consumer's continuity rule: no record of a partition is skipped across seeks."""

from __future__ import annotations

from newsroom_notify.stream.faust_ext.continuity import Continuity, Verdict

TP = ("newsroom.comments", 0)


def deliver_all(guard: Continuity, offsets: range) -> None:
    for offset in offsets:
        assert guard.judge(TP, offset) is Verdict.DELIVER


def test_records_in_order_are_delivered() -> None:
    guard = Continuity()
    guard.sought(TP, 10)
    deliver_all(guard, range(10, 20))
    assert guard.expected(TP) == 20


def test_a_stale_prefetch_after_a_seek_is_rewound_not_delivered() -> None:
    """The failure seen in the two-worker takeover: sought to 10, a batch starting at 13."""
    guard = Continuity()
    guard.sought(TP, 10)
    guard.new_batch()
    assert guard.judge(TP, 13) is Verdict.REWIND
    assert guard.expected(TP) == 10  # the consumer seeks back here
    assert guard.judge(TP, 14) is Verdict.DROP  # rest of that batch
    guard.new_batch()
    deliver_all(guard, range(10, 16))


def test_a_gap_inside_the_stream_is_rewound() -> None:
    guard = Continuity()
    guard.new_batch()
    deliver_all(guard, range(0, 13))
    assert guard.judge(TP, 16) is Verdict.REWIND
    guard.new_batch()
    deliver_all(guard, range(13, 17))


def test_a_real_hole_in_the_log_is_accepted_after_fresh_fetches() -> None:
    """Transaction markers or compaction: the same jump comes back from fresh fetches."""
    guard = Continuity(max_rewinds=2)
    guard.sought(TP, 5)
    verdicts = []
    for _ in range(3):
        guard.new_batch()
        verdicts.append(guard.judge(TP, 7))
    assert verdicts == [Verdict.REWIND, Verdict.REWIND, Verdict.DELIVER]
    assert guard.holes_accepted == 1
    assert guard.judge(TP, 8) is Verdict.DELIVER


def test_an_older_record_is_left_to_faust_and_does_not_move_the_position() -> None:
    guard = Continuity()
    guard.sought(TP, 10)
    assert guard.judge(TP, 7) is Verdict.DELIVER
    assert guard.expected(TP) == 10


def test_no_committed_offset_means_the_start_of_the_log() -> None:
    """A stale record fetched first on a never-committed partition must not hide 0..41; a log
    whose start was deleted by retention is accepted after the rewinds."""
    guard = Continuity(max_rewinds=2)
    guard.sought(TP, None)
    verdicts = []
    for _ in range(3):
        guard.new_batch()
        verdicts.append(guard.judge(TP, 42))
    assert verdicts == [Verdict.REWIND, Verdict.REWIND, Verdict.DELIVER]
    guard.sought(TP, None)
    guard.new_batch()
    assert guard.judge(TP, 0) is Verdict.DELIVER
    assert guard.expected(TP) == 1


def test_revoked_partitions_are_forgotten_and_a_new_seek_resets_rewinds() -> None:
    guard = Continuity(max_rewinds=1)
    guard.sought(TP, 10)
    guard.new_batch()
    assert guard.judge(TP, 12) is Verdict.REWIND
    guard.revoked([TP])
    assert guard.expected(TP) is None  # until the next seek tells where it stands
    guard.sought(TP, 12)  # another worker committed up to 12 meanwhile
    guard.new_batch()
    assert guard.judge(TP, 12) is Verdict.DELIVER


def test_partitions_are_judged_independently() -> None:
    other = ("newsroom.comments", 1)
    guard = Continuity()
    guard.sought(TP, 0)
    guard.sought(other, 100)
    guard.new_batch()
    assert guard.judge(TP, 3) is Verdict.REWIND
    assert guard.judge(other, 100) is Verdict.DELIVER
    assert guard.judge(TP, 4) is Verdict.DROP
