"""The inbox decides a fan-out record's candidacies together (``on_candidacies``) exactly as it
decides each alone (``on_candidacy``, in the record's order): the same notifications, held
ones and digest items, the same ``sent`` records, in every state a recipient can be in
(hypothesis draws the states: no profile, an unconfirmed guest, paused, muted, quiet hours,
held notifications at their cap, subscriptions of every kind and age, a subject sent before
in every way, a digest listing, a retraction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bench.fanout_cost import JsonTable  # values stored as JSON, each read a new object
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.intents import Intent, Publish
from newsroom_notify.domain.keys import sent_key, subscription_key
from newsroom_notify.domain.messages import Candidacy
from newsroom_notify.domain.model import (
    PRIORITY,
    ArticleInfo,
    Basis,
    CommentSummary,
    Condition,
    Reason,
    Subject,
)
from newsroom_notify.domain.state import (
    Held,
    Preferences,
    Profile,
    QuietHours,
    Sent,
    Subscription,
)
from newsroom_notify.domain.tokens import Tokens

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 12:00 UTC: a window 11:00-13:00 is quiet
AT = NOW - timedelta(minutes=1)  # when the comment was posted
PEOPLE = ["m-0", "m-1", "m-2", "m-3", "g-4", "g-5"]
ARTICLE = ArticleInfo(
    id="a-1", title="Budget", url="https://n.example/a-1", journalist_id="j-1", section="world"
)
COMMENT = CommentSummary(
    id="c-9", author_id="m-0", author_name="Ana", excerpt="hi", url="https://n.example/c-9"
)
SUBJECTS = [
    Subject(key="c:c-9", article=ARTICLE, comment=COMMENT),
    Subject(key="a:a-1", article=ARTICLE),
]
SUBSCRIPTIONS = [
    ("article", "a-1"),
    ("replies", None),
    ("replies", "a-1"),
    ("section", "world"),
    ("commenter", "m-0"),
    ("journalist", "j-1"),
]
BASES = [
    Basis(
        reason=Reason.REPLY, condition=Condition.ASKED_FOR_REPLIES, scope="replies", target="a-1"
    ),
    Basis(reason=Reason.MENTION, condition=Condition.CONSENTED, scope="replies", target="a-1"),
    Basis(
        reason=Reason.FOLLOWED_COMMENTER,
        condition=Condition.SUBSCRIBED,
        scope="commenter",
        target="m-0",
    ),
    Basis(
        reason=Reason.FOLLOWED_COMMENTER,
        condition=Condition.SUBSCRIBED,
        scope="commenter",
        target="m-0",
        delivery="digest",
    ),
    Basis(reason=Reason.FOLLOW_UP, condition=Condition.SUBSCRIBED, scope="article", target="a-1"),
    Basis(
        reason=Reason.NEW_ARTICLE, condition=Condition.SUBSCRIBED, scope="section", target="world"
    ),
    Basis(
        reason=Reason.NEW_ARTICLE,
        condition=Condition.SUBSCRIBED,
        scope="journalist",
        target="j-1",
        delivery="instant",
    ),
]
ORIGINS = ["evt-1|commenter", "evt-2|commenter"]


@st.composite
def subscriptions(draw: st.DrawFn) -> dict[str, Subscription]:
    chosen = draw(st.lists(st.sampled_from(SUBSCRIPTIONS), unique=True, max_size=3))
    return {
        subscription_key(scope, target): Subscription(
            scope=scope,
            target=target,
            delivery=draw(st.sampled_from(["instant", "digest"])),
            active=draw(st.booleans()),
            since=draw(st.sampled_from([None, AT - timedelta(days=3), AT + timedelta(seconds=5)])),
        )
        for scope, target in chosen
    }


@st.composite
def recipients(draw: st.DrawFn, subject: Subject) -> dict[str, Any]:
    """Per recipient: profile, sent record, held notifications, digest buffer, bases."""
    rid = draw(st.sampled_from(PEOPLE))
    guest = rid.startswith("g-")
    if draw(st.booleans()):  # half of them as most of a fan-out: new to it, heard at once
        basis = draw(st.sampled_from([b for b in BASES if b.delivery != "digest"]))
        scope = "replies" if basis.condition is not Condition.SUBSCRIBED else basis.scope
        follow = Subscription(
            scope=scope, target=basis.target, delivery="instant", active=True, since=AT
        )
        profile = Profile(
            id=rid,
            name=f"Reader {rid}",
            email=f"{rid}@example.org" if guest else None,
            guest=guest,
            confirmed=True,
            subscriptions={subscription_key(scope, basis.target): follow},
        )
        return {"rid": rid, "profile": profile, "sent": None, "held": None, "bases": [basis]}
    profile = None
    if draw(st.integers(0, 5)):
        quiet = draw(
            st.sampled_from([None, QuietHours(start=660, end=780), QuietHours(start=0, end=60)])
        )
        profile = Profile(
            id=rid,
            name=f"Reader {rid}",
            email=f"{rid}@example.org" if guest else None,
            guest=guest,
            confirmed=not guest or draw(st.booleans()),
            subscriptions=draw(subscriptions()),
            preferences=Preferences(
                quiet_hours=quiet,
                paused=draw(st.integers(0, 5)) == 0,
                muted_articles=["a-1"] if draw(st.integers(0, 5)) == 0 else [],
            ),
            token_version=draw(st.integers(0, 2)),
        )
    sent = None
    if draw(st.booleans()):
        sent = Sent(
            notification_id=f"n-{rid}",
            reason=draw(st.sampled_from([Reason.REPLY, Reason.FOLLOW_UP, Reason.NEW_ARTICLE])),
            mode=draw(st.sampled_from(["instant", "held", "digest"])),
            origin=draw(st.sampled_from(ORIGINS)),
            retracted=draw(st.integers(0, 3)) == 0,
            digest_id=draw(st.sampled_from([None, f"d-{rid}"])),
            listed_only=draw(st.booleans()),
        )
    held = None
    if draw(st.booleans()):
        notification = ev.NotificationCreated.model_validate(
            {
                "id": f"h-{rid}",
                "source": "urn:test",
                "time": NOW,
                "subject": "c:c-1",
                "data": {
                    "notification_id": f"h-{rid}",
                    "recipient": {"id": rid, "name": "R", "email": None},
                    "reason": "reply",
                    "article": {"id": "a-1", "title": "Budget", "url": "https://n.example/a-1"},
                    "comment": None,
                    "parent": None,
                    "unsubscribe_token": "t",
                    "manage_token": None,
                },
            }
        )
        count = draw(st.integers(1, 2))
        held = Held(release_at=None, notifications=[notification] * count)
    bases = sorted(
        draw(st.lists(st.sampled_from(BASES), min_size=1, max_size=3, unique=True)),
        key=lambda b: PRIORITY[b.reason],
    )
    return {"rid": rid, "profile": profile, "sent": sent, "held": held, "bases": bases}


@st.composite
def fan_outs(draw: st.DrawFn) -> tuple[Subject, str, list[dict[str, Any]]]:
    subject = draw(st.sampled_from(SUBJECTS))
    people = draw(
        st.lists(recipients(subject), min_size=1, max_size=6, unique_by=lambda r: r["rid"])
    )
    return subject, draw(st.sampled_from(ORIGINS)), people


class Clock:
    """A clock that moves a second at each reading: both ways of deciding must read it as
    often, in the same order (a notification's time is the reading)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def inbox(subject: Subject, people: list[dict[str, Any]], tokens: Tokens) -> InboxStage:
    stage = InboxStage(
        JsonTable(),
        JsonTable(),
        JsonTable(),
        JsonTable(),
        {},
        tokens=tokens,
        clock=Clock(),
        held_max=2,
    )
    for person in people:
        rid = person["rid"]
        if person["profile"] is not None:
            stage.profiles[rid] = person["profile"]
        if person["sent"] is not None:
            stage.sent[sent_key(rid, subject.key)] = person["sent"]
        if person["held"] is not None:
            stage.held[rid] = person["held"]
    return stage


def contents(stage: InboxStage) -> dict[str, dict[str, bytes]]:
    tables = {"profiles": stage.profiles, "sent": stage.sent, "held": stage.held}
    tables["digests"] = stage.digests
    return {name: dict(table.data) for name, table in tables.items()}  # type: ignore[attr-defined]


def wire(intents: list[Intent]) -> list[tuple[str, str]]:
    return [
        (i.key, i.event.model_dump_json()) if isinstance(i, Publish) else (i.key, repr(i))
        for i in intents
    ]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fan_outs())
