"""Issue 18 item 3: the reader pages under attack, over HTTP against the production-configured
stack (a real worker and the stand-alone API on the real broker).

A page's GET changes nothing; a page's form POST needs the CSRF token of that form, minted for
that very link token, and is refused when the browser says it comes from another site; one
reader's link never shows or changes another's data; an expired undo is refused; what a page
shows of a token's claims is escaped. Whatever a refused request could have caused would be on
the subscriptions topic: the API publishes before it answers.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from newsroom_notify.domain.tokens import UNDO, TokenClaims, Tokens
from tests.security.conftest import TOKEN_KEY, Answer, Stack, guest_subscribes

TOKENS = Tokens([TOKEN_KEY], 3600, 3600, 3600)
FORM = "application/x-www-form-urlencoded"
HTML = {"Accept": "text/html"}


def _mentions(stack: Stack, sid: str) -> bool:
    return any(
        sid in str(event) or sid.encode() == key
        for key, event in stack.published("newsroom.subscriptions")
    )


def post_form(stack: Stack, path: str, fields: dict[str, str], **headers: str) -> Answer:
    raw = urllib.parse.urlencode(fields).encode()
    return stack.call("POST", path, raw=raw, content_type=FORM, headers=headers)


def manage_form(sid: str, token: str, **extra: Any) -> dict[str, str]:
    return {"token": token, "action": "cancel_all", **extra}


def test_a_manager_form_without_or_with_a_wrong_csrf_token_is_refused(stack: Stack) -> None:
    sid = "m-pages-csrf"
    token = TOKENS.manage(sid)
    other = TOKENS.manage("m-pages-csrf-other")
    path = f"/v1/subscribers/{sid}/manage"
    for csrf in (
        None,  # a cross-site form knows no token
        "forged",
        TOKENS.form("manage", other),  # another reader's page's token
        TOKENS.form("undo", token),  # another form's token for this very link
        Tokens(["attacker-key"], 1, 1).form("manage", token),  # signed with another key
    ):
        fields = manage_form(sid, token, **({"csrf": csrf} if csrf else {}))
        answer = post_form(stack, path, fields)
        assert answer.status == 403, (csrf, answer.text)
        assert answer.headers["Content-Type"].startswith("text/html")
    # The right token, but the browser says the form was on another site.
    good = manage_form(sid, token, csrf=TOKENS.form("manage", token))
    assert post_form(stack, path, good, **{"Sec-Fetch-Site": "cross-site"}).status == 403
    assert post_form(stack, path, good, Origin="https://evil.example").status == 403
    assert not _mentions(stack, sid)


def test_page_gets_change_nothing(stack: Stack) -> None:
    sid = "m-pages-get"
    claims = TokenClaims(sid, "article", "a-get", 0, "req-1")
    for path in (
        f"/v1/unsubscribe?token={TOKENS.unsubscribe(claims)}",
        f"/v1/confirm?token={TOKENS.confirm(claims)}",
        f"/v1/erasure/confirm?token={TOKENS.erase(sid)}",
    ):
        answer = stack.call("GET", path, headers=HTML)
        assert answer.status == 200, (path, answer.text)
        assert '<form method="post"' in answer.text  # a button, not an action
    stack.call(
        "GET", f"/v1/subscribers/{sid}/subscriptions?token={TOKENS.manage(sid)}", headers=HTML
    )
    assert not _mentions(stack, sid)


def test_another_readers_manage_link_shows_and_changes_nothing(stack: Stack) -> None:
    victim, attacker = "m-pages-victim", "m-pages-attacker"
    token = TOKENS.manage(attacker)
    page = stack.call("GET", f"/v1/subscribers/{victim}/subscriptions?token={token}", headers=HTML)
    assert page.status == 403
    assert victim not in page.text
    fields = manage_form(victim, token, csrf=TOKENS.form("manage", token), action="erase")
    assert post_form(stack, f"/v1/subscribers/{victim}/manage", fields).status == 403
    assert not _mentions(stack, victim)


class _HourAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3600


def test_an_expired_undo_is_refused(stack: Stack) -> None:
    sid = "m-pages-undo"
    claims = TokenClaims(sid, "article", "a-undo", 0)
    # An undo token minted an hour ago (they live 15 minutes), with a valid CSRF token.
    expired = URLSafeTimedSerializer([TOKEN_KEY], salt=UNDO, signer=_HourAgo).dumps(
        [sid, "article", "a-undo", 0, None]
    )
    fields = {"undo": str(expired), "csrf": TOKENS.form("undo", str(expired))}
    answer = post_form(stack, "/v1/unsubscribe/undo", fields)
    assert answer.status == 400
    assert "expired" in answer.text
    # A fresh one is accepted (so the refusal above was the age).
    fresh = TOKENS.undo(claims)
    fields = {"undo": fresh, "csrf": TOKENS.form("undo", fresh)}
    assert post_form(stack, "/v1/unsubscribe/undo", fields).status == 200
    (restore,) = [e for _, e in stack.published("newsroom.subscriptions") if sid in str(e)]
    assert restore["type"] == "newsroom.subscription.restored"


def test_markup_in_what_a_page_shows_is_escaped(stack: Stack) -> None:
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>"'
    claims = TokenClaims("m-pages-xss", "article", evil, 0, "req-x")
    for path in (
        f"/v1/unsubscribe?token={TOKENS.unsubscribe(claims)}",
        f"/v1/confirm?token={TOKENS.confirm(claims)}",
    ):
        answer = stack.call("GET", path, headers=HTML)
        assert answer.status == 200
        assert "<script>" not in answer.text
        assert "<img" not in answer.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_pages_carry_a_strict_policy_and_load_nothing_from_elsewhere(stack: Stack) -> None:
    claims = TokenClaims("m-pages-csp", "article", "a-csp", 0)
    answer = stack.call("GET", f"/v1/unsubscribe?token={TOKENS.unsubscribe(claims)}")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert "form-action 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "http://" not in answer.text
    assert "https://" not in answer.text
    assert " style=" not in answer.text
    assert "<script" not in answer.text
    css = stack.call("GET", "/v1/pages.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")


def test_rfc_8058_one_click_stays_token_only(stack: Stack) -> None:
    """A mail client's one-click POST has no CSRF token and no page: still accepted."""
    sid = "m-pages-oneclick"
    token = TOKENS.unsubscribe(TokenClaims(sid, "article", "a-1c", 0))
    answer = post_form(stack, f"/v1/unsubscribe?token={token}", {"List-Unsubscribe": "One-Click"})
    assert answer.status == 200
    assert answer.json() == {"status": "unsubscribed", "subscriber_id": sid}


