"""``newsroom-notify mailer``: the Kafka and SMTP shell around ``render`` and ``ledger``.

An aiokafka consumer in its own group (not a Faust agent) reads the notifications and digests
topics. For each fetched batch of a partition it first applies the batch's retractions, then
handles the records in order:

* ``notification.created`` / ``digest.ready`` -> skipped if its id was sent (duplicate) or, for
  a notification, retracted; else rendered and sent by SMTP with retries and backoff. After the
  server accepted the mail, the id is written to the sent log (a compacted topic, read back at
  start and on every partition assignment) and only then is the record's offset committed.
* ``notification.retracted`` -> remembered; one for a notification already sent is counted.
* a record that is no valid event, an event that can never be a mail, or a mail the server
  refuses for good (5xx to RCPT or DATA) -> the dead-letter topic, with the reason.

A transient failure (4xx, connection, timeout, authentication) after ``retry_attempts`` tries
seeks the partitions back to the first unhandled record and waits: nothing is skipped, and the
consumer keeps polling, so it stays in its group while the relay is down. SIGTERM finishes the
mail in flight, commits and stops. The one window for a duplicate is a crash between the SMTP
server's acceptance and the sent log's acknowledgement (milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import orjson
import structlog
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, TopicAlreadyExistsError

from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.codec import ErrorClass, Rejected
from newsroom_notify.contract.deadletter import dead_letter_headers
from newsroom_notify.mailer.ledger import Decision, Ledger
from newsroom_notify.mailer.render import (
    POLICY,
    Mail,
    MailConfig,
    Unsendable,
    render_digest,
    render_notification,
)
from newsroom_notify.metrics import (
    MAILER_DELIVERY,
    MAILER_MESSAGES,
    MAILER_RETRACTED_AFTER_SEND,
    MAILER_RETRIES,
    metrics_app,
)
from newsroom_notify.settings import Settings, SmtpSecurity

log = structlog.get_logger(__name__)


class Permanent(Exception):
    """The SMTP server refused this mail for good (5xx to RCPT or DATA)."""


class Transient(Exception):
    """The mail could not be sent now (4xx, connection, timeout, authentication...)."""


def mail_config(settings: Settings) -> MailConfig:
    """Rendering settings from the service settings."""
    m = settings.mailer
    return MailConfig(
        sender=m.sender,
        sender_name=m.sender_name,
        public_url=settings.api.public_url,
        timezone=m.timezone,
        message_id_domain=m.message_id_domain,
    )


def classify(exc: Exception) -> Exception:
    """Permanent for a 5xx answer to RCPT or DATA (this message or address), else Transient
    (the relay, the network or the credentials: another try, or an operator, can fix it)."""
    code = 0
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        code = min((r.code for r in exc.recipients), default=0)
    elif isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        code = exc.code
    what = f"SMTP {code}" if code else type(exc).__name__
    return Permanent(what) if 500 <= code < 600 else Transient(what)


SendFn = Callable[[Mail], Awaitable[None]]
WIRE_POLICY = POLICY.clone(cte_type="7bit")


def smtp_sender(settings: Settings) -> SendFn:
    """Send one mail through the configured relay (a new connection per mail)."""
    m = settings.mailer
    context: ssl.SSLContext | None = None
    if m.smtp_security != SmtpSecurity.NONE:
        context = ssl.create_default_context(cafile=m.smtp_cafile)

    async def send(mail: Mail) -> None:
        # Bytes, flattened under the message's own policy: given the message object, aiosmtplib
        # re-flattens it under email.policy.SMTP, which folds a long List-Unsubscribe into
        # RFC 2047 encoded words (no longer a URL to a mail client). 7-bit: 8-bit text parts
        # are re-encoded, so a relay without 8BITMIME takes the mail too.
        await aiosmtplib.send(
            mail.message.as_bytes(policy=WIRE_POLICY),
            sender=mail.sender,
            recipients=[mail.recipient],
            hostname=m.smtp_host,
            port=m.smtp_port,
            username=m.smtp_username,
            password=m.smtp_password.get_secret_value() if m.smtp_password else None,
            use_tls=m.smtp_security == SmtpSecurity.TLS,
            start_tls=m.smtp_security == SmtpSecurity.STARTTLS,  # required, or not at all
            tls_context=context,
            timeout=m.smtp_timeout_s,
        )

    return send


class SentLog:
    """The compacted topic of sent ids: written after each accepted mail, read back at start
    and whenever partitions are assigned (another mailer may have sent since)."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, ledger: Ledger) -> None:
        self.topic = settings.topics.name(settings.mailer.sent_topic)
        self._settings = settings
        self._producer = producer
        self._ledger = ledger
        self._reader = AIOKafkaConsumer(
            **settings.kafka.aiokafka_kwargs(), group_id=None, enable_auto_commit=False
        )
        self._parts: list[TopicPartition] = []

    async def ensure_topic(self) -> None:
        s = self._settings
        admin = AIOKafkaAdminClient(**s.kafka.aiokafka_kwargs())
        await admin.start()
        try:
            config = {
                "cleanup.policy": "compact,delete",
                "retention.ms": str(s.mailer.sent_retention_ms),
            }
            if s.kafka.min_insync_replicas:
                config["min.insync.replicas"] = str(s.kafka.min_insync_replicas)
            topic = NewTopic(self.topic, 1, s.kafka.replication_factor, topic_configs=config)
            with contextlib.suppress(TopicAlreadyExistsError):
                result = await admin.create_topics([topic])
                for _, code, *_ in getattr(result, "topic_errors", []):
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise RuntimeError(f"cannot create {self.topic}: error {code}")
        finally:
            await admin.close()

    async def start(self) -> int:
        await self.ensure_topic()
        partitions = await self._producer.partitions_for(self.topic)
        await self._reader.start()
        self._parts = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._reader.assign(self._parts)
        await self._reader.seek_to_beginning(*self._parts)
        return await self.catch_up()

    async def catch_up(self) -> int:
        """Read every sent id written until now into the ledger; returns how many."""
        ends = await self._reader.end_offsets(self._parts)
        count = 0
        while not await self._reached(ends):
            batch = await self._reader.getmany(*self._parts, timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key:
                        self._ledger.sent(record.key.decode("utf-8", "replace"))
                        count += 1
        return count

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._reader.position(tp) < end:
                return False
        return True

    async def record(self, event_id: str) -> None:
        value = orjson.dumps({"sent_at": datetime.now(UTC).isoformat()})
        await self._producer.send_and_wait(self.topic, key=event_id.encode(), value=value)

    async def stop(self) -> None:
        await self._reader.stop()


@dataclass
class _Handled:
    """The outcome of one record: commit it, or stop the batch and retry later."""

    commit: bool


class Mailer:
    """The consume -> render -> send -> record -> commit loop."""

    def __init__(self, settings: Settings, send: SendFn | None = None) -> None:
        self.settings = settings
        m = settings.mailer
        topics = settings.topics
        self.roles = {
            topics.name(topics.notifications): "notifications",
            topics.name(topics.digests): "digests",
        }
        self.deadletter_topic = topics.name(topics.deadletter)
        self.config = mail_config(settings)
        self.ledger = Ledger(m.max_sent_ids, m.max_retracted_ids)
        self.send = send or smtp_sender(settings)
        kafka = settings.kafka.aiokafka_kwargs()
        self.producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
        poll_budget_s = m.retry_attempts * (4 * m.smtp_timeout_s + m.retry_backoff_max_s) + 60
        self.consumer = AIOKafkaConsumer(
            **kafka,
            group_id=m.group_id,
            enable_auto_commit=False,
            auto_offset_reset=m.auto_offset_reset,
            max_poll_interval_ms=int(max(300.0, poll_budget_s) * 1000),
            session_timeout_ms=int(settings.kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(settings.kafka.heartbeat_interval_s * 1000),
        )
        self.sent_log = SentLog(settings, self.producer, self.ledger)
        self.busy = asyncio.Lock()  # held while a mail is in flight; a revocation waits for it
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        await self.producer.start()
        try:
            loaded = await self.sent_log.start()
            log.info("mailer sent log loaded", sent_ids=loaded, topic=self.sent_log.topic)
            self.consumer.subscribe(list(self.roles), listener=_Listener(self))
            await self.consumer.start()
            await self._loop()
        finally:
            await self.consumer.stop()
            await self.sent_log.stop()
            await self.producer.stop()
        log.info("mailer stopped")

    async def _loop(self) -> None:
        while not self.stopping.is_set():
            batch = await self.consumer.getmany(timeout_ms=300, max_records=200)
            pending = sorted(batch.items(), key=lambda item: item[1][0].timestamp)
            for index, (tp, records) in enumerate(pending):
                done = await self._partition(tp, records)
                if done < len(records):  # transient failure or stopping: re-read from there
                    self.consumer.seek(tp, records[done].offset)
                    for later_tp, later in pending[index + 1 :]:
                        self.consumer.seek(later_tp, later[0].offset)
                    if not self.stopping.is_set():
                        await self._pause(self.settings.mailer.retry_backoff_max_s)
                    break

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # ------------------------------------------------------------------ records

    async def _partition(self, tp: TopicPartition, records: list[Any]) -> int:
        """Handle a partition's batch in order; returns how many records were handled."""
        role = self.roles[tp.topic]
        decoded: list[ev.CloudEvent | Rejected] = []
        for record in records:
            try:
                decoded.append(
                    codec.decode(role, record.key, record.value, self.settings.max_record_bytes)
                )
            except Rejected as rejected:
                decoded.append(rejected)
        for event in decoded:  # retractions first: never send what the batch retracts
            if isinstance(event, ev.NotificationRetracted):
                self._retract(event)
        for done, (record, event) in enumerate(zip(records, decoded, strict=True)):
            if self.stopping.is_set() or tp not in self.consumer.assignment():
                return done
            handled = await self._record(record, event)
            if not handled.commit:
                return done
            await self._commit(tp, record.offset + 1)
        return len(records)

    def _retract(self, event: ev.NotificationRetracted) -> None:
        nid = event.data.notification_id
        if self.ledger.retract(nid):
            MAILER_RETRACTED_AFTER_SEND.inc()
            log.warning("retraction after the mail was sent", notification_id=nid)

    async def _record(self, record: Any, event: ev.CloudEvent | Rejected) -> _Handled:
        if isinstance(event, Rejected):
            await self._dead_letter(record, event, kind="unknown")
            return _Handled(commit=True)
        if isinstance(event, ev.NotificationRetracted):
            return _Handled(commit=True)
        if isinstance(event, ev.NotificationCreated):
            return await self._mail(record, event, "notification", event.data.notification_id)
        if isinstance(event, ev.DigestReady):
            return await self._mail(record, event, "digest", event.data.digest_id)
        return _Handled(commit=True)  # pragma: no cover - decode admits no other type

    async def _mail(self, record: Any, event: ev.CloudEvent, kind: str, eid: str) -> _Handled:
        retractable = kind == "notification"
        decision = self.ledger.decide(eid, retractable=retractable)
        if decision != Decision.SEND:
            MAILER_MESSAGES.labels(kind=kind, outcome=str(decision)).inc()
            log.info("mail skipped", id=eid, outcome=str(decision))
            return _Handled(commit=True)
        try:
            if isinstance(event, ev.NotificationCreated):
                mail = render_notification(event, self.config)
            else:
                assert isinstance(event, ev.DigestReady)
                mail = render_digest(event, self.config)
        except Unsendable as exc:
            if not getattr(event.data, "recipient", None) or not event.data.recipient.email:
                MAILER_MESSAGES.labels(kind=kind, outcome="skipped_no_address").inc()
                log.info("mail skipped", id=eid, outcome="skipped_no_address")
                return _Handled(commit=True)
            reason = Rejected(ErrorClass.PROCESSING_ERROR, f"unsendable: {exc.reason}")
            await self._dead_letter(record, reason, kind=kind)
            return _Handled(commit=True)
        async with self.busy:
            try:
                await self._deliver(mail)
            except Permanent as exc:
                reason = Rejected(ErrorClass.PROCESSING_ERROR, f"refused by the relay: {exc}")
                await self._dead_letter(record, reason, kind=kind)
                return _Handled(commit=True)
            except Transient as exc:
                log.warning("mail not sent yet; will try again", id=eid, error=str(exc))
                return _Handled(commit=False)
            await self.sent_log.record(eid)
            self.ledger.sent(eid)
        MAILER_MESSAGES.labels(kind=kind, outcome="sent").inc()
        MAILER_DELIVERY.labels(kind=kind).observe(
            max(0.0, (datetime.now(UTC) - event.time).total_seconds())
        )
        log.info("mail sent", id=eid, kind=kind)
        return _Handled(commit=True)

    async def _deliver(self, mail: Mail) -> None:
        m = self.settings.mailer
        delay = m.retry_backoff_s
        for attempt in range(1, m.retry_attempts + 1):
            try:
                await self.send(mail)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                failure = classify(exc)
                if isinstance(failure, Permanent):
                    raise failure from exc
                if attempt == m.retry_attempts or self.stopping.is_set():
                    raise failure from exc
                MAILER_RETRIES.inc()
                log.info("smtp try failed", id=mail.message_id, attempt=attempt, error=str(failure))
                await self._pause(delay)
                delay = min(delay * 2, m.retry_backoff_max_s)
            else:
                return

    async def _dead_letter(self, record: Any, rejected: Rejected, kind: str) -> None:
        headers = dead_letter_headers(record, rejected, self.settings.mailer.group_id)
        await self.producer.send_and_wait(
            self.deadletter_topic, key=record.key, value=record.value, headers=headers
        )
        MAILER_MESSAGES.labels(kind=kind, outcome="failed").inc()
        log.warning(
            "dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error_class=str(rejected.error_class),
            reason=rejected.message,
        )

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            await self.consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            # Revoked meanwhile: the next owner reads the sent log first and skips this id.
            log.warning("commit failed after a rebalance", error=type(exc).__name__)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.mailer.busy:  # the mail in flight is recorded before we let go
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        read = await self.mailer.sent_log.catch_up()
        for tp in assigned:  # resolve where each starts now (auto_offset_reset), not lazily
            await self.mailer.consumer.position(tp)
        log.info("mailer partitions assigned", partitions=len(assigned), new_sent_ids=read)
        if assigned and not self.mailer.ready.is_set():
            self.mailer.ready.set()
            log.info("mailer ready", partitions=len(assigned))


async def serve(settings: Settings, send: SendFn | None = None) -> None:
    """Run the mailer until SIGTERM or Ctrl-C, with /metrics on its internal port."""
    mailer = Mailer(settings, send)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, mailer.stopping.set)
    runner = web.AppRunner(metrics_app(), access_log=None)
    await runner.setup()
    m = settings.mailer
    await web.TCPSite(runner, m.metrics_host, m.metrics_port).start()
    log.info(
        "mailer starting",
        group=m.group_id,
        smtp_host=m.smtp_host,
        smtp_port=m.smtp_port,
        smtp_security=str(m.smtp_security),
        metrics_port=m.metrics_port,
    )
    started = time.monotonic()
    try:
        await mailer.run()
    finally:
        await runner.cleanup()
        log.info("mailer exited", uptime_s=round(time.monotonic() - started, 1))
