"""The adversarial suite's stack: a real worker and the stand-alone API on the real broker.

One stack serves the whole folder (starting a worker costs seconds of the machine's two cores).
It is configured as production would be: its own token and identity keys, no development mode,
two trusted proxies in front of the API (so each test can act from its own client address by
sending ``X-Forwarded-For: <client>, <proxy>``), a low per-IP limit. Tests attack it over HTTP
and look at what a reader or an operator would see: status codes, response headers and bodies,
and what reached the Kafka topics.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from newsroom_dev.kafka import free_port
from tests.integration.kafka_helpers import WorkerProcess, run, worker_env

TOKEN_KEY = "security-suite-token-key-0123456789abcdef"
IDENTITY_KEY = "security-suite-identity-key-0123456789abcdef"
PER_IP_PER_MINUTE = 5
PROXY = "10.255.0.1"  # the "ingress" every test request claims to come through
_addresses = itertools.count(1)


def fresh_ip() -> str:
    """A client address no other request of this session used."""
    n = next(_addresses)
    return f"198.18.{n // 250}.{n % 250 + 1}"


@dataclass
class Answer:
    """What a client sees of one HTTP exchange."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(
    base: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    ip: str | None = None,
    forwarded_for: str | None = None,
) -> Answer:
    """One request as a browser, a mail client or a script would send it."""
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    if content_type is None and body is not None:
        content_type = "application/json"
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    if forwarded_for is None:
        forwarded_for = f"{ip or fresh_ip()}, {PROXY}"
    if forwarded_for:
        request.add_header("X-Forwarded-For", forwarded_for)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


@dataclass
class Stack:
    """The running worker and API, and where to reach them."""

    bootstrap: str
    prefix: str
    env: dict[str, str]
    worker: WorkerProcess
    api: WorkerProcess
    api_url: str
    worker_url: str  # the worker's internal port
    metrics_url: str  # the API's internal port

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        """A request to the public API port."""
        return call(self.api_url, method, path, **kwargs)

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def published(self, base: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        """Every record of a topic up to its current end: the API publishes before it
        answers, so whatever a request caused is in here once its answer arrived."""
        return list(run(_read_to_end(self.bootstrap, self.topic(base))))

    def wait_for(
        self, base: str, match: Callable[[dict[str, Any]], bool], timeout: float = 60.0
    ) -> dict[str, Any]:
        """The first record of a topic that ``match``es, once the worker has written it."""
        found = run(_wait_for(self.bootstrap, self.topic(base), match, timeout))
        assert found is not None, f"nothing matching on {base} within {timeout}s"
        return found


async def _read_to_end(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()  # fetches the topic's metadata
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        assert partitions, f"{topic} has no partitions"
        consumer.unsubscribe()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        got: list[tuple[bytes | None, dict[str, Any]]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend((r.key, orjson.loads(r.value)) for r in records if r.value)
        return got
    finally:
        await consumer.stop()


async def _wait_for(
    bootstrap: str, topic: str, match: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any] | None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value) if record.value else {}
                    if match(event):
                        return dict(event)
        return None
    finally:
        await consumer.stop()


def production_env(
    bootstrap: str, tmp: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """A worker's environment with keys of its own and no development mode."""
    return worker_env(
        bootstrap,
        tmp,
        {
            "NEWSROOM_DEV_MODE": "false",
            "NEWSROOM_TOKENS__SECRET_KEYS": json.dumps([TOKEN_KEY]),
            "NEWSROOM_API__JWT_KEYS": json.dumps([IDENTITY_KEY]),
            "NEWSROOM_API__PER_IP_PER_MINUTE": str(PER_IP_PER_MINUTE),
            "NEWSROOM_API__CONFIRMATIONS_PER_ADDRESS_PER_DAY": "100000",
            "NEWSROOM_API__TRUSTED_PROXY_HOPS": "2",
            **(extra or {}),
        },
    )


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``newsroom-notify worker`` and ``newsroom-notify api`` as an operator runs them."""
    tmp = tmp_path_factory.mktemp("security")
    env = production_env(kafka_bootstrap, tmp)
    worker = WorkerProcess(env, tmp / "worker.log")
    worker.start()
    api: WorkerProcess | None = None
    try:
        worker.wait_ready()
        worker_url = f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}"
        api_env = {
            **env,
            "NEWSROOM_API__PORT": str(free_port()),
            "NEWSROOM_API__WORKER_URL": worker_url,
        }
        api = WorkerProcess(api_env, tmp / "api.log", "api", "api listening")
        api.start()
        api.wait_ready()
        yield Stack(
            bootstrap=kafka_bootstrap,
            prefix=env["NEWSROOM_TOPICS__PREFIX"],
            env=env,
            worker=worker,
            api=api,
            api_url=f"http://127.0.0.1:{api_env['NEWSROOM_API__PORT']}",
            worker_url=worker_url,
            metrics_url=f"http://127.0.0.1:{api_env['NEWSROOM_API__METRICS_PORT']}",
        )
    finally:
        if api is not None:
            assert api.stop() == 0
        assert worker.stop() == 0


def guest_subscribes(stack: Stack, email: str, name: str, target: str) -> dict[str, Any]:
    """A guest subscribes through the API; returns the confirmation request the worker sent
    them (it carries their manage token), once it is on the notifications topic."""
    answer = stack.call(
        "POST",
        "/v1/subscriptions",
        body={"scope": "article", "target": target, "guest": {"name": name, "email": email}},
    )
    assert answer.status == 202, answer.text
    sid = answer.json()["subscriber_id"]
    return stack.wait_for(
        "newsroom.notifications",
        lambda e: (
            e.get("data", {}).get("reason") == "confirm_subscription"
            and e["data"]["recipient"]["id"] == sid
        ),
    )
