"""Signed, expiring, key-rotatable tokens: unsubscribe (one subscription), confirm (double
opt-in) and manage (a guest's access to their own subscriptions). itsdangerous signs with the
newest key and verifies with any configured key, with a salt per purpose so one kind of token
can never be used as another.

Minting is memoised for a few seconds: every notification carries an unsubscribe and a manage
token, and a recipient of many notifications would otherwise cost two HMAC signatures each.
A reused token is at most ``REUSE_S`` seconds older than a fresh one, nothing else differs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

UNSUBSCRIBE = "newsroom-notify/unsubscribe/v1"
CONFIRM = "newsroom-notify/confirm/v1"
MANAGE = "newsroom-notify/manage/v1"
REUSE_S = 10.0  # how long a minted token is handed out again for the same claims
_MEMO_LIMIT = 100_000  # entries before the memo is emptied


class InvalidToken(Exception):
    """The token is forged, for another purpose, or expired."""


@dataclass(frozen=True)
class TokenClaims:
    """What a token says: whose subscription, which one."""

    subscriber_id: str
    scope: str
    target: str | None


class Tokens:
    """Mints and verifies the service's tokens."""

    def __init__(
        self, keys_newest_first: list[str], unsubscribe_max_age: int, confirm_max_age: int
    ):
        if not keys_newest_first:
            raise ValueError("at least one token key is needed")
        # itsdangerous signs with the *last* key of the list and tries all when verifying.
        keys = list(reversed(keys_newest_first))
        self._unsubscribe = URLSafeTimedSerializer(keys, salt=UNSUBSCRIBE)
        self._confirm = URLSafeTimedSerializer(keys, salt=CONFIRM)
        self._manage = URLSafeTimedSerializer(keys, salt=MANAGE)
        self._minted: dict[tuple[str, str, str, str | None], tuple[float, str]] = {}
        self._max_age = {
            UNSUBSCRIBE: unsubscribe_max_age,
            CONFIRM: confirm_max_age,
            MANAGE: unsubscribe_max_age,
        }

    def unsubscribe(self, claims: TokenClaims) -> str:
        """A token that cancels exactly this subscription."""
        return self._mint(self._unsubscribe, UNSUBSCRIBE, claims)

    def confirm(self, claims: TokenClaims) -> str:
        """A token that confirms a guest's address (and this pending subscription)."""
        return str(self._confirm.dumps(_payload(claims)))

    def manage(self, subscriber_id: str) -> str:
        """A token that lets its holder read and change this subscriber's subscriptions (the
        'manage my subscriptions' link of guests, who have no account)."""
        return self._mint(self._manage, MANAGE, TokenClaims(subscriber_id, "manage", None))

    def _mint(self, serializer: URLSafeTimedSerializer, purpose: str, claims: TokenClaims) -> str:
        key = (purpose, claims.subscriber_id, claims.scope, claims.target)
        now = time.monotonic()
        minted = self._minted.get(key)
        if minted is not None and now - minted[0] < REUSE_S:
            return minted[1]
        if len(self._minted) >= _MEMO_LIMIT:
            self._minted.clear()
        token = str(serializer.dumps(_payload(claims)))
        self._minted[key] = (now, token)
        return token

    def read_manage(self, token: str) -> str:
        """The subscriber id of a valid manage token; ``InvalidToken`` otherwise."""
        return _read(self._manage, token, self._max_age[MANAGE]).subscriber_id

    def read_unsubscribe(self, token: str) -> TokenClaims:
        """The claims of a valid unsubscribe token; ``InvalidToken`` otherwise."""
        return _read(self._unsubscribe, token, self._max_age[UNSUBSCRIBE])

    def read_confirm(self, token: str) -> TokenClaims:
        """The claims of a valid confirm token; ``InvalidToken`` otherwise."""
        return _read(self._confirm, token, self._max_age[CONFIRM])


def _payload(claims: TokenClaims) -> list[Any]:
    return [claims.subscriber_id, claims.scope, claims.target]


def _read(serializer: URLSafeTimedSerializer, token: str, max_age: int) -> TokenClaims:
    try:
        sid, scope, target = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise InvalidToken("token expired") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidToken("token invalid") from exc
    if not isinstance(sid, str) or not isinstance(scope, str):
        raise InvalidToken("token invalid")
    return TokenClaims(sid, scope, target if isinstance(target, str) else None)
