"""A fan-out leaves the follows stage as one record per inbox partition, and the inbox gets
back exactly the candidacies the stage decided, each in the partition of its recipient."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka.partitioner import DefaultPartitioner

from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.model import (
    Activity,
    ArticleInfo,
    Candidacies,
    Candidacy,
    CommentSummary,
    Followers,
    Participated,
    Subject,
)
from newsroom_notify.domain.outbox import Destination, Outbound
from newsroom_notify.stream.stages import decode_stage_message, fan_out_batches, key_partition

PARTITIONS = 4
ARTICLE = ArticleInfo(id="a-1", title="Budget", url="https://n.example/a-1", journalist_id="j-1")


def fan_out(followers: int) -> list[Outbound]:
    """What the follows stage sends for a comment by m-ben, whose followers get it."""
    stage = FollowsStage(
        followers={
            "commenter:m-ben": Followers(delivery=dict.fromkeys(_ids(followers), "instant"))
        },
        fanout={},
    )
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


def test_key_partition_is_where_the_producer_puts_the_key() -> None:
    default = DefaultPartitioner()
    everything = list(range(PARTITIONS))
    for key in [*_ids(200), "auth0|abc", "g-ünïcode", ""]:
        assert partition_of(key) == default(key.encode(), everything, everything)


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
    sent = [item.message for item in outbound]
    assert sorted(received, key=lambda c: c.recipient_id) == sent
    assert all(isinstance(c, Candidacy) and c.kind == "candidacy" for c in received)


def test_anything_but_a_fan_out_is_sent_as_it_is() -> None:
    single = fan_out(1)
    assert fan_out_batches(single, partition_of) is None
    mixed = [
        *fan_out(3),
        Outbound(Destination.INBOX, "m-x", Participated(subscriber_id="m-x", article_id="a-1")),
    ]
    assert fan_out_batches(mixed, partition_of) is None
    other_subject = fan_out(2)[0].message
    assert isinstance(other_subject, Candidacy)
    moved = other_subject.model_copy(
        update={"subject": other_subject.subject.model_copy(update={"key": "c:c-2"})}
    )
    assert (
        fan_out_batches([fan_out(2)[1], Outbound(Destination.INBOX, "m-000", moved)], partition_of)
        is None
    )
