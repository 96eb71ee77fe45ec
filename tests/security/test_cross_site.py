"""Issue 15 item 3 (HTTP) and table row 5: cross-site posts.

Row 5 as written: the guest subscribe with `Content-Type: text/plain` (what a cross-site form or
a no-preflight `fetch` sends) answered 202, so any web page could make its visitors' browsers
subscribe addresses. Every JSON endpoint now answers 415 to a body a browser can send
cross-site without a CORS preflight (text/plain, a form), and publishes nothing.
"""

from __future__ import annotations

import pytest

from newsroom_notify.contract.identity import guest_subscriber_id
from tests.security.conftest import Stack

SIMPLE_TYPES = [
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
]


def _mentions(stack: Stack, text: str) -> bool:
    return any(
        text in str(event) or text.encode() == key
        for key, event in stack.published("newsroom.subscriptions")
    )


@pytest.mark.parametrize(("n", "content_type"), enumerate([*SIMPLE_TYPES, None]))
def test_a_cross_site_subscribe_is_refused_and_publishes_nothing(
    stack: Stack, n: int, content_type: str | None
) -> None:
    email = f"cross.site.{n}@example.org"
    body = (
        b'{"scope": "section", "target": "politics", "delivery": "instant", '
        b'"guest": {"name": "Victim", "email": "' + email.encode() + b'"}}'
    )
    answer = stack.call("POST", "/v1/subscriptions", raw=body, content_type=content_type)
    assert answer.status == 415
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert not _mentions(stack, guest_subscriber_id(email))


def test_the_other_json_endpoints_refuse_simple_bodies_too(stack: Stack) -> None:
    for content_type in SIMPLE_TYPES:
        confirm = stack.call("POST", "/v1/confirm", raw=b'{"token":"x"}', content_type=content_type)
        # A form is the reader page's (issue 18): refused without the page's CSRF token.
        assert confirm.status == (403 if "form" in content_type else 415)
        prefs = stack.call(
            "PUT",
            "/v1/subscribers/m-somebody/preferences?token=x",
            raw=b'{"paused": true}',
            content_type=content_type,
        )
        assert prefs.status == 415


def test_one_click_unsubscribe_takes_a_form_and_nothing_else(stack: Stack) -> None:
    """RFC 8058: the mail client posts `List-Unsubscribe=One-Click` as a form; that is the one
    place a form is accepted. A text/plain or JSON body is refused before the token is read."""
    path = "/v1/unsubscribe?token=forged"
    form = stack.call(
        "POST",
        path,
        raw=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert form.status == 400  # accepted as a form, then the forged token is refused
    for content_type in ("text/plain", "application/json"):
        answer = stack.call(
            "POST", path, raw=b"List-Unsubscribe=One-Click", content_type=content_type
        )
        assert answer.status == 415
