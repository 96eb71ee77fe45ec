"""Starting the service's commands as child processes, for the demo, the tests and the
benchmarks: readiness read from the child's own log, a port taken between choosing and binding
it drawn again, a graceful stop. (Development tooling, like ``newsroom_dev.kafka``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsroom_dev.kafka import free_port

BIND_FAILURE = "address already in use"
PORT_ATTEMPTS = 5
PORTS = {  # the variables naming the ports each command binds
    "worker": ("NEWSROOM_WEB_PORT",),
    "api": ("NEWSROOM_API__PORT", "NEWSROOM_API__METRICS_PORT"),
    "mailer": ("NEWSROOM_MAILER__METRICS_PORT",),
}


@dataclass
class ServiceProcess:
    """``newsroom-notify <command>`` (``worker``, ``api``, ``mailer``) as a user runs it, in a
    subprocess whose output goes to ``log_path``; ready when ``ready_marker`` shows in what
    this start wrote. The one supervisor of the demo, the tests and the benchmarks.

    Its ports come from ``free_port()``, which another process may take before this one binds
    it: a process that exits because its address is in use is started again on new ports
    (``port_vars`` of ``env``, updated in place so callers read the port it really uses)."""

    env: dict[str, str]
    log_path: Path
    command: str = "worker"  # or "api", "mailer"
    ready_marker: str = "Worker ready"
    proc: subprocess.Popen[bytes] | None = None
    port_vars: tuple[str, ...] | None = None
    _log: Any = field(default=None, repr=False)
    _log_start: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.port_vars is None:
            wanted = PORTS.get(self.command, ())
            self.port_vars = tuple(name for name in wanted if name in self.env)

    def start(self) -> None:
        self._log_start = len(self.log_text())
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "newsroom_notify.cli", self.command],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:  # a loaded 2-core machine is slow
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._wait_ready(timeout)
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise
                self._log.close()
                for name in self.port_vars or ():
                    self.env[name] = str(free_port())
                self.start()
            else:
                return

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                output = self.log_text()[self._log_start :]
                if self.port_vars and BIND_FAILURE in output.lower():
                    raise PortTaken(f"{self.command} could not bind:\n{output[-4000:]}")
                raise RuntimeError(f"{self.command} exited early:\n{output[-4000:]}")
            if self.ready_marker in self.log_text()[self._log_start :]:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.command} not ready:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        return self.proc.returncode


class PortTaken(RuntimeError):
    """A worker or API process exited because its port was taken by another process."""


def unique(prefix: str) -> str:
    """A name no other test or run uses (topics and groups are shared by one broker)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def worker_env(bootstrap: str, tmp: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a worker isolated from other tests: own topics, group and state."""
    prefix = unique("t") + "."
    env = {
        **os.environ,
        "NEWSROOM_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "NEWSROOM_TOPICS__PREFIX": prefix,
        "NEWSROOM_TOPICS__PARTITIONS": "4",
        "NEWSROOM_APP_ID": prefix + "notify",
        "NEWSROOM_DATA_DIR": str(tmp / "worker-data"),
        "NEWSROOM_WEB_PORT": str(free_port()),
        "NEWSROOM_API__METRICS_PORT": str(free_port()),
        "NEWSROOM_LOG_FORMAT": "json",
        "NEWSROOM_DEV_MODE": "true",  # tests may use the built-in dev-only keys
        "NEWSROOM_LOG_LEVEL": "INFO",
    }
    env.update(extra or {})
    return env
