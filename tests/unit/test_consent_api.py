"""The API's side of consent and revocable links: what a link may do, what it publishes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import SecretStr

from newsroom_notify.api.service import ApiError, SubscriptionApi
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.identity import guest_subscriber_id
from newsroom_notify.domain.state import Profile
from newsroom_notify.domain.tokens import TokenClaims, Tokens
from newsroom_notify.settings import ApiSettings
from tests.unit.test_api import KEY_NEW, bearer

GEOFF_ID = guest_subscriber_id("geoff@example.org")
VERSION = 1_764_000_000_000


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(["token-key"], 3600, 3600, 600)


@pytest.fixture
def published() -> list[ev.CloudEvent]:
    return []


@pytest.fixture
def profiles() -> dict[str, Profile]:
    return {
        GEOFF_ID: Profile(
            id=GEOFF_ID, name="Geoff", guest=True, confirmed=True, token_version=VERSION
        )
    }


@pytest.fixture
def api(
    published: list[ev.CloudEvent], tokens: Tokens, profiles: dict[str, Profile]
) -> SubscriptionApi:
    async def publish(event: ev.CloudEvent) -> None:
        published.append(event)

    async def read_profile(sid: str) -> Profile | None:
        return profiles.get(sid)

    return SubscriptionApi(
        settings=ApiSettings(jwt_keys=[SecretStr(KEY_NEW)], per_ip_per_minute=3),
        tokens=tokens,
        publish=publish,
        read_profile=read_profile,
        clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC),
    )


async def test_a_revoked_manage_link_reads_nothing(
    api: SubscriptionApi, tokens: Tokens, profiles: dict[str, Profile]
) -> None:
    current = {"token": tokens.manage(GEOFF_ID, VERSION)}
    assert (await api.subscriptions(GEOFF_ID, {}, current)).status == 200
    old = {"token": tokens.manage(GEOFF_ID, VERSION - 1)}
    with pytest.raises(ApiError) as error:
        await api.subscriptions(GEOFF_ID, {}, old)
    assert error.value.status == 401
    del profiles[GEOFF_ID]  # erased: even the last version reads nothing
    with pytest.raises(ApiError) as error:
        await api.subscriptions(GEOFF_ID, {}, current)
    assert error.value.status == 401


async def test_writes_through_a_link_carry_its_version_for_the_worker_to_check(
    api: SubscriptionApi, tokens: Tokens, published: list[ev.CloudEvent]
) -> None:
    link = {"token": tokens.manage(GEOFF_ID, VERSION)}
    await api.cancel(GEOFF_ID, "article", {}, {**link, "target": "a-1"})
    await api.preferences(GEOFF_ID, {}, link, orjson.dumps({"digest": "weekly"}))
    await api.sign_out(GEOFF_ID, {}, link)
    unsubscribe = tokens.unsubscribe(TokenClaims(GEOFF_ID, "article", "a-1", VERSION))
    await api.unsubscribe({"token": unsubscribe}, {"List-Unsubscribe": "One-Click"})
    assert [getattr(e.data, "token_version", "absent") for e in published] == [VERSION] * 4
    assert isinstance(published[2], ev.SubscriberSignedOut)


async def test_a_members_login_erases_at_once_a_link_only_asks(
    api: SubscriptionApi, tokens: Tokens, published: list[ev.CloudEvent]
) -> None:
    answer = await api.erase(GEOFF_ID, {}, {"token": tokens.manage(GEOFF_ID, VERSION)})
    assert orjson.loads(answer.payload())["status"] == "confirmation_requested"
    answer = await api.erase("m-ana", bearer("m-ana"), {})
    assert orjson.loads(answer.payload())["status"] == "accepted"
    assert [type(e) for e in published] == [ev.ErasureRequested, ev.SubscriberErased]
    assert isinstance(published[0], ev.ErasureRequested)
    assert published[0].data.token_version == VERSION


async def test_erasure_by_address_answers_alike_and_is_limited_per_ip(
    api: SubscriptionApi, published: list[ev.CloudEvent]
) -> None:
    known = await api.request_erasure(orjson.dumps({"email": "geoff@example.org"}), "1.1.1.1")
    unknown = await api.request_erasure(orjson.dumps({"email": "nobody@example.org"}), "1.1.1.1")
    assert orjson.loads(known.payload())["status"] == "confirmation_requested"
    assert orjson.loads(unknown.payload())["status"] == "confirmation_requested"
    assert (known.status, unknown.status) == (202, 202)
    first = published[0]
    assert isinstance(first, ev.ErasureRequested)
    assert (first.data.subscriber_id, first.data.email) == (GEOFF_ID, "geoff@example.org")
    await api.request_erasure(orjson.dumps({"email": "x@example.org"}), "1.1.1.1")
    with pytest.raises(ApiError) as error:
        await api.request_erasure(orjson.dumps({"email": "y@example.org"}), "1.1.1.1")
    assert error.value.status == 429


async def test_only_an_erase_token_confirms_an_erasure(
    api: SubscriptionApi, tokens: Tokens, published: list[ev.CloudEvent]
) -> None:
    claims = TokenClaims(GEOFF_ID, "replies", None, VERSION, "req")
    for wrong in (tokens.manage(GEOFF_ID, VERSION), tokens.confirm(claims)):
        with pytest.raises(ApiError) as error:
            await api.confirm_erasure(orjson.dumps({"token": wrong}), "2.2.2.2")
        assert error.value.status == 400
    with pytest.raises(ApiError):
        await api.confirm(orjson.dumps({"token": tokens.erase(GEOFF_ID, VERSION)}), "2.2.2.2")
    await api.confirm_erasure(orjson.dumps({"token": tokens.erase(GEOFF_ID, VERSION)}), "3.3.3.3")
    (event,) = published
    assert isinstance(event, ev.ErasureConfirmed)
