"""The three stages on Faust: their agents, internal topics and changelog-backed tables.

    articles + comments + <app>-threads   --threads agent-->   <app>-follows, <app>-inbox
    <app>-follows                          --follows agent-->   <app>-inbox, <app>-threads
    subscriptions  --subscriptions agent (re-key by subscriber)-->  <app>-inbox
    <app>-inbox                            --inbox agent-->     notifications, <app>-threads,
                                                                <app>-follows
    quiet-hours timer: Release per held recipient           -->  <app>-inbox

Each agent decodes, calls the domain handler for its key, and sends what it returns; the rules
live in ``newsroom_notify.domain``. All topics of one agent have the same number of partitions,
so every table is co-partitioned with the records that change it. Repartitioning is explicit:
a stage sends to the next stage's topic under that stage's key, and only what it decided to
send (filtering happens before the repartition, never after).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import faust
import structlog
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.events import CloudEvent
from newsroom_notify.domain.dispatch import Stages, command, deliver, in_sending_order
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.inbox.base import releases_due
from newsroom_notify.domain.inbox.digests import is_due
from newsroom_notify.domain.intents import Intent, Publish, Stage, ToRecipients, ToStage
from newsroom_notify.domain.keys import sent_key
from newsroom_notify.domain.messages import (
    Candidacy,
    CommenterFollowed,
    DigestTick,
    Forget,
    ForgetParticipant,
    Release,
    StageMessage,
)
from newsroom_notify.domain.state import (
    ActivitySlot,
    Authored,
    CommentInfo,
    DigestBuffer,
    DigestMember,
    Fanout,
    FollowerHead,
    Followers,
    Held,
    Pending,
    Profile,
    Quota,
    Sent,
    Thread,
    Traces,
    Unfollowed,
    stored_due_at,
    stored_release_at,
)
from newsroom_notify.domain.threads import ThreadsStage
from newsroom_notify.domain.tokens import InvalidToken, Tokens
from newsroom_notify.metrics import (
    BATCH_RECORDS,
    CAPPED,
    DIGESTS,
    LATENCY,
    NOTIFICATIONS,
    observe_many,
)
from newsroom_notify.settings import Settings
from newsroom_notify.stream.admin import INTERNAL_STAGES, THREADS_INPUTS, internal_topic_names
from newsroom_notify.stream.batching import Candidacies, partition_records
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.faust_ext.batches import event_batches, handling
from newsroom_notify.stream.faust_ext.partitioner import key_partition as bytes_partition
from newsroom_notify.stream.faust_ext.raw import RawSchema
from newsroom_notify.stream.faust_ext.tables import ModelTable, WriteBack, table_size
from newsroom_notify.stream.faust_ext.transport import Sender
from newsroom_notify.stream.ingest import Decoder, Ingestor, event_decoder

log = structlog.get_logger(__name__)
_debugging = logging.getLogger(__name__)  # its level check: a cached look-up (ingest.py)

# Messages every partition of their stage gets a copy of (``partition`` set in each).
BROADCAST = (Forget, ForgetParticipant, CommenterFollowed)

_STAGE_MESSAGE: TypeAdapter[Any] = TypeAdapter(
    Annotated[StageMessage | Candidacies, Field(discriminator="kind")]
)


def decode_stage_message(key: bytes | None, value: bytes | None) -> BaseModel:
    """Decode a message of an internal topic (written by this service)."""
    try:
        message: BaseModel = _STAGE_MESSAGE.validate_json(value or b"")
    except ValidationError as exc:
        raise codec.Rejected(
            codec.ErrorClass.SCHEMA_VIOLATION, f"internal message: {exc.error_count()} errors"
        ) from exc
    return message


def raw_topic(app: faust.App, *names: str, **kwargs: Any) -> Any:
    """A topic (or several) carrying bytes: decoding is ours, not Faust's."""
    # (``allow_empty`` again: ``app.topic`` would set its own default, False, on the schema)
    return app.topic(*names, schema=RawSchema(), allow_empty=True, **kwargs)


