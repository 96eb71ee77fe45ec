"""The demo's story, as data: its characters (members, a guest, a spammer) and what they do, in
order (``scenario``), and how an event is stamped when the demo publishes it (``stamp``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsroom_dev import builders as b
from newsroom_notify.contract import events as ev

ARTICLE = "a-tram"  # + a per-run suffix: re-running against the same broker is a new story

ANA = b.member("m-ana", "Ana Lima", "ana@example.org")
BEN = b.member("m-ben", "Ben Okoro", "ben@example.org")
CARLA = b.member("m-carla", "Carla Diaz", "carla@example.org")
DAN = b.member("m-dan", "Dan Hale", "dan@example.org")
GEOFF = b.guest("Geoff Roach", "geoff.roach@example.org")
SPAMMER = b.member("m-spam", "Cheap Watches", None)


@dataclass
class Step:
    """What the story says, and the events that say it."""

    caption: str
    events: list[ev.CloudEvent]
    settle_s: float = 2.0


def scenario(run: str = "") -> list[Step]:
    """The demo story, in order (``run`` makes its ids new). Event times are stamped when
    published."""
    article = f"{ARTICLE}-{run}" if run else ARTICLE
    return [
        Step(
            "The newsroom publishes an article",
            [titled(b.article(article, "j-maria", "local"), "Council approves the new tram line")],
        ),
        Step(
            'Ana, a member, asks a question, ticks "Notify of: new follow-up comments" and '
            "chooses to get them instantly (a digest is the default)",
            [
                b.comment(
                    "c-ana", ANA, "Will the trams run at night?", aid=article, notify="follow_up"
                ),
                b.subscribe(ANA, "article", article, "instant"),
            ],
        ),
        Step(
            "Dan follows the article in an hourly digest",
            [
                b.preferences("m-dan", digest="hourly"),
                b.subscribe(DAN, "article", article, "digest"),
            ],
        ),
        Step(
            'Geoff, a guest, comments and ticks "Notify of: new replies to my comments"',
            [
                b.comment(
                    "c-geoff",
                    GEOFF,
                    "The tram line will cut my commute in half.",
                    aid=article,
                    notify="replies",
                )
            ],
        ),
        Step(
            "Ben replies to Geoff",
            [
                b.comment(
                    "c-ben",
                    BEN,
                    "Only if it runs on time.",
                    aid=article,
                    parent="c-geoff",
                    notify="replies",
                )
            ],
        ),
        Step(
            "Carla replies to Ben and mentions Ana",
            [
                b.comment(
                    "c-carla",
                    CARLA,
                    "@Ana Lima you asked about night trams: the plan says until 1 am.",
                    aid=article,
                    parent="c-ben",
                    notify="replies",
                )
            ],
        ),
        Step(
            "Ben answers Carla",
            [b.comment("c-ben-2", BEN, "Fair point, Carla.", aid=article, parent="c-carla")],
        ),
        Step(
            "Spam gets through…",
            [b.comment("c-spam", SPAMMER, "Cheap watches!!! click here", aid=article)],
        ),
        Step(
            "…and a moderator removes it: its notifications are retracted",
            [b.moderate("c-spam", "spam", article)],
        ),
    ]


def titled(event: ev.CloudEvent, title: str) -> ev.CloudEvent:
    """An article event with a readable title."""
    data: Any = event.data
    return event.model_copy(update={"data": data.model_copy(update={"title": title})})


def stamp(event: ev.CloudEvent, at: datetime, run: str = "") -> ev.CloudEvent:
    """The event as published now (by the demo's clock), with an id new to this run."""
    update: dict[str, Any] = {"time": at, "id": f"{event.id}-{run}" if run else event.id}
    data = getattr(event, "data", None)
    if data is not None and hasattr(data, "posted_at"):
        update["data"] = data.model_copy(update={"posted_at": at})
    return event.model_copy(update=update)
