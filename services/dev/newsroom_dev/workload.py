"""A seeded, realistic event stream with a known expected output.

Articles with Zipf-distributed comment counts, threaded replies (about half the comments),
mentions, members and guests (some of whom never confirm), readers who follow articles and
commenters instantly or in (hourly, on a sped-up clock) digests, followers of journalists,
comment-form "Notify of" choices, late approvals, spam and trash after the fact, edits and
deletions, then a round of changes — cancellations (one of them a digest's "every digest
subscription" cancel), erasures, pauses, muted articles, new digest-mode follows — before the
discussion continues.

Expected outputs come from the in-process reference pipeline (``LocalPipeline``) fed the same
events: every notification and retraction, with its content. That is differential (the worker
runs the same stage classes), so ``Facts`` also states what the workload's construction alone
implies (independent of the pipeline code): one confirmation request per guest, nothing but
that to guests who never confirm, nothing after erasure or a pause, nobody told of their own
comment, nothing about a comment never approved, digests only to people with a digest-mode
subscription.

Events come in phases; the harness lets each settle in the worker before the next starts (the
way minutes pass between subscribing and commenting on a real site): events of different input
topics are not ordered with respect to each other, so a cancellation must not race the comment
it is meant to silence. ``setup`` (articles, subscriptions, preferences), ``confirmations``
(guests confirming their address), ``openers`` (the first comment of each article), ``stream``
(comments, moderation, edits, deletions), ``changes`` (cancellations, erasures, preferences, new
follows), ``tail`` (more discussion, new articles from followed journalists). ``burst`` is an
extra large phase that only the burst scenario publishes.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from newsroom_dev.builders import (
    article,
    cancel,
    comment,
    confirm,
    delete,
    edit,
    erase,
    event_records,
    guest,
    member,
    moderate,
    preferences,
    sid_of,
    subscribe,
)
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import TokenClaims, Tokens

TOKEN_KEY = "workload-token-key"


def workload_tokens() -> Tokens:
    """Tokens of the workload's key (the fault tests' worker uses the same key), with a memo
    of their own."""
    return Tokens([TOKEN_KEY], 3 * 3600, 3 * 3600)


TOKENS = workload_tokens()


@dataclass
class Phase:
    """Events published together, and what the reference pipeline produced from them."""

    name: str
    events: list[ev.CloudEvent]
    per_event: list[list[ev.CloudEvent]] = field(default_factory=list)  # outputs of each event

    @property
    def outputs(self) -> list[ev.CloudEvent]:
        return [o for outs in self.per_event for o in outs]

    @property
    def created(self) -> list[ev.NotificationCreated]:
        return [o for o in self.outputs if isinstance(o, ev.NotificationCreated)]

    @property
    def retracted(self) -> list[ev.NotificationRetracted]:
        return [o for o in self.outputs if isinstance(o, ev.NotificationRetracted)]


@dataclass
class Facts:
    """What the workload's construction implies, without the pipeline code."""

    guests: set[str] = field(default_factory=set)  # each subscribed exactly once before
    unconfirmed: set[str] = field(default_factory=set)  # ... and these never confirmed
    erased: set[str] = field(default_factory=set)  # erased in ``changes``
    paused: set[str] = field(default_factory=set)  # paused in ``changes``
    author: dict[str, str] = field(default_factory=dict)  # comment id -> author's subscriber id
    never_approved: set[str] = field(default_factory=set)  # comment ids held, never approved
    late_approved: set[str] = field(default_factory=set)  # comment ids held, approved later
    after_changes: set[str] = field(default_factory=set)  # comment ids of ``tail`` and later
    digest_mode: set[str] = field(default_factory=set)  # sids with a digest-mode subscription
    notified_if_unchanged: dict[str, int] = field(default_factory=dict)
    # ^ erased/paused sid -> notifications the tail would bring them without the changes
    #   (the reference without the ``changes`` phase): the silence checks are not vacuous.


@dataclass
class Workload:
    """The events of a run, phase by phase, and what must come out of them."""

    phases: list[Phase]
    burst: Phase
    facts: Facts

    def phase(self, name: str) -> Phase:
        return next(p for p in [*self.phases, self.burst] if p.name == name)

    def records(self, events: list[ev.CloudEvent], prefix: str) -> list[tuple[str, bytes, bytes]]:
        """(topic, key, value) of each event, as a producer would write them."""
        return event_records(events, prefix)

    def expected_reasons(self, phases: list[Phase]) -> Counter[str]:
        return Counter(n.data.reason for p in phases for n in p.created)


