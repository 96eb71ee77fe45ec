"""Consent, the per-address limit and the tokens' revocation, told through the in-process
pipeline (the domain rules behind issue 15's rows 2, 3 and 4; tests/security/test_consent.py
tries the same on a real broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from pydantic import ValidationError

from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id, mailbox_key
from newsroom_notify.domain import tokens as tokens_module
from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.messages import FormChoice
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims, Tokens
from tests.builders import (
    Clock,
    article,
    cancel,
    comment,
    confirm,
    created,
    erase,
    guest,
    link,
    link_claims,
    member,
    moderate,
    sid_of,
    subscribe,
    tampered,
)

BEN = member("m-ben", "Ben Okoro", "ben@example.org")
GEOFF = guest("Geoff Roach", "geoff.roach@example.org")
GEOFF_ID = sid_of(GEOFF)
PHISH = "URGENT your account is locked visit evil.example"
KEY = "consent-key"


@pytest.fixture
def tokens() -> Tokens:
    return Tokens([KEY], unsubscribe_max_age=3600, confirm_max_age=3600, manage_max_age=600)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))


@pytest.fixture
def pipe(tokens: Tokens, clock: Clock) -> LocalPipeline:
    p = LocalPipeline(tokens=tokens, clock=clock)
    p.feed([article(section="politics")])
    return p


def _event(event_type: str, data: dict[str, Any], n: int = 0) -> dict[str, Any]:
    at = datetime(2026, 11, 28, 11, 0, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "specversion": "1.0",
        "id": f"consent-{event_type}-{n}-{sorted(data.items())!r}",
        "source": "urn:test",
        "type": event_type,
        "time": at.isoformat(),
        "data": data,
    }


def sign_out(sid: str, version: int | None = None, n: int = 0) -> ev.SubscriberSignedOut:
    data = {"subscriber_id": sid, "token_version": version}
    return ev.SubscriberSignedOut.model_validate(_event("newsroom.subscriber.signed_out", data, n))


def erasure_requested(sid: str, email: str | None = None, n: int = 0) -> ev.ErasureRequested:
    data = {"subscriber_id": sid, "email": email}
    return ev.ErasureRequested.model_validate(_event("newsroom.erasure.requested", data, n))


def erasure_confirmed(token: str) -> ev.ErasureConfirmed:
    return ev.ErasureConfirmed.model_validate(
        _event("newsroom.erasure.confirmed", {"token": token})
    )


def confirmed_geoff(pipe: LocalPipeline, scope: str = "replies", target: str | None = None) -> None:
    (request,) = created(pipe.feed([subscribe(GEOFF, scope, target)]))
    pipe.feed([confirm(request.data.confirm_token or "")])


def active(pipe: LocalPipeline, sid: str) -> set[tuple[str, str | None]]:
    profile = pipe.inbox.profiles[sid]
    return {(s.scope, s.target) for s in profile.subscriptions.values() if s.active}


# ----------------------------------------------------- row 2: forged subscription


def test_an_outsider_cannot_subscribe_a_confirmed_guest_or_rename_them(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    confirmed_geoff(pipe)
    outsider = guest(PHISH, "geoff.roach@example.org")
    out = created(pipe.feed([subscribe(outsider, "section", "politics", "instant")]))
    (request,) = out  # the address is asked; nothing else happens
    assert request.data.reason == "confirm_subscription"
    assert request.data.recipient.name == "Geoff Roach"  # never the outsider's text
    assert tokens.read_confirm(request.data.confirm_token or "").scope == "section"
    assert active(pipe, GEOFF_ID) == {("replies", None)}
    assert pipe.inbox.profiles[GEOFF_ID].name == "Geoff Roach"
    # The next article in the section reaches nobody (no "URGENT" mail either).
    assert created(pipe.feed([article("a-2", section="politics")])) == []
    # A comment reply still reaches Geoff, under his own name.
    pipe.feed([comment("c1", GEOFF, "Hello", notify="replies")])
    (reply,) = created(pipe.feed([comment("c2", BEN, "Hi", parent="c1")]))
    assert reply.data.recipient.name == "Geoff Roach"


def test_an_outsider_cannot_name_an_address_that_never_confirmed(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    """The outsider asks first, for an address nobody confirmed yet: the name typed with that
    request is the outsider's text, so no mail to the address may carry it (the confirmation
    request, an erasure request) and it must not become the name the owner is addressed by
    once they subscribe and confirm for themselves."""
    outsider = guest(PHISH, "geoff.roach@example.org")
    (asked,) = created(pipe.feed([subscribe(outsider, "article", "a-1")]))
    assert PHISH not in asked.model_dump_json()
    (erasure,) = created(pipe.feed([erasure_requested(GEOFF_ID, "geoff.roach@example.org")]))
    assert PHISH not in erasure.model_dump_json()
    # Geoff asks for himself, under his own name, and confirms his own request.
    (mine,) = created(pipe.feed([subscribe(GEOFF, "replies", None)]))
    assert PHISH not in mine.model_dump_json()
    pipe.feed([confirm(mine.data.confirm_token or "")])
    assert pipe.inbox.profiles[GEOFF_ID].name == "Geoff Roach"
    pipe.feed([comment("c1", GEOFF, "Hello", notify="replies")])
    (reply,) = created(pipe.feed([comment("c2", BEN, "Hi", parent="c1")]))
    assert reply.data.recipient.name == "Geoff Roach"
    # Confirming the outsider's request later (he wants a-1 after all) renames nobody.
    pipe.feed([confirm(asked.data.confirm_token or "")])
    assert active(pipe, GEOFF_ID) >= {("article", "a-1")}
    assert pipe.inbox.profiles[GEOFF_ID].name == "Geoff Roach"


def test_a_members_subscription_applies_at_once_and_updates_their_name(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([subscribe(BEN, "section", "politics", "instant")])
    pipe.feed([subscribe(member("m-ben", "Ben O.", "ben@example.org"), "replies", None)])
    assert active(pipe, "m-ben") == {("section", "politics"), ("replies", None)}
    assert pipe.inbox.profiles["m-ben"].name == "Ben O."


def test_a_guest_request_for_what_they_already_have_mails_nothing(pipe: LocalPipeline) -> None:
    confirmed_geoff(pipe, "article", "a-1")
    assert created(pipe.feed([subscribe(GEOFF, "article", "a-1")])) == []


# ---------------------------------------------- row 3: one token, one request


def test_a_confirm_token_confirms_only_the_request_that_minted_it(pipe: LocalPipeline) -> None:
    (mine,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1")]))
    (theirs,) = created(pipe.feed([subscribe(GEOFF, "section", "politics", "instant")]))
    pipe.feed([confirm(mine.data.confirm_token or "")])
    assert active(pipe, GEOFF_ID) == {("article", "a-1")}
    assert created(pipe.feed([article("a-2", section="politics")])) == []
    # The other request stays pending until its own token is used.
    pipe.feed([confirm(theirs.data.confirm_token or "")])
    assert active(pipe, GEOFF_ID) == {("article", "a-1"), ("section", "politics")}


def test_a_pending_delivery_change_waits_for_its_own_confirmation(pipe: LocalPipeline) -> None:
    (request,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1", "digest")]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    (change,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1", "instant")]))
    assert pipe.inbox.profiles[GEOFF_ID].subscriptions["article|a-1"].delivery == "digest"
    pipe.feed([confirm(change.data.confirm_token or "")])
    assert pipe.inbox.profiles[GEOFF_ID].subscriptions["article|a-1"].delivery == "instant"


def test_a_confirm_token_used_twice_changes_nothing_more(pipe: LocalPipeline) -> None:
    (request,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1")]))
    pipe.feed([confirm(request.data.confirm_token or "")])
    pipe.feed([cancel(GEOFF_ID, "article", "a-1")])
    pipe.feed([confirm(request.data.confirm_token or "")])  # replayed after a cancel
    assert active(pipe, GEOFF_ID) == set()


# ------------------------------------------ row 4: Notify-of only once approved


@pytest.mark.parametrize(
    "story",
    [
        [comment("c1", GEOFF, "Buy pills", status="spam", notify="follow_up")],
        [
            comment("c1", GEOFF, "Buy pills", status="pending", notify="follow_up"),
            moderate("c1", "spam"),
        ],
        [
            comment("c1", GEOFF, "Buy pills", status="pending", notify="replies"),
            moderate("c1", "trash"),
            moderate("c1", "approved"),  # approved after removal: the tick is gone
        ],
    ],
    ids=["posted-spam", "pending-then-spam", "pending-trash-approved"],
)
def test_a_comment_that_never_appears_mails_nobody(
    pipe: LocalPipeline, story: list[ev.CloudEvent]
) -> None:
    assert created(pipe.feed(story)) == []
    assert GEOFF_ID not in pipe.inbox.profiles


def test_notify_of_takes_effect_at_the_first_approval(pipe: LocalPipeline) -> None:
    assert created(pipe.feed([comment("c1", BEN, "Hi", status="pending", notify="replies")])) == []
    assert "m-ben" not in pipe.inbox.profiles
    pipe.feed([moderate("c1", "approved")])
    assert active(pipe, "m-ben") == {("replies", "a-1")}
    (reply,) = created(pipe.feed([comment("c2", GEOFF, "Re", parent="c1")]))
    assert reply.data.recipient.id == "m-ben"


def test_a_guests_pending_comment_asks_for_confirmation_when_approved(
    pipe: LocalPipeline,
) -> None:
    pipe.feed([comment("c1", GEOFF, "Hi", status="pending", notify="follow_up")])
    (request,) = created(pipe.feed([moderate("c1", "approved")]))
    assert request.data.reason == "confirm_subscription"
    assert request.data.recipient.id == GEOFF_ID


# --------------------------------------------------- members and guests apart


def test_a_member_id_of_the_guest_form_is_refused_by_the_contract() -> None:
    with pytest.raises(ValidationError):
        ev.Subscriber(id=GEOFF_ID, name="Mallory", email="mallory@example.org")
    with pytest.raises(ValidationError):
        ev.CommentAuthor(id=GEOFF_ID, name="Mallory", email=None, guest=False)


def test_the_inbox_never_takes_a_guest_id_for_a_member_or_back(pipe: LocalPipeline) -> None:
    confirmed_geoff(pipe)
    at = datetime(2026, 11, 28, 12, tzinfo=UTC)
    as_member = FormChoice(
        subscriber_id=GEOFF_ID,
        name=PHISH,
        email="mallory@example.org",
        guest=False,
        article_id="a-1",
        choice="follow_up",
        at=at,
    )
    assert pipe.inbox.on_form_choice(as_member) == []
    as_guest = as_member.model_copy(update={"subscriber_id": "m-ben", "guest": True})
    assert pipe.inbox.on_form_choice(as_guest) == []
    profile = pipe.inbox.profiles[GEOFF_ID]
    assert (profile.name, profile.email) == ("Geoff Roach", "geoff.roach@example.org")
    assert active(pipe, GEOFF_ID) == {("replies", None)}
    assert "m-ben" not in pipe.inbox.profiles


# ---------------------------------------------------------- per-address limit


def test_aliases_share_one_mailbox_key() -> None:
    keys = {
        mailbox_key(a)
        for a in (
            "geoff.roach@example.org",
            "Geoff.Roach+1@Example.org",
            "geoff.roach+2@example.org",
        )
    }
    assert keys == {guest_subscriber_id("geoff.roach@example.org")}
    assert mailbox_key("other@example.org") != mailbox_key("geoff.roach@example.org")


def test_gmail_dot_and_domain_aliases_share_one_mailbox_key() -> None:
    """Gmail delivers ``mary.jones``, ``m.a.r.y.jones`` and ``maryjones`` at gmail.com or
    googlemail.com to one mailbox: 2^(n-1) spellings of an n-letter name, each of which
    would otherwise get a quota of its own."""
    aliases = (
        "maryjones@gmail.com",
        "mary.jones@gmail.com",
        "M.A.R.Y.J.O.N.E.S@GMAIL.COM",
        "mary.jones+news@googlemail.com",
        "m.aryjones@GoogleMail.com",
    )
    assert len({mailbox_key(a) for a in aliases}) == 1
    # Elsewhere a dot is part of the name: another mailbox.
    assert mailbox_key("mary.jones@example.org") != mailbox_key("maryjones@example.org")


def test_confirmation_mails_per_mailbox_are_limited_across_aliases(
    pipe: LocalPipeline, clock: Clock
) -> None:
    aliases = [f"geoff.roach+{n}@example.org" for n in range(4)] + ["GEOFF.ROACH@example.org"]
    mails = [created(pipe.feed([subscribe(guest("G", a), "article", "a-1")])) for a in aliases]
    assert [len(m) for m in mails] == [1, 1, 1, 0, 0]  # 3 per day (the default)
    clock.now += timedelta(days=1, seconds=1)
    assert len(created(pipe.feed([subscribe(guest("G", aliases[3]), "article", "a-1")]))) == 1


def test_the_same_request_again_mails_the_same_notification_and_counts_once(
    pipe: LocalPipeline,
) -> None:
    request = subscribe(GEOFF, "article", "a-1")
    first = created(pipe.feed([request, request, request, request]))
    assert len(first) == 4
    assert len({n.id for n in first}) == 1
    assert len(created(pipe.feed([subscribe(GEOFF, "replies", None)]))) == 1


def test_erasure_confirmation_mails_count_against_the_same_limit(pipe: LocalPipeline) -> None:
    for n in range(3):
        pipe.feed([erasure_requested(GEOFF_ID, "geoff.roach@example.org", n)])
    assert created(pipe.feed([subscribe(GEOFF, "article", "a-1")])) == []


# ------------------------------------------------------- token versions


def test_signing_out_everywhere_revokes_every_earlier_token(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed([subscribe(BEN, "article", "a-1", "instant")])
    (before,) = created(pipe.feed([comment("c1", GEOFF, "Hi")]))
    manage = tokens.read_manage(before.data.manage_token or "")
    unsubscribe = tokens.read_unsubscribe(before.data.unsubscribe_token)
    assert pipe.inbox.token_current("m-ben", manage.version)
    pipe.feed([sign_out("m-ben")])
    assert not pipe.inbox.token_current("m-ben", manage.version)
    # A command authorised by the old link is ignored; the subscription stays.
    stale = ev.SubscriptionCancelled.model_validate(
        _event(
            "newsroom.subscription.cancelled",
            {
                "subscriber_id": "m-ben",
                "scope": "article",
                "target": "a-1",
                "token_version": unsubscribe.version,
            },
        )
    )
    pipe.feed([stale])
    assert active(pipe, "m-ben") == {("article", "a-1")}
    # Notifications from now on carry tokens of the new version.
    (after,) = created(pipe.feed([comment("c2", GEOFF, "Again")]))
    fresh = tokens.read_manage(after.data.manage_token or "")
    assert fresh.version != manage.version
    assert pipe.inbox.token_current("m-ben", fresh.version)


def test_a_confirm_token_minted_before_a_sign_out_confirms_nothing(pipe: LocalPipeline) -> None:
    confirmed_geoff(pipe)
    (request,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1")]))
    pipe.feed([sign_out(GEOFF_ID)])
    pipe.feed([confirm(request.data.confirm_token or "")])
    assert active(pipe, GEOFF_ID) == {("replies", None)}


def test_tokens_of_an_erased_subscriber_do_not_work_for_a_new_profile(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    confirmed_geoff(pipe)
    old = pipe.inbox.profiles[GEOFF_ID].token_version
    old_manage = tokens.manage(GEOFF_ID, old)
    pipe.feed([erase(GEOFF_ID)])
    assert not pipe.inbox.token_current(GEOFF_ID, old)
    (request,) = created(pipe.feed([subscribe(GEOFF, "article", "a-1")]))  # back again
    assert tokens.read_confirm(request.data.confirm_token or "").version != old
    assert not pipe.inbox.token_current(GEOFF_ID, tokens.read_manage(old_manage).version)


# ------------------------------------------------------------------- erasure


def test_a_commenter_who_never_subscribed_can_erase_by_address(
    pipe: LocalPipeline, tokens: Tokens
) -> None:
    pipe.feed([comment("c1", GEOFF, "My words")])
    assert GEOFF_ID not in pipe.inbox.profiles
    (mail,) = created(pipe.feed([erasure_requested(GEOFF_ID, "geoff.roach@example.org")]))
    assert mail.data.reason == "confirm_erasure"
    assert mail.data.recipient.email == "geoff.roach@example.org"
    token = mail.data.confirm_token or ""
    assert tokens.read_erase(token).subscriber_id == GEOFF_ID
    pipe.feed([erasure_confirmed(token)])
    assert pipe.threads.comments["a-1/c1"].author_name != "Geoff Roach"


def test_an_erasure_request_goes_only_to_the_subscribers_own_address(
    pipe: LocalPipeline,
) -> None:
    confirmed_geoff(pipe)
    # Another address with Geoff's id: the mail goes to the stored address, never the typed one.
    (mail,) = created(pipe.feed([erasure_requested(GEOFF_ID, "mallory@example.org")]))
    assert mail.data.recipient.email == "geoff.roach@example.org"
    assert GEOFF_ID in pipe.inbox.profiles  # nothing erased before the mail is answered
    # With no stored address, a typed address that is not this guest's gets nothing.
    assert created(pipe.feed([erasure_requested("guest_unknown", "mallory@example.org")])) == []


def test_an_erase_token_from_before_a_sign_out_erases_nothing(pipe: LocalPipeline) -> None:
    confirmed_geoff(pipe)
    (mail,) = created(pipe.feed([erasure_requested(GEOFF_ID)]))
    pipe.feed([sign_out(GEOFF_ID)])
    pipe.feed([erasure_confirmed(mail.data.confirm_token or "")])
    assert GEOFF_ID in pipe.inbox.profiles


# -------------------------------------------------------------------- tokens


def test_no_token_works_for_another_purpose(tokens: Tokens) -> None:
    claims = TokenClaims(GEOFF_ID, "article", "a-1", 7, "req-1")
    minted = {
        "unsubscribe": tokens.unsubscribe(claims),
        "confirm": tokens.confirm(claims),
        "manage": tokens.manage(GEOFF_ID, 7),
        "erase": tokens.erase(GEOFF_ID, 7),
    }
    readers = {
        "unsubscribe": tokens.read_unsubscribe,
        "confirm": tokens.read_confirm,
        "manage": tokens.read_manage,
        "erase": tokens.read_erase,
    }
    for made, token in minted.items():
        for purpose, read in readers.items():
            if purpose == made:
                assert read(token).version == 7
            else:
                with pytest.raises(InvalidToken):
                    read(token)
    assert tokens.read_confirm(minted["confirm"]).request == "req-1"


def test_expired_and_tampered_tokens_are_refused(tokens: Tokens) -> None:
    expired = Tokens([KEY], unsubscribe_max_age=-1, confirm_max_age=-1, manage_max_age=-1)
    token = tokens.manage(GEOFF_ID, 3)
    with pytest.raises(InvalidToken):
        expired.read_manage(token)
    mark, claims, stamp, signature = token.split(".")
    ben = link(tokens_module.MANAGE, ["m-ben", *link_claims(token)[1:]], "other")
    for bad in (
        f"{mark}.{ben.split('.')[1]}.{stamp}.{signature}",  # someone else's id, this signature
        tampered(token),  # a changed signature
        ben,  # signed with another key
    ):
        with pytest.raises(InvalidToken):
            tokens.read_manage(bad)
    with pytest.raises(InvalidToken):
        tokens.read_unsubscribe(f"u2.{claims}.{stamp}.{signature}")  # marked as the other link


def test_manage_tokens_have_their_own_shorter_life() -> None:
    short = Tokens([KEY], unsubscribe_max_age=3600, confirm_max_age=3600, manage_max_age=-1)
    with pytest.raises(InvalidToken):
        short.read_manage(short.manage(GEOFF_ID))
    claims = TokenClaims(GEOFF_ID, "article", "a-1")
    assert short.read_unsubscribe(short.unsubscribe(claims)).scope == "article"


def test_tokens_minted_before_versions_read_as_version_zero(tokens: Tokens) -> None:
    legacy = URLSafeTimedSerializer([KEY], salt=tokens_module.MANAGE).dumps(
        [GEOFF_ID, "manage", None]
    )
    assert tokens.read_manage(legacy) == TokenClaims(GEOFF_ID, "manage", None, 0, None)
