"""Issue 18: ``newsroom-notify mailer`` against the real broker and a real SMTP server process.

Each test runs the mailer as a user would (``newsroom-notify mailer`` in a subprocess, its own
topics and group) and an aiosmtpd sink in another process that writes each accepted mail to a
file. Waits are on state: the sink's files, a sentinel mail published last on the same
partition (same recipient: it is handled only after everything before it).
"""

from __future__ import annotations

import email
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from newsroom_dev.kafka import free_port
from newsroom_dev.samples import sample_events
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from tests.integration.kafka_helpers import (
    WorkerProcess,
    create_topics,
    drain,
    produce,
    run,
    worker_env,
)

PUBLIC_URL = "https://news.example.com/notify"
ANA = ("m-ana", "Ana Lima", "ana.lima@example.org")


def notification(nid: str, recipient: tuple[str, str, str] = ANA) -> ev.NotificationCreated:
    raw = sample_events()["newsroom.notification.created"]
    rid, name, address = recipient
    raw["id"] = nid
    raw["data"].update(
        notification_id=nid,
        recipient={"id": rid, "name": name, "email": address},
        manage_token=f"manage-{rid}",
    )
    return ev.NotificationCreated.model_validate(raw)


def retraction(nid: str, rid: str = ANA[0]) -> ev.NotificationRetracted:
    raw = sample_events()["newsroom.notification.retracted"]
    raw["id"] = "r-" + nid
    raw["data"].update(notification_id=nid, recipient_id=rid)
    return ev.NotificationRetracted.model_validate(raw)


def digest(did: str) -> ev.DigestReady:
    raw = sample_events()["newsroom.digest.ready"]
    rid, name, address = ANA
    raw["id"] = did
    raw["data"].update(digest_id=did, recipient={"id": rid, "name": name, "email": address})
    return ev.DigestReady.model_validate(raw)


