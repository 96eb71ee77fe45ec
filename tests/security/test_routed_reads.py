"""Issue 15 item 1: with the workers' port internal, a reader's profile read still reaches the
worker that owns the subscriber's partition. Two workers share the partitions; the API forwards
every read to the first, which routes the ones it does not own to the second over the internal
route (Faust's table routing), carrying the reader's credential."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsroom_dev.kafka import free_port
from newsroom_notify.contract.identity import guest_subscriber_id
from tests.integration.kafka_helpers import WorkerProcess
from tests.security.conftest import Stack, call, guest_subscribes, production_env

GUESTS = [f"routed.{n}@example.org" for n in range(12)]  # spread over the 4 partitions


@pytest.fixture
def two_workers(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Stack, list[str]]]:
    env = production_env(kafka_bootstrap, tmp_path)
    second_env = {
        **env,
        "NEWSROOM_WEB_PORT": str(free_port()),
        "NEWSROOM_DATA_DIR": str(tmp_path / "worker-2-data"),
    }
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    second = WorkerProcess(second_env, tmp_path / "worker-2.log")
    worker_url = f"http://127.0.0.1:{env['NEWSROOM_WEB_PORT']}"
    api_env = {
        **env,
        "NEWSROOM_API__PORT": str(free_port()),
        "NEWSROOM_API__WORKER_URL": worker_url,
    }
    api = WorkerProcess(api_env, tmp_path / "api.log", "api", "api listening")
    started = []
    try:
        for process in (first, second, api):
            process.start()
            started.append(process)
            process.wait_ready()
        stack = Stack(
            bootstrap=kafka_bootstrap,
            prefix=env["NEWSROOM_TOPICS__PREFIX"],
            env=env,
            worker=first,
            api=api,
            api_url=f"http://127.0.0.1:{api_env['NEWSROOM_API__PORT']}",
            worker_url=worker_url,
            metrics_url=f"http://127.0.0.1:{api_env['NEWSROOM_API__METRICS_PORT']}",
        )
        yield stack, [env["NEWSROOM_WEB_PORT"], second_env["NEWSROOM_WEB_PORT"]]
    finally:
        for process in reversed(started):
            assert process.stop() == 0


def _settled(stack: Stack, ports: list[str], timeout: float = 120.0) -> None:
    """Both workers ready: tables recovered, no rebalance in progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(call(f"http://127.0.0.1:{p}", "GET", "/readyz").status == 200 for p in ports):
            return
        time.sleep(0.5)
    raise TimeoutError("workers not ready")


def test_every_readers_profile_is_read_through_the_api_whichever_worker_owns_it(
    two_workers: tuple[Stack, list[str]],
) -> None:
    stack, worker_ports = two_workers
    manage = {}
    for n, email in enumerate(GUESTS):
        confirm = guest_subscribes(stack, email, f"Routed {n}", f"a-routed-{n}")
        manage[guest_subscriber_id(email)] = (confirm["data"]["manage_token"], f"a-routed-{n}")
    _settled(stack, worker_ports)
    for sid, (token, target) in manage.items():
        answer = stack.call("GET", f"/v1/subscribers/{sid}/subscriptions?token={token}")
        assert answer.status == 200, (sid, answer.text)
        assert [s["target"] for s in answer.json()["subscriptions"]] == [target]
        # Someone else's token is still refused by the owner, wherever it is.
        other = next(t for s, (t, _) in manage.items() if s != sid)
        assert stack.call("GET", f"/v1/subscribers/{sid}/subscriptions?token={other}").status == 403
