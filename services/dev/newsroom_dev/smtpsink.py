"""A development SMTP server (aiosmtpd) that keeps every mail it accepts as files.

Each accepted mail becomes ``<dir>/<n>-<message id>.eml`` (the bytes received) and ``.html`` (its
HTML part, to open in a browser), and one JSON line in ``<dir>/received.jsonl`` (message id,
accept time, file names; no address). ``make run`` embeds it (``SmtpSink``); the tests run it as
a process: ``python -m newsroom_dev.smtpsink --dir D --port P [--refuse-first N]``.

``refuse_first`` answers the first N DATA commands with ``451`` (try again later) and
``bounce_prefix`` refuses recipients whose address starts with it with ``550``: a relay's
temporary and permanent failures, on demand.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Landed:
    """One mail the sink accepted."""

    message: EmailMessage
    eml: Path
    html: Path | None
    accepted_at: float


@dataclass
class _Handler:
    directory: Path
    refuse_first: int = 0
    bounce_prefix: str | None = None
    on_mail: Callable[[Landed], None] | None = None
    count: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.bounce_prefix and address.startswith(self.bounce_prefix):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refused < self.refuse_first:
                self.refused += 1
                return "451 4.3.0 try again later"
            self.count += 1
            number = self.count
        accepted_at = time.time()
        raw: bytes = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        mid = _UNSAFE.sub("_", str(message.get("Message-ID", "")).strip("<>").split("@")[0])
        stem = f"{number:04d}-{mid or 'no-id'}"
        eml = _write(self.directory / f"{stem}.eml", raw)
        html_part = message.get_body(("html",))
        html = None
        if html_part is not None:
            html = _write(self.directory / f"{stem}.html", html_part.get_content().encode())
        line = {
            "message_id": str(message.get("Message-ID", "")),
            "accepted_at": accepted_at,
            "eml": eml.name,
            "html": html.name if html else None,
        }
        with self.lock, (self.directory / "received.jsonl").open("a") as log:
            log.write(json.dumps(line) + "\n")
        if self.on_mail is not None:
            self.on_mail(Landed(message, eml, html, accepted_at))
        return "250 OK: queued"


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # readers never see half a file
    return path


class SmtpSink:
    """An SMTP server (127.0.0.1 unless told) in a background thread (aiosmtpd's
    ``Controller``)."""

    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        refuse_first: int = 0,
        bounce_prefix: str | None = None,
        on_mail: Callable[[Landed], None] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port
        self.handler = _Handler(directory, refuse_first, bounce_prefix, on_mail)
        self.host = host
        self._controller = Controller(self.handler, hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="an SMTP sink writing each mail to files")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    parser.add_argument("--refuse-first", type=int, default=0)
    parser.add_argument("--bounce-prefix")
    args = parser.parse_args(argv)
    sink = SmtpSink(
        Path(args.dir),
        args.port,
        refuse_first=args.refuse_first,
        bounce_prefix=args.bounce_prefix,
        host=args.host,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sink.start()
    print(f"smtp sink listening on {args.host}:{args.port}", flush=True)
    stop.wait()
    sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
