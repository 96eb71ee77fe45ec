"""Issue 15, table row 6, on a real worker and broker: a commenter erased after commenting on an
article another reader follows in digest mode. The reader's digest must carry neither the
erased person's name nor their text, and no table's changelog may still hold them as the latest
value of a key (compaction then removes the older ones within ``max.compaction.lag.ms``, which
every changelog topic the service creates carries)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord

from newsroom_notify.contract import events as ev
from tests.builders import article, comment, erase, member, preferences, subscribe
from tests.integration.kafka_helpers import WorkerProcess, drain, publish_events, run, worker_env

GINA = member("m-gina", "Gina Gone", "gina@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
HER_TEXT = "my private thoughts on the budget"
HER_TRACES = (b"Gina Gone", HER_TEXT.encode(), b"gina@example.org")
SPEED = 720  # a virtual hour is five real seconds
GRACE_REAL_S = 15  # the digest is cut this long after its hour: room to erase before


def _holds_her(value: bytes | None) -> bool:
    return value is not None and any(trace in value for trace in HER_TRACES)


def _changelogs(bootstrap: str, app_id: str) -> list[str]:
    async def names() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = await admin.list_topics()
        finally:
            await admin.close()
        return sorted(t for t in topics if t.startswith(app_id) and t.endswith("-changelog"))

    found: list[str] = run(names())
    return found


def _topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    async def describe() -> dict[str, dict[str, str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
            )
        finally:
            await admin.close()
        out: dict[str, dict[str, str]] = {}
        for response in responses:
            for _code, _msg, _type, name, entries in response.resources:
                out[name] = {entry[0]: entry[1] for entry in entries}
        return out

    described: dict[str, dict[str, str]] = run(describe())
    return described


def _read_all(bootstrap: str, topics: list[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topics``, from the start to the end offsets of the moment."""

    async def read() -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
            if len({tp.topic for tp in partitions}) < len(topics):
                await consumer._client.force_metadata_update()
                partitions = [
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in sorted(consumer.partitions_for_topic(topic) or [])
                ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            got: list[ConsumerRecord[bytes, bytes]] = []
            while True:
                positions = {tp: await consumer.position(tp) for tp in ends}
                if all(positions[tp] >= end for tp, end in ends.items()):
                    break
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(records)
            return got
        finally:
            await consumer.stop()

    records: list[ConsumerRecord[bytes, bytes]] = run(read())
    return records


def _latest(records: list[ConsumerRecord[bytes, bytes]]) -> dict[tuple[str, bytes], bytes | None]:
    latest: dict[tuple[str, bytes], bytes | None] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        latest[(record.topic, record.key or b"")] = record.value
    return latest


def _wait_for(what: str, check: object, timeout: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_row_6_an_erased_commenter_is_in_no_digest_and_no_changelog(
    kafka_bootstrap: str, tmp_path: object
) -> None:
    anchor = datetime.now(UTC)
    env = worker_env(
        kafka_bootstrap,
        tmp_path,  # type: ignore[arg-type]
        {
            "NEWSROOM_DIGEST__CLOCK_SPEED": str(SPEED),
            "NEWSROOM_DIGEST__CLOCK_ANCHOR": anchor.isoformat(),
            "NEWSROOM_DIGEST__TICK_S": "0.25",
            "NEWSROOM_DIGEST__GRACE_S": str(GRACE_REAL_S * SPEED),
            "NEWSROOM_TOPICS__CHANGELOG_MAX_COMPACTION_LAG_MS": "3600000",
            "NEWSROOM_TOPICS__CHANGELOG_SEGMENT_MS": "1800000",
        },
    )
    prefix, app_id = env["NEWSROOM_TOPICS__PREFIX"], env["NEWSROOM_APP_ID"]
    digests_changelog = f"{app_id}-digests-changelog"
    worker = WorkerProcess(env, tmp_path / "worker.log")  # type: ignore[operator]
    worker.start()
    worker.wait_ready()
    try:
        # Every changelog topic the worker created carries the compaction bound.
        changelogs = _changelogs(kafka_bootstrap, app_id)
        assert digests_changelog in changelogs
        configs = _topic_configs(kafka_bootstrap, changelogs)
        for topic in changelogs:
            assert configs[topic]["cleanup.policy"] == "compact", topic
            assert configs[topic]["max.compaction.lag.ms"] == "3600000", topic
            assert configs[topic]["segment.ms"] == "1800000", topic

        publish_events(kafka_bootstrap, prefix, [article("a-1")])
        publish_events(
            kafka_bootstrap,
            prefix,
            [
                preferences("m-cal", digest="hourly", timezone="UTC"),
                subscribe(CAL, "article", "a-1"),  # digest mode, the default
                subscribe(GINA, "replies", None),  # so Gina has a profile with her address
            ],
        )
        # Cal's follow has reached the article's thread (its digest group) before comments.
        members = f"{app_id}-digest-members-changelog"

        def cal_follows() -> bool:
            return (
                _latest(_read_all(kafka_bootstrap, [members])).get((members, b"a-1|m-cal"))
                is not None
            )

        _wait_for("Cal's follow at the thread", cal_follows, timeout=30)
        publish_events(
            kafka_bootstrap,
            prefix,
            [comment("c1", GINA, HER_TEXT), comment("c2", BEN, "Ben's view of it")],
        )

        # Poll Cal's digest buffer (its changelog) until the article's hour ended and its
        # activity, Gina's comment quoted, waits there for Cal's digest.
        def buffer_holds_her() -> bool:
            latest = _latest(_read_all(kafka_bootstrap, [digests_changelog]))
            return _holds_her(latest.get((digests_changelog, b"m-cal")))

        _wait_for("Gina's comment in Cal's pending digest", buffer_holds_her, timeout=30)
        publish_events(kafka_bootstrap, prefix, [erase("m-gina")])

        records = run(
            drain(kafka_bootstrap, f"{prefix}newsroom.digests", expect=1, timeout=60, settle=0)
        )
        # The changelogs: every key that ever held her now holds a tombstone or a value
        # without her (poll: the changelog writer sends asynchronously).
        changelogs = _changelogs(kafka_bootstrap, app_id)
        state: dict[str, object] = {}

        def changelogs_clean() -> bool:
            everything = _read_all(kafka_bootstrap, changelogs)
            held_her = {(r.topic, r.key or b"") for r in everything if _holds_her(r.value)}
            latest = _latest(everything)
            state["held_her"] = held_her
            state["still"] = sorted(k for k in held_her if _holds_her(latest[k]))
            return not state["still"]

        _wait_for("changelogs without her", changelogs_clean, timeout=30)
    finally:
        assert worker.stop() == 0

    (digest,) = [ev.DigestReady.model_validate(orjson.loads(r.value)) for r in records]
    assert digest.data.recipient.id == "m-cal"
    text = digest.model_dump_json().encode()
    assert not _holds_her(text), "the digest still quotes the erased person"
    (part,) = digest.data.articles
    assert [i.comment.id for i in part.items] == ["c2"]
    held_her = state["held_her"]
    assert isinstance(held_her, set)
    tables = {topic.removeprefix(f"{app_id}-").removesuffix("-changelog") for topic, _ in held_her}
    # She was in her profile, the thread, her comment, and Cal's pending digest...
    assert {"profiles", "threads", "comments", "digests"} <= tables
    assert state["still"] == []  # ...and is in none of them now
