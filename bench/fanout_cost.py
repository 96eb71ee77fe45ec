"""Per-comment cost on an article with 0 vs 50,000 digest-mode followers (fan-out on read).

Runs the real domain stages in one process over tables that store JSON bytes exactly like the
worker's Faust tables (``ModelTable``), so serialization is counted. For an article with 0, 1
and N digest followers it posts the same comments (from 200 rotating authors), measures the
time and the bytes of state written per comment, then cuts the day's digests and counts them.

    python -m bench.fanout_cost [--followers 50000] [--comments 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from newsroom_dev.builders import article, comment, member, subscribe
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import TABLES, LocalPipeline
from newsroom_notify.domain.tokens import Tokens

ROOT = Path(__file__).resolve().parents[1]


class JsonTable(MutableMapping[str, Any]):
    """Stores each value as the JSON bytes of its model, like the worker's tables."""

    written = 0

    def __init__(self) -> None:
        self.data: dict[str, tuple[type[BaseModel], bytes]] = {}

    def __getitem__(self, key: str) -> Any:
        model, raw = self.data[key]
        return model.model_validate_json(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        raw = value.model_dump_json().encode()
        JsonTable.written += len(raw)
        self.data[key] = (type(value), raw)

    def __delitem__(self, key: str) -> None:
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def measure(followers: int, comments: int) -> dict[str, Any]:
    clock = Clock()
    pipe = LocalPipeline(
        tokens=Tokens(["bench"], 3600, 3600),
        clock=clock,
        tables={name: JsonTable() for name in TABLES},  # type: ignore[misc]
    )
    aid = f"article-{followers}"
    pipe.feed([article(aid)])
    started = time.perf_counter()
    pipe.feed(
        [subscribe(member(f"m-{i}", f"Reader {i}"), "article", aid) for i in range(followers)]
    )
    setup_s = time.perf_counter() - started
    authors = [member(f"m-author-{a}", f"Author {a}") for a in range(200)]
    samples = []
    JsonTable.written = 0
    for i in range(comments):
        clock.now += timedelta(seconds=20)
        author = authors[i % len(authors)]
        event = comment(f"c{i}", author, f"Comment number {i} on a busy article.", aid=aid)
        t0 = time.perf_counter()
        out = pipe.feed([event])
        samples.append(time.perf_counter() - t0)
        assert out == []  # digest-mode followers get nothing instant
    bytes_per_comment = JsonTable.written / comments
    clock.now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    t0 = time.perf_counter()
    produced = pipe.tick()
    clock.now += timedelta(minutes=5)
    produced += pipe.tick()
    digest_s = time.perf_counter() - t0
    digests = [o for o in produced if isinstance(o, ev.DigestReady)]
    assert all(d.data.total_comments == comments for d in digests)
    samples.sort()
    return {
        "followers": followers,
        "comments": comments,
        "setup_s": round(setup_s, 2),
        "per_comment_us_median": round(statistics.median(samples) * 1e6, 1),
        "per_comment_us_p99": round(samples[int(len(samples) * 0.99) - 1] * 1e6, 1),
        "state_bytes_written_per_comment": round(bytes_per_comment, 1),
        "digests": len(digests),
        "digest_cut_s": round(digest_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--followers", type=int, default=50_000)
    parser.add_argument("--comments", type=int, default=2_000)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "fanout.json")
    args = parser.parse_args()
    rows = [
        measure(0, args.comments),
        measure(1, args.comments),
        measure(args.followers, args.comments),
    ]
    none, _, hot = rows
    ratio = hot["per_comment_us_median"] / none["per_comment_us_median"]
    print(
        f"{'followers':>10} {'per comment (median)':>22} {'p99':>10} "
        f"{'state bytes/comment':>20} {'digests':>8} {'cut':>7}"
    )
    for r in rows:
        print(
            f"{r['followers']:>10} {r['per_comment_us_median']:>19.1f} us "
            f"{r['per_comment_us_p99']:>7.1f} us {r['state_bytes_written_per_comment']:>20.1f} "
            f"{r['digests']:>8} {r['digest_cut_s']:>6.2f}s"
        )
    print(f"per-comment time, {args.followers} followers vs none: {ratio:.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "ratio": round(ratio, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
