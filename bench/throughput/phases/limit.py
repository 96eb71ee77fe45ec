"""The limit: ``bench/limit.py`` (a plain aiokafka consume -> produce loop) as its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.throughput import ROOT


def run_limit(
    bootstrap: str,
    source: str,
    sink: str,
    expect: int,
    timeout: float,
    *,
    outputs: Path | None = None,
) -> dict[str, Any]:
    """Run ``bench/limit.py`` as its own process; return its figures."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "limit.py"),
        "--bootstrap",
        bootstrap,
        "--source",
        source,
        "--sink",
        sink,
        "--expect",
        str(expect),
        "--group",
        f"{sink}-limit",
    ]
    if outputs is not None:
        command += ["--outputs", str(outputs)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"limit failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures
