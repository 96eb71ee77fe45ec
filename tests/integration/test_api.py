"""Issue 6 over HTTP against the running worker on the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from tests.builders import article, comment, guest, member
from tests.integration.kafka_helpers import (
    WorkerProcess,
    drain,
    free_port,
    publish_events,
    run,
    worker_env,
)

ROOT = Path(__file__).resolve().parents[2]
IDENTITY_KEY = "integration-identity-key-0123456789abcdef"
GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = guest_subscriber_id("geoff.roach@example.org")
ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro")


def now_comment(cid: str, author: dict[str, Any], text: str, parent: str) -> ev.CommentPosted:
    """A comment posted now: after the subscriptions the API just took (on the real clock)."""
    return comment(cid, author, text, parent=parent, at=datetime.now(UTC))


def member_token(sub: str, key: str = IDENTITY_KEY, ttl: int = 600) -> str:
    claims = {
        "sub": sub,
        "iss": "newsroom-identity",
        "aud": "newsroom-notify",
        "exp": int(time.time()) + ttl,
        "name": "Ana Lima",
        "email": "ana@example.org",
    }
    return jwt.encode(claims, key, algorithm="HS256")


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, Any] | str]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, payload, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers
        if "json" in kind.get("Content-Type", ""):
            return status, json.loads(payload)
        return status, payload.decode()


@pytest.fixture
def service(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[WorkerProcess, Client]]:
    """A worker, and the API as users reach it: the stand-alone process (a worker's own web port
    is internal: it serves no public route)."""
    env = worker_env(
        kafka_bootstrap,
        tmp_path,
        {
            "NEWSROOM_API__JWT_KEYS": json.dumps([IDENTITY_KEY]),
            "NEWSROOM_API__PER_IP_PER_MINUTE": "100000",
            "NEWSROOM_API__CONFIRMATIONS_PER_ADDRESS_PER_DAY": "100000",
            "NEWSROOM_METRICS_SAMPLE_S": "0.5",
        },
    )
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    worker.wait_ready()
    worker_url = f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}"
    api_port = str(free_port())
    api_env = {**env, "NEWSROOM_API__PORT": api_port, "NEWSROOM_API__WORKER_URL": worker_url}
    front = WorkerProcess(api_env, tmp_path / "api.log", "api", "api listening")
    front.start()
    front.wait_ready()
    yield worker, Client(f"http://127.0.0.1:{api_port}")
    assert front.stop() == 0, "the stand-alone API stops cleanly on SIGTERM"
    assert worker.stop() == 0


def notifications(bootstrap: str, prefix: str, total: int) -> list[ev.NotificationCreated]:
    records = run(drain(bootstrap, f"{prefix}newsroom.notifications", total, timeout=30))
    return [
        ev.NotificationCreated.model_validate(orjson.loads(r.value))
        for r in records
        if b"notification.created" in r.value
    ]


def test_guest_and_member_subscribe_confirm_get_notified_and_unsubscribe_over_http(
    kafka_bootstrap: str, service: tuple[WorkerProcess, Client]
) -> None:
    worker, client = service
    prefix = worker.env["NEWSROOM_TOPICS__PREFIX"]
    publish_events(kafka_bootstrap, prefix, [article("a-1")])
    publish_events(
        kafka_bootstrap,
        prefix,
        [comment("c1", GEOFF, "Guest here"), comment("c2", ANA, "Member here")],
    )

    # The guest subscribes to replies on the article: only a confirmation request comes.
    status, answer = client.call(
        "POST",
        "/v1/subscriptions",
        {
            "scope": "replies",
            "target": "a-1",
            "guest": {"name": "Geoff Roach", "email": "geoff.roach@example.org"},
        },
    )
    assert (status, answer) == (
        202,
        {"status": "confirmation_requested", "subscriber_id": GEOFF_ID},
    )
    # The member subscribes with a bearer token.
    bearer = {"Authorization": f"Bearer {member_token('m-ana')}"}
    status, answer = client.call(
        "POST", "/v1/subscriptions", {"scope": "replies", "target": "a-1"}, bearer
    )
    assert (status, answer) == (202, {"status": "accepted", "subscriber_id": "m-ana"})
    (request,) = notifications(kafka_bootstrap, prefix, 1)
    assert request.data.reason == "confirm_subscription"
    assert request.data.recipient.id == GEOFF_ID

    status, _ = client.call("POST", "/v1/confirm", {"token": request.data.confirm_token})
    assert status == 202
    status, listing = client.call(
        "GET", f"/v1/subscribers/{GEOFF_ID}/subscriptions?token={request.data.manage_token}"
    )
    deadline = time.monotonic() + 10
    while (
        not (isinstance(listing, dict) and listing.get("confirmed")) and time.monotonic() < deadline
    ):
        time.sleep(0.3)
        status, listing = client.call(
            "GET", f"/v1/subscribers/{GEOFF_ID}/subscriptions?token={request.data.manage_token}"
        )
    assert status == 200
    assert listing["subscriptions"] == [  # type: ignore[index]
        {"scope": "replies", "target": "a-1", "delivery": "instant", "active": True}
    ]

    # Ben replies to both: each gets a reply notification.
    publish_events(
        kafka_bootstrap,
        prefix,
        [
            now_comment("c3", BEN, "To Geoff", parent="c1"),
            now_comment("c4", BEN, "To Ana", parent="c2"),
        ],
    )
    got = notifications(kafka_bootstrap, prefix, 3)
    replies = {n.data.recipient.id: n for n in got if n.data.reason == "reply"}
    assert set(replies) == {GEOFF_ID, "m-ana"}

    # Both unsubscribe with the token of that notification, RFC 8058 one-click.
    for note in replies.values():
        path = f"/v1/unsubscribe?token={note.data.unsubscribe_token}"
        status, page = client.call("GET", path)
        assert status == 200
        assert "One-Click" in str(page)  # the GET only shows a page
        status, answer = client.call(
            "POST",
            path,
            raw=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200
        assert answer["status"] == "unsubscribed"  # type: ignore[index]
    time.sleep(2)
    publish_events(
        kafka_bootstrap,
        prefix,
        [
            now_comment("c5", BEN, "Again Geoff", parent="c1"),
            now_comment("c6", BEN, "Again Ana", parent="c2"),
        ],
    )
    time.sleep(3)
    assert len(notifications(kafka_bootstrap, prefix, 3)) == 3, "nothing after unsubscribing"

    # The worker's /metrics shows what happened (the stand-alone API has its own registry).
    worker_url = f"http://127.0.0.1:{worker.env['NEWSROOM_WEB_PORT']}"
    status, text = Client(worker_url).call("GET", "/metrics")
    assert status == 200
    metrics = str(text)
    created = 'type="newsroom.notification.created"'
    assert f'newsroom_notifications_total{{reason="reply",{created}}} 2.0' in metrics
    latency_count = f"newsroom_notification_latency_seconds_count{{{created}}}"
    assert f"{latency_count} 2.0" in metrics  # two replies; a confirmation request has no comment
    assert 'newsroom_table_keys{table="' in metrics
    assert 'newsroom_consumer_lag{partition="' in metrics
    assert "-changelog" not in metrics.split("newsroom_consumer_lag", 1)[1]  # inputs only


def test_forged_expired_and_other_subscriber_tokens_are_refused_over_http(
    service: tuple[WorkerProcess, Client],
) -> None:
    _, client = service
    forged = {
        "Authorization": f"Bearer {member_token('m-ana', key='not-the-identity-key-000000000000')}"
    }
    expired = {"Authorization": f"Bearer {member_token('m-ana', ttl=-60)}"}
    other = {"Authorization": f"Bearer {member_token('m-ben')}"}
    assert client.call("POST", "/v1/subscriptions", {"scope": "replies"}, forged)[0] == 401
    assert client.call("POST", "/v1/subscriptions", {"scope": "replies"}, expired)[0] == 401
    status, problem = client.call("GET", "/v1/subscribers/m-ana/subscriptions", headers=other)
    assert status == 403
    assert problem["title"] == "Forbidden"  # type: ignore[index]
    status, _ = client.call(
        "POST",
        "/v1/unsubscribe?token=forged.token.value",
        raw=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400
    assert client.call("GET", "/healthz") == (200, {"status": "ok", "checks": {}})
    status, ready = client.call("GET", "/readyz")
    assert status == 200
    assert all(ready["checks"].values())  # type: ignore[index]


def test_schemathesis_finds_no_server_error_or_schema_violation(
    service: tuple[WorkerProcess, Client],
) -> None:
    _, client = service
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            str(ROOT / "schemas" / "openapi.json"),
            "--url",
            client.base,
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout
