"""A notification's two links, its unsubscribe and its manage token, from one HMAC
(``Tokens.links``): what each can do, that neither can be made from the other or changed, that
each keeps its own life, that only the configured keys sign them, that the format is the one
``domain/tokens.py`` documents, and that tokens mailed before the links still work."""

from __future__ import annotations

import base64
import hmac
import time
from datetime import UTC, datetime

import orjson
import pytest

from newsroom_notify.domain.local import LocalPipeline
from newsroom_notify.domain.tokens import (
    MANAGE,
    UNSUBSCRIBE,
    InvalidToken,
    TokenClaims,
    Tokens,
)
from tests.builders import (
    Clock,
    article,
    b64url,
    comment,
    created,
    link,
    member,
    names,
    subscribe,
)

KEY = "the-newest-key-of-at-least-32-bytes!"
OLDER = "an-older-key-still-accepted-for-reading"
NOW = 1_795_000_000
ANA = TokenClaims("m-ana", "article", "a-1", 3)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    wall = [NOW + 0.25]
    monkeypatch.setattr(time, "time", lambda: wall[0])
    return wall


def claims_json(claims: TokenClaims) -> bytes:
    return orjson.dumps([claims.subscriber_id, claims.scope, claims.target, claims.version])


def test_the_links_are_the_documented_format_and_read_back(clock: list[float]) -> None:
    tokens = Tokens([KEY, OLDER], 3600, 600)
    pair = tokens.links(ANA)
    assert pair.unsubscribe == link(UNSUBSCRIBE, claims_json(ANA), KEY, NOW)
    assert pair.manage == link(MANAGE, claims_json(ANA), KEY, NOW)
    assert tokens.read_unsubscribe(pair.unsubscribe) == ANA
    assert tokens.read_manage(pair.manage) == TokenClaims("m-ana", "manage", None, 3)
    assert tokens.unsubscribe(ANA) == pair.unsubscribe  # the same pair, handed out again
    assert tokens.read_manage(tokens.manage("m-ben", 2)) == TokenClaims("m-ben", "manage", None, 2)


def test_neither_link_can_be_made_from_the_other(clock: list[float]) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    unsubscribe, manage = tokens.links(ANA)
    with pytest.raises(InvalidToken):
        tokens.read_manage(unsubscribe)  # an unsubscribe link is no manage link
    with pytest.raises(InvalidToken):
        tokens.read_manage("m2." + unsubscribe[3:])  # nor when marked as one: its half
    with pytest.raises(InvalidToken):
        tokens.read_unsubscribe(manage)
    with pytest.raises(InvalidToken):
        tokens.read_unsubscribe("u2." + manage[3:])
    for token in (unsubscribe, manage):  # and neither is any other purpose's token
        for read in (tokens.read_confirm, tokens.read_erase, tokens.read_undo):
            with pytest.raises(InvalidToken):
                read(token)


def test_a_links_claims_and_time_cannot_be_changed(clock: list[float]) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    for token in tokens.links(ANA):
        mark, payload, stamp, tag = token[:3], *token[3:].split(".")
        read = tokens.read_unsubscribe if mark == "u2." else tokens.read_manage
        ben = b64url(claims_json(TokenClaims("m-ben", "article", "a-1", 3)))
        other_scope = b64url(claims_json(TokenClaims("m-ana", "section", "politics", 3)))
        newer = b64url((NOW + 3000).to_bytes(4, "big"))  # a longer life
        for forged in (
            f"{mark}{ben}.{stamp}.{tag}",
            f"{mark}{other_scope}.{stamp}.{tag}",
            f"{mark}{payload}.{newer}.{tag}",
        ):
            with pytest.raises(InvalidToken, match="invalid"):
                read(forged)


def test_only_the_configured_keys_sign_links_and_older_ones_still_read(
    clock: list[float],
) -> None:
    old = Tokens([OLDER], 3600, 3600).links(ANA)
    rotated = Tokens([KEY, OLDER], 3600, 3600)
    assert rotated.read_unsubscribe(old.unsubscribe) == ANA
    assert rotated.read_manage(old.manage).subscriber_id == "m-ana"
    attacker = Tokens(["the-attackers-own-key-of-32-bytes!!"], 3600, 3600).links(ANA)
    with pytest.raises(InvalidToken):
        rotated.read_unsubscribe(attacker.unsubscribe)
    with pytest.raises(InvalidToken):
        rotated.read_manage(attacker.manage)
    retired = Tokens([KEY], 3600, 3600)  # the older key taken out of the settings
    with pytest.raises(InvalidToken):
        retired.read_unsubscribe(old.unsubscribe)


def test_each_link_keeps_its_own_life(clock: list[float]) -> None:
    # unsubscribe 3,600 s, manage 600 s (here the confirm's and the manage's setting)
    tokens = Tokens([KEY], 3600, 60, 600)
    unsubscribe, manage = tokens.links(ANA)
    clock[0] = NOW + 600
    assert tokens.read_manage(manage).subscriber_id == "m-ana"
    clock[0] = NOW + 601
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_manage(manage)
    assert tokens.read_unsubscribe(unsubscribe) == ANA
    clock[0] = NOW + 3601
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_unsubscribe(unsubscribe)
    future = link(UNSUBSCRIBE, claims_json(ANA), KEY, NOW + 7200)  # signed, but from the future
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_unsubscribe(future)


