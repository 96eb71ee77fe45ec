"""IDOR on every subscriber route: another subscriber's id with my credential, a forged or
tampered credential, or none. Each is refused, and nothing is published for the victim."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.security.conftest import IDENTITY_KEY, Stack, guest_subscribes

VICTIM = "m-idor-victim"


def member(sub: str) -> dict[str, str]:
    claims = {
        "sub": sub,
        "iss": "newsroom-identity",
        "aud": "newsroom-notify",
        "exp": int(time.time()) + 600,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, IDENTITY_KEY, "HS256")}


def routes(sid: str) -> list[tuple[str, str, Any]]:
    """Every route that acts on a subscriber, for subscriber ``sid``."""
    return [
        ("GET", f"/v1/subscribers/{sid}/subscriptions", None),
        ("DELETE", f"/v1/subscribers/{sid}/subscriptions/article?target=a-idor", None),
        (
            "PUT",
            f"/v1/subscribers/{sid}/subscriptions/article",
            {"target": "a-idor", "delivery": "digest"},
        ),
        ("PUT", f"/v1/subscribers/{sid}/preferences", {"paused": True}),
        ("DELETE", f"/v1/subscribers/{sid}", None),
        ("POST", f"/v1/subscribers/{sid}/sign-out", None),  # would revoke the victim's links
    ]


def _with_query(path: str, token: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}token={token}"


@pytest.fixture(scope="module")
def attacker_tokens(stack: Stack) -> dict[str, str]:
    """Real tokens of the attacker's own (guest) subscription: manage, unsubscribe, confirm."""
    data = guest_subscribes(stack, "idor.attacker@example.org", "Attacker", "a-idor")["data"]
    return {k: str(data[f"{k}_token"]) for k in ("manage", "unsubscribe", "confirm")}


def _victim_events(stack: Stack) -> list[str]:
    return [
        event["type"]
        for _, event in stack.published("newsroom.subscriptions")
        if event["data"].get("subscriber_id") == VICTIM
    ]


def test_another_members_token_is_forbidden_on_every_route(stack: Stack) -> None:
    for method, path, body in routes(VICTIM):
        answer = stack.call(method, path, body=body, headers=member("m-idor-attacker"))
        assert answer.status == 403, (method, path)
    assert _victim_events(stack) == []


def test_my_manage_token_does_not_open_someone_elses_record(
    stack: Stack, attacker_tokens: dict[str, str]
) -> None:
    for method, path, body in routes(VICTIM):
        answer = stack.call(method, _with_query(path, attacker_tokens["manage"]), body=body)
        assert answer.status == 403, (method, path)
    assert _victim_events(stack) == []


def test_no_forged_tampered_or_cross_purpose_token_opens_a_record(
    stack: Stack, attacker_tokens: dict[str, str]
) -> None:
    payload, _, signature = attacker_tokens["manage"].rpartition(".")
    tampered = payload + "." + signature[::-1]
    other_key = {
        "Authorization": "Bearer "
        + jwt.encode(
            {"sub": VICTIM, "iss": "newsroom-identity", "aud": "newsroom-notify", "exp": 2**31},
            "not-the-identity-key-0123456789abcdef",
            "HS256",
        )
    }
    none_alg = {
        "Authorization": "Bearer "
        + jwt.encode({"sub": VICTIM, "iss": "newsroom-identity", "exp": 2**31}, "", "none")
    }
    for method, path, body in routes(VICTIM):
        assert stack.call(method, path, body=body).status == 401  # no credential
        # Tampered, garbage, and the unsubscribe and confirm tokens replayed as manage tokens
        # (a token is good for its own purpose only).
        for token in (
            tampered,
            "garbage",
            attacker_tokens["unsubscribe"],
            attacker_tokens["confirm"],
        ):
            status = stack.call(method, _with_query(path, token), body=body).status
            assert status == 401, (method, path, token)
        for headers in (other_key, none_alg, {"Authorization": "Basic dmljdGltOng="}):
            assert stack.call(method, path, body=body, headers=headers).status == 401
    assert _victim_events(stack) == []
