"""Logging set-up: structlog for our code, the same processors for faust/aiokafka stdlib loggers.

Configured once by the entrypoint. JSON lines when stderr is not a TTY (or ``log_format=json``),
a readable console otherwise. Per-message context (topic, partition, offset, event id) is set
by the stream shell in ``RECORD`` (one context variable, a record's whole context: binding it
costs one ``set``, where ``structlog.contextvars`` costs a variable per field and a copy of the
context to clear them) and merged into every line, with anything bound through
``structlog.contextvars``.

Nothing here may ever print an e-mail address or a token: the ``redact`` processor is the last
line of defence, the first is not to log them at all.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Any address pydantic's ``EmailStr`` accepts, internationalised ones included (``\w`` is
# Unicode): a local part of word characters and the RFC 5322 atom symbols, an ``@`` (or the
# full-width one a copy-paste can bring), a domain of two or more labels.
# Each pattern may start only where its run of characters starts (the look-behind), so a long
# run is scanned once, not once per position: a multi-megabyte value costs linear time.
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?<!{_LOCAL}){_LOCAL}+[@\uff20][\w-]+(?:\.[\w-]+)+")
# Signed tokens: JWTs (``eyJ...``), itsdangerous tokens (confirm, erase, and unsubscribe and
# manage tokens minted before the links): three base64url segments (the first may start with
# "." when compressed), the signature at least 20 characters (HMAC-SHA1 is 27, HS256 43); and
# the links (unsubscribe, manage: ``domain/tokens.py``), four segments, the first their mark
# ``u2``/``m2`` (glued to what comes before it in a URL's ``token%3D``: the whole run is the
# first segment), the last 22 characters (half of their HMAC). Topic names have no segment
# that long.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_.-])\.?(?:[A-Za-z0-9_-]{2,}+\.){2,3}+[A-Za-z0-9_-]{20,}+")
# What pydantic's ValidationError quotes of the input: ``input_value='...', input_type=``.
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.MULTILINE)
# Keys whose values are never printed, at any depth (matched as substrings of the lower-cased
# key: ``manage_token``, ``Authorization``, ``sasl_password``...).
_SECRET_WORDS = ("email", "token", "password", "secret", "authorization", "cookie", "jwt")
_MAX_DEPTH = 8
# Formatted (then redacted) by the formatter, or structlog's own.
_LEFT_AS_IS = {"exc_info", "stack_info", "timestamp", "level", "logger"}


_MAX_TEXT = 8192  # longer log values are cut: a log line is no place for a record's value


def redact_text(text: str) -> str:
    """A string with e-mail addresses, signed tokens and quoted input values masked (and cut
    to ``_MAX_TEXT`` characters)."""
    if len(text) > _MAX_TEXT:
        text = f"{text[:_MAX_TEXT]}...[{len(text) - _MAX_TEXT} more characters]"
    if "input_value=" in text:
        text = _INPUT_VALUE.sub("input_value=[redacted]", text)
    if "." in text:
        text = _TOKEN.sub("[token]", text)
    if "@" in text or "\uff20" in text:
        text = _EMAIL.sub("[email]", text)
    return text


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)


def redact_value(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets masked, inside dicts, lists, tuples and sets too. Other objects
    are masked as their text if that text holds an address or a token."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return "[redacted: nested too deep]"
    if isinstance(value, dict):
        return {
            k: "[redacted]" if _secret_key(k) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    text = str(value)
    masked = redact_text(text)
    return value if masked == text else masked


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask e-mail addresses, tokens, quoted input values and values of secret-looking keys in
    a log event, at any depth."""
    for key, value in list(event_dict.items()):
        if _secret_key(key):
            event_dict[key] = "[redacted]"
        elif key not in _LEFT_AS_IS and not key.startswith("_"):  # "_record": stdlib's own
            event_dict[key] = redact_value(value)
    return event_dict


# The record being handled (``stream.ingest``): its fields, merged into every log line.
RECORD: ContextVar[dict[str, Any] | None] = ContextVar("newsroom_record", default=None)


def merge_record(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add the fields of the record being handled (``RECORD``) to a log line; a field the call
    itself gave wins."""
    record = RECORD.get()
    if record:
        for key, value in record.items():
            event_dict.setdefault(key, value)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        merge_record,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact,
    ]


def use_json(log_format: str) -> bool:
    """Whether to render JSON lines for the given ``log_format`` setting."""
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    return not sys.stderr.isatty()


def logging_dict_config(level: str, log_format: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that renders stdlib records through structlog.

    Faust's worker takes it as ``logging_config`` so its own loggers (and aiokafka's) go
    through the same processors as ours.
    """
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json(log_format)
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    redact,  # again: a formatted traceback can quote an input value
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # aiokafka is chatty at INFO about every (re)connect; keep its warnings.
            "aiokafka": {"level": "WARNING"},
            "faust.stores.rocksdb": {"level": "WARNING"},
        },
    }


def configure_logging(level: str = "INFO", log_format: str = "auto") -> dict[str, Any]:
    """Configure structlog and stdlib logging once; returns the dictConfig for Faust's worker."""
    config = logging_dict_config(level, log_format)
    logging.config.dictConfig(config)
    structlog.configure(
        processors=[
            # First: a debug call on the hot path costs a level check, not the whole chain.
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return config
