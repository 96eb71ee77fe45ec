"""The ``newsroom-notify`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
from typing import Any

import structlog

from newsroom_notify import __version__
from newsroom_notify.logs import configure_logging
from newsroom_notify.settings import DevKeysRefused, Settings

log = structlog.get_logger(__name__)


def changelog_topics(app: Any) -> list[str]:
    """The changelog topic of each of the app's tables."""
    return [table.changelog_topic.get_topic_name() for table in app.tables.values()]


# The cyclic garbage collector of a worker. CPython's default (700, 10, 10) runs a young
# collection every 700 allocations, and a full one every 100 of those whenever the objects that
# survived have grown by a quarter: a worker allocates and frees millions of short-lived objects
# per second, and a memo's or a batch's objects are promoted now and then, so in a
# 300,000-follower fan-out 112 full collections of its whole heap (each collecting next to
# nothing) took 15-20 % of its CPU (docs/benchmarks.md, "Garbage collection"). Objects freed by
# their reference count never wait for it; a young collection every 50,000 allocations holds
# at most that many objects of cyclic garbage. What start-up built (modules, models, the app)
# is frozen: never scanned again.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze what the process built so far out of the collector's reach and set its
    thresholds to ``GC_THRESHOLDS`` (the worker calls it once its app is built, before it
    runs)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import faust  # noqa: PLC0415 - keep `--help` fast

    from newsroom_notify.bootstrap import create_worker  # noqa: PLC0415

    logging_config = configure_logging(settings.log_level, settings.log_format)
    app = create_worker(settings)
    # Creates what is missing (unless NEWSROOM_CREATE_TOPICS=false), and refuses topics laid
    # out for another partition count in any case.
    created = _ensure_topics(settings, changelog_topics(app), "worker", settings.create_topics)
    if created is None:
        return 2
    if created:
        log.info("topics created", topics=created)
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
    tune_gc()
    worker.execute_from_commandline()  # returns only via SystemExit
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from newsroom_notify.bootstrap import serve_api  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_api(settings))
    return 0


def _mailer(settings: Settings, args: argparse.Namespace) -> int:
    from newsroom_notify.mailer.consumer import serve  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


DEV_MISSING = (
    "newsroom-notify {command}: this command is development tooling, in the package "
    "newsroom-notify-dev, which is not installed here (the service's wheel and image leave it "
    "out). In a checkout: `make install`, or `pip install -e services/dev`."
)


class DevPackageMissing(Exception):
    """The development harness (``newsroom_dev``) is not installed."""


def _dev_harness(command: str) -> None:
    """Raise ``DevPackageMissing`` unless the development harness can be imported. The service
    never imports it otherwise (``make lint``: only this module's ``demo`` and ``post
    --samples``)."""
    try:
        import newsroom_dev  # noqa: F401, PLC0415
    except ImportError:
        raise DevPackageMissing(DEV_MISSING.format(command=command)) from None


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    _dev_harness("demo")
    from newsroom_dev.demo import run_demo  # noqa: PLC0415

    return run_demo(
        settings, publish_only=args.publish_only, stay=not args.no_stay, run_dir=Path(args.dir)
    )


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from newsroom_notify.bootstrap import create_worker  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    created = _ensure_topics(settings, changelog_topics(create_worker(settings)), "topics")
    if created is None:
        return 2
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def _ensure_topics(
    settings: Settings, changelogs: list[str], command: str, create: bool = True
) -> list[str] | None:
    """The topics created (``ensure_topics``), or None once a topic laid out for another
    partition count was reported on stderr."""
    from newsroom_notify.stream.admin import TopicLayoutError, ensure_topics  # noqa: PLC0415

    try:
        return asyncio.run(ensure_topics(settings, changelogs, create=create))
    except TopicLayoutError as wrong:
        refusal = "refusing to start" if command == "worker" else "refusing to create topics"
        print(f"newsroom-notify {command}: {refusal}: {wrong}", file=sys.stderr)
        return None


