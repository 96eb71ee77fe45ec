"""A fan-out leaves the follows stage as one record per inbox partition, and the inbox gets
back exactly the candidacies the stage decided, each in the partition of its recipient."""

from __future__ import annotations

from datetime import UTC, datetime

from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.messages import Activity, Candidacy, FollowChange, Participated
from newsroom_notify.domain.model import ArticleInfo, CommentSummary, Subject
from newsroom_notify.stream.batching import Candidacies, fan_out_batches, split_fan_out
from newsroom_notify.stream.stages import decode_stage_message, key_partition

PARTITIONS = 4
ARTICLE = ArticleInfo(id="a-1", title="Budget", url="https://n.example/a-1", journalist_id="j-1")


def fan_out(followers: int) -> list[Intent]:
    """What the follows stage sends for a comment by m-ben, whose followers get it."""
    stage = FollowsStage(heads={}, chunks={}, fanout={})
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


def test_a_fan_out_is_one_record_per_partition_and_splits_back_exactly() -> None:
    outbound = fan_out(40)
    assert len(outbound) == 40
    batches = fan_out_batches(outbound, partition_of)
    assert batches is not None
    assert len(batches) == PARTITIONS  # 40 records become 4
    received: list[Candidacy] = []
    for partition, batch in batches.items():
        first = next(iter(batch.bases))  # the record's key
        assert partition_of(first) == partition
        decoded = decode_stage_message(first.encode(), batch.model_dump_json().encode())
        assert isinstance(decoded, Candidacies)
        for candidacy in decoded.split():
            assert partition_of(candidacy.recipient_id) == partition
            received.append(candidacy)
    sent = [item.message for item in outbound if isinstance(item, ToStage)]
    assert sorted(received, key=lambda c: c.recipient_id) == sorted(
        sent, key=lambda c: getattr(c, "recipient_id", "")
    )
    assert all(isinstance(c, Candidacy) and c.kind == "candidacy" for c in received)


def test_anything_but_a_fan_out_is_sent_as_it_is() -> None:
    single = fan_out(1)
    assert fan_out_batches(single, partition_of) is None
    mixed = [
        *fan_out(3),
        ToStage(Stage.INBOX, "m-x", Participated(subscriber_id="m-x", article_id="a-1")),
    ]
    assert fan_out_batches(mixed, partition_of) is None
    other_subject = fan_out(2)[0].message
    assert isinstance(other_subject, Candidacy)
    moved = other_subject.model_copy(
        update={"subject": other_subject.subject.model_copy(update={"key": "c:c-2"})}
    )
    assert (
        fan_out_batches([fan_out(2)[1], ToStage(Stage.INBOX, "m-000", moved)], partition_of) is None
    )


def test_a_fan_out_sent_with_other_messages_is_still_one_record_per_partition() -> None:
    """A comment the threads stage fans out itself (its author had no followers) comes with a
    message for the author (``participated``): its 40 candidacies still leave as 4 records,
    and the other message is sent as it is, after them."""
    author = ToStage(Stage.INBOX, "m-ben", Participated(subscriber_id="m-ben", article_id="a-1"))
    outbound = [author, *fan_out(40)]
    batches, rest = split_fan_out(outbound, partition_of)
    assert len(batches) == PARTITIONS
    assert sum(len(b.bases) for b in batches.values()) == 40
    assert rest == [author]
    assert split_fan_out([author, *fan_out(1)], partition_of) == ({}, [author, *fan_out(1)])
