"""Digests through the in-process pipeline, with a clock the test moves."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from newsroom_dev.builders import fresh_events
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.intents import Stage, ToStage
from newsroom_notify.domain.local import TABLES, LocalPipeline
from newsroom_notify.domain.messages import DigestTick
from newsroom_notify.domain.tokens import TokenClaims, Tokens
from tests.builders import (
    Clock,
    article,
    comment,
    delete,
    edit,
    member,
    moderate,
    preferences,
    subscribe,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
DEE = member("m-dee", "Dee Park")
TOKYO = member("m-tok", "Taro Yamada")
NYC = member("m-nyc", "Nia Young")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["k"], 3600, 3600)


@pytest.fixture
def pipe(clock: Clock, tokens: Tokens) -> LocalPipeline:
    p = LocalPipeline(tokens=tokens, clock=clock)
    p.feed([article("a-1"), article("a-2")])
    return p


def digests(outputs: list[ev.CloudEvent]) -> list[ev.DigestReady]:
    return [o for o in outputs if isinstance(o, ev.DigestReady)]


def run_until(
    pipe: LocalPipeline, clock: Clock, end: datetime, step: timedelta
) -> list[ev.DigestReady]:
    """Advance the clock to ``end`` in steps, ticking the timers at each step."""
    out: list[ev.CloudEvent] = []
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        out += pipe.tick()
    return digests(out)


def berlin_daily(pipe: LocalPipeline, who: dict[str, Any] = CAL) -> None:
    pipe.feed([preferences(who["id"], digest="daily", timezone="Europe/Berlin", digest_hour=8)])
    pipe.feed([subscribe(who, "article", "a-1")])  # digest is the default delivery


def test_daily_digest_comes_once_after_the_period_at_the_local_hour(
    pipe: LocalPipeline, clock: Clock, tokens: Tokens
) -> None:
    berlin_daily(pipe)
    for i in range(8):
        clock.at(2026, 11, 27, 10 + i, 0)
        pipe.feed([comment(f"c{i}", BEN, f"comment number {i}")])
    # 08:00 Berlin = 07:00 UTC; the digest is cut 2 minutes after (grace).
    early = run_until(pipe, clock, datetime(2026, 11, 28, 7, 1, tzinfo=UTC), timedelta(minutes=15))
    assert early == []
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 9, 0, tzinfo=UTC), timedelta(minutes=1)
    )
    data = digest.data
    assert data.recipient.id == "m-cal"
    assert data.recipient.email == "cal@example.org"
    assert (data.period.frequency, data.period.start, data.period.end) == (
        "daily",
        datetime(2026, 11, 27, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
    )
    (part,) = data.articles
    assert part.article.id == "a-1"
    assert part.new_comments == 8
    assert [i.comment.id for i in part.items] == ["c7", "c6", "c5", "c4", "c3"]  # latest 5
    assert {i.reason for i in part.items} == {"follow_up"}
    assert data.total_comments == 8
    assert tokens.read_unsubscribe(data.unsubscribe_token).version > 0  # the profile's
    assert _what(tokens.read_unsubscribe(data.unsubscribe_token)) == ("m-cal", "digest", "daily")
    assert part.unsubscribe_token is not None
    assert _what(tokens.read_unsubscribe(part.unsubscribe_token)) == ("m-cal", "article", "a-1")
    assert digest.id == data.digest_id
    # At most one per period; an empty period emits nothing.
    assert (
        run_until(pipe, clock, datetime(2026, 11, 30, 9, 0, tzinfo=UTC), timedelta(hours=1)) == []
    )


def test_a_digest_id_names_the_recipient_and_period_and_nothing_else(tokens: Tokens) -> None:
    def digests_of(who: dict[str, Any], comments: list[tuple[str, int]]) -> list[ev.DigestReady]:
        """Cal's (or Ben's) Berlin daily digests of comments posted on 27 Nov at these hours."""
        with fresh_events():
            clock = Clock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
            pipe = LocalPipeline(tokens=tokens, clock=clock)
            pipe.feed([article("a-1")])
            berlin_daily(pipe, who)
            for cid, hour in comments:
                clock.at(2026, 11, 27, hour, 0)
                pipe.feed([comment(cid, DEE, f"At {hour}")])
            clock.at(2026, 11, 28, 6, 0)
            return run_until(
                pipe, clock, datetime(2026, 11, 29, 8, 0, tzinfo=UTC), timedelta(minutes=10)
            )

    (one,) = digests_of(CAL, [("c1", 12)])
    (other,) = digests_of(CAL, [("c2", 10), ("c3", 20)])  # other comments, same period
    (ben,) = digests_of(BEN, [("c1", 12)])
    assert one.data.period == ev.Period(
        frequency="daily",
        start=datetime(2026, 11, 27, 7, 0, tzinfo=UTC),  # 08:00 in Berlin (UTC+1)
        end=datetime(2026, 11, 28, 7, 0, tzinfo=UTC),
    )
    assert one.id == one.data.digest_id
    # sha256("v1\x1fm-cal\x1fdaily\x1f2026-11-27T07:00:00+00:00")[:24], by hand (README:
    # recipient, frequency, period start in UTC): ids consumers stored must not change.
    assert one.id == "d-10d51966ef24856c0ab5e589"
    assert other.id == one.id
    assert ben.id == "d-07d07513b2d02393d82223c3"


def test_each_subscriber_gets_it_at_their_own_local_hour(pipe: LocalPipeline, clock: Clock) -> None:
    for who, zone in ((TOKYO, "Asia/Tokyo"), (NYC, "America/New_York")):
        pipe.feed([preferences(who["id"], digest="daily", timezone=zone, digest_hour=8)])
        pipe.feed([subscribe(who, "article", "a-1")])
    clock.at(2026, 11, 27, 14, 0)  # 23:00 in Tokyo, 09:00 in New York
    pipe.feed([comment("c1", BEN)])
    got = run_until(pipe, clock, datetime(2026, 11, 28, 14, 0, tzinfo=UTC), timedelta(minutes=5))
    when = {d.data.recipient.id: d.data.period.end for d in got}
    assert when == {
        "m-tok": datetime(2026, 11, 27, 23, 0, tzinfo=UTC),  # 08:00 JST on the 28th
        "m-nyc": datetime(2026, 11, 28, 13, 0, tzinfo=UTC),  # 08:00 EST on the 28th
    }


def test_hourly_and_weekly_frequencies(pipe: LocalPipeline, clock: Clock) -> None:
    pipe.feed([preferences("m-ana", digest="hourly", timezone="UTC", digest_hour=0)])
    pipe.feed(
        [preferences("m-nyc", digest="weekly", timezone="UTC", digest_hour=6, digest_weekday=0)]
    )
    pipe.feed([subscribe(ANA, "article", "a-1"), subscribe(NYC, "article", "a-1")])
    clock.at(2026, 11, 27, 10, 20)  # a Friday
    pipe.feed([comment("c1", BEN)])
    clock.at(2026, 11, 27, 11, 40)
    pipe.feed([comment("c2", BEN)])
    got = run_until(pipe, clock, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), timedelta(minutes=5))
    hourly = sorted(
        (d.data.period.start.hour, d.data.total_comments)
        for d in got
        if d.data.recipient.id == "m-ana"
    )
    assert hourly == [(10, 1), (11, 1)]
    (weekly,) = [d for d in got if d.data.recipient.id == "m-nyc"]
    assert weekly.data.period.end == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 06:00
    assert weekly.data.total_comments == 2


def test_a_comment_removed_before_the_digest_vanishes_from_it(
    pipe: LocalPipeline, clock: Clock
) -> None:
    berlin_daily(pipe)
    clock.at(2026, 11, 27, 10, 0)
    pipe.feed(
        [comment("c1", BEN, "fine"), comment("c2", BEN, "BUY WATCHES"), comment("c3", BEN, "ok")]
    )
    pipe.feed([moderate("c2", "spam")])  # before the article's activity was fanned out
    clock.at(2026, 11, 28, 7, 0)
    pipe.tick()  # the article's period ended: fanned out to Cal
    pipe.feed([delete("c3")])  # after the fan-out, before Cal's digest is cut
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 8, 0, tzinfo=UTC), timedelta(minutes=1)
    )
    (part,) = digest.data.articles
    assert [i.comment.id for i in part.items] == ["c1"]
    assert part.new_comments == 1
    assert digest.data.total_comments == 1


def test_an_edited_comment_shows_its_latest_text(pipe: LocalPipeline, clock: Clock) -> None:
    berlin_daily(pipe)
    clock.at(2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", BEN, "teh first draft")])
    pipe.feed([edit("c1", "the final text")])
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 8, 0, tzinfo=UTC), timedelta(minutes=5)
    )
    assert digest.data.articles[0].items[0].comment.excerpt == "the final text"


def test_replies_and_mentions_come_first_and_own_comments_are_left_out(
    pipe: LocalPipeline, clock: Clock
) -> None:
    berlin_daily(pipe, ANA)
    pipe.feed([subscribe(ANA, "replies", None, "digest")])
    clock.at(2026, 11, 27, 9, 30)
    pipe.feed([comment("c0", ANA, "my own point")])
    for i in range(1, 7):
        clock.at(2026, 11, 27, 10, i)
        pipe.feed([comment(f"c{i}", BEN, f"follow-up {i}")])
    clock.at(2026, 11, 27, 9, 45)
    pipe.feed([comment("r1", CAL, "a reply to Ana", parent="c0")])
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 8, 0, tzinfo=UTC), timedelta(minutes=5)
    )
    (part,) = digest.data.articles
    assert [(i.comment.id, i.reason) for i in part.items] == [
        ("r1", "reply"),
        ("c6", "follow_up"),
        ("c5", "follow_up"),
        ("c4", "follow_up"),
        ("c3", "follow_up"),
    ]
    assert "c0" not in {i.comment.id for i in part.items}


def test_no_digest_inside_quiet_hours_it_waits_for_their_end(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed(
        [
            preferences(
                "m-cal",
                timezone="UTC",
                digest_hour=7,
                quiet_hours={"start": "06:00", "end": "09:00"},
            )
        ]
    )
    pipe.feed([subscribe(CAL, "article", "a-1")])
    clock.at(2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN)])
    assert (
        run_until(pipe, clock, datetime(2026, 11, 28, 8, 59, tzinfo=UTC), timedelta(minutes=5))
        == []
    )
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 9, 10, tzinfo=UTC), timedelta(minutes=5)
    )
    assert digest.data.period.end == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def test_paused_subscribers_get_no_digest(pipe: LocalPipeline, clock: Clock) -> None:
    pipe.feed([preferences("m-cal", paused=True)])
    pipe.feed([subscribe(CAL, "article", "a-1")])
    clock.at(2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN)])
    assert (
        run_until(pipe, clock, datetime(2026, 11, 29, 9, 0, tzinfo=UTC), timedelta(minutes=30))
        == []
    )


def test_followed_commenter_and_new_articles_in_the_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben"), subscribe(CAL, "section", "politics")])
    clock.at(2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN, "Ben speaks", aid="a-2")])
    pipe.feed([article("a-9", section="politics")])
    (digest,) = run_until(
        pipe, clock, datetime(2026, 11, 28, 8, 10, tzinfo=UTC), timedelta(minutes=10)
    )
    parts = {p.article.id: p for p in digest.data.articles}
    assert parts["a-2"].items[0].reason == "followed_commenter"
    assert parts["a-2"].new_comments == 1
    assert parts["a-9"].new_article is True
    assert parts["a-9"].new_comments == 0


class CountingDict(dict[str, Any]):
    """A table that counts writes."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        type(self).writes += 1
        super().__setitem__(key, value)


