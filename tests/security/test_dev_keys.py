"""Issue 15 item 4 (first part): the built-in dev-only keys are public (they are in this
repository), so a deployment that forgets to set one could have its tokens forged. Worker and
API refuse to start with them unless NEWSROOM_DEV_MODE is set, and say which variable to set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsroom_dev.kafka import free_port
from tests.integration.kafka_helpers import WorkerProcess
from tests.security.conftest import IDENTITY_KEY, TOKEN_KEY, production_env

CASES = {
    "both-defaults": ({}, ["NEWSROOM_TOKENS__SECRET_KEYS", "NEWSROOM_API__JWT_KEYS"]),
    "token-key-default": (
        {"NEWSROOM_API__JWT_KEYS": json.dumps([IDENTITY_KEY])},
        ["NEWSROOM_TOKENS__SECRET_KEYS"],
    ),
    "jwt-key-default": (
        {"NEWSROOM_TOKENS__SECRET_KEYS": json.dumps([TOKEN_KEY])},
        ["NEWSROOM_API__JWT_KEYS"],
    ),
    "dev-key-among-rotated-keys": (
        {
            "NEWSROOM_TOKENS__SECRET_KEYS": json.dumps([TOKEN_KEY, "dev-only-change-me"]),
            "NEWSROOM_API__JWT_KEYS": json.dumps([IDENTITY_KEY]),
        },
        ["NEWSROOM_TOKENS__SECRET_KEYS"],
    ),
}


@pytest.mark.parametrize("command", ["worker", "api"])
@pytest.mark.parametrize(("keys", "named"), CASES.values(), ids=CASES.keys())
def test_worker_and_api_refuse_to_start_with_a_dev_key(
    kafka_bootstrap: str, tmp_path: Path, command: str, keys: dict[str, str], named: list[str]
) -> None:
    env = production_env(kafka_bootstrap, tmp_path, {"NEWSROOM_API__PORT": str(free_port())})
    for variable in ("NEWSROOM_TOKENS__SECRET_KEYS", "NEWSROOM_API__JWT_KEYS"):
        env.pop(variable)
    env.update(keys)
    process = WorkerProcess(env, tmp_path / f"{command}.log", command)
    process.start()
    assert process.proc is not None
    assert process.proc.wait(timeout=60) == 2
    process.stop()
    output = process.log_text()
    assert "refusing to start" in output
    for variable in ("NEWSROOM_TOKENS__SECRET_KEYS", "NEWSROOM_API__JWT_KEYS"):
        assert (variable in output) == (variable in named), output
    assert "NEWSROOM_DEV_MODE" in output
    assert "dev-only-change-me" not in output  # the message names variables, not secrets
    assert "Worker ready" not in output
    assert "api listening" not in output


def test_dev_mode_lets_the_api_start_with_the_built_in_keys(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = production_env(
        kafka_bootstrap,
        tmp_path,
        {"NEWSROOM_DEV_MODE": "true", "NEWSROOM_API__PORT": str(free_port())},
    )
    for variable in ("NEWSROOM_TOKENS__SECRET_KEYS", "NEWSROOM_API__JWT_KEYS"):
        env.pop(variable)
    api = WorkerProcess(env, tmp_path / "api.log", "api", "api listening")
    api.start()
    try:
        api.wait_ready()
    finally:
        assert api.stop() == 0