class Sink:
    """The SMTP server process and the mails it wrote."""

    def __init__(self, directory: Path, port: int, *args: str) -> None:
        self.directory = directory
        self.port = port
        command = [sys.executable, "-m", "newsroom_dev.smtpsink"]
        self.proc = subprocess.Popen(
            [*command, "--dir", str(directory), "--port", str(port), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if "listening" not in self.proc.stdout.readline():
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("the SMTP sink did not start")

    def received(self) -> list[dict[str, Any]]:
        path = self.directory / "received.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def ids(self) -> list[str]:
        return [m["message_id"].strip("<>").split("@")[0] for m in self.received()]

    def wait_for(self, nid: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while nid not in self.ids():
            assert time.monotonic() < deadline, f"no mail {nid}; got {self.ids()}"
            time.sleep(0.1)

    def mail(self, nid: str) -> EmailMessage:
        (line,) = [m for m in self.received() if m["message_id"].startswith(f"<{nid}@")]
        message = email.message_from_bytes(
            (self.directory / line["eml"]).read_bytes(), policy=default
        )
        assert isinstance(message, EmailMessage)
        return message

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@dataclass
class Setup:
    bootstrap: str
    env: dict[str, str]
    prefix: str
    tmp: Path
    started: list[WorkerProcess | Sink] = field(default_factory=list)

    def publish(self, *events: ev.CloudEvent) -> None:
        for event in events:
            key, value = codec.encode(event)
            topic = f"{self.prefix}newsroom.{event.topic_role}"
            run(produce(self.bootstrap, topic, [(key, value, [codec.CONTENT_TYPE_HEADER])]))

    def publish_raw(self, role: str, key: bytes, value: bytes) -> None:
        run(produce(self.bootstrap, f"{self.prefix}newsroom.{role}", [(key, value)]))

    def mailer(self, name: str = "mailer") -> WorkerProcess:
        proc = WorkerProcess(
            self.env, self.tmp / f"{name}.log", command="mailer", ready_marker="mailer ready"
        )
        self.started.append(proc)  # stopped by the fixture even when a test fails
        proc.start()
        proc.wait_ready(90)
        return proc

    def sink(self, name: str = "mail", *args: str) -> Sink:
        port = int(self.env["NEWSROOM_MAILER__SMTP_PORT"])
        sink = Sink(self.tmp / name, port, *args)
        self.started.append(sink)
        return sink

    def metric(self, name: str, **labels: str) -> float:
        url = f"http://127.0.0.1:{self.env['NEWSROOM_MAILER__METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = re.escape(f"{name}{{{want}}}" if labels else name) + r" ([0-9.e+]+)"
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0


@pytest.fixture
def setup(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Setup]:
    env = worker_env(
        kafka_bootstrap,
        tmp_path,
        {
            "NEWSROOM_MAILER__SMTP_PORT": str(free_port()),
            "NEWSROOM_MAILER__SMTP_SECURITY": "none",
            "NEWSROOM_MAILER__METRICS_PORT": str(free_port()),
            "NEWSROOM_MAILER__AUTO_OFFSET_RESET": "earliest",
            "NEWSROOM_MAILER__RETRY_BACKOFF_S": "0.2",
            "NEWSROOM_MAILER__RETRY_BACKOFF_MAX_S": "1",
            "NEWSROOM_API__PUBLIC_URL": PUBLIC_URL,
        },
    )
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    env["NEWSROOM_MAILER__GROUP_ID"] = prefix + "mailer"
    names = [f"{prefix}newsroom.{t}" for t in ("notifications", "digests", "deadletter")]
    run(create_topics(kafka_bootstrap, names, partitions=2))
    return Setup(kafka_bootstrap, env, prefix, tmp_path)


def no_address_in_logs(*logs: WorkerProcess) -> None:
    for proc in logs:
        assert "@example.org" not in proc.log_text()


def test_a_notification_and_a_digest_become_mails_with_the_right_headers(setup: Setup) -> None:
    sink = setup.sink()
    mailer = setup.mailer()
    try:
        setup.publish(notification("n-hdr"), digest("d-hdr"))
        sink.wait_for("n-hdr")
        sink.wait_for("d-hdr")
        mail = sink.mail("n-hdr")
        assert mail.get_content_type() == "multipart/alternative"
        assert mail["Message-ID"] == "<n-hdr@news.example.com>"
        assert str(mail["To"]) == "Ana Lima <ana.lima@example.org>"
        token = notification("x").data.unsubscribe_token
        assert mail["List-Unsubscribe"] == f"<{PUBLIC_URL}/v1/unsubscribe?token={token}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text, html = mail.get_body(("plain",)), mail.get_body(("html",))
        assert text is not None
        assert html is not None
        manage = f"{PUBLIC_URL}/v1/subscribers/m-ana/subscriptions?token=manage-m-ana"
        assert manage in text.get_content()
        assert manage in html.get_content()
        assert "@Geoff Roach the bus lanes stay" in html.get_content()
        d = sink.mail("d-hdr")
        assert d["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert d["Subject"] == "Your daily digest: 14 new comments"
        assert setup.metric("newsroom_mailer_messages_total", kind="digest", outcome="sent") == 1
    finally:
        assert mailer.stop() == 0  # SIGTERM: drains and exits cleanly
        sink.stop()
    assert "mailer stopped" in mailer.log_text()
    no_address_in_logs(mailer)


def test_a_relay_that_refuses_then_accepts_gets_the_mail_once(setup: Setup) -> None:
    sink = setup.sink("mail", "--refuse-first", "2")
    mailer = setup.mailer()
    try:
        setup.publish(notification("n-retry"), notification("n-after-retry"))
        sink.wait_for("n-after-retry")  # same recipient, same partition: handled after
        assert Counter(sink.ids()) == {"n-retry": 1, "n-after-retry": 1}
        assert setup.metric("newsroom_mailer_retries_total") == 2
    finally:
        mailer.stop()
        sink.stop()
    no_address_in_logs(mailer)


def test_a_restart_never_sends_an_id_twice(setup: Setup) -> None:
    sink = setup.sink()
    first = setup.mailer("first")
    try:
        setup.publish(notification("n-a"), notification("n-b"))
        sink.wait_for("n-b")
    finally:
        assert first.stop() == 0
    # The worker replays (same ids again, e.g. after a crash) while the mailer is down.
    setup.publish(notification("n-a"), notification("n-b"), notification("n-c"))
    second = setup.mailer("second")
    try:
        sink.wait_for("n-c")
        assert Counter(sink.ids()) == {"n-a": 1, "n-b": 1, "n-c": 1}
        dup = setup.metric(
            "newsroom_mailer_messages_total", kind="notification", outcome="skipped_duplicate"
        )
        assert dup == 2
    finally:
        second.stop()
        sink.stop()
    no_address_in_logs(first, second)


def test_a_mailer_killed_while_the_relay_refuses_sends_the_mail_after_its_restart(
    setup: Setup,
) -> None:
    refusing = setup.sink("refusing", "--refuse-first", "1000")
    first = setup.mailer("first")
    try:
        setup.publish(notification("n-inflight"))
        deadline = time.monotonic() + 60
        while "smtp try failed" not in first.log_text():
            assert time.monotonic() < deadline, first.log_text()[-3000:]
            time.sleep(0.1)
    finally:
        first.stop(signal.SIGKILL)
        refusing.stop()
    sink = setup.sink("accepting")
    second = setup.mailer("second")
    try:
        setup.publish(notification("n-sentinel"))
        sink.wait_for("n-sentinel")
        assert Counter(sink.ids()) == {"n-inflight": 1, "n-sentinel": 1}
        assert refusing.ids() == []
    finally:
        second.stop()
        sink.stop()


def test_a_notification_retracted_before_it_was_sent_is_never_sent(setup: Setup) -> None:
    # Published while the mailer is down: it finds the retraction in the same fetch.
    setup.publish(notification("n-spam"), retraction("n-spam"), notification("n-ok"))
    sink = setup.sink()
    mailer = setup.mailer()
    try:
        sink.wait_for("n-ok")
        assert "n-spam" not in sink.ids()
        retracted = setup.metric(
            "newsroom_mailer_messages_total", kind="notification", outcome="skipped_retracted"
        )
        assert retracted == 1
        # A retraction of a mail already sent is counted (and logged), nothing more.
        setup.publish(retraction("n-ok"), notification("n-last"))
        sink.wait_for("n-last")
        assert setup.metric("newsroom_mailer_retractions_after_send_total") == 1
        assert Counter(sink.ids()) == {"n-ok": 1, "n-last": 1}
    finally:
        mailer.stop()
        sink.stop()


def test_what_can_never_be_sent_is_dead_lettered_and_the_rest_flows(setup: Setup) -> None:
    sink = setup.sink("mail", "--bounce-prefix", "bounce")
    mailer = setup.mailer()
    try:
        setup.publish(notification("n-bounce", ("m-b", "Bo Unce", "bounce@example.org")))
        setup.publish_raw("notifications", b"m-x", b'{"specversion": "1.0", "id": ')
        setup.publish(notification("n-fine"))
        sink.wait_for("n-fine")
        letters = run(drain(setup.bootstrap, f"{setup.prefix}newsroom.deadletter", expect=2))
        reasons = sorted(dict(r.headers)["newsroom.dlt.error.message"].decode() for r in letters)
        assert len(letters) == 2, reasons
        assert reasons[0].startswith("refused by the relay: SMTP 550"), reasons
        assert reasons[1].startswith("value is not JSON"), reasons
        assert all("@" not in r for r in reasons)
        groups = {dict(r.headers)["newsroom.dlt.consumer.group"].decode() for r in letters}
        assert groups == {setup.prefix + "mailer"}
        assert "n-bounce" not in sink.ids()
    finally:
        mailer.stop()
        sink.stop()
    no_address_in_logs(mailer)
