"""Test-suite wiring: markers by folder, the session-wide real Kafka broker, a fresh event
factory per test and the Hypothesis profile.

Hypothesis: no wall-clock deadline (this machine's two cores are shared; a slow example is not
a failure) and derandomized, so a run does not fail by chance on an example no earlier run
tried (``HYPOTHESIS_PROFILE=explore`` searches with random seeds and more examples).

``KAFKA_BOOTSTRAP_SERVERS`` set: the integration tests use that broker (e.g. one started by
``make kafka-up`` or docker compose). Unset: the session starts a real single-node Apache Kafka
from the jars Maven fetched (``newsroom_dev.kafka``) and stops it at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from newsroom_dev.builders import fresh_events
from newsroom_dev.kafka import LocalKafka

settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "unit" in parts:
            item.add_marker(pytest.mark.unit)
        elif {"integration", "e2e", "security", "browser"} & set(parts):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _fresh_events() -> Iterator[None]:
    """Each test builds its events from ``evt-1`` at ``T0`` + 1 s, whatever ran before it."""
    with fresh_events():
        yield


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real broker: the configured one, or one this session starts."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        print(f"\n[kafka] using existing broker at {configured}")
        yield configured
        return
    cluster = LocalKafka.create(tmp_path_factory.mktemp("kafka"), size=1)
    started = time.monotonic()
    cluster.start()
    print(
        f"\n[kafka] started Apache Kafka from Maven jars at {cluster.bootstrap_servers} "
        f"in {time.monotonic() - started:.1f}s (pid {cluster.nodes[0].pid})"
    )
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()
