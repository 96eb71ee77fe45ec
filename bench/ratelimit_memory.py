"""Memory of the API's per-IP rate limiter under 200,000 distinct client addresses.

Feeds ``SlidingWindow`` (the limiter the API uses, with the API's default settings: 30 per
minute, ``rate_limit_max_keys`` 100,000) one request from each of N distinct addresses, IPv4 and
IPv6 mixed and keyed as the API keys them (``rate_key``: IPv6 by /64), and samples the memory
the limiter holds (tracemalloc) every 25,000 addresses. Two arrival patterns:

* burst  — all N addresses within one window (a botnet): held keys stop at ``max_keys``;
* spread — N addresses over 20 minutes of virtual time: idle keys expire after the window, so
  held keys stay near (arrival rate x window).

Time per call is measured in a second, untraced pass (tracemalloc slows every allocation) and
printed for information, never asserted.

    python -m bench.ratelimit_memory [--keys 200000] [--max-keys 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from newsroom_notify.api.service import SlidingWindow, rate_key


def addresses(n: int, seed: int = 15) -> list[str]:
    """``n`` distinct client addresses, two IPv4 for one IPv6 (each IPv6 in its own /64)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    out: list[str] = []
    for i in range(n):
        if i % 3 == 2:
            net = (0x2001_0DB8 << 96) | (i << 64)
            out.append(str(ipaddress.IPv6Address(net | rng.getrandbits(64))))
        else:
            out.append(str(ipaddress.IPv4Address(0x0A00_0000 + i)))
    return out


def run(pattern: str, keys: int, max_keys: int, span_s: float, step: int) -> list[dict[str, Any]]:
    """Memory held by the limiter after each ``step`` distinct addresses."""
    now = [0.0]
    window = SlidingWindow(30, 60.0, lambda: now[0], max_keys=max_keys)
    clients = addresses(keys)
    client_keys = [rate_key(ip) for ip in clients]
    rows = []
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i, key in enumerate(client_keys, 1):
        if pattern == "spread":
            now[0] = span_s * i / keys
        window.allow(key)
        if i % step == 0:
            rows.append(
                {
                    "pattern": pattern,
                    "distinct_addresses": i,
                    "held_keys": len(window.hits),
                    "memory_mib": round((tracemalloc.get_traced_memory()[0] - base) / 2**20, 1),
                }
            )
    tracemalloc.stop()
    now[0] = 0.0
    untraced = SlidingWindow(30, 60.0, lambda: now[0], max_keys=max_keys)
    started = time.perf_counter()
    for i, key in enumerate(client_keys, 1):
        if pattern == "spread":
            now[0] = span_s * i / keys
        untraced.allow(key)
    per_call = (time.perf_counter() - started) / keys * 1e6
    for row in rows:
        row["us_per_call"] = round(per_call, 2)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--max-keys", type=int, default=100_000)
    parser.add_argument("--step", type=int, default=25_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = run("burst", args.keys, args.max_keys, 0.0, args.step)
    rows += run("spread", args.keys, args.max_keys, 1200.0, args.step)
    print(f"{'pattern':<8}{'addresses':>11}{'held keys':>11}{'memory MiB':>12}{'us/call':>9}")
    for r in rows:
        print(
            f"{r['pattern']:<8}{r['distinct_addresses']:>11}{r['held_keys']:>11}"
            f"{r['memory_mib']:>12}{r['us_per_call']:>9}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
