"""Issue 18 item 4: comment -> mail in the sink -> the mail's "Unsubscribe" link in Chromium ->
the page -> its button -> the next comment sends nothing; then the page's "Undo" -> the next
comment mails again."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import jwt
from playwright.sync_api import Page, expect

from tests.browser.conftest import IDENTITY_KEY, Stack, screenshot, text_of
from tests.builders import article, comment, member
from tests.integration.test_api import sentinel_for

ANA = member("m-ana", "Ana Lima", "ana.lima@example.org")
BEN = member("m-ben", "Ben Okoro")
WES = member("m-wes", "Wes Writer")


def bearer(sid: str, email: str) -> dict[str, str]:
    claims = {
        "sub": sid,
        "iss": "newsroom-identity",
        "aud": "newsroom-notify",
        "exp": int(time.time()) + 600,
        "name": sid,
        "email": email,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, IDENTITY_KEY, algorithm="HS256")}


def api(stack: Stack, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        stack.api_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={**headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def subscriptions(stack: Stack, sid: str, email: str) -> list[dict[str, Any]]:
    path = f"/v1/subscribers/{sid}/subscriptions"
    try:
        return list(api(stack, "GET", path, None, bearer(sid, email))["subscriptions"])
    except urllib.error.HTTPError as error:
        assert error.code == 404
        return []


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def now_comment(cid: str, author: dict[str, Any], text: str, parent: str | None = None) -> Any:
    return comment(cid, author, text, parent=parent, at=datetime.now(UTC))


def test_unsubscribe_from_a_mail_in_the_browser_then_undo(stack: Stack, page: Page) -> None:
    ana_address = "ana.lima@example.org"
    sentinel = sentinel_for("m-ana")  # shares Ana's partitions: heard after her
    sentinel_address = "sentinel@example.org"
    stack.publish(article("a-1"))
    api(
        stack,
        "POST",
        "/v1/subscriptions",
        {"scope": "replies", "target": "a-1"},
        bearer("m-ana", ana_address),
    )
    api(
        stack,
        "POST",
        "/v1/subscriptions",
        {"scope": "article", "target": "a-1", "delivery": "instant"},
        bearer(sentinel, sentinel_address),
    )
    wait_until(lambda: subscriptions(stack, "m-ana", ana_address), "Ana's subscription")
    wait_until(lambda: subscriptions(stack, sentinel, sentinel_address), "the sentinel's")

    # Ana comments, Ben replies: Ana gets a mail.
    stack.publish(
        now_comment("c1", ANA, "First!"), now_comment("c2", BEN, "Reply one", parent="c1")
    )
    mail = stack.wait_for_mail(ana_address)
    assert "Reply one" in text_of(mail)

    # She opens it and clicks "Unsubscribe": the page says what will stop; nothing changed yet.
    page.goto(stack.html_file(mail).as_uri())
    screenshot(page, "mail")
    page.get_by_role("link", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    expect(page.get_by_text("replies to your comments on a-1")).to_be_visible()
    screenshot(page, "unsubscribe")
    assert subscriptions(stack, "m-ana", ana_address) != []

    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("status")).to_contain_text("Done")
    screenshot(page, "unsubscribed")
    wait_until(lambda: subscriptions(stack, "m-ana", ana_address) == [], "the unsubscribe")

    # Ben replies again, then a sentinel comment: once the sentinel's mail is in, Ana's reply
    # was handled before it (same partitions, same order) and sent nothing.
    stack.publish(
        now_comment("c3", BEN, "Reply two", parent="c1"),
        now_comment("c-s1", WES, "Sentinel one"),
    )
    stack.wait_for_mail(sentinel_address, lambda m: "Sentinel one" in text_of(m))
    assert [m for m in stack.mails_to(ana_address) if "Reply two" in text_of(m)] == []
    assert len(stack.mails_to(ana_address)) == 1

    # She changes her mind: "Undo" on the same page brings the subscription back, no new
    # confirmation, with the delivery it had; the next reply mails her again.
    page.get_by_role("button", name="Undo").click()
    expect(page.get_by_role("status")).to_contain_text("Your subscription is back")
    screenshot(page, "undone")
    wait_until(
        lambda: (
            [
                (s["scope"], s["target"], s["delivery"], s["active"])
                for s in subscriptions(stack, "m-ana", ana_address)
            ]
            == [("replies", "a-1", "instant", True)]
        ),
        "the undo",
    )
    stack.publish(now_comment("c4", BEN, "Reply three", parent="c1"))
    again = stack.wait_for_mail(ana_address, lambda m: "Reply three" in text_of(m))
    assert "Reply two" not in text_of(again)