@dataclass
class Pipeline:
    """The stages, the topics they send to, and the sending."""

    stages: Stages
    # Topic names: of each stage (by ``Stage``) and of each output event's contract role
    # (``CloudEvent.topic_role``: notifications, digests). The shell owns them, not the domain.
    topics: dict[str, str]
    tokens: Tokens
    sender: Sender
    inbox_partitions: int
    batch_recipients: int = 1_000  # per fan-out record: its size stays far below the limit
    # Reads a fan-out record's recipients' state together before the inbox decides
    # (``read_ahead``: from ``READ_AHEAD_FROM`` recipients); none by default.
    read_ahead: Callable[[Candidacies], None] = lambda _record: None

    async def route(self, intents: Sequence[Intent]) -> None:
        """Carry out what a handler asked for: each message to its stage's topic under its key
        (in ``in_sending_order``; a fan-out's candidacies as one record per inbox partition:
        ``partition_records``), each event published to its contract topic."""
        if intents and _debugging.isEnabledFor(logging.DEBUG):
            kinds = Counter(
                f"{i.stage}:{getattr(i.message, 'kind', type(i.message).__name__)}"
                if isinstance(i, ToStage)
                else f"inbox:candidacies x{len(i.bases)}"
                if isinstance(i, ToRecipients)
                else f"publish:{i.event.type}"
                for i in intents
            )
            log.debug("routing", messages=dict(kinds))
        send = self.sender.send
        for intent in in_sending_order(intents):
            if isinstance(intent, ToRecipients):
                topic = self.topics[Stage.INBOX]
                records = partition_records(intent, self.inbox_partition, self.batch_recipients)
                for partition, first, record in records:
                    value = record.model_dump_json().encode("utf-8")
                    await send(topic, first.encode("utf-8"), value, partition=partition)
                continue
            if isinstance(intent, Publish):
                event = intent.event
                key, value = codec.encode(event, intent.key)
                await send(self.topics[event.topic_role], key, value, [codec.CONTENT_TYPE_HEADER])
                count_output(event)
                continue
            topic, message = self.topics[intent.stage], intent.message
            if isinstance(message, BROADCAST):  # to every partition, each told which
                for partition in range(self.inbox_partitions):  # the stages' topics: as many
                    copy = message.model_copy(update={"partition": partition})
                    encoded = copy.model_dump_json().encode("utf-8")
                    await send(topic, intent.key.encode("utf-8"), encoded, None, partition)
            else:
                await send(
                    topic, intent.key.encode("utf-8"), message.model_dump_json().encode("utf-8")
                )

    def inbox_partition(self, recipient_id: str) -> int:
        """The inbox partition of a recipient: where the producer would put their key."""
        return key_partition(recipient_id, self.inbox_partitions)

    @property
    def inbox(self) -> InboxStage:
        """The inbox stage (its timers ask it which digests are due)."""
        return self.stages.inbox

    async def on_thread_record(self, key: str, message: BaseModel) -> None:
        """threads agent: an article/comment event (key article id) or a thread command."""
        if isinstance(message, CloudEvent):
            key = message.partition_key() or key
        await self.route(deliver(self.stages, Stage.THREADS, key, message))

    async def on_follows_record(self, key: str, message: BaseModel) -> None:
        """follows agent: activity and follower changes of one entity."""
        await self.route(deliver(self.stages, Stage.FOLLOWS, key, message))

    async def on_subscription_event(self, key: str, message: BaseModel) -> None:
        """subscriptions agent: re-key a command by its subscriber and pass it to the inbox."""
        assert isinstance(message, CloudEvent)
        try:
            cmd = command(message, self.tokens)
        except InvalidToken as exc:
            raise codec.Rejected(codec.ErrorClass.INVALID_TOKEN, str(exc)) from exc
        await self.route([ToStage(Stage.INBOX, cmd.subscriber_id, cmd)])

    async def on_inbox_record(self, key: str, message: BaseModel) -> None:
        """inbox agent: everything about one subscriber (or a fan-out's candidacies for the
        subscribers of this partition, decided together: ``on_candidacies``)."""
        if isinstance(message, Candidacies):
            # Each candidacy decided as if it had come alone (its recipient's state), without
            # a ``Candidacy`` each; what they ask for sent together: one ``route`` a record.
            self.read_ahead(message)
            intents = self.stages.inbox.on_candidacies(
                message.subject, message.at, message.origin, message.bases, message.choices
            )
        else:
            intents = deliver(self.stages, Stage.INBOX, key, message)
        await self.route(intents)
        if isinstance(message, Candidacy | Candidacies):
            observe_latency(message.at, intents)