def test_candidacies_decided_together_as_each_alone(
    case: tuple[Subject, str, list[dict[str, Any]]],
) -> None:
    subject, origin, people = case
    tokens = Tokens(["key"], 3600, 3600)  # one memo: equal claims give equal tokens
    together, alone = inbox(subject, people, tokens), inbox(subject, people, tokens)
    bases = {p["rid"]: p["bases"] for p in people}

    got = together.on_candidacies(subject, AT, origin, bases)
    expected = [
        intent
        for rid, rbases in bases.items()
        for intent in alone.on_candidacy(
            Candidacy(recipient_id=rid, subject=subject, bases=rbases, at=AT, origin=origin)
        )
    ]

    assert wire(got) == wire(expected)
    assert contents(together) == contents(alone)


def test_a_fan_out_to_new_recipients_notifies_each_once_and_records_it() -> None:
    """The common case, checked on its own: three members following the section, one of them
    the author of nothing here, one paused: two notifications, two ``sent`` records."""
    subject = SUBJECTS[1]
    section = Subscription(
        scope="section", target="world", delivery="instant", active=True, since=AT
    )
    people = [
        {
            "rid": rid,
            "profile": Profile(
                id=rid,
                name=rid,
                subscriptions={"section|world": section},
                preferences=Preferences(paused=rid == "m-2"),
            ),
            "sent": None,
            "held": None,
        }
        for rid in ("m-1", "m-2", "m-3")
    ]
    stage = inbox(subject, people, Tokens(["key"], 3600, 3600))
    out = stage.on_candidacies(subject, AT, "evt-1|section", {p["rid"]: [BASES[5]] for p in people})

    assert [i.key for i in out] == ["m-1", "m-3"]
    assert all(
        isinstance(i, Publish) and i.event.data.reason == "new_article"  # type: ignore[attr-defined]
        for i in out
    )
    assert sorted(stage.sent) == [sent_key("m-1", "a:a-1"), sent_key("m-3", "a:a-1")]
    # Again (a replay of the record): the same notifications (made again, at a later time),
    # nothing recorded twice.
    again = stage.on_candidacies(
        subject, AT, "evt-1|section", {p["rid"]: [BASES[5]] for p in people}
    )
    assert [(i.key, i.event.data) for i in again] == [(i.key, i.event.data) for i in out]  # type: ignore[union-attr]
    assert len(stage.sent) == 2