@pytest.mark.parametrize(
    "shape",
    [
        "",
        "u2.",
        "u2.a.b",
        "u2.a.b.c.d",
        "u2.{p}.{s}.{t}=",  # padding
        "u2.{p}=.{s}.{t}",
        "u2.{p}.{s}.{t}x",  # a longer tag
        "u2.{p}.{s}.{short}",
        "u2.{p}.{s}.{plus}",  # another alphabet
        "u2.{p}.{s}.{twin}",  # another spelling of the same bytes
        "u2.{p}.{s}.é{t}",
        "u2.{p}.{s}.{t}" + "A" * 5000,
        "u2." + "A" * 100_000 + ".{s}.{t}",
    ],
)
def test_a_malformed_link_is_refused_as_invalid(
    clock: list[float], shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    payload, stamp, tag = tokens.links(ANA).unsubscribe[3:].split(".")
    raw = base64.urlsafe_b64decode(tag + "==")
    twin = tag[:-1] + chr(ord(tag[-1]) + 1)  # 22 characters carry 132 bits: 4 are spare
    assert base64.urlsafe_b64decode(twin + "==") == raw
    plus = tag.replace("-", "+").replace("_", "/")  # the same bytes, the other alphabet
    if plus == tag:
        plus = b64url(raw[:-1] + b"\xfb").replace("-", "+").replace("_", "/")
    token = shape.format(p=payload, s=stamp, t=tag, short=tag[:-2], plus=plus, twin=twin)
    hmacs = []
    digest = hmac.digest
    monkeypatch.setattr(hmac, "digest", lambda *a, **k: hmacs.append(1) or digest(*a, **k))
    with pytest.raises(InvalidToken, match="invalid"):
        tokens.read_unsubscribe(token)
    assert not hmacs  # refused before any HMAC is computed: as it came, it cannot be ours
    with pytest.raises(InvalidToken, match="invalid"):
        tokens.read_unsubscribe(b"u2." + token.encode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        b'["m-ana","article","a-1",true]',  # a bool for the version
        b'["m-ana","article","a-1"]',
        b'["m-ana","article","a-1",3,"req-1"]',
        b'[1,"article","a-1",3]',
        b'{"sid":"m-ana"}',
        b"not json",
    ],
)
def test_a_signed_link_with_claims_the_service_never_writes_is_refused(
    clock: list[float], payload: bytes
) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    with pytest.raises(InvalidToken, match="invalid"):
        tokens.read_unsubscribe(link(UNSUBSCRIBE, payload, KEY, NOW))
    with pytest.raises(InvalidToken, match="invalid"):
        tokens.read_manage(link(MANAGE, payload, KEY, NOW))


def test_unsubscribe_and_manage_tokens_mailed_before_the_links_still_work(
    clock: list[float],
) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    claims = [ANA.subscriber_id, ANA.scope, ANA.target, ANA.version, None]
    mailed = tokens._dumps(UNSUBSCRIBE, claims)  # itsdangerous's (test_tokens_minting.py)
    assert tokens.read_unsubscribe(mailed) == ANA
    manage = tokens._dumps(MANAGE, ["m-ana", "manage", None, 3, None])
    assert tokens.read_manage(manage) == TokenClaims("m-ana", "manage", None, 3)
    with pytest.raises(InvalidToken):
        tokens.read_manage(mailed)


def test_a_comment_to_recipients_never_told_before_costs_one_hmac_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = Tokens([KEY], 3600, 3600)
    pipe = LocalPipeline(tokens=tokens, clock=Clock(datetime(2026, 11, 28, 12, tzinfo=UTC)))
    readers = [member(f"m-{n}", f"Reader {n}", f"reader{n}@example.org") for n in range(5)]
    pipe.feed([article("a-1"), *(subscribe(r, "article", "a-1", "instant") for r in readers)])
    hmacs = []
    copy, new, digest = hmac.HMAC.copy, hmac.new, hmac.digest
    monkeypatch.setattr(hmac.HMAC, "copy", lambda self: hmacs.append(1) or copy(self))
    monkeypatch.setattr(hmac, "new", lambda *a, **k: hmacs.append(1) or new(*a, **k))
    monkeypatch.setattr(hmac, "digest", lambda *a, **k: hmacs.append(1) or digest(*a, **k))
    author = member("m-author", "Author", "author@example.org")
    notes = created(pipe.feed([comment("c1", author, "news")]))
    assert sorted(n.data.recipient.id for n in notes) == [f"m-{n}" for n in range(5)]
    assert len(hmacs) == len(notes)
    for note in notes:
        rid = note.data.recipient.id
        assert names(tokens.read_unsubscribe(note.data.unsubscribe_token)) == (
            rid,
            "article",
            "a-1",
        )
        assert note.data.manage_token is not None
        assert tokens.read_manage(note.data.manage_token).subscriber_id == rid
