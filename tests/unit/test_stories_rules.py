"""An independent oracle for the README's "What gets notified, and why": one hand-written story
per rule, through the in-process pipeline (the real stage classes), with every expectation
written out by hand from the README's words, never computed from the code under test.

Each story names the README rule it tells (the section title or the rule's bold words).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from newsroom_notify.contract import events as ev
from newsroom_notify.domain import mentions
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
    comment,
    confirm,
    created,
    delete,
    edit,
    erase,
    guest,
    member,
    moderate,
    names,
    preferences,
    retracted,
    sid_of,
    subscribe,
)

ANA = member("m-ana", "Ana Lima", "ana@example.org")
ANA_S = member("m-anas", "Ana", "ana.s@example.org")  # a shorter name inside "Ana Lima"
BEN = member("m-ben", "Ben Okoro", "ben@example.org")
CAL = member("m-cal", "Cal Duarte", "cal@example.org")
GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = sid_of(GEOFF)
HELD_NIGHT = {"start": "22:00", "end": "07:00"}


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["story-key"], unsubscribe_max_age=3600, confirm_max_age=3600)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def pipe(tokens: Tokens, clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=tokens, clock=clock)
    p.feed([article("a-1"), article("a-2")])
    return p


def unsubscribe(pipe: LocalPipeline, token: str) -> list[ev.CloudEvent]:
    """What the one-click unsubscribe link does: a subscription.cancelled with the token's
    scope and target, through the pipeline like any subscription command."""
    claims = pipe.tokens.read_unsubscribe(token)
    return pipe.feed([cancel(claims.subscriber_id, claims.scope, claims.target)])


def told(outputs: list[ev.CloudEvent]) -> list[tuple[str, str, str | None]]:
    """(recipient, reason, comment id) of each notification, in order, duplicates kept."""
    return [
        (n.data.recipient.id, n.data.reason, n.data.comment.id if n.data.comment else None)
        for n in created(outputs)
    ]


# ------------------------------------------------ Only approved comments notify


def test_held_comment_notifies_once_when_approved_spam_never(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, "Where do the buses go?", notify="replies")])
    assert pipe.feed([comment("c2", BEN, "Down Main Street.", parent="c1", status="pending")]) == []
    assert pipe.feed([comment("c3", BEN, "CHEAP WATCHES", parent="c1", status="spam")]) == []
    (n,) = created(pipe.feed([moderate("c2", "approved")]))
    assert (n.data.recipient.id, n.data.reason, n.subject) == ("m-ana", "reply", "c:c2")
    assert n.data.comment is not None
    assert (n.data.comment.author_name, n.data.comment.excerpt) == (
        "Ben Okoro",
        "Down Main Street.",
    )
    assert n.data.parent is not None
    assert (n.data.parent.id, n.data.parent.excerpt) == ("c1", "Where do the buses go?")
    assert pipe.feed([moderate("c2", "approved")]) == []  # approved again: nothing more


def test_an_edit_never_notifies_even_when_it_adds_a_mention(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up"), comment("c2", BEN, "first words")])
    assert pipe.feed([edit("c2", "first words, and @Ana Lima look")]) == []
    assert pipe.feed([edit("c1", "my own edit")]) == []


# ---------------------------------------------- Nobody hears about their own comment


def test_nobody_hears_of_their_own_comment_by_any_route(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(ANA, "article", "a-1", "instant"),
            subscribe(ANA, "commenter", "m-ana", "instant"),  # following oneself
        ]
    )
    assert pipe.feed([comment("c2", ANA, "@Ana Lima @m-ana", parent="c1")]) == []


# ------------------------------------------ One notification per person per comment


def test_reply_beats_mention_beats_follows(pipe: LocalPipeline, tokens: Tokens) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(ANA, "article", "a-1", "instant"),
            subscribe(ANA, "commenter", "m-ben", "instant"),
        ]
    )
    (n,) = created(pipe.feed([comment("c2", BEN, "@Ana Lima yes", parent="c1")]))
    assert (n.data.recipient.id, n.data.reason) == ("m-ana", "reply")
    # The token of a reply cancels the replies subscription the "Notify of: replies" made.
    assert names(tokens.read_unsubscribe(n.data.unsubscribe_token)) == ("m-ana", "replies", "a-1")


def test_mention_beats_followed_commenter(pipe: LocalPipeline, tokens: Tokens) -> None:
    """Ana commented (so she can be mentioned) and follows Ben instantly; Ben mentions her in a
    new top-level comment: one notification, as a mention."""
    pipe.feed([comment("c1", ANA), subscribe(ANA, "commenter", "m-ben", "instant")])
    out = pipe.feed([comment("c2", BEN, "As @Ana Lima said, the trams are late.")])
    assert told(out) == [("m-ana", "mention", "c2")]
    (n,) = created(out)
    # The consent for the mention is Ana's only subscription: following Ben.
    assert names(tokens.read_unsubscribe(n.data.unsubscribe_token)) == (
        "m-ana",
        "commenter",
        "m-ben",
    )


def test_mention_beats_followed_commenter_in_digest_mode(pipe: LocalPipeline) -> None:
    """The strongest reason wins even when a weaker one would only go to the digest: the
    mention is instant, and nothing about the comment waits for Ana's digest."""
    pipe.feed([comment("c1", ANA), subscribe(ANA, "commenter", "m-ben", "digest")])
    out = pipe.feed([comment("c2", BEN, "Hello @ana lima")])
    assert told(out) == [("m-ana", "mention", "c2")]