def _deliveries(stack: Stack, sid: str, token: str) -> dict[str, tuple[str, bool]]:
    answer = stack.call("GET", f"/v1/subscribers/{sid}/subscriptions?token={token}")
    if answer.status != 200:
        return {}
    return {
        f"{s['scope']}|{s['target']}": (s["delivery"], s["active"])
        for s in answer.json()["subscriptions"]
    }


def _until_delivery(stack: Stack, sid: str, token: str, delivery: str) -> None:
    """Poll the JSON read-back until the one subscription has this delivery (no fixed sleep)."""
    wanted = {"article|a-delivery": (delivery, True)}
    deadline = time.monotonic() + 60
    while (seen := _deliveries(stack, sid, token)) != wanted:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)


def test_the_manager_changes_a_subscription_s_delivery_and_another_reader_s_link_cannot(
    stack: Stack,
) -> None:
    # A guest follows an article (digest: the default of article follows) and confirms.
    request = guest_subscribes(stack, "delivery.holder@example.org", "Holder", "a-delivery")
    data = request["data"]
    sid, token = data["recipient"]["id"], data["manage_token"]
    confirmed = stack.call("POST", "/v1/confirm", body={"token": data["confirm_token"]})
    assert confirmed.status == 202, confirmed.text
    _until_delivery(stack, sid, token, "digest")
    put = f"/v1/subscribers/{sid}/subscriptions/article"
    instant = {"target": "a-delivery", "delivery": "instant"}

    # Another reader's manage link: refused by the JSON API and by the page, nothing published.
    other = TOKENS.manage("m-delivery-other")
    assert stack.call("PUT", f"{put}?token={other}", body=instant).status == 403
    fields = {
        "token": other,
        "csrf": TOKENS.form("manage", other),
        "action": "delivery",
        "scope": "article",
        "target": "a-delivery",
        "delivery": "instant",
    }
    assert post_form(stack, f"/v1/subscribers/{sid}/manage", fields).status == 403
    changes = [
        e
        for _, e in stack.published("newsroom.subscriptions")
        if e["type"] == "newsroom.subscription.delivery_changed"
    ]
    assert [e for e in changes if e["data"]["subscriber_id"] == sid] == []
    # Invalid changes are refused.
    assert stack.call("PUT", f"{put}?token={token}", body={"delivery": "weekly"}).status == 422
    digest_scope = f"/v1/subscribers/{sid}/subscriptions/digest?token={token}"
    assert stack.call("PUT", digest_scope, body=instant).status == 422

    # The holder's page: the button, then the change in the JSON read-back.
    page = stack.call("GET", f"/v1/subscribers/{sid}/subscriptions?token={token}", headers=HTML)
    assert "Get these as they happen" in page.text
    fields = {**fields, "token": token, "csrf": TOKENS.form("manage", token)}
    answer = post_form(stack, f"/v1/subscribers/{sid}/manage", fields)
    # urllib follows the 303 back to the manager's URL (read as JSON: no Accept: text/html).
    assert answer.status == 200, answer.text
    _until_delivery(stack, sid, token, "instant")
    page = stack.call("GET", f"/v1/subscribers/{sid}/subscriptions?token={token}", headers=HTML)
    assert "Get these in the digest" in page.text

    # And back through the JSON API.
    back = {"target": "a-delivery", "delivery": "digest"}
    assert stack.call("PUT", f"{put}?token={token}", body=back).status == 202
    _until_delivery(stack, sid, token, "digest")
    # No new confirmation mail was asked for: still the one of the subscription.
    confirms = [
        e
        for _, e in stack.published("newsroom.notifications")
        if e.get("data", {}).get("reason") == "confirm_subscription"
        and e["data"]["recipient"]["id"] == sid
    ]
    assert len(confirms) == 1
