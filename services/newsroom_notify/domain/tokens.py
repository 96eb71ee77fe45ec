"""Signed, expiring, key-rotatable, revocable tokens.

Purposes (each its own key: a salt each, and for the links, unsubscribe and manage, a derived
key and a half of its HMAC each; so one kind of token can never be used as another):

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

A notification's two links, its **unsubscribe** and its **manage** token, come from one HMAC
(``Tokens.links``): HMAC-SHA256, under a key derived from each secret key for this use alone
(``LINKS``), of the unsubscribe claims and the time; the unsubscribe token carries the first
16 bytes of it, the manage token the last 16. A holder of one cannot compute the other (the
halves of a pseudorandom function's output are independent), a token marked as one is checked
against that half only, and each keeps its own life (``unsubscribe_max_age``,
``manage_max_age``) from the same time. Format: ``u2.`` (unsubscribe) or ``m2.`` (manage), the
base64url (no padding) of the compact JSON ``[subscriber_id, scope, target, version]``, ``.``,
the base64url of the time (seconds, big-endian), ``.``, the base64url of the 16 bytes; each
part must be base64url as the minter writes it (no padding, no other alphabet, no spare bits
set). The newest key signs, every configured key verifies. A pair is handed out again for
the same claims for ``REUSE_S`` seconds (a recipient of many notifications of one subscription
costs one HMAC per ``REUSE_S``): a notification costs one HMAC at most.

The other tokens (confirm, erase, undo, form), and unsubscribe and manage tokens minted before
the links (itsdangerous's ``URLSafeTimedSerializer`` format, a salt per purpose), are
itsdangerous's: the newest key signs, any verifies, and the unsubscribe and manage tokens
already mailed in that format are read until they expire. Minting (``_dumps``) writes
itsdangerous's format itself: the compact JSON of the claims, base64url, the timestamp, the
HMAC of the derived key, exactly as ``URLSafeTimedSerializer.dumps`` does, without its layers
of objects and its attempt to zlib-compress every payload (a quarter of its time; claims of
ids hardly ever compress). A token is the one itsdangerous would have minted whenever it would
not have compressed it (tests/unit/test_tokens_minting.py), and is read by itsdangerous either
way. The derived signing keys are computed once, not per token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

UNSUBSCRIBE = "newsroom-notify/unsubscribe/v1"
CONFIRM = "newsroom-notify/confirm/v1"
MANAGE = "newsroom-notify/manage/v1"
ERASE = "newsroom-notify/erase/v1"
UNDO = "newsroom-notify/undo/v1"
FORM = "newsroom-notify/form/v1"
LINKS = "newsroom-notify/links/v2"  # the derivation of the links' key (unsubscribe + manage)
REUSE_S = 10.0  # how long a minted pair of links is handed out again for the same claims
_MEMO_LIMIT = 100_000  # entries before the memo is emptied
_LINK_MARK = {UNSUBSCRIBE: "u2.", MANAGE: "m2."}  # a link token's purpose, first
_LINK_HALF = {UNSUBSCRIBE: slice(0, 16), MANAGE: slice(16, 32)}  # its half of the HMAC
_LINK_MAX_CHARS = 4096  # longer is no token this service minted: refused before any hashing


class Links(NamedTuple):
    """A notification's unsubscribe and manage tokens, from one HMAC."""

    unsubscribe: str
    manage: str


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
        # The links' keys, newest first (one HMAC of the secret each), and the newest, keyed.
        self._link_keys = [
            hmac.new(want_bytes(key), LINKS.encode("ascii"), hashlib.sha256).digest()
            for key in keys_newest_first
        ]
        self._link_mac = hmac.new(self._link_keys[0], digestmod=hashlib.sha256)
        self._links: dict[tuple[str, str, str | None, int], tuple[float, Links]] = {}
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

    def links(self, claims: TokenClaims) -> Links:
        """The unsubscribe token of this subscription and its subscriber's manage token, from
        one HMAC (the module docstring); the same pair again for ``REUSE_S`` seconds."""
        key = (claims.subscriber_id, claims.scope, claims.target, claims.version)
        now = time.monotonic()
        minted = self._links.get(key)
        if minted is not None and now - minted[0] < REUSE_S:
            return minted[1]
        if len(self._links) >= _MEMO_LIMIT:
            self._links.clear()
        body = _b64(orjson.dumps(list(key))) + self._timestamp()
        mac = self._link_mac.copy()
        mac.update(body)
        digest, text = mac.digest(), body.decode("ascii")
        pair = Links(
            f"{_LINK_MARK[UNSUBSCRIBE]}{text}.{_b64(digest[_LINK_HALF[UNSUBSCRIBE]]).decode()}",
            f"{_LINK_MARK[MANAGE]}{text}.{_b64(digest[_LINK_HALF[MANAGE]]).decode()}",
        )
        self._links[key] = (now, pair)
        return pair

    def unsubscribe(self, claims: TokenClaims) -> str:
        """A token that cancels exactly this subscription (the first of its ``links``)."""
        return self.links(claims).unsubscribe

    def confirm(self, claims: TokenClaims) -> str:
        """A token that confirms exactly the request ``claims.request`` (never memoised)."""
        return self._dumps(CONFIRM, _payload(claims))

    def manage(self, subscriber_id: str, version: int = 0) -> str:
        """A token that lets its holder read and change this subscriber's subscriptions (the
        'manage my subscriptions' link of guests, who have no account)."""
        return self.links(TokenClaims(subscriber_id, "manage", None, version)).manage

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

    def _dumps(self, purpose: str, payload: Any) -> str:
        """``URLSafeTimedSerializer.dumps(payload)`` of ``purpose``, never compressed (see the
        module docstring)."""
        # The payload's compact JSON (orjson's equals itsdangerous's ``json.dumps`` with
        # ``separators=(",", ":")`` for these lists of strings, ints and None; any JSON reads
        # back the same), then the timestamp segment, encoded once per second.
        value = _b64(orjson.dumps(payload)) + self._timestamp()
        mac = self._macs[purpose].copy()
        mac.update(value)
        return (value + b"." + _b64(mac.digest())).decode("ascii")

    def _timestamp(self) -> bytes:
        """The timestamp segment of a token minted now (``.`` and the seconds), encoded once
        per second."""
        now = int(time.time())
        if self._stamp[0] != now:
            self._stamp = (now, b"." + _b64(now.to_bytes((now.bit_length() + 7) // 8, "big")))
        return self._stamp[1]

    def read_manage(self, token: str) -> TokenClaims:
        """The claims of a valid manage token (scope ``manage``, no target); ``InvalidToken``
        otherwise."""
        if isinstance(token, str) and token.startswith(_LINK_MARK[MANAGE]):
            claims = self._read_link(MANAGE, token)
            return TokenClaims(claims.subscriber_id, "manage", None, claims.version)
        return self._read(MANAGE, token)

    def read_unsubscribe(self, token: str) -> TokenClaims:
        """The claims of a valid unsubscribe token; ``InvalidToken`` otherwise."""
        if isinstance(token, str) and token.startswith(_LINK_MARK[UNSUBSCRIBE]):
            return self._read_link(UNSUBSCRIBE, token)
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

    def _read_link(self, purpose: str, token: str) -> TokenClaims:
        """The claims of a valid, unexpired link token of ``purpose`` (its mark already seen):
        its half of the HMAC under one of the keys, then its age, then its claims."""
        if len(token) > _LINK_MAX_CHARS:
            raise InvalidToken("token invalid")
        parts = token[len(_LINK_MARK[purpose]) :].split(".")
        if len(parts) != 3:
            raise InvalidToken("token invalid")
        payload, stamp, tag = (_unb64(part) for part in parts)
        body = f"{parts[0]}.{parts[1]}".encode("ascii")  # _unb64: nothing but base64url
        half = _LINK_HALF[purpose]
        if len(tag) != half.stop - half.start or not any(
            hmac.compare_digest(hmac.digest(key, body, "sha256")[half], tag)
            for key in self._link_keys
        ):
            raise InvalidToken("token invalid")
        age = int(time.time()) - int.from_bytes(stamp, "big")
        if age < 0 or age > self._max_age[purpose]:  # as itsdangerous: negative is expired
            raise InvalidToken("token expired")
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidToken("token invalid") from exc
        if not isinstance(claims, list) or len(claims) != 4:
            raise InvalidToken("token invalid")
        return _claims([*claims, None])

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


def _unb64(part: str) -> bytes:
    """The bytes of a base64url part (no padding) as ``_b64`` writes them; ``InvalidToken`` for
    anything else (another alphabet, padding, a second spelling of the same bytes)."""
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("token invalid") from exc
    if _b64(data) != part.encode("ascii", "replace"):
        raise InvalidToken("token invalid")
    return data


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
