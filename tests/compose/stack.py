"""``make compose-test``: the compose stack, checked from outside its containers as a user would.

Brings the stack up with ``docker compose up -d --build --wait`` (the images named by the
environment: the official ones, or the stand-ins of deploy/docker/build-local-images.sh), then
checks, through the published ports only: the ``topics`` job created every topic; both workers
joined one consumer group and split the partitions; the stand-alone API takes a subscription
and reads it back from the worker that owns the subscriber; the ``demo`` profile's story
produces exactly the demo's notifications, retraction and digest (read on the host through the
broker's published listener); the mailer sends each of the story's notifications and its
digest to Mailpit, with the one-click unsubscribe headers (read through Mailpit's HTTP API on
its published port); Prometheus scrapes every target and loaded the alert rules;
killing one worker moves its partitions to the other and loses nothing; ``down -v`` leaves no
container, network or volume. A failed check prints the containers' logs and exits 1.

The workers run on a sped-up clock (``CLOCK_SPEED``, through a generated override file) so
that the demo's hourly digest arrives within minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from newsroom_dev.demo.clock import clock_anchor
from newsroom_notify.bootstrap import create_worker
from newsroom_notify.cli import changelog_topics
from newsroom_notify.settings import Settings
from newsroom_notify.stream.admin import topic_layout
from tests.demo_story import EXPECTED

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "newsroom-notify"
BOOTSTRAP = "127.0.0.1:9092"  # the broker's EXTERNAL listener, published on the host
API = "http://127.0.0.1:8080"
PROMETHEUS = "http://127.0.0.1:9090"
MAILPIT = "http://127.0.0.1:8025"
MAIL_DOMAIN = "news.example.com"  # of NEWSROOM_MAILER__SENDER: the Message-IDs' right-hand side
CLOCK_SPEED = 15.0  # a service hour in 4 real minutes: the whole story fits in one hour
LEAD_S = 90.0  # the service clock reads hh:01 this long after `up` starts
STORY_S = 60.0  # the demo's story must start this long before its hour ends
GROUP = "newsroom-notify"  # Settings.app_id: the workers' consumer group
SOURCES = ("newsroom.articles", "newsroom.comments", "newsroom.subscriptions")


class CheckFailed(Exception):
    """A check a user would notice failed."""


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} compose-test: {message}", flush=True)


def compose(*args: str, check: bool = True, capture: bool = False) -> str:
    command = ["docker", "compose", "-p", PROJECT, *COMPOSE_FILES, *args]
    result = subprocess.run(
        command, cwd=ROOT, text=True, capture_output=capture, check=False, timeout=900
    )
    if check and result.returncode != 0:
        detail = (result.stdout or "") + (result.stderr or "") if capture else ""
        raise CheckFailed(f"`{' '.join(command)}` exited {result.returncode}\n{detail}")
    return result.stdout or ""


COMPOSE_FILES: list[str] = ["-f", "docker-compose.yml"]


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Poll ``probe`` until it answers something truthy; fail naming ``what`` and its answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, urllib.error.URLError, ValueError, KafkaError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every)
    raise CheckFailed(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


# --------------------------------------------------------------------- Kafka, from the host


async def _group_assignment() -> dict[str, set[tuple[str, int]]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([GROUP])
    finally:
        await admin.close()
    _, _, state, _, _, members, *_ = described.groups[0]
    if state != "Stable":
        return {}
    owned = {}
    for member_id, _client_id, host, _metadata, assignment in members:
        decoded = ConsumerProtocolMemberAssignment.decode(assignment)
        owned[f"{host} {member_id}"] = {(t, p) for t, parts in decoded.assignment for p in parts}
    return owned


def group_assignment() -> dict[str, set[tuple[str, int]]]:
    return asyncio.run(_group_assignment())


async def _topics() -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _end_offsets(topics: list[str]) -> dict[TopicPartition, int]:
    # A producer's partitions_for waits for the topic's metadata (a consumer's does not).
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in await producer.partitions_for(t)]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(parts)
        return offsets
    finally:
        await consumer.stop()
        await producer.stop()


async def _read(
    start: dict[TopicPartition, int], done: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """Records after ``start`` until ``done(records)``, then 3 s more for extras."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    seen: list[dict[str, Any]] = []
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while time.monotonic() < (settle or deadline):
            batch = await consumer.getmany(timeout_ms=300)
            seen += [json.loads(r.value or b"{}") for rs in batch.values() for r in rs]
            if settle is None and done(seen):
                settle = time.monotonic() + 3.0
    finally:
        await consumer.stop()
    return seen


# --------------------------------------------------------------------- the checks


