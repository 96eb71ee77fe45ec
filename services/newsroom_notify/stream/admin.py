"""Creating the service's topics with the right layout: the contract's inputs and outputs, the
dead-letter topic, the repartition topics between the stages and the (compacted) changelogs of
the tables.

Faust would declare the changelogs itself, but on a fresh broker its consumer can still have no
metadata for one when the first record is written to its table, and faust-streaming 0.15 then
raises ``PartitionsMismatch`` ("the changelog topic has 0 partitions"). Creating every topic
before Faust starts removes that race.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError, for_code

from newsroom_notify.contract.topics import CATALOGUE
from newsroom_notify.domain.intents import Stage
from newsroom_notify.settings import Settings

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno
INVALID_REPLICATION_FACTOR = InvalidReplicationFactorError.errno  # brokers still registering


def topic_layout(settings: Settings, changelogs: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """Every topic's full name and its topic configs (``changelogs``: the tables' topics)."""
    topics = settings.topics
    common = {
        "cleanup.policy": "delete",
        "retention.ms": str(topics.retention_ms),
        "max.message.bytes": str(topics.max_message_bytes),
    }
    if settings.kafka.min_insync_replicas is not None:
        common["min.insync.replicas"] = str(settings.kafka.min_insync_replicas)
    names = [spec.name(topics) for spec in CATALOGUE] + [topics.name(topics.deadletter)]
    names += internal_topic_names(settings)
    layout = {name: dict(common) for name in names}
    compacted = {k: v for k, v in common.items() if k != "retention.ms"}
    compacted["cleanup.policy"] = "compact"
    compacted.update(topics.changelog_configs())
    layout.update({name: dict(compacted) for name in changelogs})
    return layout


INTERNAL_STAGES = tuple(Stage)  # the domain's stages: one repartition topic each


def internal_topic_names(settings: Settings) -> list[str]:
    """The repartition topics between the stages (keyed by article, entity, subscriber)."""
    return [f"{settings.app_id}-{stage.value}" for stage in INTERNAL_STAGES]


class TopicLayoutError(RuntimeError):
    """A topic the stages rely on has another number of partitions than the settings say."""


# The contract's inputs the threads agent reads together with ``<app>-threads``, its tables'
# partitions being theirs (``stages.install`` builds the agent from this list). The
# subscriptions agent keeps no table: it re-keys each command into ``<app>-inbox``, so its
# topic may have any number of partitions, like the outputs.
THREADS_INPUTS = ("articles", "comments")


def co_partitioned_topics(settings: Settings, changelogs: Iterable[str] = ()) -> list[str]:
    """The topics that must have ``NEWSROOM_TOPICS__PARTITIONS`` partitions: the threads
    stage's inputs, the repartition topics (the stages route records to a partition computed
    with the setting) and the changelogs (Faust's tables are partitioned as their stage's
    topics)."""
    topics = settings.topics
    inputs = [topics.name(getattr(topics, role)) for role in THREADS_INPUTS]
    return inputs + internal_topic_names(settings) + list(changelogs)


async def ensure_topics(
    settings: Settings, changelogs: Iterable[str] = (), create: bool = True
) -> list[str]:
    """Check that the co-partitioned topics that exist have the configured number of
    partitions (``TopicLayoutError`` names each that has not, before anything is created: a
    worker would route records to partitions whose state lives elsewhere); then create the
    topics that do not exist yet (unless ``create`` is false) and return their names."""
    admin = AIOKafkaAdminClient(**settings.kafka.aiokafka_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await check_partitions(
            admin,
            [n for n in co_partitioned_topics(settings, changelogs) if n in existing],
            settings.topics.partitions,
        )
        if not create:
            return []
        layout = topic_layout(settings, changelogs)
        missing = {name: configs for name, configs in layout.items() if name not in existing}
        await create_topics(
            admin, missing, settings.topics.partitions, settings.kafka.replication_factor
        )
        return list(missing)
    finally:
        await admin.close()


async def check_partitions(admin: AIOKafkaAdminClient, names: list[str], partitions: int) -> None:
    """Raise ``TopicLayoutError`` unless every topic of ``names`` has ``partitions``."""
    if not names:
        return
    described = await admin.describe_topics(names)
    wrong = sorted(
        (d["topic"], len(d["partitions"]))
        for d in described
        if d["error_code"] == 0 and len(d["partitions"]) != partitions
    )
    if wrong:
        raise TopicLayoutError(layout_refusal(wrong, partitions))


def layout_refusal(wrong: list[tuple[str, int]], partitions: int) -> str:
    """What ``TopicLayoutError`` says of the topics (name, partitions) that do not have
    ``partitions``."""
    found = ", ".join(f"{name} has {count}" for name, count in wrong)
    counts = sorted({count for _, count in wrong})
    advice = (
        f"if the service ran with {counts[0]}, set NEWSROOM_TOPICS__PARTITIONS back to {counts[0]}"
        if len(counts) == 1
        else "the topics disagree among themselves"
    )
    return (
        f"NEWSROOM_TOPICS__PARTITIONS is {partitions} but {found}. The stages read these "
        "topics together and route records by that number, so they must all have it: "
        f"{advice}. The changelogs hold the tables' state (profiles, subscriptions): "
        "deleting them to recreate them loses it, and changing the count of a deployment "
        "needs its state moved"
    )


async def create_topics(
    admin: AIOKafkaAdminClient,
    layout: Mapping[str, Mapping[str, str]],
    partitions: int,
    replication: int = 1,
    wait_s: float = 30.0,
) -> None:
    """Create the topics of ``layout`` (name -> topic configs; one that exists already is
    fine) and wait until the cluster's metadata shows all their partitions. While a new
    cluster cannot place the replicas yet (brokers still registering) or answers with a
    retriable error, the creation is tried again for ``wait_s`` seconds; any other refusal raises
    at once with its error code."""
    if not layout:
        return
    deadline = time.monotonic() + wait_s
    pending = dict(layout)
    while pending:
        response = await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication,
                    topic_configs=dict(configs),
                )
                for name, configs in pending.items()
            ]
        )
        errors = {name: code for name, code, *_ in response.topic_errors}
        failed = {n: c for n, c in errors.items() if c not in (0, TOPIC_ALREADY_EXISTS)}
        if not all(
            c == INVALID_REPLICATION_FACTOR or for_code(c).retriable for c in failed.values()
        ):
            raise RuntimeError(f"could not create topics: {sorted(failed.items())}")
        if failed and time.monotonic() > deadline:
            raise RuntimeError(f"could not place the replicas of {sorted(failed)} in time")
        pending = {name: pending[name] for name in failed}
        if pending:
            await asyncio.sleep(0.5)
    names = list(layout)
    while True:
        described = await admin.describe_topics(names)
        if all(d["error_code"] == 0 and len(d["partitions"]) == partitions for d in described):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics not visible in the metadata in time: {described}")
        await asyncio.sleep(0.2)
