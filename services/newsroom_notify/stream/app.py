"""The Faust app factory: ``create_app(settings, tokens)`` builds the worker's Faust app with the
pipeline's topics, tables and agents, /metrics and the gauges' timer.

Agents here are thin: they take raw records off a topic and hand them to a named object that
a test can call directly. No module-level app exists; the composition root
(``newsroom_notify.bootstrap``) calls the factory and mounts the subscription API on the app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import faust
import structlog
from faust.auth import SASLCredentials, SSLCredentials
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from newsroom_notify.clock import Clock
from newsroom_notify.domain.mentions import forget_all as forget_all_mentions
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.metrics import CONSUMER_LAG, TABLE_KEYS
from newsroom_notify.settings import SecurityProtocol, Settings
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.faust_ext.app import ExtendedApp
from newsroom_notify.stream.faust_ext.recovery import ChunkedTableManager
from newsroom_notify.stream.faust_ext.tables import DirectChangelogTable, table_size
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter
from newsroom_notify.stream.stages import Pipeline, install, raw_topic

log = structlog.get_logger(__name__)


class NotifyApp(ExtendedApp):
    """The worker's Faust app (the extensions of Faust: ``stream.faust_ext``)."""

    pipeline: Pipeline  # set by ``create_app``; tests and timers reach the stages through it


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


def create_app(
    settings: Settings, tokens: Tokens, clock: Callable[[], datetime] | None = None
) -> NotifyApp:
    """Build the service's Faust app from its settings (``clock``: tests may inject one)."""
    clock = clock or Clock(settings.digest.clock_speed, settings.digest.clock_anchor)
    app = NotifyApp(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka.bootstrap_list],
        broker_credentials=_credentials(settings),
        store=settings.store,
        datadir=settings.data_dir,
        table_standby_replicas=settings.standby_replicas,
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger=settings.kafka.linger_ms / 1000,
        producer_max_batch_size=settings.kafka.max_batch_bytes,
        producer_max_request_size=settings.topics.max_message_bytes + 64 * 1024,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_interval_s,
        broker_commit_interval=settings.kafka.commit_interval_s,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_in_thread=False,
        # The web port is internal (see api.web), and still: Faust's own pages list the tables
        # and print any record (e-mail addresses, tokens) to whoever asks. Not served.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        # (and its /performance page: the app's LeanMonitor keeps none of its statistics)
        web_metrics_enabled=False,
        Table=DirectChangelogTable,
        TableManager=ChunkedTableManager,
    )
    app.changelog_writer = ChangelogWriter(app, settings.limits.state_record_bytes)
    app.fetch_max_wait_ms = settings.kafka.fetch_max_wait_ms
    topics = settings.topics
    dead_letters = DeadLetterer(
        topic=raw_topic(app, topics.name(topics.deadletter)), group=settings.app_id
    )
    app.pipeline = install(app, settings, dead_letters, clock, tokens)

    async def forget_kept_mentions(
        _sender: Any, /, *_args: Any, signal: Any, **_kwargs: Any
    ) -> None:
        """Partitions revoked: the erasures of their threads may now be handled by another
        worker, so this one keeps no index of their participants' names (domain/mentions)."""
        forget_all_mentions()

    app.on_partitions_revoked.connect(forget_kept_mentions)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            response = self.bytes(generate_latest(), content_type="text/plain")
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST  # aiohttp refuses a charset
            return response

    async def sample_gauges() -> None:
        """Table sizes and consumer lag, for /metrics."""
        sample_state_metrics(app)

    app.timer(settings.metrics_sample_s)(sample_gauges)

    return app


def sample_state_metrics(app: faust.App) -> None:
    """Set the table-size and consumer-lag gauges; a failure is logged, never fatal."""
    try:
        for name, table in app.tables.items():
            TABLE_KEYS.labels(table=name).set(table_size(table))
        consumer = app.consumer
        monitor = app.monitor
        committed = monitor.tp_committed_offsets or {}
        ends = monitor.tp_end_offsets or {}
        CONSUMER_LAG.clear()  # partitions that moved to another worker are not ours to report
        for tp in consumer.assignment():
            # Only the partitions the agents consume and commit (not table changelogs), and
            # only once this worker knows both ends.
            if not app.topics.acks_enabled_for(tp.topic) or tp not in committed or tp not in ends:
                continue
            lag = max(ends[tp] - committed[tp], 0)
            CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
    except Exception:  # metrics must never take the worker down
        log.exception("sampling state metrics failed")
