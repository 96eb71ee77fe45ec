"""The digest timer's look at every recipient's buffer, every tick (``digest.tick_s``, 30 s).

Stores ``--buffers`` digest buffers of ``--items`` items each (half of them due) in a RocksDB
(rocksdict with the worker's options, raw bytes), read through ``ModelTable`` as the worker
reads them (Faust's store layer above it, with its key and value decoding calls, left out),
then times, interleaved in one process, the timer's scan as it was (every key, then a look-up
and a decode of its buffer) and as it is (one pass over the stored JSON, ``stored_due_at``).
Both must pick the same recipients. Prints the CPU time of one tick and per buffer.

    python -m bench.digest_ticks [--buffers 10000] [--items 20] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import Rdict

from newsroom_notify.domain.inbox.digests import is_due
from newsroom_notify.domain.state import DigestBuffer, stored_due_at
from newsroom_notify.settings import Settings
from newsroom_notify.stream.faust_ext.tables import ModelTable

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


class RocksTable:
    """As much of a Faust table over one RocksDB as ``ModelTable`` uses outside of a record (a
    timer's reads): keys, a look-up, the items."""

    def __init__(self, db: Rdict) -> None:
        self.db = db

    @property
    def data(self) -> RocksTable:
        return self

    def __iter__(self) -> Iterator[bytes]:
        for key in self.db.keys():  # noqa: SIM118 - an Rdict is not iterable
            assert isinstance(key, bytes)
            yield key

    def __getitem__(self, key: bytes) -> bytes:
        value: bytes | None = self.db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self.db.items():
            assert isinstance(key, bytes)
            assert isinstance(value, bytes)
            yield key, value


def entry(n: int) -> dict[str, Any]:
    """A digest item as the inbox stores it: a comment, its parent, its article."""
    words = "the council voted on the bus lanes again and the readers have views " * 4

    def comment(cid: str) -> dict[str, Any]:
        return {
            "id": cid,
            "author_id": f"m-{n % 997}",
            "author_name": "Geoff Roach",
            "excerpt": words[:200],
            "url": f"https://news.example.com/a-{n % 50}#comment-{cid}",
        }

    return {
        "subject": {
            "key": f"c:c-{n}",
            "article": {
                "id": f"a-{n % 50}",
                "title": "City council votes to keep the bus lanes on Main Street",
                "url": f"https://news.example.com/a-{n % 50}",
                "section": "local",
                "journalist_id": "j-7",
            },
            "comment": comment(f"c-{n}"),
            "parent": comment(f"c-{n - 1}"),
        },
        "reason": "followed_commenter",
        "scope": "commenter",
        "target": f"m-{n % 997}",
        "at": (NOW - timedelta(hours=3)).isoformat(),
    }


def fill(db: Rdict, buffers: int, items: int) -> int:
    """Write the buffers; half of them due before ``NOW``. Returns the bytes stored."""
    stored = 0
    for b in range(buffers):
        due = NOW + timedelta(minutes=-5 if b % 2 == 0 else 55)
        buffer = DigestBuffer.model_validate(
            {"items": {f"c:c-{b}-{i}": entry(b * items + i) for i in range(items)}, "due_at": due}
        )
        raw = buffer.model_dump_json().encode("utf-8")
        db[f"m-{b:07d}".encode()] = raw
        stored += len(raw)
    return stored


def scan_before(table: ModelTable[DigestBuffer]) -> list[str]:
    """The timer until 2 December 2026: every key, then the buffer looked up and decoded."""
    due: list[str] = []
    for rid in list(table):
        buffer = table.get(rid)
        if buffer is not None and is_due(buffer.due_at, NOW):
            due.append(rid)
    return due


def scan_now(table: ModelTable[DigestBuffer]) -> list[str]:
    """The timer now (stream/stages.py ``digest_ticks``)."""
    return [rid for rid, stored in table.raw_items() if is_due(stored_due_at(stored), NOW)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffers", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="digest-ticks-") as tmp:
        # The worker's store: Faust's options (raw bytes) with the service's memory settings.
        memory: dict[str, Any] = dict(Settings(dev_mode=True).rocksdb_options())
        options = RocksDBOptions(**memory).as_options()
        db = Rdict(str(Path(tmp) / "digests"), options=options)
        try:
            stored = fill(db, args.buffers, args.items)
            table: ModelTable[DigestBuffer] = ModelTable(RocksTable(db), DigestBuffer)
            expected = scan_before(table)
            assert len(expected) == (args.buffers + 1) // 2, len(expected)
            runs: dict[str, list[float]] = {"before": [], "now": []}
            for _ in range(args.rounds):
                for name, scan in (("before", scan_before), ("now", scan_now)):
                    started = time.process_time()
                    picked = scan(table)
                    runs[name].append(time.process_time() - started)
                    assert sorted(picked) == expected, name
        finally:
            db.close()
    result = {
        "buffers": args.buffers,
        "items_per_buffer": args.items,
        "mean_buffer_bytes": round(stored / args.buffers),
        "cpu_ms_per_tick": {k: [round(1000 * s, 1) for s in v] for k, v in runs.items()},
        "cpu_us_per_buffer": {k: round(1e6 * min(v) / args.buffers, 2) for k, v in runs.items()},
    }
    print(
        f"digest timer, {args.buffers:,} buffers of {args.items} items "
        f"({result['mean_buffer_bytes']:,} bytes each), half due, CPU ms per tick:"
    )
    for name, seconds in runs.items():
        print(
            f"  {name:7} {', '.join(f'{1000 * s:,.1f}' for s in seconds)}"
            f"  ({result['cpu_us_per_buffer'][name]} µs per buffer)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
