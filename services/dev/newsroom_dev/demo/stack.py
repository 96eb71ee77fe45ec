"""What the demo starts when it is missing, and stops on exit: a local Kafka (unless one is
configured), the worker, the API and the mailer (each a ``ServiceProcess``), and an SMTP sink
whose mails are handed to the demo (``Inbox``)."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from newsroom_dev.demo.clock import CLOCK_SPEED, clock_anchor
from newsroom_dev.kafka import LocalKafka, free_port, port_open
from newsroom_dev.process import ServiceProcess
from newsroom_notify.settings import Settings

if TYPE_CHECKING:
    from newsroom_dev.smtpsink import Landed

DEFAULT_PORT = 9092  # the settings' default: `newsroom-notify post` finds it without config


def start_child(command: str, env: dict[str, str], run_dir: Path, marker: str) -> ServiceProcess:
    """``newsroom-notify <command>``, logging to a fresh ``<command>.log`` of the run
    directory; returns once it is ready (a port taken meanwhile is drawn again, in ``env``)."""
    log = run_dir / f"{command}.log"
    log.unlink(missing_ok=True)  # this run's lines only
    child = ServiceProcess(env, log, command, marker)
    child.start()
    try:
        child.wait_ready(120)
    except (RuntimeError, TimeoutError):
        child.stop()
        raise RuntimeError(f"{command} did not start; see {log}") from None
    return child


@dataclass
class Inbox:
    """The mails the embedded SMTP sink accepted, handed from its thread to the demo's loop."""

    directory: Path | None = None
    landed: queue.SimpleQueue[Landed] = field(default_factory=queue.SimpleQueue)

    def on_mail(self, mail: Landed) -> None:  # called in the sink's thread
        self.landed.put(mail)


@contextlib.contextmanager
def services(
    settings: Settings, run_dir: Path, console: Console, inbox: Inbox | None = None
) -> Iterator[Settings]:
    """Kafka (unless configured), a worker, the API, an SMTP sink and the mailer, stopped on
    exit."""
    from newsroom_dev.smtpsink import SmtpSink  # noqa: PLC0415 - a development tool

    run_dir.mkdir(parents=True, exist_ok=True)
    started: list[ServiceProcess] = []
    kafka: LocalKafka | None = None
    sink: SmtpSink | None = None
    env = dict(os.environ)
    try:
        if "NEWSROOM_KAFKA__BOOTSTRAP_SERVERS" not in env:
            console.print("Starting a local Apache Kafka (KRaft, from its jars)…")
            for old in ("kafka", "worker-data"):  # a new broker: start from nothing
                shutil.rmtree(run_dir / old, ignore_errors=True)
            port = None if port_open(DEFAULT_PORT) else DEFAULT_PORT
            kafka = LocalKafka.create(run_dir / "kafka", size=1, port=port)
            kafka.start()
            env["NEWSROOM_KAFKA__BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
        anchor = clock_anchor(datetime.now(UTC), CLOCK_SPEED)
        env.update(
            {
                "NEWSROOM_DIGEST__CLOCK_SPEED": str(CLOCK_SPEED),
                "NEWSROOM_DIGEST__CLOCK_ANCHOR": anchor.isoformat(),
                "NEWSROOM_DIGEST__TICK_S": "1",
                "NEWSROOM_DIGEST__GRACE_S": "30",
                "NEWSROOM_DATA_DIR": str(run_dir / "worker-data"),
                "NEWSROOM_API__PORT": env.get("NEWSROOM_API__PORT", str(free_port())),
                "NEWSROOM_WEB_PORT": env.get("NEWSROOM_WEB_PORT", str(free_port())),
                "NEWSROOM_API__METRICS_PORT": env.get(
                    "NEWSROOM_API__METRICS_PORT", str(free_port())
                ),
                "NEWSROOM_LOG_FORMAT": "json",
                # A local demo: the built-in dev-only keys are fine (they are refused otherwise).
                "NEWSROOM_DEV_MODE": env.get("NEWSROOM_DEV_MODE", "true"),
            }
        )
        console.print(f"Starting the worker (log: {run_dir / 'worker.log'})…")
        started.append(start_child("worker", env, run_dir, "Worker ready"))
        env["NEWSROOM_API__WORKER_URL"] = f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}"
        console.print(f"Starting the API on port {env['NEWSROOM_API__PORT']}…")
        started.append(start_child("api", env, run_dir, "api listening"))
        mail_dir = run_dir / "mail"
        shutil.rmtree(mail_dir, ignore_errors=True)  # this run's mails only
        smtp_port = free_port()
        sink = SmtpSink(mail_dir, smtp_port, on_mail=inbox.on_mail if inbox else None)
        sink.start()
        if inbox is not None:
            inbox.directory = mail_dir
        env.update(
            {
                "NEWSROOM_MAILER__SMTP_HOST": "127.0.0.1",
                "NEWSROOM_MAILER__SMTP_PORT": str(smtp_port),
                "NEWSROOM_MAILER__SMTP_SECURITY": "none",  # the local sink only
                "NEWSROOM_MAILER__AUTO_OFFSET_RESET": "earliest",
                "NEWSROOM_MAILER__GROUP_ID": env.get(
                    "NEWSROOM_MAILER__GROUP_ID", env.get("NEWSROOM_APP_ID", "newsroom") + "-mailer"
                ),
                "NEWSROOM_MAILER__METRICS_PORT": env.get(
                    "NEWSROOM_MAILER__METRICS_PORT", str(free_port())
                ),
                "NEWSROOM_API__PUBLIC_URL": f"http://127.0.0.1:{env['NEWSROOM_API__PORT']}",
            }
        )
        console.print(
            f"Starting an SMTP sink on port {smtp_port} (mails go to {mail_dir}) and the mailer…"
        )
        started.append(start_child("mailer", env, run_dir, "mailer ready"))
        os.environ.update(env)  # this process reads the same settings as its children
        yield Settings()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        for child in reversed(started):
            with contextlib.suppress(Exception):
                child.stop()
        if sink is not None:
            sink.stop()
        if kafka is not None:
            kafka.stop()
