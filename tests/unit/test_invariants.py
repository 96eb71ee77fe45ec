"""Invariants over random discussions (hypothesis): whatever happens in a thread,

* nobody is notified of their own comment;
* a recipient gets at most one notification per comment;
* comments that were never approved notify nobody;
* a retraction goes out for exactly the instant notifications of removed comments;
* the same notification id always means the same recipient and comment.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom_dev.builders import fresh_events
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    article,
    cancel,
    comment,
    created,
    delete,
    edit,
    member,
    moderate,
    retracted,
    subscribe,
)

PEOPLE = [member(f"m-{n}", name) for n, name in enumerate(["Ana Lima", "Ben Okoro", "Cal", "Dee"])]
TOKENS = Tokens(["k"], 3600, 3600)


@st.composite
def discussions(draw: st.DrawFn) -> list[ev.CloudEvent]:
    """A random discussion after a fixed opening that notifies someone: Ana follows the article
    and Ben comments on it (so the invariants are never checked on empty output alone). Each
    example builds its events afresh, from evt-1."""
    with fresh_events():
        return _discussion(draw)


def _discussion(draw: st.DrawFn) -> list[ev.CloudEvent]:
    events: list[ev.CloudEvent] = [
        article("a-1"),
        subscribe(PEOPLE[0], "article", "a-1", "instant"),
        comment("c-open", PEOPLE[1], "plain"),
    ]
    comments: list[str] = ["c-open"]
    for step in range(draw(st.integers(1, 25))):
        kind = draw(
            st.sampled_from(["comment", "comment", "comment", "moderate", "subscribe", "edit"])
        )
        who = draw(st.sampled_from(PEOPLE))
        if kind == "comment":
            cid = f"c{step}"
            mentioned = draw(st.sampled_from(PEOPLE))
            text = draw(st.sampled_from(["plain", f"@{mentioned['name']} look", "@nobody"]))
            events.append(
                comment(
                    cid,
                    who,
                    text,
                    parent=draw(st.sampled_from([None, *comments])) if comments else None,
                    status=draw(st.sampled_from(["approved", "approved", "pending", "spam"])),
                    notify=draw(st.sampled_from([None, "replies", "follow_up"])),
                )
            )
            comments.append(cid)
        elif kind == "moderate" and comments:
            cid = draw(st.sampled_from(comments))
            status = draw(st.sampled_from(["approved", "spam", "trash", "pending", "deleted"]))
            events.append(delete(cid) if status == "deleted" else moderate(cid, status))
        elif kind == "edit" and comments:
            events.append(edit(draw(st.sampled_from(comments)), "edited"))
        elif kind == "subscribe":
            scope, target = draw(
                st.sampled_from([("article", "a-1"), ("replies", None), ("commenter", "m-1")])
            )
            if draw(st.booleans()):
                events.append(
                    subscribe(who, scope, target, draw(st.sampled_from(["instant", None])))
                )
            else:
                events.append(cancel(who["id"], scope, target))
    return events


def _run(events: list[ev.CloudEvent]) -> list[ev.CloudEvent]:
    pipe = LocalPipeline(tokens=TOKENS, clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC))
    return pipe.feed(events)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(discussions())
def test_discussion_invariants(events: list[ev.CloudEvent]) -> None:
    outputs = _run(events)
    assert ("m-0", "c-open") in {
        (n.data.recipient.id, n.data.comment.id) for n in created(outputs) if n.data.comment
    }, "the opening notifies Ana: the invariants below are checked on real output"
    posted = {e.data.comment_id: e for e in events if isinstance(e, ev.CommentPosted)}
    approved_ever = {
        e.data.comment_id
        for e in events
        if (isinstance(e, ev.CommentPosted) and e.data.status == "approved")
        or (isinstance(e, ev.CommentModerated) and e.data.status == "approved")
    }
    notes = created(outputs)
    for n in notes:
        assert n.data.comment is not None
        cid = n.data.comment.id
        assert n.data.recipient.id != posted[cid].data.author.id  # never the author
        assert cid in approved_ever  # only approved comments notify
    per_pair = Counter((n.data.recipient.id, n.data.comment.id) for n in notes)  # type: ignore[union-attr]
    assert max(per_pair.values(), default=1) == 1  # one per (recipient, comment)

    # Retractions: exactly the instant notifications of comments removed after notifying.
    removed_after: set[str] = set()
    notified: set[str] = set()
    for event in events:
        if (isinstance(event, ev.CommentPosted) and event.data.status == "approved") or (
            isinstance(event, ev.CommentModerated) and event.data.status == "approved"
        ):
            notified.add(event.data.comment_id)
        elif (
            (isinstance(event, ev.CommentModerated) and event.data.status in ("spam", "trash"))
            or isinstance(event, ev.CommentDeleted)
        ) and event.data.comment_id in notified:
            removed_after.add(event.data.comment_id)
    retracted_ids = Counter(r.data.notification_id for r in retracted(outputs))
    expected = {n.id for n in notes if n.data.comment and n.data.comment.id in removed_after}
    assert set(retracted_ids) == expected
    # A comment removed twice (spam, then deleted) may repeat a retraction: same id only.
    by_id = {r.id: r.data.notification_id for r in retracted(outputs)}
    assert all(by_id[f"r-{nid.removeprefix('n-')}"] == nid for nid in retracted_ids)
