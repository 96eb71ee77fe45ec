"""README "Subscription HTTP API" over HTTP against the running worker on the real broker."""

from __future__ import annotations

import contextlib
import itertools
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

from newsroom_dev.kafka import free_port
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from newsroom_notify.stream.stages import key_partition
from tests.builders import article, comment, guest, member
from tests.integration.kafka_helpers import (
    WorkerProcess,
    drain_until,
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
WES = member("m-wes", "Wes Writer")  # writes the sentinel comments
PARTITIONS = 4  # worker_env's NEWSROOM_TOPICS__PARTITIONS


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
    api_env = {
        **env,
        "NEWSROOM_API__PORT": str(free_port()),
        "NEWSROOM_API__WORKER_URL": worker_url,
    }
    front = WorkerProcess(api_env, tmp_path / "api.log", "api", "api listening")
    front.start()
    front.wait_ready()
    # Where it really listens: a port taken meanwhile was drawn again (in api_env).
    yield worker, Client(f"http://127.0.0.1:{api_env['NEWSROOM_API__PORT']}")
    assert front.stop() == 0, "the stand-alone API stops cleanly on SIGTERM"
    assert worker.stop() == 0


def poll(
    client: Client,
    path: str,
    until: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """GET ``path`` until ``until(status, answer)`` holds: the state as users read it."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer = client.call("GET", path, headers=headers)
        if until(status, answer):
            return status, answer
        assert time.monotonic() < deadline, f"{path} still answers {status} {answer}"
        time.sleep(0.2)


def sentinel_for(recipient: str) -> str:
    """A member id whose records share ``recipient``'s partitions (the same key hash), so what
    reaches the sentinel was handled after everything sent to ``recipient`` before it."""
    want = key_partition(recipient, PARTITIONS)
    return next(
        sid
        for i in itertools.count()
        if key_partition(sid := f"m-sentinel-{i}", PARTITIONS) == want
    )


def after_sentinels(
    bootstrap: str, prefix: str, client: Client, recipients: set[str]
) -> list[ev.NotificationCreated]:
    """Every notification once all comments published so far on a-1 were handled for
    ``recipients``: a member sharing each recipient's partitions follows the article, and
    sentinel comments are published until each of them has heard of one."""
    sentinels = {sentinel_for(r) for r in recipients}
    for sid in sentinels:
        headers = {"Authorization": f"Bearer {member_token(sid)}"}
        body = {"scope": "article", "target": "a-1", "delivery": "instant"}
        assert client.call("POST", "/v1/subscriptions", body, headers)[0] == 202
    topic = f"{prefix}newsroom.notifications"

    def heard(records: list[Any]) -> bool:
        return sentinels <= {
            n.data.recipient.id
            for n in _created(records)
            if n.data.comment and n.data.comment.id.startswith("c-sentinel")
        }

    for attempt in range(12):  # until the sentinels' subscriptions have landed
        sentinel = comment(f"c-sentinel-{attempt}", WES, "Sentinel", at=datetime.now(UTC))
        publish_events(bootstrap, prefix, [sentinel])
        with contextlib.suppress(AssertionError):
            return _distinct(_created(run(drain_until(bootstrap, topic, heard, timeout=5))))
    raise AssertionError("no sentinel heard of a sentinel comment in a minute")


def _created(records: list[Any]) -> list[ev.NotificationCreated]:
    return [
        ev.NotificationCreated.model_validate(orjson.loads(r.value))
        for r in records
        if b"notification.created" in r.value
    ]


def metric(text: str, line: str) -> float:
    """The value of the metric sample ``line`` (name and labels) in a /metrics page, or 0."""
    for row in text.splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


def notifications(bootstrap: str, prefix: str, total: int) -> list[ev.NotificationCreated]:
    """Wait until the notifications topic holds ``total`` distinct notifications; return them,
    one per id (the guarantee is at-least-once: a consumer drops an id it already handled)."""
    records = run(
        drain_until(
            bootstrap,
            f"{prefix}newsroom.notifications",
            lambda got: len({n.id for n in _created(got)}) >= total,
        )
    )
    return _distinct(_created(records))


def _distinct(notes: list[ev.NotificationCreated]) -> list[ev.NotificationCreated]:
    return list({n.id: n for n in notes}.values())


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

    # The worker's /metrics shows what happened (the stand-alone API has its own registry).
    worker_url = f"http://127.0.0.1:{worker.env['NEWSROOM_WEB_PORT']}"
    created = 'type="newsroom.notification.created"'
    latency_count = f"newsroom_notification_latency_seconds_count{{{created}}}"
    lag_sample = 'newsroom_consumer_lag{partition="'

    def observed(_status: int, text: object) -> bool:
        # The latency of a notification is observed once it was sent; the lag gauge once the
        # sampler (every NEWSROOM_METRICS_SAMPLE_S) has seen a committed offset.
        return metric(str(text), latency_count) >= 2 and lag_sample in str(text)

    _, text = poll(Client(worker_url), "/metrics", observed, timeout=90)
    metrics = str(text)
    assert metric(metrics, f'newsroom_notifications_total{{reason="reply",{created}}}') == 2
    assert metric(metrics, latency_count) == 2  # two replies; a confirmation request has none
    assert 'newsroom_table_keys{table="' in metrics
    assert "-changelog" not in metrics.split("newsroom_consumer_lag", 1)[1]  # inputs only

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
    # Each sees their subscription gone...
    for sid, note in replies.items():
        poll(
            client,
            f"/v1/subscribers/{sid}/subscriptions?token={note.data.manage_token}",
            lambda s, a: s == 200 and a["subscriptions"] == [],
        )
    # ...and hears nothing of later replies: once sentinels sharing their partitions heard of a
    # comment published after these, the replies were handled.
    publish_events(
        kafka_bootstrap,
        prefix,
        [
            now_comment("c5", BEN, "Again Geoff", parent="c1"),
            now_comment("c6", BEN, "Again Ana", parent="c2"),
        ],
    )
    got = after_sentinels(kafka_bootstrap, prefix, client, {GEOFF_ID, "m-ana"})
    assert sorted(
        (n.data.recipient.id, n.data.reason, n.data.comment.id if n.data.comment else None)
        for n in got
        if not n.data.recipient.id.startswith("m-sentinel")
    ) == sorted(
        [
            (GEOFF_ID, "confirm_subscription", None),
            (GEOFF_ID, "reply", "c3"),
            ("m-ana", "reply", "c4"),
        ]
    ), "nothing after unsubscribing"


def test_preferences_cancellations_and_erasure_take_effect_over_http(
    service: tuple[WorkerProcess, Client],
) -> None:
    _, client = service
    ana = {"Authorization": f"Bearer {member_token('m-ana')}"}
    mine = "/v1/subscribers/m-ana/subscriptions"
    for request in (
        {"scope": "replies", "delivery": "instant"},
        {"scope": "article", "target": "a-1", "delivery": "instant"},
        {"scope": "article", "target": "a-2", "delivery": "digest"},
        {"scope": "commenter", "target": "m-ben", "delivery": "digest"},
    ):
        assert client.call("POST", "/v1/subscriptions", request, ana) == (
            202,
            {"status": "accepted", "subscriber_id": "m-ana"},
        )
    replies = {"scope": "replies", "target": None, "delivery": "instant", "active": True}
    a1 = {"scope": "article", "target": "a-1", "delivery": "instant", "active": True}
    a2 = {"scope": "article", "target": "a-2", "delivery": "digest", "active": True}
    ben = {"scope": "commenter", "target": "m-ben", "delivery": "digest", "active": True}
    poll(client, mine, lambda s, a: s == 200 and a["subscriptions"] == [a1, a2, ben, replies], ana)

    # PUT preferences: what Ana reads back is what she set.
    wanted = {
        "digest": "weekly",
        "timezone": "Europe/Berlin",
        "digest_hour": 7,
        "digest_weekday": 4,
        "quiet_hours": {"start": "22:00:00", "end": "06:30:00"},
        "paused": False,
        "muted_articles": ["a-9"],
    }
    status, answer = client.call("PUT", "/v1/subscribers/m-ana/preferences", wanted, ana)
    assert (status, answer) == (202, {"status": "accepted", "subscriber_id": "m-ana"})
    _, view = poll(client, mine, lambda s, a: a["preferences"]["digest"] == "weekly", ana)
    assert view["preferences"] == wanted
    assert view["subscriptions"] == [a1, a2, ben, replies], "preferences leave subscriptions be"

    # DELETE one subscription (scope and target): only that one goes.
    status, _ = client.call("DELETE", f"{mine}/article?target=a-1", headers=ana)
    assert status == 202
    poll(client, mine, lambda s, a: a["subscriptions"] == [a2, ben, replies], ana)

    # DELETE scope=digest (a digest's own unsubscribe): every digest-mode follow goes at once.
    status, _ = client.call("DELETE", f"{mine}/digest", headers=ana)
    assert status == 202
    _, view = poll(client, mine, lambda s, a: a["subscriptions"] == [replies], ana)
    assert view["preferences"] == wanted

    # DELETE the subscriber: nothing is left to read.
    status, answer = client.call("DELETE", "/v1/subscribers/m-ana", headers=ana)
    assert (status, answer) == (202, {"status": "accepted", "subscriber_id": "m-ana"})
    _, problem = poll(client, mine, lambda s, a: s == 404, ana)
    assert problem["title"] == "Not Found"


def test_forged_expired_and_other_subscriber_tokens_are_refused_over_http(
    service: tuple[WorkerProcess, Client],
) -> None:
    worker, client = service
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
    on_worker = client.base.endswith(f":{worker.env['NEWSROOM_WEB_PORT']}")
    checks = (
        {"broker_reachable": True, "tables_recovered": True, "not_rebalancing": True}
        if on_worker
        else {"broker_reachable": True}  # the stand-alone API
    )
    assert ready == {"status": "ok", "checks": checks}


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
