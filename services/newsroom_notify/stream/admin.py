"""Creating the service's topics with the right layout: the contract's inputs and outputs, the
dead-letter topic, the repartition topics between the stages and the (compacted) changelogs of
the tables.

Faust would declare the changelogs itself, but on a fresh broker its consumer can still have no
metadata for one when the first record is written to its table, and faust-streaming 0.15 then
raises ``PartitionsMismatch`` ("the changelog topic has 0 partitions"). Creating every topic
before Faust starts removes that race.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from newsroom_notify.contract.topics import CATALOGUE
from newsroom_notify.settings import Settings

TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


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


INTERNAL_STAGES = ("threads", "follows", "inbox")


def internal_topic_names(settings: Settings) -> list[str]:
    """The repartition topics between the stages (keyed by article, entity, subscriber)."""
    return [f"{settings.app_id}-{stage}" for stage in INTERNAL_STAGES]


async def ensure_topics(settings: Settings, changelogs: Iterable[str] = ()) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(**settings.kafka.aiokafka_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        layout = topic_layout(settings, changelogs)
        missing = [
            NewTopic(
                name,
                num_partitions=settings.topics.partitions,
                replication_factor=settings.kafka.replication_factor,
                topic_configs=configs,
            )
            for name, configs in layout.items()
            if name not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        failed = [
            (name, code)
            for name, code, *_ in response.topic_errors
            if code not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise RuntimeError(f"could not create topics: {failed}")
        return [t.name for t in missing]
    finally:
        await admin.close()
