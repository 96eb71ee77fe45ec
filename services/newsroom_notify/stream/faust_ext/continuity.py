"""Every record of a partition reaches the agents, in order, none skipped.

faust-streaming 0.15 can hand its streams a record from *after* the position it just sought to:
a batch fetched before a rebalance's "seek to committed offsets" arrives after it. Faust then
takes the jump for a hole in the log (as in a compacted topic), marks the records in between as
acknowledged and drops them when they are read again — so the offset is committed past records
that were never processed. Seen here as a two-worker takeover losing a few fan-outs.

``Continuity`` is the rule that prevents it, kept pure so it can be tested alone: it knows the
next offset each partition must deliver (set by every seek and every delivered record) and
judges each fetched record:

* ``DELIVER`` — the expected record (or an older one, which Faust's own read offset discards);
* ``REWIND`` — records are missing before this one: drop it and seek back to the expected
  offset, so the missing records are fetched again;
* ``DROP`` — a later record of a batch already rewound.

A hole that is really in the log (transaction markers of a transactional producer, compaction,
retention) comes back the same way after ``max_rewinds`` fresh fetches, and is then accepted.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from enum import Enum


class Verdict(Enum):
    DELIVER = "deliver"
    REWIND = "rewind"
    DROP = "drop"


class Continuity:
    """Next expected offset per partition, and what to do with each fetched record."""

    def __init__(self, max_rewinds: int = 2) -> None:
        self.max_rewinds = max_rewinds
        self._next: dict[Hashable, int] = {}
        self._rewinds: dict[Hashable, tuple[int, int]] = {}  # tp -> (offset, times rewound)
        self._rewound_in_batch: set[Hashable] = set()
        self.rewinds_total = 0
        self.holes_accepted = 0

    def expected(self, tp: Hashable) -> int | None:
        return self._next.get(tp)

    def sought(self, tp: Hashable, offset: int | None) -> None:
        """The consumer was positioned at ``offset``. None (no committed offset: the group has
        never committed this partition) means the start of the log: offset 0, or — when
        retention has deleted the start — the first offset, accepted as a hole after the
        rewinds. Taking the first record fetched instead would skip everything before a stale
        prefetch, as seen after a kill -9 early in a partition's life."""
        self._rewinds.pop(tp, None)
        self._next[tp] = offset if offset is not None and offset >= 0 else 0

    def revoked(self, tps: Iterable[Hashable]) -> None:
        for tp in tps:
            self._next.pop(tp, None)
            self._rewinds.pop(tp, None)

    def new_batch(self) -> None:
        """A fresh fetch: records of a rewound partition are judged again."""
        self._rewound_in_batch.clear()

    def judge(self, tp: Hashable, offset: int) -> Verdict:
        if tp in self._rewound_in_batch:
            return Verdict.DROP
        expected = self._next.get(tp)
        if expected is None or offset == expected:
            self._delivered(tp, offset)
            return Verdict.DELIVER
        if offset < expected:
            return Verdict.DELIVER  # re-read of something older; Faust's read offset decides
        at, times = self._rewinds.get(tp, (expected, 0))
        if at != expected:
            times = 0
        if times >= self.max_rewinds:  # the same hole after fresh fetches: it is in the log
            self.holes_accepted += 1
            self._delivered(tp, offset)
            return Verdict.DELIVER
        self._rewinds[tp] = (expected, times + 1)
        self._rewound_in_batch.add(tp)
        self.rewinds_total += 1
        return Verdict.REWIND

    def _delivered(self, tp: Hashable, offset: int) -> None:
        self._next[tp] = offset + 1
        self._rewinds.pop(tp, None)
