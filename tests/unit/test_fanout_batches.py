"""A fan-out leaves the follows stage as one intent, and the shell sends it as one record per
inbox partition: the inbox gets back exactly the candidacies the stage decided, each in the
partition of its recipient, before anything else the stage asked for, the next step last."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.intents import Intent, Stage, ToRecipients, ToStage
from newsroom_notify.domain.messages import (
    Activity,
    Chose,
    FanoutStep,
    FollowChange,
    Participated,
)
from newsroom_notify.domain.model import (
    ArticleInfo,
    Basis,
    CommentSummary,
    Condition,
    Reason,
    Subject,
)
from newsroom_notify.stream.batching import Candidacies, partition_records
from newsroom_notify.stream.stages import Pipeline, decode_stage_message, key_partition

PARTITIONS = 4
ARTICLE = ArticleInfo(id="a-1", title="Budget", url="https://n.example/a-1", journalist_id="j-1")


def fan_out(followers: int, step: int = 2_000) -> list[Intent]:
    """What the follows stage sends for a comment by m-ben, whose followers get it (``step``
    followers at a time)."""
    stage = FollowsStage(heads={}, chunks={}, fanout={}, step_recipients=step)
    for sid in _ids(followers):
        change = FollowChange(
            subscriber_id=sid, scope="commenter", target="m-ben", delivery="instant", active=True
        )
        stage.on_follow_change("commenter:m-ben", change)
    comment = CommentSummary(
        id="c-1", author_id="m-ben", author_name="Ben", excerpt="hi", url="https://n.example/c-1"
    )
    activity = Activity(
        event="comment",
        subject=Subject(key="c:c-1", article=ARTICLE, comment=comment),
        at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
        origin="evt-1",
    )
    return stage.on_activity("commenter:m-ben", activity)


def _ids(n: int) -> list[str]:
    return [f"m-{i:03d}" for i in range(n)]


def partition_of(key: str) -> int:
    return key_partition(key, PARTITIONS)


# Where Kafka's Java producer puts each key, for topics of 1, 3, 4 and 12 partitions. Computed
# once with kafka-clients 4.1.1 (the jars devkafka fetches) by tests/tools/KeyPartitions.java:
#   java -cp "$HOME/.cache/newsroom-notify/kafka-*/libs/*" tests/tools/KeyPartitions.java
# (BuiltInPartitioner.partitionForKey: murmur2 of the UTF-8 key, made positive, modulo n).
JAVA_CLIENT_PARTITIONS = {
    "m-ana": (0, 2, 0, 8),
    "m-ben": (0, 0, 0, 0),
    "m-cal": (0, 2, 3, 11),
    "m-0": (0, 0, 0, 0),
    "m-1": (0, 2, 1, 5),
    "m-2": (0, 1, 1, 1),
    "m-3": (0, 2, 0, 8),
    "m-17": (0, 0, 1, 9),
    "m-199": (0, 0, 2, 6),
    "g-3f2a9c": (0, 1, 2, 10),
    "auth0|abc": (0, 1, 2, 10),
    "g-\u00fcn\u00efcode": (0, 0, 1, 9),
    "": (0, 0, 1, 9),
}


def test_key_partition_is_where_kafkas_java_producer_puts_the_key() -> None:
    for key, expected in JAVA_CLIENT_PARTITIONS.items():
        got = tuple(key_partition(key, n) for n in (1, 3, 4, 12))
        assert got == expected, key


def the_fan(intents: list[Intent]) -> ToRecipients:
    (fan,) = [i for i in intents if isinstance(i, ToRecipients)]
    return fan


def test_a_fan_out_is_one_record_per_partition_and_decodes_back_exactly() -> None:
    fan = the_fan(fan_out(40))
    assert sorted(fan.bases) == _ids(40)  # each follower once (in the walk's order: by chunk)
    records = list(partition_records(fan, partition_of, 1_000))
    assert len(records) == PARTITIONS  # 40 recipients, 4 records
    received: dict[str, Any] = {}
    for partition, key, record in records:
        assert key == next(iter(record.bases))  # keyed by its first recipient
        assert partition_of(key) == partition
        decoded = decode_stage_message(key.encode(), record.model_dump_json().encode())
        assert isinstance(decoded, Candidacies)
        assert (decoded.subject, decoded.at, decoded.origin) == (fan.subject, fan.at, fan.origin)
        assert all(partition_of(rid) == partition for rid in decoded.bases)
        # in the stage's order within the partition
        assert list(decoded.bases) == [rid for rid in fan.bases if partition_of(rid) == partition]
        received.update(decoded.bases)
    assert received == dict(fan.bases)
    assert fan.origin == "evt-1|commenter"  # the kind of entity, never the commenter's id


def test_a_partition_with_more_recipients_than_a_record_takes_is_cut() -> None:
    fan = the_fan(fan_out(40))
    records = list(partition_records(fan, partition_of, 3))
    assert max(len(r.bases) for _, _, r in records) == 3
    got = [rid for _, _, r in records for rid in r.bases]
    assert sorted(got) == _ids(40)  # each once
    for partition in range(PARTITIONS):
        mine = [rid for p, _, r in records if p == partition for rid in r.bases]
        assert mine == [rid for rid in fan.bases if partition_of(rid) == partition]
    assert all(key == next(iter(r.bases)) for _, key, r in records)


class Recorder:
    """A sender that keeps what it is given, decoded: (topic, key, message, partition)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, int | None]] = []

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Any = None, partition: Any = None
    ) -> None:
        self.sent.append((topic, key.decode(), decode_stage_message(key, value), partition))


