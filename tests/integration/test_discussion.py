"""README "What gets notified, and why" on the real broker: threaded discussions through the
running worker.

Each story is told in phases; a phase's events are published, then the test waits for the
notifications topic to hold exactly what the phase should add. Phases keep cross-topic effects
ordered the way a real site would see them (a subscription lands before the comments it is for).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from tests.builders import (
    article,
    cancel,
    comment,
    confirm,
    erase,
    guest,
    member,
    moderate,
    subscribe,
)
from tests.integration.kafka_helpers import (
    WorkerProcess,
    barrier,
    drain_until,
    is_sentinel,
    publish_events,
    read_to_end,
    run,
    wait_settled,
    worker_env,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
DEE = member("m-dee", "Dee Park")
EVE = member("m-eve", "Eve Spammer")
GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = guest_subscriber_id("geoff.roach@example.org")

Row = tuple[str, str, str, str | None]  # (type, recipient, reason|cause, comment id)


class Story:
    """Publishes events and reads back the notifications topic of one isolated worker."""

    def __init__(self, bootstrap: str, env: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        self.env = env
        self.prefix = env["NEWSROOM_TOPICS__PREFIX"]
        self.records: list[Any] = []
        self.seen: Counter[Row] = Counter()
        self.phase = 0

    def new_rows(self, total: int) -> Counter[Row]:
        """Wait for ``total`` records; return the rows that arrived since the last call.

        (Records of different recipients live on different partitions: there is no global
        order to slice, so phases are told apart by what is new.)"""
        everything = rows(self.expect(total))
        new = everything - self.seen
        self.seen = everything
        return new

    def publish(self, events: Sequence[ev.CloudEvent]) -> None:
        publish_events(self.bootstrap, self.prefix, events)

    def subscribe(self, events: Sequence[ev.CloudEvent], who: Sequence[str]) -> None:
        """Publish subscription commands of subscribers ``who`` and wait until they reached
        every stage.

        A subscription travels subscriptions -> inbox -> threads/follows (three hops) while a
        comment travels comments -> threads (one): on a real site minutes pass in between. Here
        ``barrier`` waits: sentinels' subscriptions travel behind the subscribers'. (Sentinels'
        notifications are left out of what the story reads.)
        """
        self.publish(events)
        self.phase += 1
        barrier(self.bootstrap, self.prefix, who, f"p{self.phase}")

    def expect(self, total: int, timeout: float = 45.0) -> list[ev.CloudEvent]:
        """Wait until the notifications topic holds ``total`` records of the story (sentinels'
        left out), then until the worker has handled everything published (so any extra
        notification is written too); return all of them."""
        topic = f"{self.prefix}newsroom.notifications"
        run(
            drain_until(
                self.bootstrap,
                topic,
                lambda got: len([r for r in got if not is_sentinel(r)]) >= total,
                timeout,
            )
        )
        run(wait_settled(self.bootstrap, self.env, timeout))
        records = [
            r
            for r in run(
                read_to_end(self.bootstrap, topic, int(self.env["NEWSROOM_TOPICS__PARTITIONS"]))
            )
            if not is_sentinel(r)
        ]
        self.records = records
        events = []
        for record in records:
            assert dict(record.headers)["content-type"] == b"application/cloudevents+json"
            value = orjson.loads(record.value)
            model = ev.TYPE_TO_MODEL[value["type"]]
            event = model.model_validate(value)
            assert record.key.decode() == event.partition_key()
            events.append(event)
        return events


def rows(events: Sequence[ev.CloudEvent]) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for e in events:
        if isinstance(e, ev.NotificationCreated):
            cid = e.data.comment.id if e.data.comment else None
            out[("created", e.data.recipient.id, e.data.reason, cid)] += 1
        elif isinstance(e, ev.NotificationRetracted):
            out[("retracted", e.data.recipient_id, e.data.cause, e.subject)] += 1
    return out


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path) -> Any:
    env = worker_env(kafka_bootstrap, tmp_path)
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    process.wait_ready()
    yield process
    assert process.stop() == 0, process.log_text()[-3000:]


def test_a_threaded_discussion_produces_exactly_the_right_notifications(
    kafka_bootstrap: str, worker: WorkerProcess
) -> None:
    story = Story(kafka_bootstrap, worker.env)

    # Phase 1: the article, readers subscribe; Geoff (a guest) asks for replies on the form.
    story.publish([article("a-1")])
    story.subscribe(
        [
            subscribe(CAL, "article", "a-1", "instant"),
            subscribe(DEE, "commenter", "m-ben", "instant"),
        ],
        ["m-cal", "m-dee"],
    )
    story.publish(
        [
            comment("c1", ANA, "Where do the buses go now?", notify="replies"),
            comment("c2", GEOFF, "Good riddance to the cars.", notify="replies"),
        ]
    )
    got = story.expect(3)
    assert story.new_rows(3) == Counter(
        {
            ("created", "m-cal", "follow_up", "c1"): 1,
            ("created", "m-cal", "follow_up", "c2"): 1,
            ("created", GEOFF_ID, "confirm_subscription", None): 1,
        }
    )
    (request,) = [e for e in got if e.data.reason == "confirm_subscription"]  # type: ignore[union-attr]
    assert request.data.recipient.email == "geoff.roach@example.org"  # type: ignore[union-attr]

    # Phase 2: replies, a mention, and a reply to the still-unconfirmed guest.
    story.publish(
        [
            comment("c3", BEN, "@Ana Lima the second paragraph says.", parent="c1"),
            comment("c4", CAL, "Agreed, Geoff.", parent="c2"),
        ]
    )
    assert story.new_rows(6) == Counter(
        {
            ("created", "m-ana", "reply", "c3"): 1,  # not also a mention: one per comment
            (
                "created",
                "m-dee",
                "followed_commenter",
                "c3",
            ): 1,  # beats follow_up (rule "One notification per person per comment")
            ("created", "m-cal", "follow_up", "c3"): 1,
        }
    )  # c4 reached nobody: Cal wrote it, Geoff has not confirmed

    # Phase 3: Geoff confirms; now replies reach him. A spammer gets through, then is caught.
    story.subscribe([confirm(request.data.confirm_token or "")], [GEOFF_ID])  # type: ignore[union-attr]
    story.publish([comment("c5", BEN, "Welcome, @Geoff Roach.", parent="c2")])
    assert story.new_rows(9) == Counter(
        {
            ("created", GEOFF_ID, "reply", "c5"): 1,
            ("created", "m-dee", "followed_commenter", "c5"): 1,
            ("created", "m-cal", "follow_up", "c5"): 1,
        }
    )
    story.publish([comment("c6", EVE, "Cheap watches at example.biz", parent="c1")])
    assert story.new_rows(11) == Counter(
        {("created", "m-ana", "reply", "c6"): 1, ("created", "m-cal", "follow_up", "c6"): 1}
    )
    got = story.expect(11)
    spam_notes = {
        e.data.notification_id
        for e in got
        if isinstance(e, ev.NotificationCreated) and e.subject == "c:c6"
    }
    story.publish([moderate("c6", "spam")])
    assert story.new_rows(13) == Counter(
        {("retracted", "m-ana", "spam", "c:c6"): 1, ("retracted", "m-cal", "spam", "c:c6"): 1}
    )
    got = story.expect(13)
    retracted = {e.data.notification_id for e in got if isinstance(e, ev.NotificationRetracted)}
    assert retracted == spam_notes

    # Phase 4: a pending comment approved later notifies then; Cal unsubscribes; Geoff erased.
    story.publish([comment("c7", ANA, "Pending thoughts", status="pending")])
    story.publish([moderate("c7", "approved")])
    assert story.new_rows(14) == Counter({("created", "m-cal", "follow_up", "c7"): 1})
    story.subscribe([cancel("m-cal", "article", "a-1"), erase(GEOFF_ID)], ["m-cal", GEOFF_ID])
    story.publish([comment("c8", BEN, "@Geoff Roach still here?", parent="c5")])
    assert story.new_rows(15) == Counter({("created", "m-dee", "followed_commenter", "c8"): 1})
    got = story.expect(15)

    ids = [e.id for e in got]
    assert len(ids) == len(set(ids)), "no notification id emitted twice"


def test_restarting_the_worker_mid_stream_loses_and_repeats_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path)
    story = Story(kafka_bootstrap, env)
    readers = [member(f"m-r{i}", f"Reader {i}") for i in range(6)]
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    first.start()
    first.wait_ready()
    try:
        story.publish([article("a-1")])
        story.subscribe(
            [subscribe(r, "article", "a-1", "instant") for r in readers], [r["id"] for r in readers]
        )
        story.publish([comment("c1", ANA, notify="replies")])
        story.expect(6)
        story.publish([comment(f"c{i}", BEN, parent="c1") for i in range(2, 12)])
        story.expect(6 + 10 * 7)
    finally:
        assert first.stop() == 0  # graceful: commits what it processed
    second = WorkerProcess(env, tmp_path / "worker-2.log")
    second.start()
    second.wait_ready()
    try:
        story.publish([comment(f"c{i}", CAL, parent="c1") for i in range(12, 22)])
        got = story.expect(6 + 10 * 7 + 10 * 7, timeout=60)
    finally:
        assert second.stop() == 0
    ids = Counter(e.id for e in got)
    assert [i for i, n in ids.items() if n > 1] == []
    per_comment = Counter(e.data.comment.id for e in got if e.data.comment)  # type: ignore[union-attr]
    assert per_comment == Counter({f"c{i}": 7 for i in range(2, 22)} | {"c1": 6})


def test_a_comment_by_an_author_without_followers_skips_the_follows_topic(
    kafka_bootstrap: str, worker: WorkerProcess
) -> None:
    """README "Topics a comment crosses": Ben has no followers. His first reply crosses the
    follows topic (one activity record: nobody knew yet, as for Ana's first comment); once the
    follows stage has said so, his next replies cross none, and Ana is told of each. When Dee
    follows him, his replies cross it again and Dee is told too."""
    story = Story(kafka_bootstrap, worker.env)
    follows = f"{worker.env['NEWSROOM_APP_ID']}-follows"
    partitions = int(worker.env["NEWSROOM_TOPICS__PARTITIONS"])

    def activities() -> Counter[str]:
        """The activity records on the follows topic, by the subject they are about."""
        out: Counter[str] = Counter()
        for record in run(read_to_end(kafka_bootstrap, follows, partitions)):
            value = orjson.loads(record.value)
            subject = value.get("subject", {}).get("key", "")
            probe = subject.startswith("c:c-probe-")  # the barrier's, not the story's
            if value.get("kind") == "activity" and value["event"] == "comment" and not probe:
                out[subject] += 1
        return out

    story.publish([article("a-1"), comment("c1", ANA, notify="replies")])
    story.publish([comment("c2", BEN, "First.", parent="c1")])
    assert story.new_rows(1) == Counter({("created", "m-ana", "reply", "c2"): 1})
    # Nobody knew Ana or Ben had no followers: each one's first comment crossed it (before
    # this change, every comment did).
    assert activities() == Counter({"c:c1": 1, "c:c2": 1})
    story.publish([comment("c3", BEN, "Second.", parent="c1")])
    story.publish([comment("c4", BEN, "Third.", parent="c1")])
    assert story.new_rows(3) == Counter(
        {("created", "m-ana", "reply", "c3"): 1, ("created", "m-ana", "reply", "c4"): 1}
    )
    assert activities() == Counter({"c:c1": 1, "c:c2": 1})  # c3, c4: no follows topic
    story.subscribe([subscribe(DEE, "commenter", "m-ben", "instant")], ["m-dee"])
    story.publish([comment("c5", BEN, "Fourth.", parent="c1")])
    assert story.new_rows(5) == Counter(
        {
            ("created", "m-ana", "reply", "c5"): 1,
            ("created", "m-dee", "followed_commenter", "c5"): 1,
        }
    )
    assert activities() == Counter({"c:c1": 1, "c:c2": 1, "c:c5": 1})