def check_topics() -> None:
    settings = Settings()  # the names depend on the app id and prefix: compose keeps defaults
    wanted = set(topic_layout(settings, changelog_topics(create_worker(settings))))
    got = asyncio.run(_topics())
    missing = wanted - got
    if missing:
        raise CheckFailed(f"the topics job did not create {sorted(missing)}")
    log(f"topics: all {len(wanted)} contract and changelog topics exist")


def check_group(members: int) -> dict[str, set[tuple[str, int]]]:
    wanted = {(tp.topic, tp.partition) for tp in asyncio.run(_end_offsets(list(SOURCES)))}

    def split() -> dict[str, set[tuple[str, int]]] | None:
        owned = group_assignment()
        if len(owned) != members:
            return None
        sources = [{tp for tp in parts if tp[0] in SOURCES} for parts in owned.values()]
        if set().union(*sources) != wanted or sum(map(len, sources)) != len(wanted):
            return None
        if members > 1 and not all(sources):
            return None
        return owned

    owned = wait_for(f"{members} worker(s) sharing every source partition", split, 180, 2)
    shares = {m.split()[0]: len(p) for m, p in owned.items()}
    log(f"group {GROUP}: {members} member(s), partitions split {shares}")
    return dict(owned)


def check_api() -> None:
    """A guest subscribes through the stand-alone API; the confirmation comes out of the worker
    owning the guest's partition, and the subscription reads back through the API (routed by
    worker-1 to that owner)."""
    start = asyncio.run(_end_offsets(["newsroom.notifications"]))
    guest = {"name": "Compose Check", "email": f"compose-{int(time.time())}@example.org"}
    status, answer = http(
        "POST",
        f"{API}/v1/subscriptions",
        {"scope": "replies", "target": "a-compose", "guest": guest},
    )
    if status != 202 or answer.get("status") != "confirmation_requested":
        raise CheckFailed(f"subscribe through the API: {status} {answer}")
    sid = answer["subscriber_id"]

    def confirmation(records: list[dict[str, Any]]) -> bool:
        return any(r["data"]["recipient"]["id"] == sid for r in records)

    records = asyncio.run(_read(start, confirmation, 180))
    (request,) = [r["data"] for r in records if r["data"]["recipient"]["id"] == sid]
    status, _ = http("POST", f"{API}/v1/confirm", {"token": request["confirm_token"]})
    if status != 202:
        raise CheckFailed(f"confirm through the API: {status}")
    url = f"{API}/v1/subscribers/{sid}/subscriptions?token={request['manage_token']}"

    def confirmed() -> Any:
        status, listing = http("GET", url)
        return status == 200 and isinstance(listing, dict) and listing.get("confirmed") and listing

    listing = wait_for("the confirmed subscription read back through the API", confirmed, 180)
    if listing["subscriptions"] != [
        {"scope": "replies", "target": "a-compose", "delivery": "instant", "active": True}
    ]:
        raise CheckFailed(f"the API read back {listing}")
    log("api: subscribe, confirmation, confirm and read-back through the published port 8080")


def check_demo(t0: float) -> list[dict[str, Any]]:
    now = time.time()
    hour_end = t0 + 59 * 60 / CLOCK_SPEED
    if now > hour_end - STORY_S:
        raise CheckFailed(
            f"the stack took too long: the demo's service hour ends in {hour_end - now:.0f} s"
        )
    if now < t0:
        log(f"demo: waiting {t0 - now:.0f} s for the service clock's next hour")
        time.sleep(t0 - now)
    start = asyncio.run(_end_offsets(["newsroom.notifications", "newsroom.digests"]))
    compose("--profile", "demo", "run", "--rm", "--no-deps", "demo")

    def digest(records: list[dict[str, Any]]) -> bool:
        return any(r["type"] == "newsroom.digest.ready" for r in records)

    wait = hour_end - time.time() + 120
    read = asyncio.run(_read(start, digest, wait))
    # At least once, with deterministic ids: a consumer drops an id it has seen (a rebalance
    # under load can deliver a record again), and so does this check.
    records = list({r["id"]: r for r in read}.values())
    created = [r["data"] for r in records if r["type"] == "newsroom.notification.created"]
    got = {(n["recipient"]["name"], n["reason"]) for n in created}
    retracted = [r["data"] for r in records if r["type"] == "newsroom.notification.retracted"]
    digests = [r["data"] for r in records if r["type"] == "newsroom.digest.ready"]
    about_spam = [
        n for n in created if (n.get("comment") or {}).get("author_name") == "Cheap Watches"
    ]
    problems = []
    if got != EXPECTED:
        problems.append(f"notifications {sorted(got)} != {sorted(EXPECTED)}")
    if [(r["recipient_id"], r["cause"]) for r in retracted] != [("m-ana", "spam")]:
        problems.append(f"retractions {retracted}")
    if len(about_spam) != 1:
        problems.append(f"{len(about_spam)} notifications about the spam")
    summary = [
        (d["recipient"]["name"], d["period"]["frequency"], d["total_comments"]) for d in digests
    ]
    if summary != [("Dan Hale", "hourly", 4)]:
        problems.append(f"digests {summary}")
    if problems:
        raise CheckFailed("the demo story on the topics: " + "; ".join(problems))
    log(
        f"demo: {len(created)} notifications {sorted(got)}, 1 retraction, digest {summary[0]}"
        f" ({len(read) - len(records)} records delivered again, dropped by id)"
    )
    return records