DIGEST_DEFAULT_SCOPES = ("article", "commenter", "journalist", "section")


def generate(
    seed: int = 7,
    articles: int = 20,
    readers: int = 60,
    comments: int = 300,
    guests: int = 12,
    burst: int = 1500,
    spam_ratio: float = 0.03,
    pending_ratio: float = 0.05,
) -> Workload:
    """A workload; the same arguments always give the same events and expectations."""
    rng = random.Random(seed)
    facts = Facts()
    people = [member(f"m-{i:04d}", f"Reader {i:04d}") for i in range(readers)]
    visitors = [guest(f"Guest {i:03d}", f"guest{i:03d}@example.org") for i in range(guests)]
    everyone = people + visitors
    article_ids = [f"a-{i:03d}" for i in range(articles)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(articles)]  # Zipf-like popularity
    setup: list[ev.CloudEvent] = [
        article(aid, journalist=f"j-{i % 5}") for i, aid in enumerate(article_ids)
    ]

    def follow(person: dict[str, Any], scope: str, target: str | None, how: str | None) -> None:
        setup.append(subscribe(person, scope, target, how))
        if how == "digest" or (how is None and scope in DIGEST_DEFAULT_SCOPES):
            facts.digest_mode.add(sid_of(person))

    for person in people:
        for aid in rng.sample(article_ids, 2):
            follow(person, "article", aid, rng.choice(["instant", "instant", None, "digest"]))
        if rng.random() < 0.3:
            followed = rng.choice(everyone)
            if followed is not person and followed["id"]:
                follow(person, "commenter", followed["id"], rng.choice(["instant", "digest"]))
        if rng.random() < 0.3:
            follow(person, "replies", None, None)
        if rng.random() < 0.25:
            follow(person, "journalist", f"j-{rng.randrange(5)}", rng.choice(["instant", "digest"]))
        if sid_of(person) in facts.digest_mode and rng.random() < 0.6:
            # Hourly digests: on the fault tests' sped-up clock a period lasts a second.
            setup.append(preferences(sid_of(person), digest="hourly"))
    confirmations: list[ev.CloudEvent] = []
    for visitor in visitors:
        sid = sid_of(visitor)
        aid = rng.choice(article_ids)
        setup.append(subscribe(visitor, "article", aid, "instant"))  # one request per guest
        facts.guests.add(sid)
        if rng.random() < 0.75:
            confirmations.append(confirm(TOKENS.confirm(TokenClaims(sid, "article", aid))))
        else:
            facts.unconfirmed.add(sid)
    threads: dict[str, list[tuple[str, dict[str, Any]]]] = {aid: [] for aid in article_ids}
    openers: list[ev.CloudEvent] = []
    for aid in article_ids:
        author = rng.choice(everyone)
        cid = f"{aid}-c0"
        notify = None if author["guest"] else "replies"
        openers.append(comment(cid, author, "First!", aid=aid, notify=notify))
        threads[aid].append((cid, author))
        facts.author[cid] = sid_of(author)

    posted = 0

    def discussion(n: int, authors: list[dict[str, Any]]) -> list[ev.CloudEvent]:
        nonlocal posted
        out: list[ev.CloudEvent] = []
        held: list[tuple[str, str]] = []
        visible: list[tuple[str, str]] = []
        for _ in range(n):
            posted += 1
            aid = rng.choices(article_ids, weights)[0]
            author = rng.choice(authors)
            cid = f"{aid}-c{posted}"
            parent = None
            text = f"Comment {posted} on {aid}."
            if threads[aid] and rng.random() < 0.5:
                parent, _ = rng.choice(threads[aid])
            if threads[aid] and rng.random() < 0.15:
                _, mentioned = rng.choice(threads[aid])
                text = f"@{mentioned['name']} what do you think? " + text
            status = "pending" if rng.random() < pending_ratio else "approved"
            # Guests tick no "Notify of" box: it would be another confirmation request.
            notify = None if author["guest"] else rng.choice([None, None, "replies", "follow_up"])
            if notify == "follow_up":
                facts.digest_mode.add(sid_of(author))  # an article follow: digest by default
            out.append(
                comment(
                    cid,
                    author,
                    text,
                    aid=aid,
                    parent=parent,
                    status=status,
                    notify=notify,
                )
            )
            threads[aid].append((cid, author))
            facts.author[cid] = sid_of(author)
            if status == "pending":
                held.append((aid, cid))
            else:
                visible.append((aid, cid))
                if rng.random() < spam_ratio:
                    out.append(moderate(cid, rng.choice(["spam", "trash"]), aid=aid))
                    visible.pop()
            if held and rng.random() < 0.2:
                late_aid, late_cid = held.pop(0)
                out.append(moderate(late_cid, "approved", aid=late_aid))
                visible.append((late_aid, late_cid))
                facts.late_approved.add(late_cid)
            if visible and rng.random() < 0.05:
                e_aid, e_cid = rng.choice(visible)
                out.append(edit(e_cid, f"Edited: comment {e_cid} on {e_aid}.", aid=e_aid))
            if visible and rng.random() < 0.02:
                d_aid, d_cid = visible.pop(rng.randrange(len(visible)))
                out.append(delete(d_cid, aid=d_aid))
        facts.never_approved.update(cid for _, cid in held)
        return out

    stream = discussion(comments // 3, everyone)
    # The tail's authors: everybody but those about to be erased (chosen below among readers
    # the tail would otherwise notify; an erased person commenting again would be a new one).
    keep_out = set(rng.sample([sid_of(p) for p in people], readers // 6))
    tail_authors = [p for p in everyone if sid_of(p) not in keep_out]
    first_tail = posted + 1
    tail = discussion(comments - comments // 3, tail_authors)
    for i in range(5):  # a new article from each journalist (some are followed)
        tail.insert(len(tail) * i // 5, article(f"a-new-{i}", journalist=f"j-{i}"))
    phases = [
        Phase("setup", setup),
        Phase("confirmations", confirmations),
        Phase("openers", openers),
        Phase("stream", stream),
    ]
    # What the tail would bring each reader if nothing changed: pick the erased and the paused
    # among those it would notify, so that their silence is a real check.
    unchanged = reference_outputs([*phases, Phase("tail", tail)])
    would = Counter(n.data.recipient.id for n in unchanged[-1].created)
    candidates = sorted(s for s in keep_out if would[s] > 0)
    rng.shuffle(candidates)
    facts.erased = set(candidates[:2])
    others = sorted(s for s in would if s not in keep_out and s not in facts.unconfirmed)
    rng.shuffle(others)
    facts.paused = set(others[:2])
    facts.notified_if_unchanged = {s: would[s] for s in facts.erased | facts.paused}
    changes: list[ev.CloudEvent] = [erase(s) for s in sorted(facts.erased)]
    changes += [preferences(s, paused=True) for s in sorted(facts.paused)]
    unchanged_people = [p for p in people if sid_of(p) not in keep_out | facts.paused]
    for person in rng.sample(unchanged_people, 8):
        sid = sid_of(person)
        roll = rng.random()
        if roll < 0.3:
            changes.append(preferences(sid, digest="hourly", muted_articles=[article_ids[0]]))
        elif roll < 0.5:
            changes.append(cancel(sid, "digest", None))  # a digest's own token: all digest follows
        elif roll < 0.7:
            changes.append(cancel(sid, "replies", None))
        else:
            followed = rng.choice([p for p in tail_authors if p["id"] and p is not person])
            changes.append(subscribe(person, "commenter", followed["id"], "digest"))
            changes.append(subscribe(person, "article", rng.choice(article_ids), "digest"))
            facts.digest_mode.add(sid)
    for visitor in rng.sample(visitors, 2):
        changes.append(cancel(sid_of(visitor), "article", None))  # not theirs: a no-op
    big = discussion(burst, tail_authors) if burst else []
    facts.after_changes = {c for c in facts.author if _number(c) >= first_tail}
    phases += [Phase("changes", changes), Phase("tail", tail)]
    computed = reference_outputs([*phases, Phase("burst", big)])
    return Workload(phases=computed[:-1], burst=computed[-1], facts=facts)


def _number(cid: str) -> int:
    return int(cid.rsplit("-c", 1)[1])


def reference_outputs(phases: list[Phase]) -> list[Phase]:
    """The phases with the outputs the reference pipeline produces for them, in order."""
    reference = LocalPipeline(tokens=TOKENS, clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC))
    return [Phase(p.name, p.events, [reference.feed([e]) for e in p.events]) for p in phases]


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
