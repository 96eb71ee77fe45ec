"""The Faust shell's wiring without a broker (tests/memory_shell.py): the agents, topics,
routes and encodings ``stream.stages.install`` sets up, fed a seeded workload event by event,
must produce exactly what the in-process reference (``LocalPipeline``) produces, with no dead
letter; and a route pointed at the wrong stage must be caught. Seconds, where the same mistake
costs a run of the integration suite."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest

from newsroom_dev.workload import TOKENS, generate, workload_tokens
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.codec import Rejected
from newsroom_notify.domain import tokens as token_module
from newsroom_notify.domain.intents import Stage, ToStage
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import Release
from newsroom_notify.logs import configure_logging
from newsroom_notify.settings import Settings
from newsroom_notify.stream.stages import key_partition
from tests.builders import Clock, article, comment, erase, member, preferences, subscribe
from tests.memory_shell import Log, MemoryShell, Record

TABLE_NAMES = {"pending": "digest-pending"}  # the reference's table -> the worker's
# What depends on partitioning, which the reference (one process) does not have: each threads
# partition learns for itself that a commenter has no followers (``NoFollowers`` goes to the
# partition that asked), so which comments skipped the follows hop (``CommentInfo.direct``)
# differs, and so does where that is recorded (``CommentInfo.direct`` here, the follows stage's
# ``fanout`` there); who heard of them, and of their edits and removals, does not (the outputs).
PER_PARTITION = {"unfollowed_commenters", "fanout"}


def _comparable(table: str, value: str) -> str:
    if table != "comments":
        return value
    decoded = json.loads(value)
    decoded.pop("direct", None)
    return json.dumps(decoded, sort_keys=True)


START = datetime.fromisoformat("2026-11-28T12:00:00+00:00")


@pytest.fixture(scope="module", autouse=True)
def _worker_logging() -> None:
    configure_logging("WARNING", "json")  # as the worker does before it builds the app


@pytest.fixture(autouse=True)
def _one_signing_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens carry the wall clock's second (itsdangerous): the shell and the reference mint
    each confirmation token separately, so across a second boundary the same notification had
    two spellings and the comparison failed by chance. Both sign in the same second here."""
    second = int(time.time())
    monkeypatch.setattr(token_module._Signer, "get_timestamp", lambda self: second)


@pytest.fixture(scope="module")
def workload() -> Phases:
    """A seeded workload (newsroom_dev/workload.py): subscriptions, confirmations, discussion with
    replies, mentions, moderation, edits and deletions, then cancellations, erasures, pauses."""
    generated = generate(seed=7, articles=6, readers=24, comments=90, guests=4, burst=0)
    return [(p.name, p.events) for p in generated.phases]


def _key(key: str | None) -> bytes | None:
    return None if key is None else key.encode("utf-8")


def _json(events: Iterable[ev.CloudEvent]) -> Counter[str]:
    return Counter(e.model_dump_json() for e in events)


Phases = list[tuple[str, list[ev.CloudEvent] | timedelta]]


