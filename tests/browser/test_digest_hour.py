"""Issue 18 item 4: the manager page changes the digest hour, and the next digest arrives at
that hour. The worker's and the API's clock runs 600x (an hour in six seconds) from the start
of the test (``NEWSROOM_DIGEST__CLOCK_SPEED``/``__CLOCK_ANCHOR``, as in the digest tests)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from newsroom_notify.clock import Clock
from newsroom_notify.contract.identity import guest_subscriber_id
from tests.browser.conftest import Stack, running_stack, screenshot, text_of
from tests.browser.test_confirm_and_manage import read, wait_until
from tests.builders import article, comment, member

SPEED = 600
ZONE = "Asia/Tokyo"
GEOFF = "geoff.digest@example.org"
BEN = member("m-ben", "Ben Okoro")
DEFAULT_HOUR_IN_ZONE = 17  # the default digest hour, 08:00 UTC, in Tokyo
PERIOD_END = re.compile(r"to \w{3} (\d{2} \w{3} \d{4}, \d{2}:\d{2}) \(UTC\)")


@pytest.fixture
def clock() -> Clock:
    return Clock(SPEED, datetime.now(UTC))


@pytest.fixture
def fast_stack(kafka_bootstrap: str, tmp_path: Path, clock: Clock) -> Iterator[Stack]:
    assert clock.anchor is not None
    extra = {
        "NEWSROOM_DIGEST__CLOCK_SPEED": str(SPEED),
        "NEWSROOM_DIGEST__CLOCK_ANCHOR": clock.anchor.isoformat(),
        "NEWSROOM_DIGEST__TICK_S": "0.25",
        "NEWSROOM_DIGEST__GRACE_S": "600",  # ten virtual minutes after the period's end
    }
    with running_stack(kafka_bootstrap, tmp_path, extra) as stack:
        yield stack


def post(stack: Stack, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        stack.api_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202


def test_the_digest_hour_set_on_the_manager_page_is_when_the_digest_comes(
    fast_stack: Stack, page: Page, clock: Clock
) -> None:
    stack = fast_stack
    stack.publish(article("a-d"))
    guest = {"name": "Geoff Roach", "email": GEOFF}
    post(
        stack,
        "/v1/subscriptions",
        {"scope": "article", "target": "a-d", "delivery": "digest", "guest": guest},
    )
    request = stack.wait_for_mail(GEOFF)
    token = re.search(r"/v1/confirm\?token=(\S+)", text_of(request))
    assert token is not None
    post(stack, "/v1/confirm", {"token": token.group(1)})

    page.goto(stack.html_file(request).as_uri())
    manage_url = page.get_by_role("link", name="Manage your subscriptions").get_attribute("href")
    assert manage_url is not None
    assert guest_subscriber_id(GEOFF) in manage_url
    wait_until(
        lambda: [s["active"] for s in read(stack, manage_url)["subscriptions"]] == [True],
        "the confirmation",
    )

    # Four virtual hours from now, in Tokyo: the hour she picks on the manager page.
    hour = (clock().astimezone(ZoneInfo(ZONE)) + timedelta(hours=4)).hour
    if hour == DEFAULT_HOUR_IN_ZONE:
        hour = (hour + 1) % 24  # a change the digest can only follow if it was saved
    page.goto(manage_url)
    page.get_by_label("Digest frequency").select_option("daily")
    page.get_by_label("Digest hour").select_option(str(hour))
    page.get_by_label("Time zone").fill(ZONE)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    wait_until(
        lambda: (
            (
                read(stack, manage_url)["preferences"]["digest_hour"],
                read(stack, manage_url)["preferences"]["timezone"],
            )
            == (hour, ZONE)
        ),
        "the new digest hour",
    )

    # Ben comments; the digest holding it comes at that hour, Tokyo time (the mail's period
    # is printed in UTC, the mailer's zone; its Date is when the digest was cut).
    stack.publish(comment("c-d", BEN, "Worth waiting for", aid="a-d", at=clock()))
    digest = stack.wait_for_mail(GEOFF, lambda m: "digest" in str(m["Subject"]), timeout=150)
    text = text_of(digest)
    assert "Worth waiting for" in text
    found = PERIOD_END.search(text)
    assert found is not None, text
    end = datetime.strptime(found.group(1), "%d %b %Y, %H:%M").replace(tzinfo=UTC)
    local_end = end.astimezone(ZoneInfo(ZONE))
    assert (local_end.hour, local_end.minute) == (hour, 0)
    sent = parsedate_to_datetime(str(digest["Date"])).astimezone(ZoneInfo(ZONE))
    assert sent.hour == hour  # cut in that hour, ten virtual minutes after it began
    page.goto(stack.html_file(digest).as_uri())
    screenshot(page, "digest-mail")
