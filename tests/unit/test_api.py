"""The API's logic without a web server: who may do what, what gets published, what is refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
import pytest
from pydantic import SecretStr

from newsroom_notify.api.models import SubscriberView
from newsroom_notify.api.pages import ReaderPages
from newsroom_notify.api.service import ApiError, SubscriptionApi
from newsroom_notify.api.web import client_ip
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from newsroom_notify.domain.state import Profile, Subscription
from newsroom_notify.domain.tokens import TokenClaims, Tokens
from newsroom_notify.settings import ApiSettings

KEY_NEW, KEY_OLD = "identity-key-2026-xxxxxxxxxxxxxxxxxx", "identity-key-2025-xxxxxxxxxxxxxxxxxx"


def bearer(sub: str, key: str = KEY_NEW, **claims: Any) -> dict[str, str]:
    payload = {
        "sub": sub,
        "iss": "newsroom-identity",
        "aud": "newsroom-notify",
        "exp": int(time.time()) + 600,
        "name": "Ana Lima",
        **claims,
    }
    return {"Authorization": "Bearer " + jwt.encode(payload, key, algorithm="HS256")}


def mint(sub: str, key: str = KEY_NEW, exp_in: int = 600, **claims: Any) -> dict[str, str]:
    """A bearer token minted now, expiring ``exp_in`` seconds from now."""
    return bearer(sub, key, exp=int(time.time()) + exp_in, **claims)


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def published() -> list[ev.CloudEvent]:
    return []


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["token-key"], 3600, 3600)


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def api(published: list[ev.CloudEvent], tokens: Tokens, ticker: Ticker) -> SubscriptionApi:
    profiles = {
        "m-ana": Profile(
            id="m-ana",
            name="Ana Lima",
            confirmed=True,
            subscriptions={
                "replies|": Subscription(
                    scope="replies", target=None, delivery="instant", active=True
                )
            },
        )
    }

    async def publish(event: ev.CloudEvent) -> None:
        published.append(event)

    async def read_profile(sid: str) -> Profile | None:
        return profiles.get(sid)

    settings = ApiSettings(
        jwt_keys=[SecretStr(KEY_NEW), SecretStr(KEY_OLD)],
        per_ip_per_minute=5,
        confirmations_per_address_per_day=2,
    )
    return SubscriptionApi(
        settings=settings,
        tokens=tokens,
        publish=publish,
        read_profile=read_profile,
        clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC),
        monotonic=ticker,
    )


def body(**fields: Any) -> bytes:
    return orjson.dumps(fields)


async def test_member_subscribes_with_a_bearer_token(
    api: SubscriptionApi, published: list[ev.CloudEvent]
) -> None:
    response = await api.subscribe(bearer("m-ana"), body(scope="article", target="a-1"), "1.2.3.4")
    assert response.status == 202
    (event,) = published
    assert isinstance(event, ev.SubscriptionRequested)
    assert event.partition_key() == "m-ana"
    assert event.data.subscriber.name == "Ana Lima"


async def test_a_token_signed_with_the_previous_key_still_works(api: SubscriptionApi) -> None:
    response = await api.subscribe(bearer("m-ana", KEY_OLD), body(scope="replies"), "1.2.3.4")
    assert response.status == 202


@pytest.mark.parametrize(
    ("flaw", "right"),
    [
        ({"key": "attacker-key-xxxxxxxxxxxxxxxxxxxxxx"}, {"key": KEY_NEW}),
        ({"exp_in": -10}, {"exp_in": 600}),
        ({"iss": "someone-else"}, {"iss": "newsroom-identity"}),
        ({"aud": "another-service"}, {"aud": "newsroom-notify"}),
    ],
    ids=["forged", "expired", "wrong-issuer", "wrong-audience"],
)
async def test_forged_expired_or_foreign_member_tokens_are_refused(
    api: SubscriptionApi,
    flaw: dict[str, Any],
    right: dict[str, Any],
    published: list[ev.CloudEvent],
) -> None:
    # Minted now, in the test: the token differs from an accepted one by this flaw alone, so
    # it is refused for the flaw (and not because it expired while other tests ran).
    accepted = await api.subscribe(mint("m-ana", **right), body(scope="replies"), "1.2.3.4")
    assert accepted.status == 202
    published.clear()
    with pytest.raises(ApiError) as error:
        await api.subscribe(mint("m-ana", **flaw), body(scope="replies"), "1.2.3.4")
    assert error.value.status == 401
    assert published == []


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer not.a.jwt"}],
)
async def test_other_schemes_and_non_tokens_are_refused(
    api: SubscriptionApi, headers: dict[str, str], published: list[ev.CloudEvent]
) -> None:
    with pytest.raises(ApiError) as error:
        await api.subscribe(headers, body(scope="replies"), "1.2.3.4")
    assert error.value.status == 401
    assert published == []


async def test_nobody_reads_or_changes_another_subscribers_data(
    api: SubscriptionApi, tokens: Tokens
) -> None:
    for call in (
        api.subscriptions("m-ana", bearer("m-ben"), {}),
        api.erase("m-ana", bearer("m-ben"), {}),
        api.cancel("m-ana", "replies", bearer("m-ben"), {}),
        api.subscriptions("m-ana", {}, {"token": tokens.manage("m-ben")}),
    ):
        with pytest.raises(ApiError) as error:
            await call
        assert error.value.status == 403
    with pytest.raises(ApiError) as error:
        await api.subscriptions("m-ana", {}, {})
    assert error.value.status == 401


async def test_list_my_subscriptions_with_a_bearer_or_a_manage_token(
    api: SubscriptionApi, tokens: Tokens
) -> None:
    for headers, query in ((bearer("m-ana"), {}), ({}, {"token": tokens.manage("m-ana")})):
        response = await api.subscriptions("m-ana", headers, query)
        assert response.status == 200
        assert orjson.loads(response.payload())["subscriptions"] == [
            {"scope": "replies", "target": None, "delivery": "instant", "active": True}
        ]


async def test_guest_subscription_asks_for_confirmation_with_a_repeatable_event_id(
    api: SubscriptionApi, published: list[ev.CloudEvent]
) -> None:
    # The per-address limit is the worker's (tests/unit/test_consent.py): one per process
    # here would multiply with replicas and be lost on restart.
    request = body(
        scope="replies", target="a-1", guest={"name": "Geoff", "email": "geoff@example.org"}
    )
    first = await api.subscribe({}, request, "1.1.1.1")
    assert orjson.loads(first.payload()) == {
        "status": "confirmation_requested",
        "subscriber_id": guest_subscriber_id("geoff@example.org"),
    }
    await api.subscribe({}, request, "2.2.2.2")  # the same request again: same event id
    assert published[0].id == published[1].id


async def test_per_ip_limit_and_window(api: SubscriptionApi, ticker: Ticker) -> None:
    for second in range(5):  # at 0, 1, 2, 3 and 4 s
        ticker.now = float(second)
        await api.subscribe(bearer("m-ana"), body(scope="replies"), "9.9.9.9")
    ticker.now = 10.0
    with pytest.raises(ApiError) as error:
        await api.subscribe(bearer("m-ana"), body(scope="replies"), "9.9.9.9")
    assert error.value.status == 429
    assert error.value.response().headers["Retry-After"] == "50"  # the 0 s request leaves at 60
    ticker.now = 60.0
    assert (await api.subscribe(bearer("m-ana"), body(scope="replies"), "9.9.9.9")).status == 202
    with pytest.raises(ApiError) as error:  # full again: the 1 s request leaves at 61
        await api.subscribe(bearer("m-ana"), body(scope="replies"), "9.9.9.9")
    assert error.value.response().headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"{not json", 400),
        (body(scope="everything"), 422),
        (body(scope="article"), 422),  # needs a target
        (body(scope="replies", extra="field"), 422),
        (body(scope="replies", guest={"name": "G", "email": "not-an-address"}), 422),
        (b"{" + b" " * 20_000 + b"}", 413),
    ],
)
async def test_invalid_requests_get_clear_problems_without_values(
    api: SubscriptionApi, payload: bytes, status: int
) -> None:
    with pytest.raises(ApiError) as error:
        await api.subscribe({}, payload, "1.2.3.4")
    problem = error.value.response()
    assert problem.status == status
    assert problem.content_type == "application/problem+json"
    assert orjson.loads(problem.payload())["status"] == status
    assert "not-an-address" not in problem.payload().decode()


async def _no_reads(_: str, __: str) -> SubscriberView:
    raise AssertionError("no read expected")


async def test_one_click_unsubscribe_per_rfc_8058(
    api: SubscriptionApi, tokens: Tokens, published: list[ev.CloudEvent]
) -> None:
    token = tokens.unsubscribe(TokenClaims("m-ana", "article", "a-1"))
    page = ReaderPages(api, _no_reads).unsubscribe_page({"token": token})
    assert page.status == 200
    assert "One-Click" in str(page.body)
    assert published == []  # the GET changes nothing
    with pytest.raises(ApiError):
        await api.unsubscribe({"token": token}, {})  # the body is required
    response = await api.unsubscribe({"token": token}, {"List-Unsubscribe": "One-Click"})
    assert response.status == 200
    await api.unsubscribe({"token": token}, {"List-Unsubscribe": "One-Click"})
    first, again = published
    assert isinstance(first, ev.SubscriptionCancelled)
    assert (first.data.subscriber_id, first.data.scope, first.data.target) == (
        "m-ana",
        "article",
        "a-1",
    )
    assert first.id == again.id  # idempotent


async def test_forged_unsubscribe_and_confirm_tokens_are_refused(api: SubscriptionApi) -> None:
    forged = Tokens(["attacker"], 3600, 3600)
    claims = TokenClaims("m-ana", "article", "a-1")
    with pytest.raises(ApiError) as error:
        await api.unsubscribe(
            {"token": forged.unsubscribe(claims)}, {"List-Unsubscribe": "One-Click"}
        )
    assert error.value.status == 400
    with pytest.raises(ApiError) as error:
        await api.confirm(body(token=forged.confirm(claims)), "1.2.3.4")
    assert error.value.status == 400


def test_client_ip_behind_trusted_proxies() -> None:
    # No proxy trusted: the connection's address, whatever the header claims.
    assert client_ip("10.0.0.7", "1.2.3.4", 0) == "10.0.0.7"
    # One ingress: it appended the real client; what the client wrote before it is ignored.
    assert client_ip("10.0.0.7", "6.6.6.6, 203.0.113.9", 1) == "203.0.113.9"
    # Two proxies (load balancer + ingress).
    assert client_ip("10.0.0.7", "6.6.6.6, 203.0.113.9, 10.1.0.2", 2) == "203.0.113.9"
    # Fewer entries than hops: the entry may be the client's own writing; never trusted.
    assert client_ip("10.0.0.7", "203.0.113.9", 3) == "10.0.0.7"
    assert client_ip("10.0.0.7", "6.6.6.6", 2) == "10.0.0.7"
    # An entry that is not an address: the connection's address.
    assert client_ip("10.0.0.7", "not-an-ip, 10.1.0.2", 2) == "10.0.0.7"
    assert client_ip(None, None, 1) == "unknown"