def test_followed_commenter_beats_follow_up(pipe: LocalPipeline, tokens: Tokens) -> None:
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1", "instant"),
            subscribe(CAL, "commenter", "m-ben", "instant"),
        ]
    )
    (n,) = created(pipe.feed([comment("c2", BEN)]))
    assert (n.data.recipient.id, n.data.reason) == ("m-cal", "followed_commenter")
    assert names(tokens.read_unsubscribe(n.data.unsubscribe_token)) == (
        "m-cal",
        "commenter",
        "m-ben",
    )


def test_a_reply_to_someone_who_never_asked_for_replies_comes_as_a_mention(
    pipe: LocalPipeline,
) -> None:
    """Ana did not ask for replies, but she has a subscription (consent) and is mentioned: the
    next reason she qualifies for applies."""
    pipe.feed([comment("c1", ANA), subscribe(ANA, "section", "politics", "instant")])
    out = pipe.feed([comment("c2", BEN, "@Ana Lima no.", parent="c1")])
    assert told(out) == [("m-ana", "mention", "c2")]


def test_a_reply_to_someone_who_never_asked_comes_to_a_follower_as_follow_up(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([comment("c1", ANA), subscribe(ANA, "article", "a-2", "instant")])
    assert pipe.feed([comment("c2", BEN, "no", parent="c1")]) == []  # a-2 is not a-1
    pipe.feed([comment("c3", ANA, aid="a-2")])
    out = pipe.feed([comment("c4", BEN, "no", aid="a-2", parent="c3")])
    # Following the article counts as asking for replies under it (rule "Replies").
    assert told(out) == [("m-ana", "reply", "c4")]


# -------------------------------------------------------------------------- Replies


def test_notify_of_replies_on_any_of_their_comments_under_the_article(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([comment("c1", ANA, "first", notify="replies"), comment("c3", ANA, "second")])
    out = pipe.feed([comment("c4", BEN, "to your second", parent="c3")])
    assert told(out) == [("m-ana", "reply", "c4")]


def test_notify_of_on_another_article_does_not_ask_for_replies_here(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, aid="a-2", notify="replies"), comment("c2", ANA)])
    assert pipe.feed([comment("c3", BEN, parent="c2")]) == []


def test_replies_subscription_for_the_article(pipe: LocalPipeline, tokens: Tokens) -> None:
    pipe.feed([subscribe(ANA, "replies", "a-1"), comment("c1", ANA)])
    (n,) = created(pipe.feed([comment("c2", BEN, parent="c1")]))
    assert (n.data.recipient.id, n.data.reason) == ("m-ana", "reply")
    assert names(tokens.read_unsubscribe(n.data.unsubscribe_token)) == ("m-ana", "replies", "a-1")


