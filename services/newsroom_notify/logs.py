"""Logging set-up: structlog for our code, the same processors for faust/aiokafka stdlib loggers.

Configured once by the entrypoint. JSON lines when stderr is not a TTY (or ``log_format=json``),
a readable console otherwise. Per-message context (topic, partition, offset, event id) is bound
with ``structlog.contextvars`` by the stream shell and merged into every line.

Nothing here may ever print an e-mail address or a token: the ``redact`` processor is the last
line of defence, the first is not to log them at all.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_SECRET_KEYS = {"email", "token", "unsubscribe_token", "confirm_token", "password", "secret"}


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask e-mail addresses and values of secret-looking keys in a log event."""
    for key, value in list(event_dict.items()):
        if key in _SECRET_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str) and "@" in value:
            event_dict[key] = _EMAIL.sub("[email]", value)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
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
