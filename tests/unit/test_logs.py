"""Logging: JSON lines with bound context, and no e-mail address or token ever printed."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from newsroom_notify.logs import configure_logging


def test_json_log_lines_carry_context_and_redact_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("DEBUG", "json")
    log = structlog.get_logger("t")
    structlog.contextvars.bind_contextvars(topic="newsroom.comments", partition=2, offset=41)
    try:
        log.info("guest subscribed", email="geoff.roach@example.org", note="from a@b.example.com")
        log.info("token minted", unsubscribe_token="abc.def.ghi")
    finally:
        structlog.contextvars.clear_contextvars()
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines[0]["event"] == "guest subscribed"
    assert lines[0]["topic"] == "newsroom.comments"
    assert lines[0]["offset"] == 41
    assert "example.org" not in err
    assert "a@b.example.com" not in err
    assert "abc.def.ghi" not in err


def test_stdlib_loggers_go_through_the_same_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("faust.worker").info("Worker ready for x@y.example.com")
    err = capsys.readouterr().err.strip().splitlines()[-1]
    line = json.loads(err)
    assert line["logger"] == "faust.worker"
    assert line["level"] == "info"
    assert "y.example.com" not in err


def test_an_exception_quoting_an_email_address_is_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A traceback is formatted after the first redaction: it is redacted again."""
    configure_logging("INFO", "json")
    try:
        raise ValueError("input_value='geoff.roach@example.org' is not valid")
    except ValueError:
        structlog.get_logger("t").exception("handler failed")
        logging.getLogger("faust.agents").exception("agent crashed")
    err = capsys.readouterr().err
    assert "ValueError" in err  # the traceback is there
    assert "example.org" not in err
