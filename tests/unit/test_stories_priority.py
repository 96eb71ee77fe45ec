"""The README's priority rule, checked against a table written here, over every combination of
relationships a reader can have to a new comment (Hypothesis).

README, "What gets notified, and why": one notification per person per comment; if several
reasons apply the strongest wins, *reply* > *mention* > *followed commenter* > *follow-up*; if
the strongest is not one the person asked for, the next one that is applies. When each reason
applies is written below from the README's own rules (Replies, Mentions, Follows, Defaults),
not taken from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import TokenClaims, Tokens
from tests.builders import article, comment, created, member, subscribe

ANA = member("m-ana", "Ana Lima", "ana@example.org")  # the reader
BEN = member("m-ben", "Ben Okoro")  # who writes the new comment
TOKENS = Tokens(["priority-key"], unsubscribe_max_age=3600, confirm_max_age=3600)


def names(claims: TokenClaims) -> tuple[str, str, str | None]:
    """Whose subscription a token names, and which (its version is the service's business)."""
    return (claims.subscriber_id, claims.scope, claims.target)


@dataclass(frozen=True)
class Relations:
    """What Ana has to do with Ben's new comment c2 on article a-1."""

    parent: bool  # c2 replies to Ana's comment c1
    participates: bool  # Ana wrote c1 under a-1 (implied by parent and form_choice)
    form_choice: str | None  # "Notify of" on c1: "replies", "follow_up" or none
    mentioned: bool  # c2 says "@Ana Lima"
    replies_sub: str | None  # a replies subscription: "article" (a-1), "site" (site-wide)
    article_follow: str | None  # a-1 followed: "instant", "digest"
    commenter_follow: str | None  # Ben followed: "instant", "digest"
    section_follow: bool  # the "local" section followed (articles only: not about comments)
    journalist_follow: bool  # a-1's journalist followed (idem)

    @property
    def commented(self) -> bool:
        return self.parent or self.participates or self.form_choice is not None

    @property
    def asked_for_replies(self) -> bool:
        # README, Replies: a "Notify of" choice (replies or follow-up) on any of their
        # comments under the article, a replies subscription (site-wide or for the article),
        # or a subscription to the article itself.
        return (
            self.form_choice is not None
            or self.replies_sub is not None
            or self.article_follow is not None
        )

    @property
    def has_subscription(self) -> bool:
        return (
            self.form_choice is not None
            or self.replies_sub is not None
            or self.article_follow is not None
            or self.commenter_follow is not None
            or self.section_follow
            or self.journalist_follow
        )


# The table: strongest first; when each reason applies; how it is delivered; which
# subscriptions its unsubscribe token may cancel (scope, target).
Rule = tuple[
    str,
    Callable[[Relations], bool],
    Callable[[Relations], str],
    Callable[[Relations], set[tuple[str, str | None]]],
]


def reply_tokens(r: Relations) -> set[tuple[str, str | None]]:
    allowed: set[tuple[str, str | None]] = set()
    if r.form_choice == "replies" or r.replies_sub == "article":
        allowed.add(("replies", "a-1"))
    if r.replies_sub == "site":
        allowed.add(("replies", None))
    if r.article_follow is not None or r.form_choice == "follow_up":
        allowed.add(("article", "a-1"))
    return allowed


def all_subscriptions(r: Relations) -> set[tuple[str, str | None]]:
    subs = reply_tokens(r)
    if r.commenter_follow is not None:
        subs.add(("commenter", "m-ben"))
    if r.section_follow:
        subs.add(("section", "local"))
    if r.journalist_follow:
        subs.add(("journalist", "j-1"))
    return subs


TABLE: list[Rule] = [
    ("reply", lambda r: r.parent and r.asked_for_replies, lambda r: "instant", reply_tokens),
    (
        "mention",  # a participant of the thread with at least one subscription (consent)
        lambda r: r.mentioned and r.commented and r.has_subscription,
        lambda r: "instant",
        all_subscriptions,
    ),
    (
        "followed_commenter",
        lambda r: r.commenter_follow is not None,
        lambda r: r.commenter_follow or "",
        lambda r: {("commenter", "m-ben")},
    ),
    (
        "follow_up",  # a digest-mode article follower reads it in the article's digest entry
        lambda r: r.article_follow == "instant",
        lambda r: "instant",
        lambda r: {("article", "a-1")},
    ),
]


def expected(r: Relations) -> tuple[str, str, set[tuple[str, str | None]]] | None:
    for reason, applies, delivery, token_scopes in TABLE:
        if applies(r):
            return reason, delivery(r), token_scopes(r)
    return None


relations = st.builds(
    Relations,
    parent=st.booleans(),
    participates=st.booleans(),
    form_choice=st.sampled_from([None, "replies", "follow_up"]),
    mentioned=st.booleans(),
    replies_sub=st.sampled_from([None, "article", "site"]),
    article_follow=st.sampled_from([None, "instant", "digest"]),
    commenter_follow=st.sampled_from([None, "instant", "digest"]),
    section_follow=st.booleans(),
    journalist_follow=st.booleans(),
)


def tell(r: Relations) -> tuple[list[ev.CloudEvent], list[ev.DigestReady]]:
    """Play the relations out; return what c2 produced now, and the digests of the next day."""
    clock_now = [datetime(2026, 11, 27, 10, 0, tzinfo=UTC)]
    pipe = LocalPipeline(tokens=TOKENS, clock=lambda: clock_now[0])
    pipe.feed([article("a-1", journalist="j-1", section="local")])
    setup: list[Any] = []
    if r.commented:
        setup.append(comment("c1", ANA, "my comment", notify=r.form_choice))
    if r.replies_sub is not None:
        setup.append(subscribe(ANA, "replies", "a-1" if r.replies_sub == "article" else None))
    if r.article_follow is not None:
        setup.append(subscribe(ANA, "article", "a-1", r.article_follow))
    if r.commenter_follow is not None:
        setup.append(subscribe(ANA, "commenter", "m-ben", r.commenter_follow))
    if r.section_follow:
        setup.append(subscribe(ANA, "section", "local", "instant"))
    if r.journalist_follow:
        setup.append(subscribe(ANA, "journalist", "j-1", "instant"))
    pipe.feed(setup)
    text = "@Ana Lima, look" if r.mentioned else "no names here"
    now = pipe.feed([comment("c2", BEN, text, parent="c1" if r.parent else None)])
    later: list[ev.CloudEvent] = []
    while clock_now[0] < datetime(2026, 11, 28, 8, 10, tzinfo=UTC):
        clock_now[0] += timedelta(minutes=5)
        later += pipe.tick()
    return now, [o for o in later if isinstance(o, ev.DigestReady)]


@settings(deadline=None, max_examples=300)
@given(relations)
def test_the_single_notification_carries_the_reason_the_table_gives(r: Relations) -> None:
    now, digests = tell(r)
    notes = created(now)
    assert all(n.data.recipient.id == "m-ana" for n in notes)  # Ben never hears of his own
    want = expected(r)
    if want is None or want[1] == "digest":
        assert notes == []
    else:
        reason, _, scopes = want
        (note,) = notes  # one notification, whatever the number of reasons
        assert (note.data.reason, note.subject) == (reason, "c:c2")
        claims = TOKENS.read_unsubscribe(note.data.unsubscribe_token)
        assert claims.subscriber_id == "m-ana"
        assert (claims.scope, claims.target) in scopes
    if want is not None and want[1] == "digest":
        # The strongest reason went to the digest: c2 is there, with that reason.
        (digest,) = digests
        items = [(i.comment.id, i.reason) for p in digest.data.articles for i in p.items]
        assert ("c2", want[0]) in items


def test_the_table_agrees_with_the_readme_examples() -> None:
    """The README's own example: someone who never asked for replies but follows the replier
    hears of it as a follower."""
    never_asked = Relations(
        parent=True,
        participates=True,
        form_choice=None,
        mentioned=False,
        replies_sub=None,
        article_follow=None,
        commenter_follow="instant",
        section_follow=False,
        journalist_follow=False,
    )
    assert expected(never_asked) == ("followed_commenter", "instant", {("commenter", "m-ben")})
    (note,) = created(tell(never_asked)[0])
    assert note.data.reason == "followed_commenter"
    assert names(TOKENS.read_unsubscribe(note.data.unsubscribe_token)) == (
        "m-ana",
        "commenter",
        "m-ben",
    )
