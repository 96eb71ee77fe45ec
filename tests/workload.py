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
from typing import Any

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import TokenClaims, Tokens
from tests.builders import (
    article,
    comment,
    confirm,
    guest,
    member,
    moderate,
    preferences,
    sid_of,
    subscribe,
)
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


# --------------------------------------------------------------------------------- benchmark

TIME_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Australia/Sydney",
)


def zipf_weights(n: int, exponent: float = 1.1) -> list[float]:
    """Popularity of the items of rank 1..n (Zipf's law), normalised to sum to 1."""
    raw = [1 / (rank + 1) ** exponent for rank in range(n)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass
class BenchWorkload:
    """A large seeded workload for ``bench/``: setup first, then comment batches on demand.

    ``setup`` holds articles, subscriptions (members and guests, every scope, instant and
    digest) and preferences (frequencies, time zones); ``confirmations`` confirm most guests
    (publish them once the setup is processed: a confirmation must reach the inbox after the
    request). ``comments(n)`` continues the discussion: Zipf-popular articles (rank 1 is the
    hot article), about half replies, some mentions, a few held for moderation and approved
    later. No expected output is computed (too large for the reference pipeline)."""

    rng: random.Random
    article_ids: list[str]
    weights: list[float]
    commenters: list[dict[str, Any]]
    setup: list[ev.CloudEvent]
    confirmations: list[ev.CloudEvent]
    subscriptions: int
    hot_article: str
    hot_followers: int
    reply_ratio: float = 0.55
    mention_ratio: float = 0.1
    pending_ratio: float = 0.03
    threads: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    posted: int = 0

    def comments(self, n: int) -> list[ev.CloudEvent]:
        """The next ``n`` comment events (posted, and moderation approvals of held ones)."""
        rng = self.rng
        out: list[ev.CloudEvent] = []
        held: list[tuple[str, str]] = []
        while len(out) < n:
            if held and (rng.random() < 0.3 or len(out) == n - len(held)):
                late_aid, late_cid = held.pop(0)
                out.append(moderate(late_cid, "approved", aid=late_aid))
                continue
            self.posted += 1
            aid = rng.choices(self.article_ids, self.weights)[0]
            thread = self.threads.setdefault(aid, [])
            author = rng.choice(self.commenters)
            cid = f"{aid}-c{self.posted}"
            parent = None
            text = f"Comment {self.posted} on {aid}: " + " ".join(
                rng.choices(WORDS, k=rng.randint(8, 60))
            )
            if thread and rng.random() < self.reply_ratio:
                parent = rng.choice(thread)[0]
            if thread and rng.random() < self.mention_ratio:
                text = f"@{rng.choice(thread)[1]} " + text
            status = "pending" if rng.random() < self.pending_ratio else "approved"
            out.append(
                comment(
                    cid,
                    author,
                    text,
                    aid=aid,
                    parent=parent,
                    status=status,
                    notify=rng.choices([None, "replies", "follow_up"], [0.77, 0.2, 0.03])[0],
                )
            )
            thread.append((cid, str(author["name"])))
            if status == "pending":
                held.append((aid, cid))
        return out


WORDS = (
    "the",
    "council",
    "vote",
    "bus",
    "lanes",
    "old",
    "town",
    "budget",
    "school",
    "parking",
    "trees",
    "rent",
    "housing",
    "market",
    "mayor",
    "report",
    "today",
    "really",
    "think",
    "agree",
    "disagree",
    "source",
    "article",
    "paragraph",
    "numbers",
    "why",
)


def generate_bench(
    seed: int = 11,
    articles: int = 2000,
    members: int = 4000,
    guests: int = 1000,
    hot_followers: int = 50_000,
    token_key: str = TOKEN_KEY,
) -> BenchWorkload:
    """A benchmark workload; the same arguments always give the same events."""
    rng = random.Random(seed)
    article_ids = [f"a-{i:05d}" for i in range(articles)]
    weights = zipf_weights(articles)
    sections = ["local", "politics", "sport", "culture", "business"]
    setup: list[ev.CloudEvent] = [
        article(aid, journalist=f"j-{i % 40}", section=sections[i % len(sections)])
        for i, aid in enumerate(article_ids)
    ]
    people = [member(f"m-{i:05d}", f"Reader {i:05d}") for i in range(members)]
    people += [guest(f"Guest {i:04d}", f"guest{i:04d}@example.org") for i in range(guests)]
    subscriptions = 0
    confirm_claims: dict[str, TokenClaims] = {}
    for person in people:
        wanted: list[tuple[str, str | None, str | None]] = []
        for aid in rng.choices(article_ids, weights, k=rng.randint(0, 2)):
            # Most article follows are digests (the default); instant ones are the exception.
            delivery = rng.choices(["instant", "digest", None], [0.1, 0.5, 0.4])[0]
            wanted.append(("article", aid, delivery))
        if rng.random() < 0.3:
            wanted.append(("replies", None, "instant"))
        elif rng.random() < 0.3:
            wanted.append(("replies", rng.choices(article_ids, weights)[0], None))
        if rng.random() < 0.2:
            followed = rng.choice(people)
            if followed is not person and followed["id"]:
                wanted.append(("commenter", followed["id"], rng.choice(["instant", "digest"])))
        if rng.random() < 0.1:
            wanted.append(("journalist", f"j-{rng.randrange(40)}", "digest"))
        if rng.random() < 0.1:
            wanted.append(("section", rng.choice(sections), "digest"))
        seen = set()
        for scope, target, delivery in wanted:
            if (scope, target) in seen:
                continue
            seen.add((scope, target))
            setup.append(subscribe(person, scope, target, delivery))
            subscriptions += 1
            if person["guest"] and person["email"] not in confirm_claims:
                sid = sid_of(person)
                confirm_claims[str(person["email"])] = TokenClaims(sid, scope, target)
        if wanted and rng.random() < 0.3:
            setup.append(
                preferences(
                    sid_of(person),
                    digest=rng.choice(["hourly", "daily", "daily", "weekly"]),
                    timezone=rng.choice(TIME_ZONES),
                    digest_hour=rng.randrange(24),
                    digest_weekday=rng.randrange(7),
                )
            )
    hot = article_ids[0]
    for i in range(hot_followers):
        fan = member(f"m-hot-{i:06d}", f"Hot Reader {i:06d}")
        setup.append(subscribe(fan, "article", hot, "digest"))
    subscriptions += hot_followers
    tokens = Tokens([token_key], 3600, 3600)
    confirmations: list[ev.CloudEvent] = [
        confirm(tokens.confirm(claims))
        for claims in confirm_claims.values()
        if rng.random() < 0.8  # some guests never confirm
    ]
    return BenchWorkload(
        rng=rng,
        article_ids=article_ids,
        weights=weights,
        commenters=people,
        setup=setup,
        confirmations=confirmations,
        subscriptions=subscriptions,
        hot_article=hot,
        hot_followers=hot_followers,
    )
