"""The composition root: ``create_app(settings)`` builds the Faust app and wires everything.

Agents here are thin: they take raw records off a topic and hand them to a named object that
a test can call directly. No module-level app exists; the CLI and tests call the factory.
"""

from __future__ import annotations

from typing import Any

import faust
import structlog
from faust.auth import SASLCredentials, SSLCredentials
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsroom_notify.contract.events import CloudEvent
from newsroom_notify.contract.topics import CATALOGUE
from newsroom_notify.settings import SecurityProtocol, Settings
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.ingest import Ingestor
from newsroom_notify.stream.transport import Transport

log = structlog.get_logger(__name__)


class NotifyApp(faust.App):
    """A Faust app whose producers are idempotent (see ``stream.transport``)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    ctx = kafka.ssl_context()
    if kafka.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
        assert kafka.sasl_password is not None  # enforced by KafkaSettings
        return SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism.value if kafka.sasl_mechanism else None,
            ssl_context=ctx,
        )
    if kafka.security_protocol == SecurityProtocol.SSL:
        return SSLCredentials(ctx)
    return None


def _raw_topic(app: faust.App, name: str, **kwargs: Any) -> Any:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
        **kwargs,
    )


async def log_event(event: CloudEvent) -> None:
    """Default handler until the pipeline stages are wired: one canonical line per event."""
    log.info("event accepted", event_type=event.type, event_id=event.id)


def create_app(settings: Settings, handle: Any = log_event) -> faust.App:
    """Build the service's Faust app from its settings."""
    app = NotifyApp(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka.bootstrap_list],
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_max_request_size=settings.topics.max_message_bytes + 64 * 1024,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_in_thread=False,
    )
    topics = settings.topics
    dead_letters = DeadLetterer(
        topic=_raw_topic(app, topics.name(topics.deadletter)), group=settings.app_id
    )
    for spec in CATALOGUE:
        if not spec.is_input:
            continue
        ingestor = Ingestor(
            role=spec.role,
            max_bytes=settings.max_record_bytes,
            dead_letters=dead_letters,
            handle=handle,
        )
        _add_ingest_agent(app, _raw_topic(app, spec.name(topics)), ingestor)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    return app


def _add_ingest_agent(app: faust.App, topic: Any, ingestor: Ingestor) -> None:
    async def ingest(stream: Any) -> None:
        async for event in stream.events():
            await ingestor.process(event.message)

    app.agent(topic, name=f"ingest-{ingestor.role}")(ingest)
