"""The API's logic: authenticate, validate, rate-limit, then publish a subscription command.

Writes become CloudEvents on the subscriptions topic (the stream applies them, like any other
producer's); reads come from the inbox stage's profile table. Nothing here knows about HTTP
servers: handlers take the request's parts and return an ``ApiResponse``.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime
from typing import Any, TypeVar

import jwt
import orjson
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from newsroom_notify.api.models import (
    Accepted,
    ConfirmRequest,
    DeliveryRequest,
    ErasureRequest,
    PlainText,
    PreferencesRequest,
    Problem,
    SubscribeRequest,
    SubscriberView,
    SubscriptionView,
)
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id, is_guest_id
from newsroom_notify.domain.model import DEFAULT_DELIVERY
from newsroom_notify.domain.state import Profile
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims, Tokens
from newsroom_notify.settings import ApiSettings

PROBLEM_JSON = "application/problem+json"
ONE_CLICK = "List-Unsubscribe=One-Click"
SECURITY_HEADERS = {
    # Answers carry personal data and tokens: no cache (browser, proxy) keeps a copy.
    "Cache-Control": "no-store",
    # No page of another site may frame ours (click-jacking of the unsubscribe button).
    "X-Frame-Options": "DENY",
    # Reader pages (api.pages) load one stylesheet from this origin and post forms only to it.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the unsubscribe page's URL holds a token
}
"""Headers on every API response (both servers add them, to errors and 404s too)."""


@dataclass
class ApiResponse:
    """What a handler answers: a status and a JSON model or an HTML page."""

    status: int
    body: BaseModel | str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        """The body as bytes."""
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return self.body.model_dump_json().encode("utf-8")


class ApiError(Exception):
    """A client error, answered as RFC 9457 problem details."""

    def __init__(
        self, status: int, title: str, detail: str, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.retry_after = retry_after

    def response(self) -> ApiResponse:
        """The problem-details response of this error (``Retry-After``: seconds until a slot of
        the limit that refused it is free)."""
        problem = Problem(title=self.title, status=self.status, detail=self.detail)
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return ApiResponse(self.status, problem, PROBLEM_JSON, headers)


class SlidingWindow:
    """At most ``limit`` events per ``window`` seconds per key (in this process), remembering
    at most ``max_keys`` keys.

    Keys are kept in least-recently-hit order: a key whose last hit is older than the window
    holds nothing worth keeping and is dropped when it reaches the front, and when more than
    ``max_keys`` keys are live the least recently hit is forgotten (it starts afresh if it comes
    back). Memory is therefore bounded by ``max_keys * limit`` timestamps whatever the number of
    distinct keys, and each call costs O(limit) at most. A key's hits are a plain sorted list
    (a deque costs ~600 bytes even when it holds one timestamp).
    """

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ):
        self.limit, self.window, self.clock, self.max_keys = limit, window, clock, max_keys
        self.hits: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Record a hit for ``key``; False if it is over the limit."""
        now = self.clock()
        horizon = now - self.window
        while self.hits:  # expire idle keys from the least recently hit end
            oldest = next(iter(self.hits.values()))
            if oldest and oldest[-1] > horizon:
                break
            self.hits.popitem(last=False)
        hits = self.hits.get(key)
        if hits is None:
            hits = self.hits[key] = []
        else:
            self.hits.move_to_end(key)
            del hits[: bisect.bisect_right(hits, horizon)]
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        while len(self.hits) > self.max_keys:
            self.hits.popitem(last=False)
        return True

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` has a free slot again (at least 1; 0 if it has one)."""
        hits = self.hits.get(key)
        if not hits or len(hits) < self.limit:
            return 0
        frees_at = hits[len(hits) - self.limit] + self.window
        return max(1, math.ceil(frees_at - self.clock()))


def rate_key(ip: str) -> str:
    """The rate-limit key of a client address: an IPv6 client is its /64 (one subscriber line
    or host gets a whole /64, so per-address keys would give it 2^64 quotas); an IPv4-mapped
    IPv6 address is its IPv4 address; anything unparsable is one shared key."""
    try:
        address = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return "unparsable"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class MemberClaims(BaseModel):
    """The claims of a member token this service uses, checked like any other input."""

    model_config = ConfigDict(extra="ignore")

    sub: PlainText = Field(min_length=1, max_length=200)
    name: PlainText | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None


def _event_id(*parts: str) -> str:
    """Deterministic event id: repeating a request produces the same event (idempotence)."""
    return "api-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: bytes, limit: int) -> M:
    if len(body) > limit:
        raise ApiError(413, "Content Too Large", f"request body over {limit} bytes")
    try:
        raw = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "Bad Request", "body is not valid JSON") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise ApiError(422, "Unprocessable Content", fields) from exc


@dataclass
class SubscriptionApi:
    """The endpoints' logic."""

    settings: ApiSettings
    tokens: Tokens
    publish: Callable[[ev.CloudEvent], Awaitable[None]]
    read_profile: Callable[[str], Awaitable[Profile | None]]
    clock: Callable[[], datetime]
    source: str = "urn:newsroom-notify:api"
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.per_ip = SlidingWindow(
            self.settings.per_ip_per_minute, 60, self.monotonic, self.settings.rate_limit_max_keys
        )
        # The per-address limit is not here: the worker owning the address keeps it (inbox
        # stage, ``quotas`` table), so it holds across API replicas, restarts and +tags.

    # ------------------------------------------------------------------ helpers

    def member_id(self, headers: Mapping[str, str]) -> tuple[str, MemberClaims] | None:
        """The member id of a valid bearer token, None without one; 401 if it is bad (a bad
        signature, an expired token, or claims that are not a member's: a ``sub`` of the guest
        form, a name with control characters, an e-mail claim that is not an address)."""
        header = headers.get("Authorization") or headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "Unauthorized", "use 'Authorization: Bearer <token>'")
        for key in self.settings.jwt_keys:
            try:
                claims = jwt.decode(
                    token,
                    key.get_secret_value(),
                    algorithms=["HS256"],
                    issuer=self.settings.jwt_issuer,
                    audience=self.settings.jwt_audience,
                    options={
                        "require": ["exp", "sub", "iss"],
                        "verify_aud": self.settings.jwt_audience is not None,
                    },
                )
            except jwt.InvalidSignatureError:
                continue  # maybe signed with another (rotated) key
            except jwt.PyJWTError as exc:
                raise ApiError(401, "Unauthorized", "invalid or expired token") from exc
            try:
                member = MemberClaims.model_validate(claims)
            except ValidationError as exc:
                raise ApiError(401, "Unauthorized", "the token's claims are not valid") from exc
            if is_guest_id(member.sub):
                raise ApiError(401, "Unauthorized", "a member id cannot have the guest form")
            return member.sub, member
        raise ApiError(401, "Unauthorized", "invalid or expired token")

    def authorize(
        self, subscriber_id: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> int | None:
        """The caller must be this subscriber: their member token (None), or their manage
        token (its token version: the inbox ignores the command if it has been revoked)."""
        member = self.member_id(headers)
        if member is not None:
            if member[0] != subscriber_id:
                raise ApiError(403, "Forbidden", "a member may only act on their own data")
            return None
        token = query.get("token")
        if not token:
            raise ApiError(401, "Unauthorized", "a bearer token or a manage token is required")
        try:
            claims = self.tokens.read_manage(token)
        except InvalidToken as exc:
            raise ApiError(401, "Unauthorized", "invalid or expired manage token") from exc
        if claims.subscriber_id != subscriber_id:
            raise ApiError(403, "Forbidden", "this token is for another subscriber")
        return claims.version

    def _limit_ip(self, ip: str) -> None:
        key = rate_key(ip)
        if not self.per_ip.allow(key):
            raise ApiError(
                429,
                "Too Many Requests",
                "too many requests from this address",
                self.per_ip.retry_after(key),
            )

    def _envelope(self, event_type: str, event_id: str) -> dict[str, Any]:
        return {"id": event_id, "source": self.source, "type": event_type, "time": self.clock()}

    # ---------------------------------------------------------------- endpoints

    async def subscribe(self, headers: Mapping[str, str], body: bytes, ip: str) -> ApiResponse:
        """POST /v1/subscriptions."""
        self._limit_ip(ip)
        request = _parse(SubscribeRequest, body, self.settings.max_body_bytes)
        if request.target is None and request.scope != "replies":
            raise ApiError(422, "Unprocessable Content", f"scope {request.scope} needs a target")
        member = self.member_id(headers)
        if member is not None:
            sid, claims = member
            subscriber = ev.Subscriber(id=sid, name=claims.name or sid, email=claims.email)
            status = "accepted"
        elif request.guest is not None:
            # Anybody can type an address: the owner is asked to confirm this very request
            # (under the per-address limit); it changes nothing until then.
            sid = guest_subscriber_id(request.guest.email)
            subscriber = ev.Subscriber(id=None, name=request.guest.name, email=request.guest.email)
            status = "confirmation_requested"
        else:
            raise ApiError(401, "Unauthorized", "members send a bearer token; guests send 'guest'")
        day = self.clock().date().isoformat()
        event = ev.SubscriptionRequested(
            **self._envelope(
                "newsroom.subscription.requested",
                _event_id(
                    "sub", sid, request.scope, request.target or "", str(request.delivery), day
                ),
            ),
            data=ev.SubscriptionRequestedData(
                subscriber=subscriber,
                scope=request.scope,
                target=request.target,
                delivery=request.delivery,
            ),
        )
        await self.publish(event)
        return ApiResponse(202, Accepted(status=status, subscriber_id=sid))

    async def subscriptions(
        self, sid: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> ApiResponse:
        """GET /v1/subscribers/{sid}/subscriptions."""
        version = self.authorize(sid, headers, query)
        profile = await self.read_profile(sid)
        if version is not None and (profile is None or profile.token_version != version):
            raise ApiError(401, "Unauthorized", "this link has been revoked")
        if profile is None:
            raise ApiError(404, "Not Found", "no subscriptions for this subscriber")
        prefs = profile.preferences
        view = SubscriberView(
            subscriber_id=sid,
            confirmed=profile.confirmed,
            subscriptions=[
                SubscriptionView(
                    scope=s.scope, target=s.target, delivery=s.delivery, active=s.active
                )
                for _, s in sorted(profile.subscriptions.items())
            ]
            + [
                SubscriptionView(
                    scope=p.scope,
                    target=p.target,
                    delivery=p.delivery or DEFAULT_DELIVERY[p.scope],
                    active=False,
                )
                for p in sorted(profile.pending.values(), key=lambda p: p.at)
            ],
            preferences=PreferencesRequest(
                digest=prefs.digest,
                timezone=prefs.timezone,
                digest_hour=prefs.digest_hour,
                digest_weekday=prefs.digest_weekday,
                quiet_hours=(
                    ev.QuietHours(
                        start=dtime(*divmod(prefs.quiet_hours.start, 60)),
                        end=dtime(*divmod(prefs.quiet_hours.end, 60)),
                    )
                    if prefs.quiet_hours
                    else None
                ),
                paused=prefs.paused,
                muted_articles=prefs.muted_articles,
            ),
        )
        return ApiResponse(200, view)

    async def cancel(
        self, sid: str, scope: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> ApiResponse:
        """DELETE /v1/subscribers/{sid}/subscriptions/{scope}?target=..."""
        version = self.authorize(sid, headers, query)
        target = query.get("target") or None
        try:
            data = ev.SubscriptionCancelledData(
                subscriber_id=sid, scope=scope, target=target, token_version=version
            )
        except ValidationError as exc:
            raise ApiError(422, "Unprocessable Content", f"unknown scope {scope!r}") from exc
        await self._cancel(data)
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=sid))

    async def _cancel(self, data: ev.SubscriptionCancelledData) -> None:
        event_id = _event_id("cancel", data.subscriber_id, data.scope, data.target or "")
        await self.publish(
            ev.SubscriptionCancelled(
                **self._envelope("newsroom.subscription.cancelled", event_id), data=data
            )
        )

    async def change_delivery(
        self,
        sid: str,
        scope: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        body: bytes,
    ) -> ApiResponse:
        """PUT /v1/subscribers/{sid}/subscriptions/{scope}: deliver one existing subscription
        instantly or in the digest, without a new confirmation (the inbox changes only a
        subscription the subscriber has)."""
        version = self.authorize(sid, headers, query)
        request = _parse(DeliveryRequest, body, self.settings.max_body_bytes)
        try:
            data = ev.SubscriptionDeliveryChangedData(
                subscriber_id=sid,
                scope=scope,
                target=request.target,
                delivery=request.delivery,
                token_version=version,
            )
        except ValidationError as exc:
            raise ApiError(422, "Unprocessable Content", f"unknown scope {scope!r}") from exc
        if data.target is None and data.scope != "replies":
            raise ApiError(422, "Unprocessable Content", f"scope {scope} needs a target")
        event_id = _event_id(
            "delivery", sid, scope, data.target or "", data.delivery, self.clock().isoformat()
        )
        await self.publish(
            ev.SubscriptionDeliveryChanged(
                **self._envelope("newsroom.subscription.delivery_changed", event_id), data=data
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=sid))

    async def preferences(
        self, sid: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        """PUT /v1/subscribers/{sid}/preferences."""
        version = self.authorize(sid, headers, query)
        request = _parse(PreferencesRequest, body, self.settings.max_body_bytes)
        try:
            data = ev.PreferencesUpdatedData(
                subscriber_id=sid, token_version=version, **request.model_dump()
            )
        except ValidationError as exc:
            raise ApiError(
                422, "Unprocessable Content", "timezone: unknown IANA time zone"
            ) from exc
        event_id = _event_id("prefs", sid, orjson.dumps(request.model_dump(mode="json")).decode())
        await self.publish(
            ev.PreferencesUpdated(
                **self._envelope("newsroom.preferences.updated", event_id), data=data
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=sid))

    async def erase(
        self, sid: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> ApiResponse:
        """DELETE /v1/subscribers/{sid}: right to erasure. A member's login erases at once; a
        manage link only asks: the address gets a mail to confirm (an erase token)."""
        version = self.authorize(sid, headers, query)
        if version is not None:
            await self._request_erasure(sid, None, version)
            return ApiResponse(202, Accepted(status="confirmation_requested", subscriber_id=sid))
        await self.publish(
            ev.SubscriberErased(
                **self._envelope("newsroom.subscriber.erased", _event_id("erase", sid)),
                data=ev.SubscriberErasedData(subscriber_id=sid),
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=sid))

    async def sign_out(
        self, sid: str, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> ApiResponse:
        """POST /v1/subscribers/{sid}/sign-out: every link minted so far stops working."""
        version = self.authorize(sid, headers, query)
        await self.publish(
            ev.SubscriberSignedOut(
                **self._envelope(
                    "newsroom.subscriber.signed_out",
                    _event_id("sign-out", sid, str(version), self.clock().isoformat()),
                ),
                data=ev.SubscriberSignedOutData(subscriber_id=sid, token_version=version),
            )
        )
        return ApiResponse(202, Accepted(status="signed_out", subscriber_id=sid))

    async def _request_erasure(self, sid: str, email: str | None, version: int | None) -> None:
        day = self.clock().date().isoformat()
        await self.publish(
            ev.ErasureRequested(
                **self._envelope(
                    "newsroom.erasure.requested", _event_id("erase-request", sid, day)
                ),
                data=ev.ErasureRequestedData(subscriber_id=sid, email=email, token_version=version),
            )
        )

    async def request_erasure(self, body: bytes, ip: str) -> ApiResponse:
        """POST /v1/erasure: a guest asks, by address, for erasure; the address is asked to
        confirm by mail (per-IP and per-address limits). The answer is the same whether or
        not anything is known about the address."""
        self._limit_ip(ip)
        request = _parse(ErasureRequest, body, self.settings.max_body_bytes)
        sid = guest_subscriber_id(request.email)
        await self._request_erasure(sid, request.email, None)
        return ApiResponse(202, Accepted(status="confirmation_requested", subscriber_id=sid))

    async def confirm_erasure(self, body: bytes, ip: str) -> ApiResponse:
        """POST /v1/erasure/confirm: the address's owner confirms an erasure."""
        self._limit_ip(ip)
        request = _parse(ConfirmRequest, body, self.settings.max_body_bytes)
        try:
            claims = self.tokens.read_erase(request.token)
        except InvalidToken as exc:
            raise ApiError(400, "Bad Request", "invalid or expired erasure token") from exc
        await self.publish(
            ev.ErasureConfirmed(
                **self._envelope(
                    "newsroom.erasure.confirmed",
                    _event_id("erase-confirm", claims.subscriber_id, str(claims.version)),
                ),
                data=ev.ErasureConfirmedData(token=request.token),
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=claims.subscriber_id))

    async def confirm(self, body: bytes, ip: str) -> ApiResponse:
        """POST /v1/confirm: a guest confirms their address."""
        self._limit_ip(ip)
        request = _parse(ConfirmRequest, body, self.settings.max_body_bytes)
        try:
            claims = self.tokens.read_confirm(request.token)
        except InvalidToken as exc:
            raise ApiError(400, "Bad Request", "invalid or expired confirmation token") from exc
        event_id = _event_id(
            "confirm", claims.subscriber_id, claims.scope, claims.target or "", claims.request or ""
        )
        await self.publish(
            ev.SubscriptionConfirmed(
                **self._envelope("newsroom.subscription.confirmed", event_id),
                data=ev.SubscriptionConfirmedData(token=request.token),
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=claims.subscriber_id))

    def unsubscribe_claims(self, query: Mapping[str, str]) -> TokenClaims:
        """The claims of the unsubscribe token in ``query``; 400 without a valid one."""
        token = query.get("token")
        if not token:
            raise ApiError(400, "Bad Request", "the unsubscribe link has no token")
        try:
            return self.tokens.read_unsubscribe(token)
        except InvalidToken as exc:
            raise ApiError(400, "Bad Request", "invalid or expired unsubscribe link") from exc

    async def unsubscribe(self, query: Mapping[str, str], form: Mapping[str, str]) -> ApiResponse:
        """POST /v1/unsubscribe?token=... with body List-Unsubscribe=One-Click (RFC 8058)."""
        if form.get("List-Unsubscribe") != "One-Click":
            raise ApiError(400, "Bad Request", f"the body must be {ONE_CLICK}")
        claims = self.unsubscribe_claims(query)
        await self._cancel(
            ev.SubscriptionCancelledData(
                subscriber_id=claims.subscriber_id,
                scope=claims.scope,
                target=claims.target,
                token_version=claims.version,
            )
        )
        return ApiResponse(200, Accepted(status="unsubscribed", subscriber_id=claims.subscriber_id))

    async def restore(self, undo_token: str) -> ApiResponse:
        """The undo of an unsubscribe (reader pages): the undo token, minted when the unsubscribe
        was done and short-lived, restores exactly the subscription that it cancelled."""
        try:
            claims = self.tokens.read_undo(undo_token)
        except InvalidToken as exc:
            raise ApiError(400, "Bad Request", "this undo link is invalid or has expired") from exc
        data = ev.SubscriptionRestoredData(
            subscriber_id=claims.subscriber_id,
            scope=claims.scope,
            target=claims.target,
            token_version=claims.version,
        )
        # One restore per undo token (a repeated click publishes the same id).
        event_id = _event_id("restore", hashlib.sha256(undo_token.encode()).hexdigest())
        await self.publish(
            ev.SubscriptionRestored(
                **self._envelope("newsroom.subscription.restored", event_id), data=data
            )
        )
        return ApiResponse(202, Accepted(status="accepted", subscriber_id=claims.subscriber_id))
