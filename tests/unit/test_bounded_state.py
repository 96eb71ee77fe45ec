"""Bounded state (issue 15 item 6): every per-key record has a cap with a consequence a reader
or an operator can see, and a record too large to write stops nothing and is never retried
forever: its input is dead-lettered, or (changelog, broker refusal) it is counted and logged."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from faust.types import TP
from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.codec import ErrorClass
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.state import Followers
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.metrics import OVERSIZED, UNDELIVERED
from newsroom_notify.stream.deadletter import DeadLetterer
from newsroom_notify.stream.faust_ext.tables import ModelTable, StateTooLarge
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter, Sender, check_delivery
from newsroom_notify.stream.ingest import Ingestor
from tests.builders import (
    Clock,
    article,
    comment,
    created,
    erase,
    member,
    preferences,
    subscribe,
)

BEN = member("m-ben", "Ben Okoro")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))


@pytest.fixture
def capped() -> list[str]:
    return []


@pytest.fixture
def pipe(clock: Clock, capped: list[str]) -> LocalPipeline:
    p = LocalPipeline(tokens=Tokens(["k"], 3600, 3600), clock=clock)
    for stage in (p.threads, p.follows, p.inbox):
        stage.on_capped = capped.append
    p.feed([article("a-1")])
    return p


def digests(outputs: list[ev.CloudEvent]) -> list[ev.DigestReady]:
    return [o for o in outputs if isinstance(o, ev.DigestReady)]


def run_until(pipe: LocalPipeline, clock: Clock, end: datetime) -> list[ev.DigestReady]:
    out: list[ev.CloudEvent] = []
    while clock.now < end:
        clock.now = min(end, clock.now + timedelta(minutes=10))
        out += pipe.tick()
    return digests(out)


# ------------------------------------------------------------------ caps and consequences


def test_held_notifications_beyond_the_cap_go_to_the_next_digest(
    pipe: LocalPipeline, clock: Clock, capped: list[str]
) -> None:
    pipe.inbox.held_max = 2
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([preferences("m-cal", quiet_hours={"start": "22:00", "end": "07:00"})])
    assert pipe.feed([comment(f"c{i}", BEN, f"comment {i}") for i in range(4)]) == []
    assert len(pipe.tables["held"]["m-cal"].notifications) == 2
    assert capped == ["held", "held"]
    clock.now = datetime(2026, 11, 28, 7, 5, tzinfo=UTC)
    released = created(pipe.release("m-cal"))
    assert [n.data.comment.id for n in released if n.data.comment] == ["c0", "c1"]
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 10, tzinfo=UTC))
    assert {i.comment.id for a in digest.data.articles for i in a.items} == {"c2", "c3"}


def test_a_digest_buffer_keeps_its_newest_items_and_counts_the_rest(
    pipe: LocalPipeline, clock: Clock, capped: list[str]
) -> None:
    pipe.inbox.digest_items_max = 3
    pipe.feed([subscribe(CAL, "commenter", "m-ben")])
    for i in range(5):
        clock.now += timedelta(minutes=1)
        pipe.feed([comment(f"c{i}", BEN, f"comment {i}")])
    assert sorted(pipe.tables["digests"]["m-cal"].items) == ["c:c2", "c:c3", "c:c4"]
    assert pipe.tables["digests"]["m-cal"].omitted == 2
    assert capped == ["digest_items", "digest_items"]
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 10, tzinfo=UTC))
    assert {i.comment.id for a in digest.data.articles for i in a.items} == {"c2", "c3", "c4"}


def test_followers_beyond_the_cap_are_not_recorded(pipe: LocalPipeline, capped: list[str]) -> None:
    pipe.follows.followers_max = 2
    for who in ("m-f1", "m-f2", "m-f3"):
        pipe.feed([subscribe(member(who, who.upper()), "commenter", "m-ben", "instant")])
    assert sorted(pipe.follows.followers_of("commenter:m-ben")) == ["m-f1", "m-f2"]
    assert capped == ["followers"]
    # The followers within the cap still hear of Ben; a change of delivery is not a newcomer.
    pipe.feed([subscribe(member("m-f1", "M-F1"), "commenter", "m-ben", "digest")])
    assert pipe.follows.followers_of("commenter:m-ben")["m-f1"] == "digest"


def test_an_articles_fan_out_to_a_sections_followers_keeps_no_record_of_them(
    pipe: LocalPipeline,
) -> None:
    """Who got a comment is kept (a removal retracts it from exactly them); who got a new
    article is not: it would be a record as large as the section's follower list, rewritten
    by every replay, and nothing reads it."""
    readers = [member(f"m-s{i}", f"Reader {i}") for i in range(50)]
    pipe.feed([subscribe(r, "section", "breaking", "instant") for r in readers])
    published = article("a-9", section="breaking")
    first = pipe.feed([published])
    assert sorted(n.data.recipient.id for n in created(first)) == sorted(r["id"] for r in readers)
    assert [key for key in pipe.tables["fanout"] if key.endswith("|a:a-9")] == []
    again = pipe.feed([published])  # a replay: the same notifications, same ids
    assert sorted(n.id for n in created(again)) == sorted(n.id for n in created(first))


def test_thread_participants_and_instant_followers_are_capped(
    pipe: LocalPipeline, capped: list[str]
) -> None:
    pipe.threads.participants_max = 2
    pipe.threads.instant_followers_max = 1
    pipe.feed([comment(f"c{i}", member(f"m-{i}", f"Person {i}")) for i in range(3)])
    assert sorted(pipe.tables["threads"]["a-1"].participants) == ["m-0", "m-1"]
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([subscribe(BEN, "article", "a-1", "instant")])
    assert list(pipe.tables["threads"]["a-1"].instant_followers) == ["m-cal"]
    assert capped == ["thread_participants", "thread_instant_followers"]


def test_subscriptions_beyond_the_cap_are_not_recorded(
    pipe: LocalPipeline, capped: list[str]
) -> None:
    pipe.inbox.subscriptions_max = 2
    pipe.feed([article("a-2"), article("a-3")])
    for aid in ("a-1", "a-2", "a-3"):
        pipe.feed([subscribe(CAL, "article", aid, "instant")])
    subscribed = [sub.target for sub in pipe.tables["profiles"]["m-cal"].subscriptions.values()]
    assert sorted(subscribed) == ["a-1", "a-2"]
    assert capped == ["subscriptions"]
    # Cal hears of a comment on a subscribed article, not of one on the third.
    out = pipe.feed([comment("c1", BEN, aid="a-1"), comment("c3", BEN, aid="a-3")])
    assert [n.data.comment.id for n in created(out) if n.data.comment] == ["c1"]


def test_an_erasure_reaches_every_discussion_past_the_traces_cap(
    pipe: LocalPipeline, capped: list[str]
) -> None:
    """Past its cap the list of discussions a subscriber took part in is incomplete: the
    erasure searches every threads partition for them instead, and reaches every comment."""
    pipe.inbox.traces_max = 1
    pipe.feed([article("a-2"), article("a-3")])
    pipe.feed([comment(f"c-{aid}", BEN, "Ben's words.", aid=aid) for aid in ("a-1", "a-2", "a-3")])
    assert capped == ["traces"]
    assert len(pipe.tables["traces"]["m-ben"].keys) == 1  # not vacuous: the list is partial
    pipe.feed([erase("m-ben")])
    shown = [(c.author_name, c.text) for c in pipe.tables["comments"].values()]
    assert shown == [("[erased]", "")] * 3
    assert [k for k in pipe.tables["authored"] if k.endswith("|m-ben")] == []


def test_an_erasure_reaches_every_comment_past_the_authored_cap(
    pipe: LocalPipeline, capped: list[str]
) -> None:
    """Past its cap an author's list of comments under an article is incomplete: the erasure
    searches the article's comments for the erased author's, and the follows stage looks at
    every comment of another author that may have been handed to them."""
    pipe.threads.authored_max = 2
    pipe.feed([subscribe(BEN, "article", "a-1", "instant")])
    pipe.feed([comment(f"b{i}", BEN, "Ben's words.") for i in range(3)])
    got = pipe.feed([comment(f"c{i}", CAL, "Cal's words.") for i in range(3)])
    to_ben = {n.data.comment.id for n in created(got) if n.data.recipient.id == "m-ben"}
    assert to_ben == {"c0", "c1", "c2"}
    assert capped == ["authored", "authored"]
    pipe.feed([erase("m-ben")])
    bens = [c for c in pipe.tables["comments"].values() if c.id.startswith("b")]
    assert [(c.author_name, c.text) for c in bens] == [("[erased]", "")] * 3
    assert [k for k, f in pipe.tables["fanout"].items() if "m-ben" in f.recipients] == []


# --------------------------------------------------------------------- size of records


class FakeFaustTable(dict[bytes, bytes]):
    @property
    def data(self) -> dict[bytes, bytes]:
        return self


def test_a_table_refuses_a_value_over_the_limit_and_keeps_the_old_one() -> None:
    raw = FakeFaustTable()
    table = ModelTable(raw, Followers, max_bytes=200)
    table["commenter:m-ben"] = Followers(delivery={"m-1": "instant"})
    with pytest.raises(StateTooLarge) as refused:
        table["commenter:m-ben"] = Followers(delivery={f"m-{i}": "instant" for i in range(50)})
    assert table["commenter:m-ben"].delivery == {"m-1": "instant"}
    assert "m-" not in str(refused.value)  # names the table and size, never the contents


@dataclass
class Record:
    key: bytes | None = b"a-1"
    value: bytes | None = b"{}"
    headers: Any = field(default_factory=list)
    topic: str = "newsroom.comments"
    partition: int = 3
    offset: int = 41


@dataclass
class FakeDeadLetterTopic:
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, *, key: Any, value: Any, headers: Any) -> Any:
        self.sent.append({"key": key, "value": value, "headers": dict(headers)})

        async def ack() -> None:
            return None

        return ack()


class Empty(BaseModel):
    pass


async def test_an_input_whose_state_would_be_too_large_is_dead_lettered_once() -> None:
    calls = 0

    async def handle(_: str, __: BaseModel) -> None:
        nonlocal calls
        calls += 1
        raise StateTooLarge("table Followers: 2000000 bytes > 921600")

    topic = FakeDeadLetterTopic()
    ingestor = Ingestor(
        "threads", {"newsroom.comments": lambda k, v: Empty()}, DeadLetterer(topic, "g"), handle
    )
    before = OVERSIZED.labels(where="table")._value.get()
    assert await ingestor.process(Record()) is False
    assert calls == 1  # not retried
    (dead,) = topic.sent
    assert dead["headers"]["newsroom.dlt.error.class"] == str(ErrorClass.STATE_TOO_LARGE).encode()
    assert OVERSIZED.labels(where="table")._value.get() == before + 1


@dataclass
class Delivered:
    topic_partition: TP
    offset: int


@dataclass
class RefusingProducer:
    """Refuses records larger than ``limit`` as aiokafka does (MessageSizeTooLargeError)."""

    limit: int
    sent: list[bytes | None] = field(default_factory=list)

    async def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int, *_: Any
    ) -> Any:
        if len(value or b"") > self.limit:
            raise MessageSizeTooLargeError("too large")
        self.sent.append(value)
        delivery: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        delivery.set_result(Delivered(TP(topic, partition), len(self.sent)))
        return delivery


@dataclass
class FakeApp:
    producer: RefusingProducer
    undelivered: Any = None


@dataclass
class FakeTopicName:
    name: str

    def get_topic_name(self) -> str:
        return self.name


@dataclass
class FakeTable:
    name: str
    changelog_topic: FakeTopicName


async def test_the_changelog_writer_leaves_out_a_refused_record_and_goes_on() -> None:
    """Before: a MessageSizeTooLargeError was retried forever and every flush (so every
    commit) waited behind it."""
    app = FakeApp(RefusingProducer(limit=100))
    writer = ChangelogWriter(app)
    table = FakeTable("followers", FakeTopicName("app-followers-changelog"))
    before = OVERSIZED.labels(where="changelog")._value.get()
    writer.put(table, 0, b"k1", b"small")
    writer.put(table, 0, b"k2", b"x" * 500)
    writer.put(table, 0, b"k3", b"after")
    await asyncio.wait_for(writer.drain(), timeout=5)  # a bound on a hang, not a sleep
    await writer.stop()
    assert app.producer.sent == [b"small", b"after"]
    assert OVERSIZED.labels(where="changelog")._value.get() == before + 1


async def test_the_sender_refuses_a_record_over_the_limit_before_the_producer() -> None:
    app = FakeApp(RefusingProducer(limit=10**6))
    sender = Sender(app, max_bytes=100)
    with pytest.raises(StateTooLarge):
        await sender.send("t", b"k", b"x" * 200)
    assert app.producer.sent == []
    await sender.send("t", b"k", b"x" * 50)
    assert app.producer.sent == [b"x" * 50]


async def test_a_broker_refusal_on_delivery_is_counted_and_does_not_crash() -> None:
    app = FakeApp(RefusingProducer(limit=100))
    delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    delivery.set_exception(MessageSizeTooLargeError("refused by the broker"))
    before = OVERSIZED.labels(where="delivery")._value.get()
    check_delivery(app, delivery)
    assert app.undelivered is None  # commits go on
    assert OVERSIZED.labels(where="delivery")._value.get() == before + 1


@dataclass
class CrashingApp:
    undelivered: Any = None
    crashes: list[BaseException] = field(default_factory=list)
    crashing: Any = None

    async def crash(self, exc: BaseException) -> None:
        self.crashes.append(exc)


async def test_a_batch_given_up_counts_every_record_it_held_and_crashes_once() -> None:
    app = CrashingApp()
    loop = asyncio.get_running_loop()
    batch: asyncio.Future[Any] = loop.create_future()
    sent: asyncio.Future[Any] = loop.create_future()  # a record of the batch sent through send
    batch.set_exception(KafkaTimeoutError("no answer from the broker"))
    sent.set_exception(KafkaTimeoutError("no answer from the broker"))
    before = UNDELIVERED._value.get()
    check_delivery(app, batch, records=[4])  # four records appended to the batch
    check_delivery(app, sent)
    await asyncio.sleep(0)  # the crash task
    assert UNDELIVERED._value.get() == before + 5
    assert isinstance(app.undelivered, KafkaTimeoutError)  # commits stop
    assert len(app.crashes) == 1
