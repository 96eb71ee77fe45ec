"""Browser tests (issue 18 item 4): a real worker, the stand-alone API, the mailer and an SMTP
sink as processes on the real broker, and headless Chromium from Debian's ``chromium`` package
(``make browser``) driven by Playwright's Python binding at the system executable: Playwright
never downloads a browser here.

Screenshots of every page a test visits are written to ``tests/browser/screenshots/`` (ignored
by git; the README's copies live in ``docs/pages/``).
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from newsroom_dev.kafka import free_port
from newsroom_notify.contract import events as ev
from tests.integration.kafka_helpers import WorkerProcess, publish_events, worker_env
from tests.integration.test_mailer import Sink

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
IDENTITY_KEY = "browser-identity-key-0123456789abcdef"


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium for one test: Playwright's sync API keeps an event loop running in this thread
    while it is open, so it must not outlive the test (later tests call asyncio.run)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 420, "height": 860})  # a phone's width
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class Stack:
    """Worker, API, mailer and sink as a newsroom runs them."""

    bootstrap: str
    env: dict[str, str]
    api_url: str
    sink: Sink
    started: list[WorkerProcess] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.env["NEWSROOM_TOPICS__PREFIX"]

    def publish(self, *events: ev.CloudEvent) -> None:
        # Playwright's sync API runs an event loop in this thread: asyncio.run needs another.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(publish_events, self.bootstrap, self.prefix, list(events)).result()

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for line in self.sink.received():
            raw = (self.sink.directory / line["eml"]).read_bytes()
            message = email.message_from_bytes(raw, policy=default)
            assert isinstance(message, EmailMessage)
            if address in str(message["To"]):
                found.append(message)
        return found

    def wait_for_mail(
        self, address: str, match: Any = lambda _m: True, timeout: float = 90.0
    ) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.mails_to(address) if match(m)]
            if got:
                return got[-1]
            assert time.monotonic() < deadline, f"no such mail to {address}"
            time.sleep(0.2)

    def html_file(self, message: EmailMessage) -> Path:
        """The .html the sink wrote for ``message`` (what a person opens)."""
        (line,) = [m for m in self.sink.received() if m["message_id"] == str(message["Message-ID"])]
        return self.sink.directory / line["html"]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(kafka_bootstrap, tmp_path) as started:
        yield started


@contextlib.contextmanager
def running_stack(
    kafka_bootstrap: str, tmp_path: Path, extra: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Worker, API, mailer (whose links lead to this API) and sink, stopped at the end."""
    env = worker_env(
        kafka_bootstrap,
        tmp_path,
        {
            **(extra or {}),
            "NEWSROOM_API__JWT_KEYS": json.dumps([IDENTITY_KEY]),
            "NEWSROOM_API__PER_IP_PER_MINUTE": "100000",
            "NEWSROOM_API__CONFIRMATIONS_PER_ADDRESS_PER_DAY": "100000",
            "NEWSROOM_MAILER__SMTP_PORT": str(free_port()),
            "NEWSROOM_MAILER__SMTP_SECURITY": "none",
            "NEWSROOM_MAILER__METRICS_PORT": str(free_port()),
            "NEWSROOM_MAILER__AUTO_OFFSET_RESET": "earliest",
        },
    )
    env["NEWSROOM_MAILER__GROUP_ID"] = env["NEWSROOM_TOPICS__PREFIX"] + "mailer"
    started: list[WorkerProcess] = []
    sink = Sink(tmp_path / "mail", int(env["NEWSROOM_MAILER__SMTP_PORT"]))
    try:
        worker = WorkerProcess(env, tmp_path / "worker.log")
        started.append(worker)
        worker.start()
        worker.wait_ready()
        api_env = {
            **env,
            "NEWSROOM_API__PORT": str(free_port()),
            "NEWSROOM_API__WORKER_URL": f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}",
        }
        api = WorkerProcess(api_env, tmp_path / "api.log", "api", "api listening")
        started.append(api)
        api.start()
        api.wait_ready()
        api_url = f"http://127.0.0.1:{api_env['NEWSROOM_API__PORT']}"
        # The mail's links lead to the API where it really listens.
        mailer_env = {**env, "NEWSROOM_API__PUBLIC_URL": api_url}
        mailer = WorkerProcess(
            mailer_env, tmp_path / "mailer.log", command="mailer", ready_marker="mailer ready"
        )
        started.append(mailer)
        mailer.start()
        mailer.wait_ready(120)
        yield Stack(kafka_bootstrap, env, api_url, sink, started)
    finally:
        for proc in reversed(started):
            proc.stop()
        sink.stop()


def link(page: Page, name: str) -> str:
    """The href of the link called ``name`` on ``page``."""
    href = page.get_by_role("link", name=re.compile(name)).get_attribute("href")
    assert href is not None
    return href