def test_article_follow_in_digest_mode_asks_for_replies_and_replies_are_instant(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([subscribe(ANA, "article", "a-1"), comment("c1", ANA)])  # digest by default
    out = pipe.feed([comment("c2", BEN, parent="c1")])
    assert told(out) == [("m-ana", "reply", "c2")]


def test_a_reply_names_article_comment_and_parent(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, "Is line 4 closing?", notify="replies")])
    (n,) = created(pipe.feed([comment("c2", BEN, "Only on Sundays.", parent="c1")]))
    assert n.partition_key() == "m-ana"
    assert (n.data.recipient.name, n.data.recipient.email) == ("Ana Lima", "ana@example.org")
    assert (n.data.article.id, n.data.article.title, n.data.article.url) == (
        "a-1",
        "Title of a-1",
        "https://news.example.com/a-1",
    )
    assert n.data.comment is not None
    assert n.data.parent is not None
    assert (n.data.comment.id, n.data.comment.url) == (
        "c2",
        "https://news.example.com/a-1#comment-c2",
    )
    assert (n.data.parent.author_name, n.data.parent.excerpt) == ("Ana Lima", "Is line 4 closing?")


# ------------------------------------------------------------------------- Mentions


def test_mention_by_display_name_any_case(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up")])
    assert told(pipe.feed([comment("c2", BEN, "@ANA LIMA, agreed")])) == [
        ("m-ana", "mention", "c2")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "cc @AnaLima",  # the name without spaces
        "cc @ana_lima please",  # with underscores
        "cc @m-ana.",  # the subscriber id, sentence punctuation after it
        "(@Ana Lima)",  # after an opening bracket
        "@Ana Lima's point stands",  # a possessive after the name
    ],
)
def test_mention_by_handle_or_name_in_punctuation(pipe: LocalPipeline, text: str) -> None:
    pipe.feed([comment("c1", ANA, notify="replies")])
    assert told(pipe.feed([comment("c2", BEN, text)])) == [("m-ana", "mention", "c2")]


def test_longest_name_wins(pipe: LocalPipeline) -> None:
    """ "Ana" and "Ana Lima" both commented: "@Ana Lima" mentions Ana Lima only, "@Ana" alone
    mentions Ana."""
    pipe.feed([comment("c1", ANA, notify="replies"), comment("c2", ANA_S, notify="replies")])
    assert told(pipe.feed([comment("c3", BEN, "@Ana Lima is right")])) == [
        ("m-ana", "mention", "c3")
    ]
    assert told(pipe.feed([comment("c4", BEN, "@Ana, you too")])) == [("m-anas", "mention", "c4")]


def test_a_new_display_name_is_mentioned_and_the_old_one_no_longer(pipe: LocalPipeline) -> None:
    """The thread's participants are indexed between comments (domain/mentions.py): a name
    changed since is read as it is now."""
    pipe.feed([comment("c1", ANA, notify="replies")])
    assert told(pipe.feed([comment("c2", BEN, "@Ana Lima, yes")])) == [("m-ana", "mention", "c2")]
    renamed = member("m-ana", "Ana Costa", "ana@example.org")
    pipe.feed([comment("c3", renamed, "I married")])
    assert pipe.feed([comment("c4", BEN, "@Ana Lima, congratulations")]) == []
    assert told(pipe.feed([comment("c5", BEN, "@Ana Costa, congratulations")])) == [
        ("m-ana", "mention", "c5")
    ]


def test_a_comment_mentions_at_most_fifty_participants(pipe: LocalPipeline) -> None:
    """Only a comment's first 50 ``@`` that can start a mention are read (the bound on what one
    comment costs and on whom it can reach, docs/rules.md)."""
    readers = [member(f"m-r{i}", f"Reader {i}", f"r{i}@example.org") for i in range(55)]
    pipe.feed(
        [comment(f"c{i}", reader, "Hi", notify="replies") for i, reader in enumerate(readers)]
    )
    text = " ".join(f"@Reader {i}" for i in range(55))
    mentioned = {recipient for recipient, reason, _ in told(pipe.feed([comment("all", BEN, text)]))}
    assert mentioned == {f"m-r{i}" for i in range(50)}


