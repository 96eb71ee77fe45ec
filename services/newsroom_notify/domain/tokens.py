"""Signed, expiring, key-rotatable, revocable tokens.

Purposes (a salt each, so one kind of token can never be used as another):

* **unsubscribe** — cancels exactly one subscription (the link in every notification);
* **confirm** — confirms exactly the pending subscription request that minted it (double
  opt-in): its claims name the request, so confirming one request never confirms another;
* **manage** — lets a guest (no account) read and change their own subscriptions and
  preferences, sign out everywhere, and *ask* for erasure (which then needs an erase token);
* **erase** — confirms an erasure asked for through a manage link or by address; mailed to
  the address, so only its owner can confirm.
* **undo** — shown on the page that confirms an unsubscribe: restores exactly the subscription
  that unsubscribe cancelled, for a short while (``undo_max_age``), without a new confirmation;
* **form** — the CSRF token of a reader page's form: bound to the form's name and to the link
  token the page was reached with (a hash of it), expiring after ``form_max_age``.

Every token carries the subscriber's *token version* (``Profile.token_version``). The inbox
bumps it when the subscriber signs out everywhere, and a profile re-created after erasure starts
at a new one, so every token minted before stops working. Tokens minted before versions
existed (three claims) read as version 0, the version of profiles stored before then.

itsdangerous signs with the newest key and verifies with any configured key. Minting is
memoised: every notification carries an unsubscribe and a manage token, and a recipient of many
notifications would otherwise cost two HMAC signatures each. An unsubscribe token is reused for
``REUSE_S`` seconds, a manage token (the same for all of a recipient's notifications, valid for
days) for ``MANAGE_REUSE_S``: a recipient's notifications cost one HMAC each at most, except
the first in an hour. A reused token is older than a fresh one by at most that; nothing else
differs. The derived signing keys are computed once, not per token.

Minting (``_dumps``) writes itsdangerous's format itself: the compact JSON of the claims,
base64url, the timestamp, the HMAC of the derived key, exactly as
``URLSafeTimedSerializer.dumps`` does, without its layers of objects and its attempt to
zlib-compress every payload (a quarter of its time; claims of ids hardly ever compress). A
token is the one itsdangerous would have minted whenever it would not have compressed it
(tests/unit/test_tokens_minting.py), and is read by itsdangerous either way.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import orjson
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

UNSUBSCRIBE = "newsroom-notify/unsubscribe/v1"
CONFIRM = "newsroom-notify/confirm/v1"
MANAGE = "newsroom-notify/manage/v1"
ERASE = "newsroom-notify/erase/v1"
UNDO = "newsroom-notify/undo/v1"
FORM = "newsroom-notify/form/v1"
REUSE_S = 10.0  # how long a minted token is handed out again for the same claims
MANAGE_REUSE_S = 3600.0  # the same for manage tokens (one per recipient, not per subscription)
_MEMO_LIMIT = 100_000  # entries before the memo is emptied


class InvalidToken(Exception):
    """The token is forged, for another purpose, or expired."""


@dataclass(frozen=True)
class TokenClaims:
    """What a token says: whose subscription, which one, which token version, and (confirm
    tokens) which request."""

    subscriber_id: str
    scope: str
    target: str | None
    version: int = 0
    request: str | None = None


# Derived signing keys, by (derivation, salt, secret): itsdangerous makes a new signer for
# every token and derives its key again (a hash each time).
_DERIVED: dict[tuple[str, bytes, bytes], bytes] = {}


class _Signer(TimestampSigner):
    """itsdangerous's signer, its derived keys computed once per salt and secret (the same
    tokens, one hash less per token)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        memo = (f"{self.key_derivation}/{self.digest_method}", self.salt, secret)
        key = _DERIVED.get(memo)
        if key is None:
            key = _DERIVED[memo] = super().derive_key(secret)
        return key


