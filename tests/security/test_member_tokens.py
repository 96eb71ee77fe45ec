"""Issue 15 item 7 (and item 2's id rule): member tokens whose claims are not a member's.

A JWT with a valid signature whose `email`, `name` or `sub` claim fails validation answered 500
(the claim reached the event model unchecked); a member `sub` of the guest form (`guest_...`)
was accepted as that guest. Both are 401 now, and nothing is published.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import jwt
import pytest

from newsroom_notify.contract.identity import guest_subscriber_id
from tests.security.conftest import IDENTITY_KEY, Stack, guest_subscribes


def token(**claims: Any) -> dict[str, str]:
    base = {"iss": "newsroom-identity", "aud": "newsroom-notify", "exp": int(time.time()) + 600}
    return {"Authorization": "Bearer " + jwt.encode({**base, **claims}, IDENTITY_KEY, "HS256")}


BAD_CLAIMS = {
    "email-not-an-address": {"sub": "m-bad-1", "email": "not an address"},
    "email-a-number": {"sub": "m-bad-2", "email": 42},
    "name-with-crlf": {"sub": "m-bad-3", "name": "Ana\r\nBcc: everyone@example.org"},
    "name-with-bidi-override": {"sub": "m-bad-4", "name": "\u202eelgoog"},
    "name-too-long": {"sub": "m-bad-5", "name": "x" * 5000},
    "name-an-object": {"sub": "m-bad-6", "name": {"first": "Ana"}},
    "sub-empty": {"sub": ""},
    "sub-with-newline": {"sub": "m-bad\n7"},
    "sub-too-long": {"sub": "m" * 1000},
}


@pytest.mark.parametrize("claims", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_a_signed_token_with_invalid_claims_gets_401_not_500(
    stack: Stack, claims: dict[str, Any]
) -> None:
    subscribe = stack.call(
        "POST", "/v1/subscriptions", body={"scope": "replies"}, headers=token(**claims)
    )
    assert subscribe.status == 401, subscribe.text
    assert subscribe.json()["title"] == "Unauthorized"
    sid = urllib.parse.quote(str(claims["sub"]) or "m-x", safe="")
    read = stack.call("GET", f"/v1/subscribers/{sid}/subscriptions", headers=token(**claims))
    assert read.status in (401, 404)  # 404: the path itself is not one (an empty id)
    assert read.status != 500


def test_a_member_token_naming_a_guest_id_cannot_act_as_that_guest(stack: Stack) -> None:
    email = "guest.victim.jwt@example.org"
    guest_subscribes(stack, email, "Guest Victim", "a-jwt-guest")
    guest_id = guest_subscriber_id(email)
    forged = token(sub=guest_id, name="Guest Victim")
    for method, path, body in [
        ("GET", f"/v1/subscribers/{guest_id}/subscriptions", None),
        ("PUT", f"/v1/subscribers/{guest_id}/preferences", {"paused": True}),
        ("DELETE", f"/v1/subscribers/{guest_id}/subscriptions/article?target=a-jwt-guest", None),
        ("DELETE", f"/v1/subscribers/{guest_id}", None),
        ("POST", "/v1/subscriptions", {"scope": "section", "target": "politics"}),
    ]:
        answer = stack.call(method, path, body=body, headers=forged)
        assert answer.status == 401, (method, path, answer.text)
    published = [event for _, event in stack.published("newsroom.subscriptions")]
    # Nothing changed the guest's record: no cancel, preferences or erasure for the guest id,
    # and no subscription with the guest id as a *member* id.
    assert [e["type"] for e in published if e["data"].get("subscriber_id") == guest_id] == []
    assert [
        e
        for e in published
        if e["type"] == "newsroom.subscription.requested"
        and e["data"]["subscriber"].get("id") == guest_id
    ] == []
