"""Tokens minted without itsdangerous's layers (``Tokens._dumps``) are itsdangerous's tokens: the
same bytes whenever itsdangerous would not have compressed the payload, read back by it with
the right claims, and refused for another purpose, another key or after their age."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsroom_notify.domain.tokens import (
    CONFIRM,
    ERASE,
    FORM,
    MANAGE,
    UNDO,
    UNSUBSCRIBE,
    InvalidToken,
    TokenClaims,
    Tokens,
)

NOW = 1_795_000_000.7
KEYS = ["the-newest-key-of-at-least-32-bytes!", "an-older-key-still-accepted-for-reading"]
CLAIMS = [
    TokenClaims("m-1", "article", "a-1", 0),
    TokenClaims("auth0|Zoë 🦊", "replies", None, 7),
    TokenClaims("g-" + "x" * 150, "section", "politics", 3, "req-9"),
    TokenClaims("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "article", "a" * 60, 0),
    # Every character JSON escapes, and those it may or may not: the payload's JSON must be
    # itsdangerous's byte for byte.
    TokenClaims('q"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\ud7ff\ue000', "article", "é", 2**40),
]


def itsdangerous_token(purpose: str, payload: object) -> str:
    keys = list(reversed(KEYS))  # itsdangerous signs with the last
    return str(URLSafeTimedSerializer(keys, salt=purpose).dumps(payload))


@pytest.mark.parametrize(
    "claims", CLAIMS, ids=["member", "unicode", "long", "repetitive", "escapes"]
)
def test_a_minted_token_is_itsdangerous_own_unless_it_would_have_compressed_it(
    claims: TokenClaims, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)
    tokens = Tokens(KEYS, 3600, 3600)
    payload = [claims.subscriber_id, claims.scope, claims.target, claims.version, claims.request]
    for purpose in (UNSUBSCRIBE, CONFIRM, MANAGE, ERASE, UNDO, FORM):
        minted = tokens._dumps(purpose, payload)
        reference = itsdangerous_token(purpose, payload)
        if reference.startswith("."):  # itsdangerous compressed it (the repetitive ids)
            assert minted != reference
            assert not minted.startswith(".")
        else:
            assert minted == reference
        keys = list(reversed(KEYS))
        assert URLSafeTimedSerializer(keys, salt=purpose).loads(minted, max_age=60) == payload


def test_minted_tokens_read_back_and_keep_their_purpose_key_and_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [NOW]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    tokens = Tokens(KEYS, 3600, 600)
    for claims in CLAIMS:
        token = tokens.unsubscribe(claims)
        read = tokens.read_unsubscribe(token)
        assert (read.subscriber_id, read.scope, read.target, read.version) == (
            claims.subscriber_id,
            claims.scope,
            claims.target,
            claims.version,
        )
        with pytest.raises(InvalidToken):
            tokens.read_manage(token)  # another purpose
        with pytest.raises(InvalidToken):
            Tokens(["some-other-key-of-at-least-32-bytes"], 3600, 3600).read_unsubscribe(token)
    confirm = tokens.confirm(CLAIMS[2])
    assert tokens.read_confirm(confirm).request == "req-9"
    rotated = Tokens(["a-brand-new-key-of-at-least-32-bytes!", *KEYS], 3600, 600)
    assert rotated.read_confirm(confirm).request == "req-9"  # older keys still read
    clock[0] += 601
    with pytest.raises(InvalidToken, match="expired"):
        tokens.read_confirm(confirm)
    form = tokens.form("prefs", "the-link-token")
    tokens.check_form(form, "prefs", "the-link-token")
    with pytest.raises(InvalidToken):
        tokens.check_form(form, "prefs", "another-link-token")