async def differences(
    phases: Phases,
    break_route: tuple[str, str] | None = None,
    settings: Settings | None = None,
) -> tuple[list[str], Counter[str]]:
    """Feed the workload to a shell and to the reference, one event at a time, then move the
    clock past the digest periods and fire the timers on both. Returns the differences (in the
    outputs, their keys, dead letters, the tables at the end) and the shell's output types.
    ``break_route``: what goes to the first destination goes to the second's topic instead
    (the mistake the test must catch)."""
    clock = Clock(START)
    # Tokens of their own, shared by both: every token either mints is signed in this test's
    # one second (a memo of an earlier test's, handed to one side and expired before the
    # other asked, made the same notification spelled two ways).
    tokens = workload_tokens()
    shell = MemoryShell.start(settings or Settings(dev_mode=True), tokens, clock)
    if break_route is not None:
        wrong, instead = break_route
        shell.pipeline.topics[wrong] = shell.pipeline.topics[instead]
    reference = LocalPipeline(tokens=tokens, clock=clock)
    found: list[str] = []
    seen = 0

    async def compare(label: str, expected: list[ev.CloudEvent]) -> None:
        nonlocal seen
        await shell.run_until_idle()
        outputs = shell.outputs()[seen:]
        seen += len(outputs)
        found.extend(f"{label}: {e}" for _, e in outputs if isinstance(e, Rejected))
        produced = [(k, e) for k, e in outputs if not isinstance(e, Rejected)]
        if _json(e for _, e in produced) != _json(expected):
            found.append(f"{label}: expected {len(expected)} outputs, got {len(produced)}")
        found.extend(
            f"{label}: {e.type} keyed {k!r}" for k, e in produced if k != _key(e.partition_key())
        )

    async def timers(at: timedelta) -> None:
        """The clock moves to START + ``at``; the timers fire twice on both."""
        clock.now = START + at
        expected: list[ev.CloudEvent] = []
        for rid in list(reference.tables["held"]):
            expected += reference.release(rid)
        expected += reference.tick() + reference.tick()
        await shell.timers()
        await shell.timers()
        await compare(f"timers at +{at}", expected)

    for name, events in phases:
        if isinstance(events, timedelta):
            await timers(events)
            continue
        for i, event in enumerate(events):
            shell.publish(event)
            await compare(f"{name}[{i}] {event.type}", reference.feed([event]))
    await timers(timedelta(hours=2))  # after the periods ended
    await timers(timedelta(hours=4))
    found += [f"dead letter from {r.topic}" for r in shell.dead_letters()]
    state = shell.state()
    for name, table in reference.tables.items():
        if name in PER_PARTITION:
            continue
        expected_state = {k: _comparable(name, v.model_dump_json()) for k, v in table.items()}
        shell_state = state[TABLE_NAMES.get(name, name.replace("_", "-"))]
        if {k: _comparable(name, v) for k, v in shell_state.items()} != expected_state:
            found.append(f"table {name} differs from the reference's")
    produced = Counter(type(e).__name__ for _, e in shell.outputs())
    follows = shell.pipeline.topics[Stage.FOLLOWS]
    produced["FanoutStep"] = sum(
        1 for r in shell.app.log.on(follows) if b'"kind":"fanout_step"' in (r.value or b"")
    )
    produced["largest batch"] = max(shell.batches)
    return found, produced


async def test_the_shell_routes_a_workload_exactly_as_the_reference(
    workload: Phases,
) -> None:
    found, produced = await differences(workload)
    assert found == []
    # Not vacuous: every kind of output went through the shell.
    assert produced["NotificationCreated"] > 100
    assert produced["NotificationRetracted"] > 0
    assert produced["DigestReady"] > 0
    # Not vacuous either: agents got batches of several records (of several partitions: a
    # fan-out's records, one per inbox partition, follow each other in the log).
    assert produced["largest batch"] > 1


async def test_fan_outs_walked_one_follower_per_step_give_what_the_reference_gives(
    workload: Phases,
) -> None:
    """A fan-out cut into FanoutStep messages on -follows reaches exactly the recipients the
    reference (one step) reaches, with the same bases, and leaves the same tables."""
    settings = Settings(dev_mode=True, limits={"fanout_step_recipients": 1})
    found, produced = await differences(workload, settings=settings)
    assert found == []
    assert produced["FanoutStep"] > 5  # not vacuous: walks did take several steps
    assert produced["NotificationCreated"] > 100


async def test_an_erased_commenter_leaves_the_digests_of_every_inbox_partition() -> None:
    """An erasure's Forget reaches every inbox partition: readers spread over all of them
    follow an article in digest mode; a commenter's comments are erased before the digest."""
    readers = [member(f"m-r{i}", f"Reader {i}") for i in range(16)]
    xavier = member("m-x", "Xavier")
    story = [
        ("setup", [article("a-1"), *(subscribe(r, "article", "a-1", "digest") for r in readers)]),
        ("hourly", [preferences(r["id"], digest="hourly") for r in readers]),
        ("discussion", [comment("a-1-c1", xavier, "Mine."), comment("a-1-c2", readers[0])]),
        ("the hour ends: the article's activity reaches the inboxes", timedelta(minutes=61)),
        ("erasure", [erase("m-x")]),
    ]
    found, produced = await differences(story)
    assert found == []
    assert produced["DigestReady"] >= len(readers) - 1  # every reader but perhaps the author


