"""The ``newsroom-notify`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from newsroom_notify import __version__
from newsroom_notify.logs import configure_logging
from newsroom_notify.settings import Settings

log = structlog.get_logger(__name__)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import faust  # noqa: PLC0415 - keep `--help` fast

    from newsroom_notify.stream.admin import ensure_topics  # noqa: PLC0415
    from newsroom_notify.stream.app import create_app  # noqa: PLC0415

    logging_config = configure_logging(settings.log_level, settings.log_format)
    if settings.create_topics:
        created = asyncio.run(ensure_topics(settings))
        if created:
            log.info("topics created", topics=created)
    app = create_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config,
        redirect_stdouts=False,
        quiet=True,
    )
    log.info(
        "worker starting",
        version=__version__,
        app_id=settings.app_id,
        bootstrap=settings.kafka.bootstrap_servers,
        store=settings.store,
    )
    worker.execute_from_commandline()  # returns only via SystemExit
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from newsroom_notify.stream.admin import ensure_topics  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    created = asyncio.run(ensure_topics(settings))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``newsroom-notify``."""
    parser = argparse.ArgumentParser(
        prog="newsroom-notify",
        description=(
            "Event-driven notifications for news-site comment sections. Settings come from "
            "NEWSROOM_* environment variables (see README)."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser(
        "worker",
        help="run the stream worker (consumes inputs, emits notifications and digests)",
        description="Run the Faust stream worker. Creates missing topics first.",
    )
    worker.set_defaults(func=_worker)
    topics = sub.add_parser(
        "topics",
        help="create the contract topics with the configured partitions and replication",
        description="Create any missing input/output/dead-letter topic, then exit.",
    )
    topics.set_defaults(func=_topics)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``newsroom-notify`` console script."""
    args = build_parser().parse_args(argv)
    settings = Settings()
    return int(args.func(settings, args))


if __name__ == "__main__":
    sys.exit(main())
