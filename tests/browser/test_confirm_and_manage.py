"""Issue 18 item 4: a guest's confirmation page and the subscription manager, in Chromium,
reached from the mails in the SMTP sink."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect

from newsroom_notify.contract.identity import guest_subscriber_id
from tests.browser.conftest import Stack, screenshot, text_of
from tests.builders import article

GEOFF = "geoff.roach@example.org"
GEOFF_ID = guest_subscriber_id(GEOFF)


def read(stack: Stack, manage_url: str) -> dict[str, Any]:
    """The guest's state as the JSON API shows it to the manage link."""
    parts = urllib.parse.urlsplit(manage_url)
    with urllib.request.urlopen(f"{stack.api_url}{parts.path}?{parts.query}", timeout=10) as r:
        return dict(json.loads(r.read()))


def wait_until(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_guest_confirms_then_manages_in_the_browser(stack: Stack, page: Page) -> None:
    stack.publish(article("a-7"))
    request = urllib.request.Request(
        stack.api_url + "/v1/subscriptions",
        data=json.dumps(
            {
                "scope": "article",
                "target": "a-7",
                "delivery": "digest",
                "guest": {"name": "Geoff <b>Roach</b>", "email": GEOFF},
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202
    mail = stack.wait_for_mail(GEOFF)
    assert "confirm" in str(mail["Subject"]).lower()

    # The mail's confirm link: a page that shows what will be confirmed; the GET confirms
    # nothing (a link scanner fetching it changes nothing).
    page.goto(stack.html_file(mail).as_uri())
    manage_url = page.get_by_role("link", name="Manage your subscriptions").get_attribute("href")
    assert manage_url is not None
    page.get_by_role("link", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    expect(page.get_by_text("new comments on the article a-7")).to_be_visible()
    screenshot(page, "confirm")
    page.reload()  # a second GET, like a scanner's prefetch
    assert [s["active"] for s in read(stack, manage_url)["subscriptions"]] == [False]

    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("Thank you")
    screenshot(page, "confirmed")
    wait_until(
        lambda: (
            [(s["scope"], s["active"]) for s in read(stack, manage_url)["subscriptions"]]
            == [("article", True)]
        ),
        "the confirmation",
    )

    # The manager, from the mail's manage link: the subscription, a digest hour and zone.
    page.goto(manage_url)
    expect(page.get_by_role("heading", name="Your subscriptions")).to_be_visible()
    expect(page.get_by_text("New comments on the article a-7")).to_be_visible()
    expect(page.get_by_text("in a digest")).to_be_visible()
    screenshot(page, "manage")
    page.get_by_label("Digest hour").select_option("17")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    wait_until(
        lambda: (
            (
                read(stack, manage_url)["preferences"]["digest_hour"],
                read(stack, manage_url)["preferences"]["timezone"],
            )
            == (17, "Europe/Berlin")
        ),
        "the new digest hour",
    )
    page.reload()
    expect(page.get_by_label("Digest hour")).to_have_value("17")
    screenshot(page, "manage-saved")

    # Mute the article from its row, then erase: erasure asks for a confirmation by mail.
    page.get_by_role("button", name="Mute article a-7").click()
    wait_until(
        lambda: read(stack, manage_url)["preferences"]["muted_articles"] == ["a-7"], "the mute"
    )
    page.get_by_role("button", name="Erase everything you know about me").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    erasure = stack.wait_for_mail(GEOFF, lambda m: "eras" in text_of(m).lower())
    page.goto(stack.html_file(erasure).as_uri())
    page.get_by_role("link", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("heading", name="Erase your data")).to_be_visible()
    screenshot(page, "erase")
    page.get_by_role("button", name="Erase my data").click()
    expect(page.get_by_role("status")).to_contain_text("erased")

    def gone() -> bool:
        try:
            read(stack, manage_url)
        except urllib.error.HTTPError as error:
            return error.code in (401, 404)
        return False

    wait_until(gone, "the erasure")