# Recipients of a fan-out record from which they are read ahead: a record of a comment's few
# recipients (most have one or two) is cheaper read one by one. A scratch script over
# ``ModelTable`` on rocksdict (3 December 2026), profile and ``sent`` read per recipient, µs
# per recipient one by one / read ahead: 1 recipient 36-38 / 49-51, 2: 13-32 / 20-38, 4 to
# 16: the same within the noise (11-16); rocksdict's multi-get of one key costs more than
# its get (8.2-9.2 against 6.6-7.0 µs), of thousands less (docs/benchmarks.md).
READ_AHEAD_FROM = 8


def read_ahead(profiles: ModelTable[Profile], sent: ModelTable[Sent]) -> Callable[[Any], None]:
    """A fan-out record's recipients' profiles and ``sent`` records (for its subject), each
    table's read together (``ModelTable.read_ahead``): what the inbox reads of each recipient,
    a RocksDB multi-get instead of two reads per recipient; for a record of at least
    ``READ_AHEAD_FROM`` recipients."""

    def read(record: Candidacies) -> None:
        if len(record.bases) < READ_AHEAD_FROM:
            return
        profiles.read_ahead(record.bases)
        subject = record.subject.key
        sent.read_ahead([sent_key(rid, subject) for rid in record.bases])

    return read


def key_partition(key: str, partitions: int) -> int:
    """The partition the producer's default partitioner (murmur2, as the Java client) gives
    ``key`` in a topic of ``partitions`` partitions."""
    return bytes_partition(key.encode("utf-8"), partitions)


def at_most_every(seconds: float, count: Callable[[], int]) -> Callable[[], int]:
    """``count``, called again only when its last answer is ``seconds`` old (a cap's estimate:
    a comment must not pay for counting a table)."""
    last: list[float] = [-seconds, 0]

    def counted() -> int:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[:] = [now, count()]
        return int(last[1])

    return counted


def count_capped(record: str) -> None:
    """A per-key state record reached its cap (the consequence is the domain's, README)."""
    CAPPED.labels(record=record).inc()
    log.warning("state record at its cap", record=record)


@functools.cache
def _notifications(kind: str, reason: str) -> Any:
    return NOTIFICATIONS.labels(type=kind, reason=reason)  # looked up once per label pair


@functools.cache
def _latency(kind: str) -> Any:
    return LATENCY.labels(type=kind)


def count_output(event: CloudEvent) -> None:
    """Count a published notification, retraction or digest."""
    if isinstance(event, ev.DigestReady):
        DIGESTS.labels(schedule=event.data.period.frequency).inc()
    else:
        _notifications(event.type, getattr(event.data, "reason", "retraction")).inc()


_CREATED: str = ev.NotificationCreated.model_fields["type"].default  # the notification's type


def observe_latency(event_time: datetime, intents: list[Intent]) -> None:
    """Event time of the candidacy's comment to now, for each instant notification sent (one
    observation each, recorded together: they share the time)."""
    sent = sum(
        1
        for intent in intents
        if isinstance(intent, Publish) and isinstance(intent.event, ev.NotificationCreated)
    )
    if sent:
        elapsed = (datetime.now(UTC) - event_time).total_seconds()
        observe_many(_latency(_CREATED), max(elapsed, 0.0), sent)


