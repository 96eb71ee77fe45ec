"""A seeded, realistic event stream with a known expected output.

Articles with Zipf-distributed comment counts, threaded replies (about half the comments),
mentions, readers who follow articles and commenters instantly or in digests, comment-form
"Notify of" choices, late approvals and spam removed after it notified. The expected
notifications and retractions are computed by the in-process reference pipeline
(``LocalPipeline``) fed the same events: their ids are deterministic, so a run on the real
worker is judged by comparing id sets.

Events come in three phases, each settled in the worker before the next starts, the way minutes
pass between subscribing and commenting on a real site: ``setup`` (articles, subscriptions),
``openers`` (the first comment of each article, with a "replies" choice) and ``stream``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import article, comment, member, moderate, subscribe
from tests.integration.kafka_helpers import event_records

TOKEN_KEY = "workload-token-key"


@dataclass
class Workload:
    """The events of a run and what must come out of them."""

    setup: list[ev.CloudEvent]
    openers: list[ev.CloudEvent]
    stream: list[ev.CloudEvent]
    expected_created: set[str] = field(default_factory=set)
    expected_retracted: set[str] = field(default_factory=set)
    expected_reasons: Counter[str] = field(default_factory=Counter)
    detail: dict[str, str] = field(default_factory=dict)  # id -> "recipient reason subject"

    def records(self, events: list[ev.CloudEvent], prefix: str) -> list[tuple[str, bytes, bytes]]:
        """(topic, key, value) of each event, as a producer would write them."""
        return event_records(events, prefix)


def generate(
    seed: int = 7,
    articles: int = 20,
    readers: int = 60,
    comments: int = 300,
    spam_ratio: float = 0.03,
    pending_ratio: float = 0.05,
) -> Workload:
    """A workload; the same arguments always give the same events and expectations."""
    rng = random.Random(seed)
    people = [member(f"m-{i:04d}", f"Reader {i:04d}") for i in range(readers)]
    article_ids = [f"a-{i:03d}" for i in range(articles)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(articles)]  # Zipf-like popularity
    setup: list[ev.CloudEvent] = [
        article(aid, journalist=f"j-{i % 5}") for i, aid in enumerate(article_ids)
    ]
    for person in people:
        for aid in rng.sample(article_ids, 2):
            setup.append(
                subscribe(person, "article", aid, rng.choice(["instant", "instant", None]))
            )
        if rng.random() < 0.3:
            followed = rng.choice(people)
            if followed is not person:
                setup.append(subscribe(person, "commenter", followed["id"], "instant"))
        if rng.random() < 0.3:
            setup.append(subscribe(person, "replies", None))
    threads: dict[str, list[tuple[str, dict[str, str]]]] = {aid: [] for aid in article_ids}
    openers: list[ev.CloudEvent] = []
    for aid in article_ids:
        author = rng.choice(people)
        cid = f"{aid}-c0"
        openers.append(comment(cid, author, "First!", aid=aid, notify="replies"))
        threads[aid].append((cid, author))
    stream: list[ev.CloudEvent] = []
    held: list[tuple[str, str]] = []
    for n in range(1, comments + 1):
        aid = rng.choices(article_ids, weights)[0]
        author = rng.choice(people)
        cid = f"{aid}-c{n}"
        parent = None
        text = f"Comment {n} on {aid}."
        if threads[aid] and rng.random() < 0.5:
            parent, _ = rng.choice(threads[aid])
        if threads[aid] and rng.random() < 0.15:
            _, mentioned = rng.choice(threads[aid])
            text = f"@{mentioned['name']} what do you think? " + text
        status = "pending" if rng.random() < pending_ratio else "approved"
        stream.append(
            comment(
                cid,
                author,
                text,
                aid=aid,
                parent=parent,
                status=status,
                notify=rng.choice([None, None, None, "replies"]),
            )
        )
        threads[aid].append((cid, author))
        if status == "pending":
            held.append((aid, cid))
        elif rng.random() < spam_ratio:
            stream.append(moderate(cid, "spam", aid=aid))
        if held and rng.random() < 0.2:
            late_aid, late_cid = held.pop(0)
            stream.append(moderate(late_cid, "approved", aid=late_aid))
    workload = Workload(setup=setup, openers=openers, stream=stream)
    reference = LocalPipeline(
        tokens=Tokens([TOKEN_KEY], 3600, 3600), clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC)
    )
    for event in setup + openers + stream:
        for out in reference.feed([event]):
            if isinstance(out, ev.NotificationCreated):
                workload.expected_created.add(out.id)
                workload.expected_reasons[out.data.reason] += 1
                workload.detail[out.id] = f"{out.data.recipient.id} {out.data.reason} {out.subject}"
            elif isinstance(out, ev.NotificationRetracted):
                workload.expected_retracted.add(out.id)
    return workload
