"""Erasure reaches other readers' copies: a commenter erased after commenting leaves no name or
text in anybody's pending digest or held notification (issue 15, table row 6), told as stories
through the in-process pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import Clock, article, comment, created, erase, member, preferences, subscribe

GINA = member("m-gina", "Gina Gone", "gina@example.org")
BEN = member("m-ben", "Ben Okoro")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
HER_TEXT = "my private thoughts on the budget"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))


@pytest.fixture
def pipe(clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=Tokens(["k"], 3600, 3600), clock=clock)
    p.feed([article("a-1")])
    p.feed([preferences("m-cal", digest="daily", timezone="UTC", digest_hour=8)])
    return p


def digest_of(pipe: LocalPipeline, clock: Clock, until: datetime) -> ev.DigestReady:
    out: list[ev.CloudEvent] = []
    while clock.now < until:
        clock.now = min(until, clock.now + timedelta(minutes=10))
        out += pipe.tick()
    (digest,) = [o for o in out if isinstance(o, ev.DigestReady)]
    return digest


def state_text(pipe: LocalPipeline) -> str:
    """Every table but ``fanout`` (ids only; its erasure is another change) as text."""
    return json.dumps(
        {
            name: {k: v.model_dump(mode="json") for k, v in table.items()}
            for name, table in pipe.tables.items()
            if name != "fanout"
        },
        ensure_ascii=False,
    )


def assert_no_trace_of_gina(text: str) -> None:
    assert "Gina Gone" not in text
    assert HER_TEXT not in text
    assert "gina@example.org" not in text


def test_row_6_an_erased_commenter_leaves_the_digest_of_an_article_follower(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """Cal follows the article in digest mode; its activity was already handed to Cal's
    digest buffer when Gina is erased."""
    pipe.feed([subscribe(CAL, "article", "a-1")])
    clock.at(2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", GINA, HER_TEXT), comment("c2", BEN, "Ben's view")])
    clock.at(2026, 11, 28, 8, 0)
    pipe.tick()  # the article's period ended: its activity is in Cal's buffer
    assert "Gina Gone" in state_text(pipe)  # the copy the erasure must reach
    pipe.feed([erase("m-gina")])
    assert_no_trace_of_gina(state_text(pipe))
    digest = digest_of(pipe, clock, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    assert_no_trace_of_gina(digest.model_dump_json())
    (part,) = digest.data.articles
    assert [i.comment.id for i in part.items] == ["c2"]
    assert part.new_comments == 2  # her comment still stood under the article, anonymised


def test_an_erased_commenter_before_the_article_activity_is_handed_out(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1")])
    clock.at(2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", GINA, HER_TEXT), comment("c2", BEN, "Ben's view")])
    pipe.feed([erase("m-gina")])
    digest = digest_of(pipe, clock, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    assert_no_trace_of_gina(digest.model_dump_json())
    assert [i.comment.id for i in digest.data.articles[0].items] == ["c2"]


def test_an_erased_followed_commenter_leaves_the_followers_digest(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-gina"), subscribe(CAL, "commenter", "m-ben")])
    clock.at(2026, 11, 27, 10, 0)
    pipe.feed([comment("c1", GINA, HER_TEXT)])
    pipe.feed([comment("c2", BEN, "I disagree with Gina Gone", parent="c1")])
    pipe.feed([erase("m-gina")])
    assert "Gina Gone" not in state_text(pipe).replace("I disagree with Gina Gone", "")
    digest = digest_of(pipe, clock, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    (part,) = digest.data.articles
    (item,) = part.items
    assert item.comment.id == "c2"  # Ben's reply stays: his text is his
    data = json.loads(digest.model_dump_json())
    assert HER_TEXT not in json.dumps(data)
    assert "gina@example.org" not in json.dumps(data)


def test_held_notifications_of_others_drop_or_anonymise_the_erased_author(
    pipe: LocalPipeline, clock: Clock
) -> None:
    """Cal's quiet hours hold a follow-up of Gina's comment and one of Ben's reply to it."""
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([preferences("m-cal", quiet_hours={"start": "22:00", "end": "07:00"})])
    clock.at(2026, 11, 27, 23, 0)
    assert pipe.feed([comment("c1", GINA, HER_TEXT)]) == []
    assert pipe.feed([comment("c2", BEN, "A reply", parent="c1")]) == []
    pipe.feed([erase("m-gina")])
    assert_no_trace_of_gina(state_text(pipe))
    clock.at(2026, 11, 28, 7, 30)
    (released,) = created(pipe.release("m-cal"))
    assert released.data.comment is not None
    assert released.data.comment.id == "c2"
    assert released.data.parent is not None
    assert (released.data.parent.author_name, released.data.parent.excerpt) == ("[erased]", "")
    assert_no_trace_of_gina(released.model_dump_json())


def test_a_reply_posted_after_the_erasure_quotes_the_parent_anonymised(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([comment("c1", GINA, HER_TEXT)])
    pipe.feed([erase("m-gina")])
    (sent,) = created(pipe.feed([comment("c2", BEN, "A late reply", parent="c1")]))
    assert sent.data.parent is not None
    assert sent.data.parent.author_name == "[erased]"
    assert_no_trace_of_gina(sent.model_dump_json())