class Tokens:
    """Mints and verifies the service's tokens."""

    def __init__(
        self,
        keys_newest_first: list[str],
        unsubscribe_max_age: int,
        confirm_max_age: int,
        manage_max_age: int | None = None,
        *,
        undo_max_age: int = 15 * 60,
        form_max_age: int = 2 * 3600,
    ):
        if not keys_newest_first:
            raise ValueError("at least one token key is needed")
        # itsdangerous signs with the *last* key of the list and tries all when verifying.
        keys = list(reversed(keys_newest_first))
        self._serializers = {
            purpose: URLSafeTimedSerializer(keys, salt=purpose, signer=_Signer)
            for purpose in (UNSUBSCRIBE, CONFIRM, MANAGE, ERASE, UNDO, FORM)
        }
        # Per purpose, an HMAC already keyed with the newest key's derived signing key (copied
        # for each token: the key is not padded and hashed again).
        self._macs: dict[str, hmac.HMAC] = {}
        for purpose, serializer in self._serializers.items():
            signer = serializer.make_signer()
            self._macs[purpose] = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
        self._minted: dict[tuple[str, str, str, str | None, int], tuple[float, str]] = {}
        self._stamp = (-1, b"")  # the current second and its encoded timestamp segment
        self._max_age = {
            UNSUBSCRIBE: unsubscribe_max_age,
            CONFIRM: confirm_max_age,
            MANAGE: manage_max_age if manage_max_age is not None else unsubscribe_max_age,
            ERASE: confirm_max_age,
            UNDO: undo_max_age,
            FORM: form_max_age,
        }

    @property
    def undo_max_age(self) -> int:
        """Seconds an undo token works."""
        return self._max_age[UNDO]

    def unsubscribe(self, claims: TokenClaims) -> str:
        """A token that cancels exactly this subscription."""
        return self._mint(UNSUBSCRIBE, claims)

    def confirm(self, claims: TokenClaims) -> str:
        """A token that confirms exactly the request ``claims.request`` (never memoised)."""
        return self._dumps(CONFIRM, _payload(claims))

    def manage(self, subscriber_id: str, version: int = 0) -> str:
        """A token that lets its holder read and change this subscriber's subscriptions (the
        'manage my subscriptions' link of guests, who have no account)."""
        return self._mint(MANAGE, TokenClaims(subscriber_id, "manage", None, version))

    def erase(self, subscriber_id: str, version: int = 0) -> str:
        """A token that confirms the erasure of this subscriber (mailed to their address)."""
        claims = TokenClaims(subscriber_id, "erase", None, version)
        return self._dumps(ERASE, _payload(claims))

    def undo(self, claims: TokenClaims) -> str:
        """A token that restores exactly this just-cancelled subscription (never memoised: its
        short lifetime starts at the unsubscribe)."""
        return self._dumps(UNDO, _payload(claims))

    def form(self, form: str, credential: str) -> str:
        """The CSRF token of the form ``form`` on a page reached with ``credential`` (a link
        token): valid only for that form, with that credential, for ``form_max_age``."""
        return self._dumps(FORM, [form, _fingerprint(credential)])

    def check_form(self, token: str, form: str, credential: str) -> None:
        """``InvalidToken`` unless ``token`` is a current CSRF token of ``form`` for
        ``credential``."""
        payload = self._load(FORM, token)
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or payload[0] != form
            or not isinstance(payload[1], str)
            or not hmac.compare_digest(payload[1], _fingerprint(credential))
        ):
            raise InvalidToken("token invalid")

    def _mint(self, purpose: str, claims: TokenClaims) -> str:
        key = (purpose, claims.subscriber_id, claims.scope, claims.target, claims.version)
        now = time.monotonic()
        minted = self._minted.get(key)
        reuse = MANAGE_REUSE_S if purpose == MANAGE else REUSE_S
        if minted is not None and now - minted[0] < reuse:
            return minted[1]
        if len(self._minted) >= _MEMO_LIMIT:
            self._minted.clear()
        token = self._dumps(purpose, _payload(claims))
        self._minted[key] = (now, token)
        return token

    def _dumps(self, purpose: str, payload: Any) -> str:
        """``URLSafeTimedSerializer.dumps(payload)`` of ``purpose``, never compressed (see the
        module docstring)."""
        # The payload's compact JSON (orjson's equals itsdangerous's ``json.dumps`` with
        # ``separators=(",", ":")`` for these lists of strings, ints and None; any JSON reads
        # back the same), then the timestamp segment, encoded once per second.
        value = _b64(orjson.dumps(payload))
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, b"." + _b64(now.to_bytes((now.bit_length() + 7) // 8, "big")))
        value += self._stamp[1]
        mac = self._macs[purpose].copy()
        mac.update(value)
        return (value + b"." + _b64(mac.digest())).decode("ascii")

    def read_manage(self, token: str) -> TokenClaims:
        """The claims of a valid manage token; ``InvalidToken`` otherwise."""
        return self._read(MANAGE, token)

    def read_unsubscribe(self, token: str) -> TokenClaims:
        """The claims of a valid unsubscribe token; ``InvalidToken`` otherwise."""
        return self._read(UNSUBSCRIBE, token)

    def read_confirm(self, token: str) -> TokenClaims:
        """The claims of a valid confirm token; ``InvalidToken`` otherwise."""
        return self._read(CONFIRM, token)

    def read_erase(self, token: str) -> TokenClaims:
        """The claims of a valid erase token; ``InvalidToken`` otherwise."""
        return self._read(ERASE, token)

    def read_undo(self, token: str) -> TokenClaims:
        """The claims of a valid, unexpired undo token; ``InvalidToken`` otherwise."""
        return self._read(UNDO, token)

    def _read(self, purpose: str, token: str) -> TokenClaims:
        return _claims(self._load(purpose, token))

    def _load(self, purpose: str, token: str) -> Any:
        """The payload of a valid, unexpired ``purpose`` token; ``InvalidToken`` otherwise."""
        try:
            return self._serializers[purpose].loads(token, max_age=self._max_age[purpose])
        except SignatureExpired as exc:
            raise InvalidToken("token expired") from exc
        except (BadSignature, ValueError, TypeError) as exc:
            raise InvalidToken("token invalid") from exc


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """URL-safe base64 without padding (``base64.urlsafe_b64encode`` in fewer steps)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def _fingerprint(credential: str) -> str:
    """What a CSRF token holds of the link token it is bound to: a hash, never the token."""
    return hashlib.sha256(credential.encode("utf-8", "replace")).hexdigest()[:32]


def _payload(claims: TokenClaims) -> list[Any]:
    return [claims.subscriber_id, claims.scope, claims.target, claims.version, claims.request]


def _claims(payload: Any) -> TokenClaims:
    if not isinstance(payload, list) or len(payload) not in (3, 5):
        raise InvalidToken("token invalid")
    sid, scope, target, *rest = payload
    version, request = rest if rest else (0, None)
    if (
        not isinstance(sid, str)
        or not isinstance(scope, str)
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise InvalidToken("token invalid")
    return TokenClaims(
        sid,
        scope,
        target if isinstance(target, str) else None,
        version,
        request if isinstance(request, str) else None,
    )