def test_a_name_must_end_at_a_word_boundary(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies")])
    assert pipe.feed([comment("c2", BEN, "the @Ana Limas of this world")]) == []
    assert pipe.feed([comment("c3", BEN, "@AnaLimaFan says hi")]) == []


@pytest.mark.parametrize(
    "text",
    [
        "write to foo@ana.com for tickets",  # an e-mail address is not a mention of "Ana"
        "or to tickets@ana",
        "write to info@AnaLima today",  # nor of the handle "analima"
    ],
)
def test_an_at_sign_inside_a_word_is_not_a_mention(pipe: LocalPipeline, text: str) -> None:
    pipe.feed([comment("c1", ANA_S, notify="replies"), comment("c2", ANA, notify="replies")])
    assert pipe.feed([comment("c3", BEN, text)]) == []


def test_mention_of_a_confirmed_guest_by_guest_id(pipe: LocalPipeline) -> None:
    (request,) = created(pipe.feed([comment("c1", GEOFF, "Hi", notify="replies")]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    out = pipe.feed([comment("c2", BEN, f"thanks @{GEOFF_ID}")])
    assert told(out) == [(GEOFF_ID, "mention", "c2")]
    (n,) = created(out)
    assert (n.data.recipient.name, n.data.recipient.email) == (
        "Geoff Roach",
        "geoff.roach@example.org",
    )


def test_no_mention_without_a_confirmed_subscription(pipe: LocalPipeline) -> None:
    created(pipe.feed([comment("c1", GEOFF, "Hi", notify="replies")]))  # never confirmed
    pipe.feed([comment("c2", ANA)])  # a member with no subscription at all
    assert pipe.feed([comment("c3", BEN, "@Geoff Roach and @Ana Lima")]) == []


def test_no_mention_of_someone_who_commented_under_another_article(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, aid="a-2", notify="replies")])
    assert pipe.feed([comment("c2", BEN, "@Ana Lima?")]) == []


# -------------------------------------------------------------------------- Follows


def test_followers_of_a_commenter_hear_of_their_comments_anywhere(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    out = pipe.feed([comment("c1", BEN, "on a-2", aid="a-2")])
    assert told(out) == [("m-cal", "followed_commenter", "c1")]
    assert created(out)[0].data.article.id == "a-2"


def test_followers_of_an_article_hear_of_its_new_comments(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    out = pipe.feed([comment("c1", BEN), comment("c2", ANA, aid="a-2")])
    assert told(out) == [("m-cal", "follow_up", "c1")]
    assert names(tokens.read_unsubscribe(created(out)[0].data.unsubscribe_token)) == (
        "m-cal",
        "article",
        "a-1",
    )


def test_journalist_and_section_followers_hear_of_new_articles_once(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed(
        [
            subscribe(CAL, "journalist", "j-7", "instant"),
            subscribe(CAL, "section", "science", "instant"),
            subscribe(ANA, "section", "science", "instant"),
        ]
    )
    out = pipe.feed([article("a-7", journalist="j-7", section="science")])
    assert sorted((n.data.recipient.id, n.data.reason, n.subject) for n in created(out)) == [
        ("m-ana", "new_article", "a:a-7"),
        ("m-cal", "new_article", "a:a-7"),
    ]
    ana = next(n for n in created(out) if n.data.recipient.id == "m-ana")
    assert (ana.data.article.title, ana.data.comment) == ("Title of a-7", None)
    assert names(tokens.read_unsubscribe(ana.data.unsubscribe_token)) == (
        "m-ana",
        "section",
        "science",
    )
    assert pipe.feed([article("a-7", journalist="j-7", section="science", updated=True)]) == []
    assert pipe.feed([article("a-8", journalist="j-1", section="sport")]) == []


def test_follows_default_to_the_digest(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            subscribe(CAL, "article", "a-1"),
            subscribe(CAL, "commenter", "m-ben"),
            subscribe(CAL, "journalist", "j-7"),
        ]
    )
    assert pipe.feed([comment("c1", BEN), article("a-7", journalist="j-7")]) == []


# ---------------------------------------------------------- Removed after the fact


@pytest.mark.parametrize(
    ("removal", "cause"),
    [
        (moderate("c2", "spam"), "spam"),
        (moderate("c2", "trash"), "trash"),
        (delete("c2"), "deleted"),
    ],
)
def test_removal_retracts_every_notification_by_its_id(
    pipe: LocalPipeline, removal: ev.CloudEvent, cause: str
) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(CAL, "commenter", "m-ben", "instant"),
            subscribe(GEOFF, "article", "a-1", "instant"),  # a guest, never confirmed
        ]
    )
    sent = created(pipe.feed([comment("c2", BEN, "@Ana Lima hi", parent="c1")]))
    assert sorted((n.data.recipient.id, n.data.reason) for n in sent) == [
        ("m-ana", "reply"),
        ("m-cal", "followed_commenter"),
    ]
    out = pipe.feed([removal])
    assert created(out) == []
    assert sorted(
        (r.data.recipient_id, r.data.notification_id, r.data.cause, r.subject)
        for r in retracted(out)
    ) == sorted((n.data.recipient.id, n.data.notification_id, cause, "c:c2") for n in sent)
    # A second removal sends nothing new: at most the same retractions again (same ids).
    again = pipe.feed([delete("c2")])
    assert created(again) == []
    assert {r.id for r in retracted(again)} <= {r.id for r in retracted(out)}


def test_a_held_notification_of_a_removed_comment_is_never_sent(
    pipe: LocalPipeline, clock: Clock
) -> None:
    pipe.feed([subscribe(CAL, "article", "a-1", "instant")])
    pipe.feed([preferences("m-cal", quiet_hours=HELD_NIGHT)])
    clock.now = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
    assert pipe.feed([comment("c2", BEN)]) == []
    assert pipe.feed([moderate("c2", "trash")]) == []  # nothing was sent: nothing to retract
    clock.now = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
    assert pipe.release("m-cal") == []


def test_a_comment_of_an_erased_author_removed_later_is_still_retracted(
    pipe: LocalPipeline,
) -> None:
    """Erasure forgets the author, not what their comment caused: when a moderator removes
    the comment afterwards, the notifications it caused are withdrawn all the same."""
    pipe.feed([comment("c1", ANA, notify="replies")])
    (n,) = created(pipe.feed([comment("c2", BEN, "rude words", parent="c1")]))
    pipe.feed([erase("m-ben")])
    (r,) = retracted(pipe.feed([moderate("c2", "trash")]))
    assert (r.data.recipient_id, r.data.notification_id, r.data.cause) == (
        "m-ana",
        n.data.notification_id,
        "trash",
    )


# ------------------------------------------------------------------ Guests confirm first


def test_a_guest_hears_nothing_but_the_confirmation_until_confirmed(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    out = pipe.feed([comment("c1", GEOFF, "Guest here", notify="replies")])
    (request,) = created(out)
    assert (request.data.reason, request.data.recipient.id, request.data.recipient.email) == (
        "confirm_subscription",
        GEOFF_ID,
        "geoff.roach@example.org",
    )
    assert request.data.confirm_token is not None
    assert names(tokens.read_confirm(request.data.confirm_token)) == (GEOFF_ID, "replies", "a-1")
    # Unconfirmed: a reply, a mention, a followed commenter: nothing reaches the address.
    pipe.feed([subscribe(GEOFF, "commenter", "m-ben", "instant")])
    assert created(pipe.feed([comment("c2", BEN, "@Geoff Roach hi", parent="c1")])) == []
    assert pipe.feed([confirm(request.data.confirm_token)]) == []
    out = pipe.feed([comment("c3", BEN, "now?", parent="c1")])
    assert told(out) == [(GEOFF_ID, "reply", "c3")]


def confirmed(pipe: LocalPipeline, request: ev.CloudEvent) -> None:
    """A guest's request, confirmed by the link of the mail it produced."""
    (mail,) = created(pipe.feed([request]))
    assert mail.data.reason == "confirm_subscription"
    assert pipe.feed([confirm(mail.data.confirm_token or "")]) == []


def test_each_request_of_a_confirmed_guest_is_confirmed_by_its_own_mail(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    confirmed(pipe, subscribe(GEOFF, "article", "a-1", "instant"))
    (mail,) = created(pipe.feed([subscribe(GEOFF, "commenter", "m-cal", "instant")]))
    assert (mail.data.reason, mail.data.recipient.id) == ("confirm_subscription", GEOFF_ID)
    assert names(tokens.read_confirm(mail.data.confirm_token or "")) == (
        GEOFF_ID,
        "commenter",
        "m-cal",
    )
    assert pipe.feed([comment("c1", CAL, aid="a-2")]) == []  # not started yet
    assert told(pipe.feed([comment("c2", CAL)])) == [(GEOFF_ID, "follow_up", "c2")]
    pipe.feed([confirm(mail.data.confirm_token or "")])
    assert told(pipe.feed([comment("c3", CAL, aid="a-2")])) == [
        (GEOFF_ID, "followed_commenter", "c3")
    ]


def test_members_need_no_confirmation(pipe: LocalPipeline) -> None:
    assert pipe.feed([comment("c1", ANA, notify="replies")]) == []
    assert told(pipe.feed([comment("c2", BEN, parent="c1")])) == [("m-ana", "reply", "c2")]


# ------------------------------------------------------------------------ Unsubscribe


def test_unsubscribe_cancels_exactly_the_subscription_it_came_from(
    pipe: LocalPipeline,
) -> None:
    pipe.feed(
        [
            comment("c1", ANA, notify="replies"),
            subscribe(ANA, "commenter", "m-ben", "instant"),
        ]
    )
    (n,) = created(pipe.feed([comment("c2", BEN, parent="c1")]))
    assert n.data.reason == "reply"
    unsubscribe(pipe, n.data.unsubscribe_token)  # the replies choice on a-1 only
    assert told(pipe.feed([comment("c3", BEN, parent="c1")])) == [
        ("m-ana", "followed_commenter", "c3")
    ]
    assert told(pipe.feed([comment("c4", CAL, parent="c1")])) == []


def test_the_mention_token_cancels_the_consenting_subscription(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA), subscribe(ANA, "section", "politics", "instant")])
    (n,) = created(pipe.feed([comment("c2", BEN, "@Ana Lima")]))
    unsubscribe(pipe, n.data.unsubscribe_token)
    assert pipe.feed([article("a-9", section="politics")]) == []  # the section follow is gone
    assert pipe.feed([comment("c3", BEN, "@Ana Lima again")]) == []  # and with it, consent


def test_the_mention_token_names_the_longest_standing_subscription_whatever_arrives_first(
    tokens: Tokens, clock: Clock
) -> None:
    # Ana has followed the "zoo" section for long; just before Ben mentions her she follows
    # "arts" too (a "Notify of" tick elsewhere reaches the inbox by another path, so it may
    # land before or after the mention). Either way the mail's one-click link cancels "zoo".
    old = subscribe(ANA, "section", "zoo", "instant")
    fresh = subscribe(ANA, "section", "arts", "instant")
    mention = comment("c2", BEN, "@Ana Lima")
    for order in ([old, fresh, mention], [old, mention, fresh]):
        pipe = LocalPipeline(tokens=tokens, clock=clock)
        pipe.feed([article("a-1"), comment("c1", ANA)])
        (n,) = [x for x in created(pipe.feed(order)) if x.data.reason == "mention"]
        assert names(tokens.read_unsubscribe(n.data.unsubscribe_token)) == (
            "m-ana",
            "section",
            "zoo",
        )


def test_cancel_by_event(pipe: LocalPipeline) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    pipe.feed([cancel("m-cal", "commenter", "m-ben")])
    assert pipe.feed([comment("c1", BEN)]) == []


# ------------------------------------------------------------------------ Preferences


def test_paused_delivers_nothing_until_unpaused(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies"), preferences("m-ana", paused=True)])
    assert pipe.feed([comment("c2", BEN, "@Ana Lima", parent="c1")]) == []
    pipe.feed([preferences("m-ana", paused=False)])
    assert told(pipe.feed([comment("c3", BEN, parent="c1")])) == [("m-ana", "reply", "c3")]


def test_a_muted_article_delivers_nothing_others_still_do(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            subscribe(CAL, "commenter", "m-ben", "instant"),
            preferences("m-cal", muted_articles=["a-1"]),
        ]
    )
    out = pipe.feed([comment("c1", BEN), comment("c2", BEN, aid="a-2")])
    assert told(out) == [("m-cal", "followed_commenter", "c2")]


def test_quiet_hours_in_the_recipients_time_zone(pipe: LocalPipeline, clock: Clock) -> None:
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    pipe.feed([preferences("m-cal", timezone="America/New_York", quiet_hours=HELD_NIGHT)])
    clock.now = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)  # 18:00 in New York: not quiet
    assert told(pipe.feed([comment("c1", BEN)])) == [("m-cal", "followed_commenter", "c1")]
    clock.now = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 23:00 in New York: held
    assert pipe.feed([comment("c2", BEN)]) == []
    clock.now = datetime(2026, 11, 29, 11, 30, tzinfo=UTC)  # 06:30 in New York
    assert pipe.release("m-cal") == []
    clock.now = datetime(2026, 11, 29, 12, 1, tzinfo=UTC)  # 07:01 in New York
    assert told(pipe.release("m-cal")) == [("m-cal", "followed_commenter", "c2")]
    assert pipe.release("m-cal") == []


