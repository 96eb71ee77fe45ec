"""An independent oracle for the README's "Digests": hand-written stories through the
in-process pipeline with a clock the story moves, every expectation written out by hand from
the README's words (periods, times, order, counts, tokens), never computed from the code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
    comment,
    created,
    edit,
    member,
    moderate,
    names,
    preferences,
    subscribe,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
DAN = member("m-dan", "Dan Hale", "dan@example.org")
Z = UTC


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["digest-story-key"], unsubscribe_max_age=3600, confirm_max_age=3600)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 9, 0, tzinfo=Z))  # a Friday


@pytest.fixture
def pipe(tokens: Tokens, clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=tokens, clock=clock)
    p.feed([article(a) for a in ("a-1", "a-2", "a-3", "a-4")])
    return p


def at(clock: Clock, *when: int) -> None:
    clock.now = datetime(*when, tzinfo=Z)  # type: ignore[misc]


def unsubscribe(pipe: LocalPipeline, token: str) -> list[ev.CloudEvent]:
    """What the one-click unsubscribe link does: a subscription.cancelled with the token's
    scope and target, through the pipeline like any subscription command."""
    claims = pipe.tokens.read_unsubscribe(token)
    return pipe.feed([cancel(claims.subscriber_id, claims.scope, claims.target)])


def run_until(
    pipe: LocalPipeline, clock: Clock, end: datetime, step: timedelta = timedelta(minutes=1)
) -> list[ev.DigestReady]:
    """Move the clock to ``end`` in steps, running the digest timers at each step."""
    out: list[ev.CloudEvent] = []
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        out += pipe.tick()
    return [o for o in out if isinstance(o, ev.DigestReady)]


def periods(digests: list[ev.DigestReady]) -> list[tuple[str, datetime, datetime, int]]:
    return [
        (d.data.recipient.id, d.data.period.start, d.data.period.end, d.data.total_comments)
        for d in digests
    ]


# ----------------------------------------------- Defaults: the daily digest at 08:00 UTC


class CountedWrites(dict[str, object]):
    """A table that counts the values written to it."""

    written = 0

    def __setitem__(self, key: str, value: object) -> None:
        self.written += 1
        super().__setitem__(key, value)


def test_a_digest_timer_tick_that_ends_no_period_writes_no_thread(
    tokens: Tokens, clock: Clock
) -> None:
    """Every 30 s every article with activity waiting gets a tick; a thread (up to 5,000
    participants) is written back, and its changelog record sent, only when a period ended."""
    threads = CountedWrites()
    pipe = LocalPipeline(tokens=tokens, clock=clock, tables={"threads": threads})
    pipe.feed([article("a-1"), subscribe(CAL, "article", "a-1")])
    at(clock, 2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN, "Trams at last.")])
    pipe.tick()  # the first records where the article's fan-out stands (the last period end)
    before = threads.written
    assert (
        run_until(pipe, clock, datetime(2026, 11, 28, 7, 59, tzinfo=Z), timedelta(minutes=30)) == []
    )
    assert threads.written == before  # 40 ticks more, no period ended: nothing written
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 3, tzinfo=Z))
    assert threads.written > before  # the period's end: the thread records its fan-out
    assert digest.data.total_comments == 1


def test_an_article_follow_goes_to_the_daily_digest_at_0800_utc(
    pipe: LocalPipeline, clock: Clock, tokens: Tokens
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1")])  # no delivery, no preferences: defaults
    at(clock, 2026, 11, 27, 12, 0)
    assert pipe.feed([comment("c1", BEN, "Trams at last.")]) == []
    # The period ends at 08:00 UTC; the digest is cut 2 minutes later (the grace).
    assert run_until(pipe, clock, datetime(2026, 11, 28, 8, 1, tzinfo=Z)) == []
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 3, tzinfo=Z))
    data = digest.data
    assert (data.recipient.id, data.recipient.name, data.recipient.email) == (
        "m-cal",
        "Cal Duarte",
        "cal@example.org",
    )
    assert (data.period.frequency, data.period.start, data.period.end) == (
        "daily",
        datetime(2026, 11, 27, 8, 0, tzinfo=Z),
        datetime(2026, 11, 28, 8, 0, tzinfo=Z),
    )
    (part,) = data.articles
    assert (part.article.id, part.article.title, part.article.url) == (
        "a-1",
        "Title of a-1",
        "https://news.example.com/a-1",
    )
    assert (part.new_comments, part.new_article, data.total_comments) == (1, False, 1)
    assert [
        (i.comment.id, i.comment.author_name, i.comment.excerpt, i.reason) for i in part.items
    ] == [("c1", "Ben Okoro", "Trams at last.", "follow_up")]
    assert part.items[0].comment.url == "https://news.example.com/a-1#comment-c1"
    assert part.unsubscribe_token is not None
    assert names(tokens.read_unsubscribe(part.unsubscribe_token)) == ("m-cal", "article", "a-1")
    assert names(tokens.read_unsubscribe(data.unsubscribe_token)) == ("m-cal", "digest", "daily")
    assert digest.id == data.digest_id
    # At most one digest per period; empty periods send nothing.
    assert (
        run_until(pipe, clock, datetime(2026, 11, 30, 9, 0, tzinfo=Z), timedelta(minutes=7)) == []
    )


def test_a_comment_delivered_again_after_a_digest_follow_is_not_in_that_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """A digest holds what happened while the article was followed: a comment posted before
    Cal followed stays out of Cal's digest even when its event comes again afterwards (a
    redelivery after a rebalance; the compose run's digest counted 5 comments, not 4)."""
    at(clock, 2026, 11, 27, 12, 0)
    first = comment("c1", ANA, "Posted before anyone followed in digest mode.")
    pipe.feed([first])
    at(clock, 2026, 11, 27, 12, 10)
    pipe.feed([subscribe(CAL, "article", "a-1")])  # daily digest (the default)
    at(clock, 2026, 11, 27, 12, 15)
    assert pipe.feed([first]) == []  # delivered again
    at(clock, 2026, 11, 27, 12, 20)
    pipe.feed([comment("c2", BEN, "Posted while Cal follows.")])
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 3, tzinfo=Z))
    (part,) = digest.data.articles
    assert (digest.data.total_comments, part.new_comments) == (1, 1)
    assert [i.comment.id for i in part.items] == ["c2"]