def route(intents: list[Intent], batch_recipients: int = 1_000) -> list[tuple[str, str, Any, int]]:
    """What ``Pipeline.route`` sends for ``intents``, each record with the partition it goes
    to (given, or the producer's for its key)."""
    recorder = Recorder()
    topics = {Stage.THREADS: "threads", Stage.FOLLOWS: "follows", Stage.INBOX: "inbox"}
    pipeline = Pipeline(
        stages=None,  # type: ignore[arg-type] # route reads none
        topics=topics,  # type: ignore[arg-type]
        tokens=None,  # type: ignore[arg-type]
        sender=recorder,  # type: ignore[arg-type]
        inbox_partitions=PARTITIONS,
        batch_recipients=batch_recipients,
    )
    asyncio.run(pipeline.route(intents))
    return [
        (topic, key, message, partition_of(key) if partition is None else partition)
        for topic, key, message, partition in recorder.sent
    ]


def per_partition(sent: list[tuple[str, str, Any, int]]) -> dict[int, list[tuple[str, str]]]:
    """What each inbox partition receives, in order: (recipient, message kind), a record of
    candidacies as one entry per recipient."""
    got: dict[int, list[tuple[str, str]]] = {}
    for topic, key, message, partition in sent:
        if topic != "inbox":
            continue
        mine = got.setdefault(partition, [])
        if isinstance(message, Candidacies):
            mine += [(rid, "candidacy") for rid in message.bases]
        else:
            mine.append((key, message.kind))
    return got


def test_the_shell_sends_the_candidacies_first_and_the_next_step_last() -> None:
    """A walk of 40 followers 25 at a time: its first step's candidacies (one record per
    partition, each follower of the step once, in their partition), then a message for the
    author the same handler asked for, then the step."""
    out = fan_out(40, step=25)
    fan = the_fan(out)
    author = ToStage(Stage.INBOX, "m-ben", Participated(subscriber_id="m-ben", article_id="a-1"))
    (step,) = [i for i in out if isinstance(i, ToStage) and isinstance(i.message, FanoutStep)]
    sent = route([step, author, *[i for i in out if i is not step]])
    *records, told, last = sent
    assert all(isinstance(message, Candidacies) for _, _, message, _ in records)
    assert len(records) == len({p for _, _, _, p in records})  # one record per partition
    for _, key, message, partition in records:
        assert key == next(iter(message.bases))
        assert {partition_of(rid) for rid in message.bases} == {partition}
        assert list(message.bases) == [r for r in fan.bases if partition_of(r) == partition]
        assert all(message.bases[rid] == fan.bases[rid] for rid in message.bases)
    recipients = [rid for _, _, message, _ in records for rid in message.bases]
    assert sorted(recipients) == sorted(fan.bases)  # each once
    assert told[:3] == ("inbox", "m-ben", author.message)
    assert last[:3] == ("follows", "commenter:m-ben", step.message)


def test_a_large_partition_is_sent_as_several_records_in_order() -> None:
    fan = the_fan(fan_out(40))
    sent = route([fan], batch_recipients=3)
    assert max(len(message.bases) for _, _, message, _ in sent) == 3
    got = per_partition(sent)
    for partition, received in got.items():
        assert [rid for rid, _ in received] == [
            r for r in fan.bases if partition_of(r) == partition
        ]
    assert sum(len(v) for v in got.values()) == 40


