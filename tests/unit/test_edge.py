"""Issue 15, the API's edge in isolation: the bounded per-IP limiter and its keys, member-token
claims, body media types, plain-text names, and the refusal of the dev-only keys."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from newsroom_notify.api.models import GuestIdentity, SubscribeRequest
from newsroom_notify.api.service import ApiError, SlidingWindow, SubscriptionApi, rate_key
from newsroom_notify.api.web import FORM_TYPES, JSON_TYPES, require_media_type
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.settings import (
    ApiSettings,
    DevKeysRefused,
    Settings,
    TokenSettings,
)

KEY = "identity-key-for-the-edge-tests-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ----------------------------------------------------------------------------- per-IP limiter


def test_the_limiter_remembers_at_most_max_keys_whatever_the_number_of_clients() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60.0, clock, max_keys=1_000)
    for n in range(20_000):
        assert window.allow(f"client-{n}")
        assert len(window.hits) <= 1_000
    assert len(window.hits) == 1_000


def test_a_busy_client_stays_limited_while_others_come_and_go() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60.0, clock, max_keys=100)
    assert [window.allow("busy") for _ in range(3)] == [True] * 3
    for n in range(99):  # the busy client stays among the most recently seen
        window.allow(f"other-{n}")
        assert not window.allow("busy")
    clock.now = 60.0
    assert window.allow("busy")  # its window has passed


def test_idle_clients_are_forgotten_once_their_window_has_passed() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60.0, clock, max_keys=1_000_000)
    for n in range(500):
        window.allow(f"client-{n}")
    clock.now = 61.0
    window.allow("late")
    assert list(window.hits) == ["late"]


def test_ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_by_the_ipv4() -> None:
    assert rate_key("2001:db8:1:2::1") == rate_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert rate_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("::ffff:203.0.113.9") == rate_key("203.0.113.9") == "203.0.113.9"
    assert rate_key("fe80::1%eth0") == "fe80::/64"
    assert rate_key("not an address") == rate_key("") == "unparsable"


# ----------------------------------------------------------------------------- member claims


def _api(published: list[ev.CloudEvent]) -> SubscriptionApi:
    async def publish(event: ev.CloudEvent) -> None:
        published.append(event)

    async def read_profile(_: str) -> Any:
        return None

    return SubscriptionApi(
        settings=ApiSettings(jwt_keys=[SecretStr(KEY)]),
        tokens=Tokens(["token-key"], 3600, 3600),
        publish=publish,
        read_profile=read_profile,
        clock=lambda: datetime(2026, 11, 30, 12, tzinfo=UTC),
    )


def _bearer(**claims: Any) -> dict[str, str]:
    payload = {
        "iss": "newsroom-identity",
        "aud": "newsroom-notify",
        "exp": int(time.time()) + 600,
        **claims,
    }
    return {"Authorization": "Bearer " + jwt.encode(payload, KEY, algorithm="HS256")}


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "m-1", "email": "not an address"},
        {"sub": "m-1", "name": "Ana\r\nBcc: x@example.org"},
        {"sub": "m-1", "name": ""},
        {"sub": "m-1", "name": ["Ana"]},
        {"sub": ""},
        {"sub": "m\x001"},
        {"sub": guest_subscriber_id("geoff@example.org")},
    ],
)
async def test_a_signed_token_whose_claims_are_not_a_members_is_401(
    claims: dict[str, Any],
) -> None:
    published: list[ev.CloudEvent] = []
    api = _api(published)
    answer = await _answer(api.subscribe(_bearer(**claims), b'{"scope": "replies"}', "192.0.2.1"))
    assert answer == 401
    assert published == []


async def _answer(call: Any) -> int:
    try:
        return int((await call).status)
    except ApiError as error:
        return error.status


async def test_a_valid_member_token_still_subscribes_with_its_name_and_address() -> None:
    published: list[ev.CloudEvent] = []
    api = _api(published)
    headers = _bearer(sub="m-ana", name="Ana Lima", email="ana@example.org")
    assert await _answer(api.subscribe(headers, b'{"scope": "replies"}', "192.0.2.1")) == 202
    (event,) = published
    assert isinstance(event, ev.SubscriptionRequested)
    assert event.data.subscriber.id == "m-ana"
    assert event.data.subscriber.name == "Ana Lima"


# ----------------------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_bodies_are_accepted(content_type: str) -> None:
    require_media_type(content_type, JSON_TYPES)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; b=x",
        "application/jsonp",
        "text/json",
    ],
)
def test_bodies_a_browser_sends_cross_site_get_415(content_type: str | None) -> None:
    with pytest.raises(ApiError) as refused:
        require_media_type(content_type, JSON_TYPES)
    assert refused.value.status == 415


def test_one_click_unsubscribe_takes_both_form_encodings_only() -> None:
    require_media_type("application/x-www-form-urlencoded", FORM_TYPES)
    require_media_type("multipart/form-data; boundary=x", FORM_TYPES)
    with pytest.raises(ApiError):
        require_media_type("text/plain", FORM_TYPES)


@pytest.mark.parametrize(
    "name", ["Geoff\r\nBcc: x@example.org", "Geoff\n", "Geoff\x00", "\u202eGeoff", "G\u2066x"]
)
def test_names_and_targets_with_control_or_bidi_characters_are_invalid(name: str) -> None:
    with pytest.raises(ValidationError):
        GuestIdentity(name=name, email="geoff@example.org")
    with pytest.raises(ValidationError):
        SubscribeRequest(scope="article", target=name)
    GuestIdentity(name="Geoff Roach-Ünal 李", email="geoff@example.org")  # plain text is fine


# ----------------------------------------------------------------------------- dev keys


def test_the_built_in_keys_are_refused_outside_dev_mode_naming_the_variables() -> None:
    with pytest.raises(DevKeysRefused) as refused:
        Settings().refuse_dev_keys()
    message = str(refused.value)
    assert "NEWSROOM_TOKENS__SECRET_KEYS" in message
    assert "NEWSROOM_API__JWT_KEYS" in message
    assert "NEWSROOM_DEV_MODE" in message
    assert "dev-only-change-me" not in message
    assert "dev-only-identity-key" not in message


def test_dev_mode_allows_them_and_own_keys_need_no_dev_mode() -> None:
    Settings(dev_mode=True).refuse_dev_keys()
    own = Settings(
        tokens=TokenSettings(secret_keys=[SecretStr("a-real-secret-0123456789abcdef")]),
        api=ApiSettings(jwt_keys=[SecretStr("another-real-secret-0123456789")]),
    )
    own.refuse_dev_keys()
    assert own.dev_key_settings() == []
    rotated = Settings(
        tokens=TokenSettings(
            secret_keys=[SecretStr("new-secret"), SecretStr("dev-only-change-me")]
        ),
        api=ApiSettings(jwt_keys=[SecretStr("another-real-secret-0123456789")]),
    )
    assert rotated.dev_key_settings() == ["NEWSROOM_TOKENS__SECRET_KEYS"]