def install(
    app: faust.App,
    settings: Settings,
    dead_letters: DeadLetterer,
    clock: Callable[[], datetime],
    tokens: Tokens,
) -> Pipeline:
    """Create the internal topics, tables and agents of the pipeline on ``app``."""
    topics = settings.topics
    partitions = topics.partitions
    limits = settings.limits
    internal = {
        stage: raw_topic(app, name, partitions=partitions)
        for stage, name in zip(INTERNAL_STAGES, internal_topic_names(settings), strict=True)
    }

    # One per stage: each agent writes only its own stage's tables, and flushes (or, if a batch
    # is interrupted, drops) only what its own batch wrote.
    # The inbox's writes go out after each record, not each batch: its outputs (notifications,
    # digests) reach the producer while the record is handled, and a digest cut must not stay
    # unrecorded for a whole batch (a kill -9 then lost the cut and a later period listed the
    # same comments again: the fault suite's sigkill scenario). Its keys are recipients, which
    # a batch rarely repeats; the threads stage's hot article is what batching saves.
    write_backs = {
        stage: WriteBack.per_record() if stage is Stage.INBOX else WriteBack() for stage in Stage
    }

    def table(name: str, model: type[BaseModel], stage: Stage) -> ModelTable[Any]:
        # bytes key/value types make Faust store and changelog them raw (our JSON).
        faust_table = app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=partitions,
            extra_topic_configs=topics.changelog_configs(),  # if Faust creates the topic
            options=settings.rocksdb_options(),  # bounded memory per table partition
        )
        return ModelTable(faust_table, model, limits.state_record_bytes, write_backs[stage])

    held = table("held", Held, Stage.INBOX)
    profiles, sent = table("profiles", Profile, Stage.INBOX), table("sent", Sent, Stage.INBOX)
    sender = Sender(app, limits.state_record_bytes)
    pending = table("digest-pending", Pending, Stage.THREADS)
    digests = table("digests", DigestBuffer, Stage.INBOX)
    # Keyed by commenter, one copy per threads partition: each partition writes and reads its
    # own (NoFollowers comes to the partition that asked; CommenterFollowed to every one).
    # (0: the shortcut off; no table, and the threads stage never asks.)
    shortcut = limits.unfollowed_commenters > 0
    unfollowed = table("unfollowed-commenters", Unfollowed, Stage.THREADS) if shortcut else None
    pipeline = Pipeline(
        stages=Stages(
            threads=ThreadsStage(
                table("threads", Thread, Stage.THREADS),
                table("comments", CommentInfo, Stage.THREADS),
                table("digest-followers", Followers, Stage.THREADS),
                table("digest-members", DigestMember, Stage.THREADS),
                table("activity", ActivitySlot, Stage.THREADS),
                pending,
                table("authored", Authored, Stage.THREADS),
                clock=clock,
                slot_minutes=settings.digest.slot_minutes,
                items_per_article=settings.digest.items_per_article,
                participants_max=limits.thread_participants,
                instant_followers_max=limits.thread_instant_followers,
                followers_max=limits.followers,
                authored_max=limits.authored_comments,
                on_capped=count_capped,
                owns=lambda aid, p: p is None or key_partition(aid, partitions) == p,
                unfollowed=unfollowed,
                unfollowed_max=limits.unfollowed_commenters,
                # Counting a table's keys can mean reading them all: at most every 10 s.
                unfollowed_count=at_most_every(
                    10.0, lambda: table_size(unfollowed.table) if unfollowed else 0
                ),
            ),
            follows=FollowsStage(
                table("follower-heads", FollowerHead, Stage.FOLLOWS),
                table("follower-chunks", Followers, Stage.FOLLOWS),
                table("fanout", Fanout, Stage.FOLLOWS),
                followers_max=limits.followers,
                publisher_followers_max=limits.publisher_followers,
                step_recipients=limits.fanout_step_recipients,
                on_capped=count_capped,
                # Before the chunks: moved on first use.
                legacy=table("followers", Followers, Stage.FOLLOWS),
                tell_no_followers=shortcut,
            ),
            inbox=InboxStage(
                profiles,
                sent,
                held,
                digests,
                table("traces", Traces, Stage.INBOX),
                tokens=tokens,
                clock=clock,
                quotas=table("quotas", Quota, Stage.INBOX),
                confirmations_per_day=settings.api.confirmations_per_address_per_day,
                source=settings.source,
                digest_grace=timedelta(seconds=settings.digest.grace_s),
                items_per_article=settings.digest.items_per_article,
                owns=lambda rid, p: p is None or key_partition(rid, partitions) == p,
                held_max=limits.held_notifications,
                digest_items_max=limits.digest_items,
                digest_contributions_max=limits.digest_contributions,
                subscriptions_max=limits.subscriptions,
                traces_max=limits.traces,
                on_capped=count_capped,
            ),
        ),
        topics={
            Stage.THREADS: internal[Stage.THREADS].get_topic_name(),
            Stage.FOLLOWS: internal[Stage.FOLLOWS].get_topic_name(),
            Stage.INBOX: internal[Stage.INBOX].get_topic_name(),
            "notifications": topics.name(topics.notifications),
            "digests": topics.name(topics.digests),
        },
        tokens=tokens,
        sender=sender,
        inbox_partitions=partitions,
        batch_recipients=limits.fanout_batch_recipients,
        read_ahead=read_ahead(profiles, sent),
    )
    subscriptions = topics.name(topics.subscriptions)
    internal_name = {name: topic.get_topic_name() for name, topic in internal.items()}
    max_bytes = settings.max_record_bytes
    # The contract's inputs the threads agent reads (the topics' check knows them by this list).
    threads_inputs = {
        topics.name(getattr(topics, role)): event_decoder(role, max_bytes)
        for role in THREADS_INPUTS
    }

    def agent(
        name: str, decoders: dict[str, Decoder], handle: Any, stage: Stage | None = None
    ) -> None:
        ingestor = Ingestor(name, decoders, dead_letters, handle)
        write_back = write_backs[stage] if stage is not None else WriteBack()

        async def process(stream: Any) -> None:
            # A batch: each record handled under its own event (its partition), the tables'
            # writes kept and written once per key at the end, then the batch acknowledged.
            batch_records = BATCH_RECORDS.labels(agent=name)
            async for batch in event_batches(stream, settings.kafka.batch_max_events):
                batch_records.observe(len(batch))
                try:
                    for event in batch:
                        with handling(event):
                            await ingestor.process(event.message)
                        write_back.flush_if_full()
                except BaseException:  # cancelled (a stop): not acknowledged, read again
                    write_back.drop()
                    raise
                write_back.flush()

        app.agent(raw_topic(app, *decoders), name=f"newsroom.{name}")(process)

    agent(
        "threads",
        {
            **threads_inputs,
            internal_name[Stage.THREADS]: decode_stage_message,
        },
        pipeline.on_thread_record,
        Stage.THREADS,
    )
    agent(
        "follows",
        {internal_name[Stage.FOLLOWS]: decode_stage_message},
        pipeline.on_follows_record,
        Stage.FOLLOWS,
    )
    agent(
        "subscriptions",
        {subscriptions: event_decoder("subscriptions", max_bytes)},
        pipeline.on_subscription_event,
    )
    agent(
        "inbox",
        {internal_name[Stage.INBOX]: decode_stage_message},
        pipeline.on_inbox_record,
        Stage.INBOX,
    )

    async def release_quiet_hours() -> None:
        """Ask the inbox to release the held notifications whose quiet hours have ended (or
        may have: ``release_at`` unknown); it checks the quiet hours again."""
        now = clock()
        await pipeline.route(
            [
                ToStage(Stage.INBOX, rid, Release(recipient_id=rid))
                for rid, stored in held.raw_items()  # one pass, nothing decoded
                if releases_due(stored_release_at(stored), now)
            ]
        )

    app.timer(settings.quiet_hours_check_s)(release_quiet_hours)

    async def digest_ticks() -> None:
        """Periods may have ended: article fan-outs (threads) and due digests (inbox).

        Ticks travel through the stages' own topics, so the owner of each key acts on it."""
        now = clock()
        tick = DigestTick(at=now)  # the same periods, whichever worker processes it
        await pipeline.route(
            [ToStage(Stage.THREADS, aid, tick) for aid in list(pending)]
            + [
                ToStage(Stage.INBOX, rid, tick)
                for rid, stored in digests.raw_items()  # one pass, nothing decoded
                if is_due(stored_due_at(stored), now)
            ]
        )

    app.timer(settings.digest.tick_s)(digest_ticks)
    return pipeline