def test_fan_out_on_read_costs_the_same_per_comment_whatever_the_followers(
    tokens: Tokens,
) -> None:
    def writes_per_comment(followers: int, comments: int) -> tuple[float, int]:
        clock = Clock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
        tables = {name: CountingDict() for name in TABLES}
        pipe = LocalPipeline(tokens=tokens, clock=clock, tables=tables)  # type: ignore[arg-type]
        pipe.feed([article("hot")])
        pipe.feed(
            [subscribe(member(f"m-{i}", f"Reader {i}"), "article", "hot") for i in range(followers)]
        )
        CountingDict.writes = 0
        for i in range(comments):
            clock.now += timedelta(seconds=10)
            pipe.feed([comment(f"c{i}", BEN, aid="hot")])
        per_comment = CountingDict.writes / comments
        clock.at(2026, 11, 28, 8, 0)
        produced = pipe.tick()  # the article's period ended: one contribution per follower
        clock.at(2026, 11, 28, 8, 5)
        produced += pipe.tick()  # the followers' digests are cut
        return per_comment, len(digests(produced))

    none, no_digests = writes_per_comment(followers=0, comments=200)
    one, one_digest = writes_per_comment(followers=1, comments=200)
    hot, hot_digests = writes_per_comment(followers=2000, comments=200)
    assert hot == one  # state writes per comment do not grow with followers
    assert hot - none <= 1.05  # followers at all: one activity-slot write per comment
    assert (no_digests, one_digest) == (0, 1)
    assert hot_digests == 2000  # one digest per follower, each counting all 200 comments