def _mailpit_messages() -> dict[str, dict[str, Any]]:
    """Mailpit's messages by Message-ID (without the angle brackets, as Mailpit lists it)."""
    status, answer = http("GET", f"{MAILPIT}/api/v1/messages?limit=1000")
    if status != 200 or not isinstance(answer, dict):
        raise ValueError(f"GET /api/v1/messages: {status} {answer!r:.200}")
    return {m["MessageID"]: m for m in answer["messages"]}


def check_mail(records: list[dict[str, Any]]) -> None:
    """Each of the story's notifications and its digest is a mail in Mailpit, to the event's
    recipient, with the one-click unsubscribe headers of the event's token (README "Sending
    e-mail"); the link works from the host. The notification retracted as spam may have been
    mailed before its retraction arrived: it is not required."""
    retracted = {
        r["data"]["notification_id"]
        for r in records
        if r["type"] == "newsroom.notification.retracted"
    }
    due = {}
    for r in records:
        data = r["data"]
        if r["type"] == "newsroom.notification.created":
            event_id = data["notification_id"]
        elif r["type"] == "newsroom.digest.ready":
            event_id = data["digest_id"]
        else:
            continue
        if data["recipient"].get("email") and event_id not in retracted:
            due[f"{event_id}@{MAIL_DOMAIN}"] = data
    if not any(d.get("reason") == "reply" for d in due.values()):
        raise CheckFailed(f"the story has no reply notification with an address: {due}")

    def all_landed() -> Any:
        messages = _mailpit_messages()
        return set(due) <= set(messages) and messages

    messages = wait_for(f"the story's {len(due)} mails in Mailpit", all_landed, 120, 2)
    problems = []
    for message_id, data in due.items():
        summary = messages[message_id]
        to = [a["Address"] for a in summary["To"]]
        if to != [data["recipient"]["email"]]:
            problems.append(f"{message_id}: To {len(to)} address(es), not the recipient's")
        status, headers = http("GET", f"{MAILPIT}/api/v1/message/{summary['ID']}/headers")
        if status != 200 or not isinstance(headers, dict):
            problems.append(f"{message_id}: headers {status}")
            continue
        token = data.get("unsubscribe_token")
        if not token:
            continue
        wanted = f"<{API}/v1/unsubscribe?token={urllib.parse.quote(token, safe='')}>"
        if headers.get("List-Unsubscribe") != [wanted]:
            problems.append(f"{message_id}: List-Unsubscribe {headers.get('List-Unsubscribe')}")
        if headers.get("List-Unsubscribe-Post") != ["List-Unsubscribe=One-Click"]:
            problems.append(f"{message_id}: List-Unsubscribe-Post missing or wrong")
    if problems:
        raise CheckFailed("the story's mails in Mailpit: " + "; ".join(problems))
    # What a mail client does with List-Unsubscribe-Post (RFC 8058), through the published port.
    reply = next(m for m, d in due.items() if d.get("reason") == "reply")
    status, headers = http("GET", f"{MAILPIT}/api/v1/message/{messages[reply]['ID']}/headers")
    url = headers["List-Unsubscribe"][0].strip("<>")
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if not 200 <= status < 300:
        raise CheckFailed(f"one-click unsubscribe from the mail's List-Unsubscribe: {status}")
    log(
        f"mail: the story's {len(due)} mails in Mailpit (of {len(messages)} there) with their "
        f"List-Unsubscribe(-Post) headers; the one-click POST answered {status}"
    )


def check_prometheus() -> None:
    def targets_up() -> Any:
        _, answer = http("GET", f"{PROMETHEUS}/api/v1/targets")
        active = answer["data"]["activeTargets"]
        health = {t["labels"]["instance"]: t["health"] for t in active}
        jobs = {t["labels"]["job"] for t in active}
        wanted = {"newsroom-notify-worker", "newsroom-notify-api", "newsroom-notify-mailer"}
        return wanted <= jobs and set(health.values()) == {"up"} and health

    health = wait_for("every Prometheus target up", targets_up, 120, 3)
    _, answer = http("GET", f"{PROMETHEUS}/api/v1/rules")
    rules = [r["name"] for g in answer["data"]["groups"] for r in g["rules"]]
    if not rules:
        raise CheckFailed(f"Prometheus loaded no alert rules: {answer}")
    log(f"prometheus: targets up {sorted(health)}, {len(rules)} alert rules loaded")