@pytest.mark.parametrize(
    "break_route",
    [
        (Stage.FOLLOWS, Stage.INBOX),
        (Stage.INBOX, Stage.FOLLOWS),
        (Stage.THREADS, Stage.INBOX),
        ("notifications", "digests"),
        ("digests", "notifications"),
    ],
    ids=lambda r: f"{r[0]}-to-{r[1]}",
)
async def test_a_route_to_the_wrong_topic_is_caught(
    workload: Phases, break_route: tuple[str, str]
) -> None:
    found, _ = await differences(workload, break_route)
    assert found != []


async def test_a_quiet_hours_release_reaches_the_inbox_of_its_recipient() -> None:
    """The quiet-hours timer's Release goes to the inbox topic under the recipient's key."""
    shell = MemoryShell.start(Settings(dev_mode=True), TOKENS, Clock(START))
    await shell.pipeline.route([ToStage(Stage.INBOX, "m-0001", Release(recipient_id="m-0001"))])
    [record] = shell.app.log.records
    assert record.topic == shell.pipeline.topics[Stage.INBOX]
    assert record.key == b"m-0001"


async def test_an_erasure_past_the_traces_cap_reaches_the_discussions_of_every_partition() -> None:
    """A prolific commenter's list of discussions stops at its cap; their erasure then asks
    every threads partition to search its own articles (one record to each partition), and
    each partition's tables lose the commenter's name and words."""
    settings = Settings.model_validate({"dev_mode": True, "limits": {"traces": 1}})
    shell = MemoryShell.start(settings, TOKENS, Clock(START))
    ben = member("m-ben", "Ben Okoro")
    articles = [f"a-{i}" for i in range(12)]
    spread = {key_partition(aid, settings.topics.partitions) for aid in articles}
    assert len(spread) > 2  # not vacuous: the discussions live in several partitions
    for aid in articles:
        shell.publish(article(aid))
        shell.publish(comment(f"{aid}-c1", ben, "Ben's words.", aid=aid))
    await shell.run_until_idle()
    assert len(json.loads(shell.state()["traces"]["m-ben"])["keys"]) == 1
    shell.publish(erase("m-ben"))
    await shell.run_until_idle()
    comments = [json.loads(value) for value in shell.state()["comments"].values()]
    assert len(comments) == len(articles)
    assert {(c["author_name"], c["text"]) for c in comments} == {("[erased]", "")}
    assert shell.dead_letters() == []


async def test_a_reply_that_overtakes_its_parents_notify_of_choice_still_notifies() -> None:
    """The stream's inbox gets a reply's candidacies before the parent's author's "Notify of"
    choice (its record held back here, as a slower path would): the candidacies record carries
    the choice, the inbox agent hands it on and the author hears of the reply; the choice
    arriving later sends nothing more. (A fault-suite run lost such a reply, 3 December 2026.)"""
    shell = MemoryShell.start(Settings(dev_mode=True), TOKENS, Clock(START))
    ana, ben = member("m-ana", "Ana Lima"), member("m-ben", "Ben Okoro")
    shell.publish(article("a-1"))
    shell.publish(subscribe(ana, "article", "a-2", "instant"))
    await shell.run_until_idle()
    log, inbox = shell.app.log, shell.pipeline.topics[Stage.INBOX]
    held: list[Record] = []

    def holding_choices(topic: str, key: bytes | None, value: bytes | None, *rest: Any) -> Record:
        record = Log.append(log, topic, key, value, *rest)
        if topic == inbox and (value or b"").startswith(b'{"kind":"form_choice"'):
            log.pending.remove(record)
            held.append(record)
        return record

    log.append = holding_choices  # type: ignore[method-assign]
    shell.publish(comment("c1", ana, "Where do the buses go?", notify="replies"))
    shell.publish(comment("c2", ben, "Down Main Street.", parent="c1"))
    await shell.run_until_idle()
    assert len(held) == 1
    replies = [e for _, e in shell.outputs() if isinstance(e, ev.NotificationCreated)]
    assert [(n.data.recipient.id, n.data.reason, n.subject) for n in replies] == [
        ("m-ana", "reply", "c:c2")
    ]
    log.pending.extend(held)
    await shell.run_until_idle()
    assert len(shell.outputs()) == 1
    assert shell.dead_letters() == []