# ----------------------------------------------------------- What a digest holds: order


def test_articles_come_most_active_first(pipe: LocalPipeline, clock: Clock, tokens: Tokens) -> None:
    """Followed articles count their new comments; an article brought in by a followed
    commenter counts its items; a new article has none and comes last. Ties: article id."""
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1"),
            subscribe(CAL, "article", "a-2"),
            subscribe(CAL, "article", "a-3"),
            subscribe(CAL, "commenter", "m-dan"),
            subscribe(CAL, "section", "science"),
        ]
    )
    at(clock, 2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", BEN, aid="a-1")])
    pipe.feed([comment(f"c2{i}", BEN, aid="a-2") for i in range(3)])
    pipe.feed([comment(f"c3{i}", ANA, aid="a-3") for i in range(2)])
    pipe.feed([comment(f"c4{i}", DAN, aid="a-4") for i in range(2)])  # a-4: not followed
    pipe.feed([article("a-9", section="science")])
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    assert [(p.article.id, p.new_comments, p.new_article) for p in digest.data.articles] == [
        ("a-2", 3, False),
        ("a-3", 2, False),
        ("a-4", 2, False),
        ("a-1", 1, False),
        ("a-9", 0, True),
    ]
    assert digest.data.total_comments == 8
    a4, a9 = digest.data.articles[2], digest.data.articles[4]
    assert {(i.comment.id, i.reason) for i in a4.items} == {
        ("c40", "followed_commenter"),
        ("c41", "followed_commenter"),
    }
    assert (a9.article.title, a9.items) == ("Title of a-9", [])
    assert a4.unsubscribe_token is not None
    assert a9.unsubscribe_token is not None
    assert names(tokens.read_unsubscribe(a4.unsubscribe_token)) == ("m-cal", "commenter", "m-dan")
    assert names(tokens.read_unsubscribe(a9.unsubscribe_token)) == ("m-cal", "section", "science")


def test_replies_first_then_the_latest_follow_ups_never_ones_own(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1"), subscribe(CAL, "replies", None, "digest")])
    at(clock, 2026, 11, 27, 10, 0)
    pipe.feed([comment("c0", CAL, "my point")])
    for minute in range(1, 7):
        at(clock, 2026, 11, 27, 10, minute)
        pipe.feed([comment(f"f{minute}", BEN, f"follow-up {minute}")])
    at(clock, 2026, 11, 27, 10, 30)
    assert pipe.feed([comment("r1", ANA, "a reply", parent="c0")]) == []  # in the digest
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    (part,) = digest.data.articles
    assert [(i.comment.id, i.reason) for i in part.items] == [
        ("r1", "reply"),
        ("f6", "follow_up"),
        ("f5", "follow_up"),
        ("f4", "follow_up"),
        ("f3", "follow_up"),
    ]
    assert part.new_comments == 8  # every new approved comment on the article, c0 included


# ------------------------------------------------------------- the digest's own token


def test_the_digest_token_ends_every_digest_mode_subscription_and_nothing_else(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1"),
            subscribe(CAL, "commenter", "m-ben"),
            subscribe(CAL, "section", "science", "digest"),
            subscribe(CAL, "article", "a-2", "instant"),
            subscribe(CAL, "replies", None),  # instant by default
        ]
    )
    at(clock, 2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", BEN, aid="a-1"), comment("c0", CAL, aid="a-3")])
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    assert [p.article.id for p in digest.data.articles] == ["a-1"]
    unsubscribe(pipe, digest.data.unsubscribe_token)
    at(clock, 2026, 11, 28, 10, 0)
    out = pipe.feed(
        [
            comment("c2", BEN, aid="a-1"),  # followed article: digest, ended
            comment("c3", BEN, aid="a-4"),  # followed commenter: digest, ended
            article("a-9", section="science"),  # followed section: digest, ended
            comment("c4", ANA, aid="a-2"),  # instant article follow: still there
            comment("c5", ANA, aid="a-3", parent="c0"),  # replies: still there
        ]
    )
    assert sorted((n.data.recipient.id, n.data.reason, n.subject) for n in created(out)) == [
        ("m-cal", "follow_up", "c:c4"),
        ("m-cal", "reply", "c:c5"),
    ]
    assert (
        run_until(pipe, clock, datetime(2026, 11, 30, 9, 0, tzinfo=Z), timedelta(minutes=7)) == []
    )


def test_after_the_digest_token_no_digest_comes_even_with_items_waiting(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """A reader who ends their digests gets no further digest, not even one holding what
    came in before they clicked."""
    pipe.feed([subscribe(CAL, "article", "a-1"), subscribe(CAL, "commenter", "m-ben")])
    at(clock, 2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", BEN, aid="a-1")])
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    at(clock, 2026, 11, 28, 9, 0)
    pipe.feed([comment("c2", BEN, aid="a-1"), comment("c3", BEN, aid="a-2")])
    at(clock, 2026, 11, 28, 12, 0)
    unsubscribe(pipe, digest.data.unsubscribe_token)
    assert (
        run_until(pipe, clock, datetime(2026, 11, 30, 9, 0, tzinfo=Z), timedelta(minutes=7)) == []
    )


def test_activity_of_an_article_no_longer_followed_stays_out_of_the_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """Cal stops following a-1 while the article's activity is already on its way to her
    (the inbox handles the cancellation before the threads stage hears of it)."""
    pipe.feed([subscribe(CAL, "article", "a-1"), subscribe(CAL, "article", "a-2")])
    at(clock, 2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", BEN, aid="a-1"), comment("c2", BEN, aid="a-2")])
    pipe.inbox.cancel("m-cal", "article", "a-1")  # its message to the threads stage not yet run
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    assert [(p.article.id, p.new_comments) for p in digest.data.articles] == [("a-2", 1)]


# ----------------------------------------------------------------------- periods


def one_comment_a_day_in_berlin(
    tokens: Tokens, year: int, month: int, first_day: int
) -> list[ev.DigestReady]:
    """Cal follows a-1 (daily, 08:00 Berlin); Ben comments at noon UTC four days running."""
    clock = Clock(datetime(year, month, first_day, 9, 0, tzinfo=Z))
    pipe = LocalPipeline(tokens=tokens, clock=clock)
    pipe.feed([article("a-1"), preferences("m-cal", timezone="Europe/Berlin", digest_hour=8)])
    pipe.feed([subscribe(CAL, "article", "a-1")])
    got: list[ev.DigestReady] = []
    for day in range(first_day, first_day + 4):
        at(clock, year, month, day, 12, 0)
        pipe.feed([comment(f"c-{day}", BEN)])
        end = datetime(year, month, day + 1, 11, 0, tzinfo=Z)
        got += run_until(pipe, clock, end, timedelta(minutes=10))
    return got


def test_daylight_saving_end_makes_one_period_25_hours_none_skipped_or_doubled(
    tokens: Tokens,
) -> None:
    # Berlin leaves summer time on Sunday 25 October 2026: 08:00 CEST is 06:00 UTC, 08:00 CET
    # is 07:00 UTC.
    assert periods(one_comment_a_day_in_berlin(tokens, 2026, 10, 23)) == [
        ("m-cal", datetime(2026, 10, 23, 6, tzinfo=Z), datetime(2026, 10, 24, 6, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 10, 24, 6, tzinfo=Z), datetime(2026, 10, 25, 7, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 10, 25, 7, tzinfo=Z), datetime(2026, 10, 26, 7, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 10, 26, 7, tzinfo=Z), datetime(2026, 10, 27, 7, tzinfo=Z), 1),
    ]


def test_daylight_saving_start_makes_one_period_23_hours_none_skipped_or_doubled(
    tokens: Tokens,
) -> None:
    # Berlin enters summer time on Sunday 29 March 2026.
    assert periods(one_comment_a_day_in_berlin(tokens, 2026, 3, 27)) == [
        ("m-cal", datetime(2026, 3, 27, 7, tzinfo=Z), datetime(2026, 3, 28, 7, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 3, 28, 7, tzinfo=Z), datetime(2026, 3, 29, 6, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 3, 29, 6, tzinfo=Z), datetime(2026, 3, 30, 6, tzinfo=Z), 1),
        ("m-cal", datetime(2026, 3, 30, 6, tzinfo=Z), datetime(2026, 3, 31, 6, tzinfo=Z), 1),
    ]


def test_hourly_periods_run_from_local_hour_to_hour(pipe: LocalPipeline, clock: Clock) -> None:
    """India is UTC+05:30: a local hour runs from :30 to :30 UTC."""
    pipe.feed([preferences("m-cal", digest="hourly", timezone="Asia/Kolkata")])
    pipe.feed([subscribe(CAL, "commenter", "m-ben")])
    at(clock, 2026, 11, 27, 10, 10)  # 15:40 in Kolkata
    pipe.feed([comment("c1", BEN)])
    at(clock, 2026, 11, 27, 10, 40)  # 16:10 in Kolkata
    pipe.feed([comment("c2", BEN)])
    got = run_until(pipe, clock, datetime(2026, 11, 27, 12, 0, tzinfo=Z))
    assert periods(got) == [
        (
            "m-cal",
            datetime(2026, 11, 27, 9, 30, tzinfo=Z),
            datetime(2026, 11, 27, 10, 30, tzinfo=Z),
            1,
        ),
        (
            "m-cal",
            datetime(2026, 11, 27, 10, 30, tzinfo=Z),
            datetime(2026, 11, 27, 11, 30, tzinfo=Z),
            1,
        ),
    ]
    assert [d.data.period.frequency for d in got] == ["hourly", "hourly"]


def test_weekly_periods_run_from_the_weekday_digest_hour(pipe: LocalPipeline, clock: Clock) -> None:
    # Weekday 5 is Saturday (0 is Monday); 07:00 in Berlin is 06:00 UTC in winter.
    pipe.feed(
        [
            preferences(
                "m-cal", digest="weekly", timezone="Europe/Berlin", digest_hour=7, digest_weekday=5
            )
        ]
    )
    pipe.feed([subscribe(CAL, "article", "a-1")])
    at(clock, 2026, 11, 27, 10, 0)  # Friday
    pipe.feed([comment("c1", BEN)])
    at(clock, 2026, 11, 28, 9, 0)  # Saturday, after the cut
    pipe.feed([comment("c2", BEN)])
    got = run_until(pipe, clock, datetime(2026, 12, 5, 7, 0, tzinfo=Z), timedelta(minutes=30))
    assert periods(got) == [
        (
            "m-cal",
            datetime(2026, 11, 21, 6, 0, tzinfo=Z),
            datetime(2026, 11, 28, 6, 0, tzinfo=Z),
            1,
        ),
        ("m-cal", datetime(2026, 11, 28, 6, 0, tzinfo=Z), datetime(2026, 12, 5, 6, 0, tzinfo=Z), 1),
    ]


# ------------------------------------------------------- quiet hours, paused, removal, edits


def test_a_digest_waits_for_the_end_of_quiet_hours(pipe: LocalPipeline, clock: Clock) -> None:
    pipe.feed(
        [
            preferences(
                "m-cal",
                timezone="Europe/Berlin",
                digest_hour=8,
                quiet_hours={"start": "07:30", "end": "10:00"},
            )
        ]
    )
    pipe.feed([subscribe(CAL, "article", "a-1")])
    at(clock, 2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN)])
    assert run_until(pipe, clock, datetime(2026, 11, 28, 8, 59, tzinfo=Z)) == []  # 09:59 Berlin
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 9, 5, tzinfo=Z))
    assert digest.data.period.end == datetime(2026, 11, 28, 7, 0, tzinfo=Z)


def test_nothing_while_paused(pipe: LocalPipeline, clock: Clock) -> None:
    pipe.feed([preferences("m-cal", paused=True), subscribe(CAL, "commenter", "m-ben")])
    at(clock, 2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN)])
    assert (
        run_until(pipe, clock, datetime(2026, 11, 29, 9, 0, tzinfo=Z), timedelta(minutes=10)) == []
    )


def test_removed_comments_leave_the_digest_edited_ones_show_their_latest_text(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben")])
    at(clock, 2026, 11, 27, 12, 0)
    pipe.feed([comment("c1", BEN, "teh draft", aid="a-1"), comment("c2", BEN, "spam", aid="a-2")])
    pipe.feed([comment("c3", BEN, "gone soon", aid="a-1")])
    pipe.feed(
        [moderate("c2", "spam", aid="a-2"), moderate("c3", "trash"), edit("c1", "the final text")]
    )
    (digest,) = run_until(pipe, clock, datetime(2026, 11, 28, 8, 5, tzinfo=Z))
    assert [
        (p.article.id, p.new_comments, [(i.comment.id, i.comment.excerpt) for i in p.items])
        for p in digest.data.articles
    ] == [("a-1", 1, [("c1", "the final text")])]
    assert digest.data.total_comments == 1
