"""The fault scenarios: what breaks, when, and how it comes back."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsroom_dev.kafka import LocalKafka
from newsroom_dev.workload import Workload
from tests.faults.harness import FaultRun, Report, in_thread

Fault = Callable[[FaultRun], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Scenario:
    """A fault and the infrastructure it needs."""

    name: str
    fault: Fault | None
    workers: int = 1
    broker: str = "shared"  # "shared" (the session's), "own" (stoppable) or "cluster" (3 nodes)
    hits: int = 1  # faults in the stream: each due after a share of its outputs was observed
    poison: bool = False
    burst: bool = False  # after the normal workload, the burst phase as fast as possible


def sigkill_restarts(times: int) -> Fault:
    """kill -9 the worker mid-stream, restarting it each time."""

    async def fault(run: FaultRun) -> None:
        for hit in range(times):
            await run.due(hit)
            await in_thread(run.kill, 0, signal.SIGKILL)
            run.land()
            await in_thread(run.restart, 0)
            run.fault_ended = time.monotonic()

    return fault


async def kill_one_of_two(run: FaultRun) -> None:
    """Two workers share the partitions; one is killed; the other takes over."""
    await run.due(0)
    await in_thread(run.kill, 1, signal.SIGKILL)
    run.land()
    run.fault_ended = time.monotonic()


async def sigterm_restart(run: FaultRun) -> None:
    """Graceful shutdown mid-stream, then a new worker."""
    await run.due(0)
    await in_thread(run.kill, 0, signal.SIGTERM)
    run.land()
    await in_thread(run.restart, 0)
    run.fault_ended = time.monotonic()


def readiness(run: FaultRun) -> int:
    """The HTTP status of the first worker's /readyz (0 if it does not answer)."""
    port = run.workers[0].env["NEWSROOM_WEB_PORT"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


async def wait_readiness(run: FaultRun, status: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await in_thread(readiness, run) == status:
            return True
        await asyncio.sleep(0.3)
    return False


def broker_bounce(cluster: LocalKafka, down_s: float = 4.0) -> Fault:
    """The single broker is stopped under load and started again; /readyz must follow."""

    async def fault(run: FaultRun) -> None:
        await run.due(0)
        node = cluster.nodes[0]
        await in_thread(cluster.stop_node, node)
        run.land()
        run.observations["readyz_503_while_down"] = await wait_readiness(run, 503, down_s + 5)
        await asyncio.sleep(down_s)  # the length of the outage, not a synchronisation
        await in_thread(cluster.restart_node, node)
        run.fault_ended = time.monotonic()
        run.observations["readyz_200_after"] = await wait_readiness(run, 200, 60)
        run.observations["worker_alive"] = all(
            w.proc is not None and w.proc.poll() is None for w in run.workers
        )

    return fault


def cluster_node_kill(cluster: LocalKafka) -> Fault:
    """One broker of three is killed under load (the other two keep min.insync.replicas=2)."""

    async def fault(run: FaultRun) -> None:
        await run.due(0)
        await in_thread(cluster.stop_node, cluster.nodes[1], signal.SIGKILL, 0.0)
        run.land()
        run.fault_ended = time.monotonic()

    return fault


async def nothing(run: FaultRun) -> None:
    """No fault: the poison record or the burst is the test."""
    run.fault_ended = time.monotonic()


SCENARIOS = {
    "sigkill": Scenario("sigkill x3", sigkill_restarts(3), hits=3),
    "rebalance": Scenario("kill 1 of 2 workers", kill_one_of_two, workers=2),
    "broker_restart": Scenario("broker stop/start", None, broker="own"),
    "cluster_broker_kill": Scenario("3-node, kill 1 broker", None, broker="cluster"),
    "poison": Scenario("poison record", nothing, hits=0, poison=True),
    "burst": Scenario("burst", nothing, hits=0, burst=True),
    "sigterm": Scenario("SIGTERM + restart", sigterm_restart),
}


NORMAL_RATE = 150.0  # input events per second


async def run_scenario(key: str, shared_bootstrap: str, tmp: Path, workload: Workload) -> Report:
    """Set up what ``key`` needs, run the workload through its fault, tear down."""
    scenario = SCENARIOS[key]
    cluster: LocalKafka | None = None
    env: dict[str, str] = {}
    bootstrap = shared_bootstrap
    fault = scenario.fault
    if scenario.broker in ("own", "cluster"):
        size = 3 if scenario.broker == "cluster" else 1
        cluster = LocalKafka.create(tmp / "kafka", size=size)
        await in_thread(cluster.start)
        bootstrap = cluster.bootstrap_servers
        if size == 3:
            env = {
                "NEWSROOM_KAFKA__REPLICATION_FACTOR": "3",
                "NEWSROOM_KAFKA__MIN_INSYNC_REPLICAS": "2",
            }
            fault = cluster_node_kill(cluster)
        else:
            fault = broker_bounce(cluster)
    run = FaultRun(
        scenario.name,
        bootstrap,
        tmp,
        workload,
        workers=scenario.workers,
        env=env,
        hits=scenario.hits,
        burst=scenario.burst,
    )
    if scenario.poison:
        run.extra_records.append(
            (f"{run.prefix}newsroom.comments", b"a-000", b'{"specversion": "1.0", "id": POISON')
        )
    try:
        await in_thread(run.start_workers)
        report = await run.run(fault, rate=NORMAL_RATE)
    finally:
        await in_thread(run.stop_all)
        if cluster is not None:
            await in_thread(cluster.stop)
    return report