def test_after_an_edit_and_a_removal_mid_walk_each_follower_gets_them_after_the_candidacy() -> None:
    """The comment was edited and removed while its fan-out walked: each later follower's
    candidacy, then the edit, then the retraction, in their partition (the shell sends the
    candidacies first although the stage lists each follower's three together)."""
    stage = FollowsStage(heads={}, chunks={}, fanout={}, step_recipients=10)
    for sid in _ids(40):
        change = FollowChange(
            subscriber_id=sid, scope="commenter", target="m-ben", delivery="instant", active=True
        )
        stage.on_follow_change("commenter:m-ben", change)
    comment = CommentSummary(
        id="c-1", author_id="m-ben", author_name="Ben", excerpt="hi", url="https://n.example/c-1"
    )
    subject = Subject(key="c:c-1", article=ARTICLE, comment=comment)
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    posted = Activity(event="comment", subject=subject, at=at, origin="evt-1")
    first = stage.on_activity("commenter:m-ben", posted)
    (step,) = [i.message for i in first if isinstance(i, ToStage) and i.stage is Stage.FOLLOWS]
    for event, extra in (("edit", {"excerpt": "bye"}), ("retract", {"cause": "spam"})):
        change = Activity(event=event, subject=subject, at=at, origin=f"evt-{event}", **extra)
        stage.on_activity("commenter:m-ben", change)
    out = stage.on_fanout_step("commenter:m-ben", step)
    later = list(the_fan(out).bases)
    assert later
    got = per_partition(route(out))
    for received in got.values():
        for rid in {r for r, _ in received}:
            assert [kind for r, kind in received if r == rid] == ["candidacy", "edit", "retraction"]
    assert sorted(r for v in got.values() for r, kind in v if kind == "candidacy") == sorted(later)


def test_a_single_recipient_is_one_record_too() -> None:
    fan = the_fan(fan_out(1))
    assert [(p, k, list(r.bases)) for p, k, r in partition_records(fan, partition_of, 9)] == [
        (partition_of("m-000"), "m-000", ["m-000"])
    ]


def test_a_records_choices_are_those_of_its_own_recipients() -> None:
    """The "Notify of" choices a fan-out's candidacies carry (``ToRecipients.choices``) go in
    the record of their recipient's partition only: the inbox applies each to state of that
    partition."""
    fan = the_fan(fan_out(40))
    chooser = {partition_of(rid): rid for rid in reversed(list(fan.bases))}
    assert len(chooser) == PARTITIONS
    choices = {
        rid: [Chose(subscriber_id=rid, article_id="a-1", choice="replies", at=fan.at)]
        for rid in list(chooser.values())[:2]
    }
    with_choices = dataclasses.replace(fan, choices=choices)
    got: dict[str, list[Chose]] = {}
    for _, key, record in partition_records(with_choices, partition_of, 3):
        decoded = decode_stage_message(key.encode(), record.model_dump_json().encode())
        assert isinstance(decoded, Candidacies)
        assert set(decoded.choices) <= set(decoded.bases)
        got.update(decoded.choices)
    assert got == choices


def test_the_rest_of_a_fan_out_carries_no_choice() -> None:
    """A reply's activity carries its parent's author's choice to the first step of the
    fan-out (where the thread's candidates are): the steps after it, records of the follows
    topic, do not repeat it."""
    stage = FollowsStage(heads={}, chunks={}, fanout={}, step_recipients=2)
    for sid in _ids(5):
        change = FollowChange(
            subscriber_id=sid, scope="commenter", target="m-ben", delivery="instant", active=True
        )
        stage.on_follow_change("commenter:m-ben", change)
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    chose = Chose(subscriber_id="m-ana", article_id="a-1", choice="replies", at=at)
    reply = Basis(
        reason=Reason.REPLY,
        condition=Condition.ASKED_FOR_REPLIES,
        scope="replies",
        target="a-1",
    )
    comment = CommentSummary(
        id="c-2", author_id="m-ben", author_name="Ben", excerpt="hi", url="https://n.example/c-2"
    )
    activity = Activity(
        event="comment",
        subject=Subject(key="c:c-2", article=ARTICLE, comment=comment),
        candidates={"m-ana": [reply]},
        at=at,
        origin="evt-2",
        choices={"m-ana": [chose]},
    )
    out = stage.on_activity("commenter:m-ben", activity)
    assert the_fan(out).choices == {"m-ana": [chose]}
    steps = [i.message for i in out if isinstance(i, ToStage) and isinstance(i.message, FanoutStep)]
    assert len(steps) == 1
    assert steps[0].activity.choices == {}
