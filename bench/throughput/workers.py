"""The worker processes of the throughput benchmark and their figures from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from newsroom_dev.kafka import free_port
from newsroom_dev.process import ServiceProcess as WorkerProcess
from newsroom_dev.process import worker_env
from newsroom_dev.workload import TOKEN_KEY
from newsroom_notify.settings import Settings


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a live process, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def vm_rss_mb(pid: int) -> float | None:
    """Current resident set size (VmRSS) of a live process, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int, system_only: bool = False) -> float | None:
    """User + system (or only system: the kernel's work, e.g. socket I/O) CPU seconds a live
    process has used."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[12]) + (0 if system_only else int(fields[11]))
        return ticks / os.sysconf("SC_CLK_TCK")
    return None


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine, all cores, from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)
    return 0, 0


def dir_bytes(path: Path, suffixes: tuple[str, ...] | None = None) -> int:
    """Bytes of the files under ``path`` (only those ending with one of ``suffixes``)."""
    total = 0
    for item in path.rglob("*"):
        if item.is_file() and (suffixes is None or item.name.endswith(suffixes)):
            total += item.stat().st_size
    return total


@dataclass
class Service:
    """The worker processes of the run (one consumer group, one topic prefix)."""

    bootstrap: str
    tmp: Path
    partitions: int
    env: dict[str, str] = field(init=False)
    workers: list[WorkerProcess] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    starts: int = 0
    broker_pids: list[int] = field(default_factory=list)  # the local broker's, if started here

    def __post_init__(self) -> None:
        self.env = worker_env(
            self.bootstrap,
            self.tmp,
            {
                "NEWSROOM_TOPICS__PARTITIONS": str(self.partitions),
                "NEWSROOM_TOKENS__SECRET_KEYS": orjson.dumps([TOKEN_KEY]).decode(),
                # Digest timers would cut the hot article's digests mid-run (fan-out on read,
                # measured by bench/fanout_cost.py); keep them out of the throughput figures.
                "NEWSROOM_DIGEST__TICK_S": "3600",
            },
        )

    @property
    def prefix(self) -> str:
        return self.env["NEWSROOM_TOPICS__PREFIX"]

    @property
    def group(self) -> str:
        return self.env["NEWSROOM_APP_ID"]

    def settings(self) -> Settings:
        return Settings(
            app_id=self.group, topics={"prefix": self.prefix, "partitions": self.partitions}
        )

    def data_dir(self, index: int) -> Path:
        return self.tmp / f"worker-{index}-data"

    def start(self, count: int, overrides: dict[str, str] | None = None) -> None:
        """Start ``count`` workers (``overrides``: settings of this start only)."""
        self.starts += 1
        self.ports = []
        for index in range(count):
            env = {**self.env, **(overrides or {})}
            env["NEWSROOM_DATA_DIR"] = str(self.data_dir(index))
            port = free_port()
            env["NEWSROOM_WEB_PORT"] = str(port)
            self.ports.append(port)
            worker = WorkerProcess(env, self.tmp / f"worker-{index}-start-{self.starts}.log")
            worker.start()
            self.workers.append(worker)

    async def ready(self, within_s: float = 180.0) -> float:
        """Wait until every worker answers /readyz with 200 (tables recovered, no rebalance)."""
        started = time.monotonic()
        while time.monotonic() - started < within_s:
            answers = await asyncio.gather(*(asyncio.to_thread(_ready, p) for p in self.ports))
            if all(answers):
                return time.monotonic() - started
            for worker in self.workers:
                if worker.proc is not None and worker.proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {crash_report(worker.log_path)}")
            await asyncio.sleep(0.5)
        raise TimeoutError("workers not ready")

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc is not None and w.proc.poll() is None]

    def stop(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(OSError):
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.proc is not None:
                try:
                    worker.proc.wait(60)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()
                code = worker.proc.returncode
                if code not in (0, -signal.SIGTERM):
                    print(f"  worker exited with {code}; log {worker.log_path}", file=sys.stderr)
            worker.stop()  # closes its log
        self.workers.clear()


def _ready(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/readyz"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
        return bool(answer.status == 200)
    return False


CRASH_LOGS = Path(__file__).resolve().parents[1] / "results"  # git-ignored, kept after the run


def crash_report(log_path: Path) -> str:
    """Where a crashed worker's log is kept (the run's temporary directory is removed) and its
    first error lines: the cause, not the shutdown that follows it."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    CRASH_LOGS.mkdir(parents=True, exist_ok=True)
    kept = CRASH_LOGS / f"crashed-{time.strftime('%Y%m%dT%H%M%S')}-{log_path.name}"
    kept.write_text(text)
    errors = [
        line[:2000]
        for line in text.splitlines()
        if '"level": "error"' in line or '"level": "critical"' in line or "Traceback" in line
    ]
    return f"log kept at {kept}; its first errors:\n" + "\n".join(errors[:3] or [text[-3000:]])