async def _publish(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    from newsroom_notify.contract.codec import CONTENT_TYPE_HEADER  # noqa: PLC0415

    producer = AIOKafkaProducer(
        **settings.kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, key=key, value=value, headers=[CONTENT_TYPE_HEADER])
    finally:
        await producer.stop()


def _post(settings: Settings, args: argparse.Namespace) -> int:
    import orjson  # noqa: PLC0415

    from newsroom_notify.contract.events import INPUT_EVENTS, event_type_name  # noqa: PLC0415

    inputs = {event_type_name(m): m for m in INPUT_EVENTS}
    topics = settings.topics
    if args.samples:
        _dev_harness("post --samples")
        from newsroom_dev.samples import sample_events  # noqa: PLC0415

        raw_events = [e for t, e in sample_events().items() if t in inputs]
    else:
        with sys.stdin if args.file == "-" else open(args.file) as handle:
            loaded = orjson.loads(handle.read())
        raw_events = loaded if isinstance(loaded, list) else [loaded]
    records = []
    for raw in raw_events:
        model = inputs.get(raw.get("type", ""))
        if model is None:
            print(f"not an input event type: {raw.get('type')!r}", file=sys.stderr)
            return 2
        event = model.model_validate(raw)
        key = args.key or event.partition_key() or "unknown"
        topic = topics.name(getattr(topics, model.topic_role))
        records.append((topic, key.encode(), orjson.dumps(raw)))
        print(f"-> {topic} key={key} {event.type} id={event.id}")
    if args.samples:
        comments = topics.name(topics.comments)
        records.append((comments, b"a-broken", b'{"specversion": "1.0", "id": '))
        print(f"-> {comments} key=a-broken (truncated JSON: goes to the dead-letter topic)")
    asyncio.run(_publish(settings, records))
    return 0


async def _tail_topics(settings: Settings, from_beginning: bool) -> None:
    from aiokafka import AIOKafkaConsumer  # noqa: PLC0415

    from newsroom_notify.contract.describe import describe_record  # noqa: PLC0415

    topics = settings.topics
    names = [topics.name(t) for t in (topics.notifications, topics.digests, topics.deadletter)]
    consumer = AIOKafkaConsumer(
        *names,
        **settings.kafka.aiokafka_kwargs(),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async for record in consumer:
            line = describe_record(record.topic, record.key, record.value, list(record.headers))
            print(line, flush=True)
    finally:
        await consumer.stop()


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    try:
        asyncio.run(_tail_topics(settings, args.from_beginning))
    except KeyboardInterrupt:
        return 0
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``newsroom-notify``."""
    parser = argparse.ArgumentParser(
        prog="newsroom-notify",
        description=(
            "Event-driven notifications for news-site comment sections. Settings come from "
            "NEWSROOM_* environment variables (see docs/configuration.md)."
        ),
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser(
        "worker",
        help="run the stream worker (consumes inputs, emits notifications and digests)",
        description="Run the Faust stream worker. Creates missing topics first.",
    )
    worker.set_defaults(func=_worker, signs_tokens=True)
    api = sub.add_parser(
        "api",
        help="run the stand-alone subscription HTTP API (stateless; scale it freely)",
        description=(
            "Serve the subscription API on NEWSROOM_API__HOST:NEWSROOM_API__PORT. Commands are "
            "published to the subscriptions topic; profile reads are forwarded to "
            "NEWSROOM_API__WORKER_URL. Every worker also serves the same API on its web port."
        ),
    )
    api.set_defaults(func=_api, signs_tokens=True)
    mailer = sub.add_parser(
        "mailer",
        help="send notifications and digests as e-mail over SMTP (its own consumer group)",
        description=(
            "Consume the notifications and digests topics, render each to a multipart e-mail "
            "and send it through the SMTP relay of NEWSROOM_MAILER__SMTP_*; each id at most "
            "once, nothing retracted first. /metrics on NEWSROOM_MAILER__METRICS_PORT."
        ),
    )
    mailer.set_defaults(func=_mailer)
    demo = sub.add_parser(
        "demo",
        help="see it work: start Kafka (if none is configured), a worker and the API, publish "
        "a story and show what comes out, and why",
        description=(
            "Publish a realistic discussion (members and a guest, 'Notify of' choices, a reply "
            "chain, a mention, spam removed, an hourly digest on a sped-up clock) and print each "
            "event in and each notification, retraction and digest out with why. Starts a local "
            "Kafka unless NEWSROOM_KAFKA__BOOTSTRAP_SERVERS is set. Stays up afterwards; Ctrl-C "
            "stops everything it started."
        ),
    )
    demo.add_argument(
        "--publish-only",
        action="store_true",
        help="only publish the story and print the outputs (the workers run elsewhere)",
    )
    demo.add_argument("--no-stay", action="store_true", help="exit after the story")
    demo.add_argument("--dir", default=".run/demo", help="where logs and state go (.run/demo)")
    demo.set_defaults(func=_demo)
    topics = sub.add_parser(
        "topics",
        help="create the contract topics with the configured partitions and replication",
        description="Create any missing input/output/dead-letter topic, then exit.",
    )
    topics.set_defaults(func=_topics)
    post = sub.add_parser(
        "post",
        help="publish input events (a JSON file, stdin, or the built-in samples)",
        description=(
            "Publish CloudEvents to the input topics, keyed as the contract says. "
            "Each event is checked against the contract models first."
        ),
    )
    source = post.add_mutually_exclusive_group(required=True)
    source.add_argument("--samples", action="store_true", help="one sample of every input event")
    source.add_argument("--file", help="JSON file with one event or a list ('-' = stdin)")
    post.add_argument("--key", help="override the record key")
    post.set_defaults(func=_post)
    tail = sub.add_parser(
        "tail",
        help="print notifications, retractions, digests and dead letters as they come out",
        description="Follow the output topics and print one line per record (Ctrl-C stops).",
    )
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.set_defaults(func=_tail)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``newsroom-notify`` console script."""
    args = build_parser().parse_args(argv)
    settings = Settings()
    if getattr(args, "signs_tokens", False):
        try:
            settings.refuse_dev_keys()
        except DevKeysRefused as refused:
            print(f"newsroom-notify {args.command}: refusing to start: {refused}", file=sys.stderr)
            return 2
    try:
        return int(args.func(settings, args))
    except DevPackageMissing as missing:
        print(missing, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