def check_failover(before: dict[str, set[tuple[str, int]]]) -> None:
    """Kill worker-2 (SIGKILL) with subscriptions in flight; worker-1 takes every partition and
    each guest still gets a confirmation request."""
    start = asyncio.run(_end_offsets(["newsroom.notifications"]))
    run = int(time.time())
    sids = set()

    def subscribe(i: int) -> None:
        guest = {"name": f"Guest {i}", "email": f"failover-{run}-{i}@example.org"}
        body = {"scope": "replies", "target": "a-failover", "guest": guest}
        status, answer = http("POST", f"{API}/v1/subscriptions", body)
        if status != 202:
            raise CheckFailed(f"subscribe {i}: {status} {answer}")
        sids.add(answer["subscriber_id"])

    for i in range(8):
        subscribe(i)
    compose("kill", "-s", "SIGKILL", "worker-2")
    for i in range(8, 16):
        subscribe(i)
    owned = check_group(1)
    (only,) = owned.values()
    sources = {tp for parts in before.values() for tp in parts if tp[0] in SOURCES}
    if not sources <= only:  # (standby copies are not assigned to a lone worker)
        raise CheckFailed(f"after the kill, the surviving worker owns {sorted(only)}")

    def all_confirmations(records: list[dict[str, Any]]) -> bool:
        return sids <= {r["data"]["recipient"]["id"] for r in records}

    records = asyncio.run(_read(start, all_confirmations, 180))
    got = {r["data"]["recipient"]["id"] for r in records}
    if not sids <= got:
        raise CheckFailed(f"lost in the failover: {len(sids - got)} of {len(sids)} confirmations")
    log(f"failover: worker-2 killed, worker-1 owns all partitions, {len(sids)} guests confirmed")


def check_down() -> None:
    compose("--profile", "demo", "down", "-v", "--remove-orphans")
    label = f"label=com.docker.compose.project={PROJECT}"
    left = {
        kind: subprocess.run(
            ["docker", kind, "ls", "-q", "--filter", label]
            + (["-a"] if kind == "container" else []),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for kind in ("container", "network", "volume")
    }
    if any(left.values()):
        raise CheckFailed(f"`down -v` left {left}")
    log("down -v: no container, network or volume left")


def clock_override(t0: float) -> str:
    """A compose override running the workers and the demo on a sped-up clock that reads one
    minute past a full hour at ``t0``."""
    anchor = clock_anchor(datetime.fromtimestamp(t0, UTC), CLOCK_SPEED)
    clock = {
        "NEWSROOM_DIGEST__CLOCK_SPEED": str(CLOCK_SPEED),
        "NEWSROOM_DIGEST__CLOCK_ANCHOR": anchor.isoformat(),
        "NEWSROOM_DIGEST__TICK_S": "1",
        "NEWSROOM_DIGEST__GRACE_S": "30",
    }
    services = {s: {"environment": clock} for s in ("worker-1", "worker-2", "demo")}
    return json.dumps({"services": services})


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        override = Path(tmp) / "clock.yml"
        COMPOSE_FILES.extend(["-f", str(override)])
        override.write_text(clock_override(time.time() + LEAD_S))
        try:
            compose("--profile", "demo", "down", "-v", "--remove-orphans")
            build = time.monotonic()
            compose("--profile", "demo", "build")
            log(f"images built in {time.monotonic() - build:.0f} s")
            t0 = time.time() + LEAD_S  # the demo's hour starts then, on the workers' clock
            override.write_text(clock_override(t0))
            up = time.monotonic()
            compose("up", "-d", "--build", "--wait")
            log(f"stack healthy in {time.monotonic() - up:.0f} s")
            print(compose("ps", "-a", capture=True), flush=True)
            check_topics()
            owned = check_group(2)
            check_api()
            story = time.monotonic()
            records = check_demo(t0)
            log(f"story through in {time.monotonic() - story:.0f} s")
            check_mail(records)
            check_prometheus()
            check_failover(owned)
        except Exception as failure:  # any failure: show the logs that explain it, clean up
            log(f"FAILED: {failure!r}")
            compose("--profile", "demo", "ps", "-a", check=False)
            compose("--profile", "demo", "logs", "--no-color", "--tail", "200", check=False)
            compose("--profile", "demo", "down", "-v", "--remove-orphans", check=False)
            return 1
        try:
            check_down()
        except CheckFailed as failure:
            log(f"FAILED: {failure}")
            return 1
    log(f"passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
