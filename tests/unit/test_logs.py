"""Logging: JSON lines with bound context, and no e-mail address or token ever printed."""

from __future__ import annotations

import json
import logging

import jwt
import pytest
import structlog
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from newsroom_notify.domain.tokens import TokenClaims, Tokens
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


# Addresses pydantic's EmailStr accepts (checked below), tokens the service mints or reads,
# and the places they hide: nested values, reprs, validation errors.
ADDRESSES = [
    "geoff.roach@example.org",
    "jörg.müller@bücher.example",
    "用户@例子.广告",
    "δοκιμή@παράδειγμα.δοκιμή",
    "o'brien+news@mail.example.ie",
    "ADMIN@EXAMPLE.COM",
    "x_y-z{1}@sub.dömain.co.uk",
]


def _minted_tokens() -> list[str]:
    tokens = Tokens(["k" * 32], 3600, 3600)
    claims = TokenClaims("guest_0123456789abcdef", "article", "a-1")
    return [
        tokens.manage("guest_0123456789abcdef"),
        tokens.unsubscribe(claims),
        tokens.confirm(claims),
        jwt.encode({"sub": "m-1", "email": "x@y.example"}, "k" * 32, algorithm="HS256"),
    ]


def test_every_address_of_the_corpus_is_one_emailstr_accepts() -> None:
    adapter = TypeAdapter(EmailStr)
    for address in ADDRESSES:
        adapter.validate_python(address)  # raises if the corpus were wrong


def _lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_addresses_and_tokens_are_masked_anywhere_in_a_log_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    log = structlog.get_logger("t")
    secrets = ADDRESSES + _minted_tokens()
    for secret in secrets:
        log.info(
            f"event text {secret}",
            plain=secret,
            sentence=f"sent to <{secret}>, ok",
            url=f"next=%2Fv1%2Funsubscribe%3Ftoken%3D{secret}",  # glued to what precedes it
            nested={"recipient": {"address": secret, "tags": [secret, (1, secret)]}},
            listed=[{"deep": [[secret]]}],
            raw=secret.encode("utf-8"),
            manage_token="short",
            Authorization="Bearer x",
        )
    err = capsys.readouterr().err
    for secret in secrets:
        assert secret not in err, secret
        assert secret.lower() not in err.lower(), secret
    lines = _lines(err)
    assert len(lines) == len(secrets)
    assert all(line["manage_token"] == "[redacted]" for line in lines)
    assert all(line["Authorization"] == "[redacted]" for line in lines)


def test_a_validation_error_logged_with_its_traceback_quotes_no_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Subscriber(BaseModel):
        name: str
        email: EmailStr
        age: int

    configure_logging("INFO", "json")
    try:
        Subscriber.model_validate(
            {"name": "URGENT visit evil.example", "email": "ana@@x.example", "age": "Ana Lopez"}
        )
    except ValidationError as exc:
        structlog.get_logger("t").exception("invalid", error=str(exc))
        logging.getLogger("faust.agents").exception("agent crashed")
    err = capsys.readouterr().err
    assert "ValidationError" in err  # the traceback is there, and what failed
    assert "email" in err
    for quoted in ("ana@@x.example", "Ana Lopez", "evil.example"):
        assert quoted not in err


def test_topic_names_and_ordinary_text_are_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    text = "t-1a2b3c4d.newsroom.notifications partition 3 at 12.5 s, v1.2.3 ok"
    structlog.get_logger("t").info(text, topic="staging.newsroom.deadletter", n=3, ratio=0.5)
    (line,) = _lines(capsys.readouterr().err)
    assert line["event"] == text
    assert line["topic"] == "staging.newsroom.deadletter"
    assert (line["n"], line["ratio"]) == (3, 0.5)


def test_a_huge_value_is_cut_and_still_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """A record's value in a log line (2 MB, say) is cut, and its head still redacted: before,
    the token pattern rescanned such a run from every position and the worker hung."""
    configure_logging("INFO", "json")
    huge = "ana@example.org t-1.newsroom.comments " + "x" * 2_000_000
    structlog.get_logger("t").warning("odd record", value=huge)
    logging.getLogger("aiokafka").warning("record %s", huge)
    lines = _lines(capsys.readouterr().err)
    assert len(lines) == 2
    for line in lines:
        text = json.dumps(line)
        assert len(text) < 20_000
        assert "more characters]" in text
        assert "ana@example.org" not in text