# -------------------------------------------------------------------------- Erasure


def every_table(pipe: LocalPipeline) -> str:
    """Every key and value of every table of the three stages, as one text."""
    assert set(pipe.tables) >= {
        "fanout",
        "sent",
        "profiles",
        "threads",
        "follower_heads",
        "follower_chunks",
    }
    return json.dumps(
        {
            name: {key: value.model_dump(mode="json") for key, value in table.items()}
            for name, table in pipe.tables.items()
        }
    )


def test_erasure_leaves_no_trace_in_any_table_fanout_included(pipe: LocalPipeline) -> None:
    """Geoff, a confirmed guest, was told of comments by every route (so the follows stage
    recorded him as a recipient under Ben's, Cal's and the section's keys), then is erased.

    Other readers are not notified of Geoff's own comments here: that is the next story."""
    confirmed(pipe, subscribe(GEOFF, "article", "a-1", "instant"))  # asks for replies too
    confirmed(pipe, subscribe(GEOFF, "commenter", "m-ben", "instant"))
    confirmed(pipe, subscribe(GEOFF, "section", "science", "instant"))
    pipe.feed([preferences(GEOFF_ID, muted_articles=["a-3"])])
    assert pipe.feed([comment("c1", GEOFF, "Geoff's words")]) == []
    got = pipe.feed(
        [
            comment("c2", BEN, "a reply", parent="c1"),  # reply to Geoff
            comment("c3", BEN, "elsewhere", aid="a-2"),  # followed commenter
            # A mention (by handle: what others wrote is theirs, not Geoff's to erase).
            comment("c4", CAL, "@geoff_roach hello"),
            comment("c5", GEOFF, "Geoff again", aid="a-2"),
            comment("c6", CAL, "more on a-1"),  # follow-up
            comment("c7", BEN, "muted", aid="a-3"),  # handed to him, dropped: muted
            article("a-7", section="science"),
        ]
    )
    assert sorted(told(got)) == [
        (GEOFF_ID, "follow_up", "c6"),
        (GEOFF_ID, "followed_commenter", "c3"),
        (GEOFF_ID, "mention", "c4"),
        (GEOFF_ID, "new_article", None),
        (GEOFF_ID, "reply", "c2"),
    ]
    assert GEOFF_ID in json.dumps({name: list(table) for name, table in pipe.tables.items()})
    assert GEOFF_ID in json.dumps([r.model_dump() for r in pipe.tables["fanout"].values()])
    pipe.feed([erase(GEOFF_ID)])
    state = every_table(pipe)
    for trace in (GEOFF_ID, "geoff.roach@example.org", "Geoff Roach", "Geoff's words", "again"):
        assert trace not in state, trace
    # Nor in the participants' indexes kept for mentions (c4's built one with him in it).
    assert not [i for i in mentions._INDEXES.values() if GEOFF_ID in i.seen]
    assert (
        pipe.feed(
            [
                comment("c8", BEN, "@Geoff Roach?", parent="c1"),
                comment("c9", BEN, "more", aid="a-2"),
                article("a-8", section="science"),
            ]
        )
        == []
    )