def _what(claims: TokenClaims) -> tuple[str, str, str | None]:
    return claims.subscriber_id, claims.scope, claims.target


def test_a_tick_replayed_after_a_crash_cuts_the_same_digest_whatever_the_clock_then(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """kill -9 between a digest's publication and its cut's table writes: the worker that takes
    over processes the same tick again, later, perhaps in the next period by its own clock. It
    must publish the same digest (same id, same comments), not another one listing them again."""
    pipe.feed([preferences("m-ana", digest="hourly", timezone="UTC", digest_hour=0)])
    pipe.feed([subscribe(ANA, "article", "a-1")])
    clock.at(2026, 11, 27, 10, 20)
    pipe.feed([comment("c1", BEN), comment("c2", DEE, parent="c1")])
    clock.at(2026, 11, 27, 11, 3)
    tick = DigestTick(at=clock())
    pipe.run([ToStage(Stage.THREADS, "a-1", tick)])  # the hour's activity reaches the inbox
    before = copy.deepcopy(pipe.tables)
    (first,) = digests(pipe.run([ToStage(Stage.INBOX, "m-ana", tick)]))
    assert (first.data.period.start.hour, first.data.total_comments) == (10, 2)

    def crash_and_take_over() -> None:
        for name, rows in copy.deepcopy(before).items():  # the cut's writes never landed
            pipe.tables[name].clear()
            pipe.tables[name].update(rows)
        clock.at(2026, 11, 27, 12, 30)  # the next worker's clock, one period later

    crash_and_take_over()
    (again,) = digests(pipe.run([ToStage(Stage.INBOX, "m-ana", tick)]))
    assert again.id == first.id
    assert again.data == first.data
    # A tick without its time (an earlier version's) cuts by the clock: another period's digest.
    crash_and_take_over()
    (other,) = digests(pipe.run([ToStage(Stage.INBOX, "m-ana", DigestTick())]))
    assert other.id != first.id
    assert other.data.period.start.hour == 11