def test_erasing_a_followed_commenter_ends_the_follows_of_those_who_followed_them(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    """Ana and Ben follow Geoff; after Geoff's erasure their follows of him are gone, and no
    table names him (what waits in other readers' digests is another story)."""
    (request,) = created(pipe.feed([subscribe(GEOFF, "replies", None)]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    pipe.feed(
        [
            subscribe(ANA, "commenter", GEOFF_ID, "instant"),
            subscribe(BEN, "commenter", GEOFF_ID, "instant"),
            subscribe(BEN, "article", "a-1", "instant"),
        ]
    )
    out = pipe.feed([comment("c1", GEOFF, "Geoff speaks")])
    assert sorted(told(out)) == [
        ("m-ana", "followed_commenter", "c1"),
        ("m-ben", "followed_commenter", "c1"),
    ]
    pipe.feed([erase(GEOFF_ID)])
    state = every_table(pipe)
    for trace in (GEOFF_ID, "geoff.roach@example.org", "Geoff Roach", "Geoff speaks"):
        assert trace not in state, trace
    assert set(pipe.tables["profiles"]["m-ana"].subscriptions) == set()
    assert set(pipe.tables["profiles"]["m-ben"].subscriptions) == {"article|a-1"}
    # His comment, removed afterwards, is still retracted from both.
    assert sorted(r.data.recipient_id for r in retracted(pipe.feed([moderate("c1", "spam")]))) == [
        "m-ana",
        "m-ben",
    ]


def test_other_readers_keep_hearing_after_someone_is_erased(pipe: LocalPipeline) -> None:
    pipe.feed(
        [
            subscribe(CAL, "commenter", "m-ben", "instant"),
            subscribe(ANA, "commenter", "m-ben", "instant"),
        ]
    )
    pipe.feed([erase("m-ana")])
    assert told(pipe.feed([comment("c1", BEN)])) == [("m-cal", "followed_commenter", "c1")]


# ---------------------------------------------------------------- Duplicates (dedup)


def test_a_replayed_event_repeats_the_same_notification(pipe: LocalPipeline) -> None:
    pipe.feed([comment("c1", ANA, notify="replies")])
    reply = comment("c2", BEN, "same", parent="c1")
    (first,) = created(pipe.feed([reply]))
    (again,) = created(pipe.feed([reply]))  # at-least-once: the record comes again
    assert again.id == first.id
    assert again.data.model_dump(exclude={"unsubscribe_token", "manage_token"}) == (
        first.data.model_dump(exclude={"unsubscribe_token", "manage_token"})
    )
    # A different event about the same comment (another approval) sends nothing new.
    assert pipe.feed([moderate("c2", "approved")]) == []


# ------------------------------------------------------------- How readers subscribe


def test_the_follow_up_choice_follows_the_article_in_the_daily_digest(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([comment("c1", ANA, notify="follow_up")])
    assert pipe.feed([comment("c2", BEN, "a new top-level comment")]) == []  # digest default
    assert told(pipe.feed([comment("c3", BEN, "to Ana", parent="c1")])) == [
        ("m-ana", "reply", "c3")
    ]


def test_a_subscription_counts_from_when_it_began(pipe: LocalPipeline) -> None:
    """A comment posted before Cal followed Ben, processed after (the comments and
    subscriptions topics are not ordered together), does not reach Cal."""
    earlier = comment("c1", BEN, "before Cal followed")
    pipe.feed([subscribe(CAL, "commenter", "m-ben", "instant")])
    assert pipe.feed([earlier]) == []
    assert told(pipe.feed([comment("c2", BEN, "after")])) == [("m-cal", "followed_commenter", "c2")]
