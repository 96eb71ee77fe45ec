"""Issue 18: what a reader's mail client gets from a notification or a digest (pure rendering),
the mailer's memory of sent and retracted ids, and which SMTP failures are permanent."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage, Message
from email.policy import default
from typing import Any

import aiosmtplib
import orjson
import pytest

from newsroom_dev.samples import sample_events
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.contract.codec import Rejected
from newsroom_notify.mailer.consumer import Permanent, classify, smtp_sender
from newsroom_notify.mailer.ledger import Decision, Ledger
from newsroom_notify.mailer.render import (
    MailConfig,
    Unsendable,
    header_text,
    render_digest,
    render_notification,
)
from newsroom_notify.settings import Settings

CONFIG = MailConfig(
    sender="notifications@news.example.com",
    sender_name="The Daily Example",
    public_url="https://news.example.com/notify/",
)


def notification(**data: Any) -> ev.NotificationCreated:
    raw = sample_events()["newsroom.notification.created"]
    raw["data"].update(data)
    return ev.NotificationCreated.model_validate(raw)


def digest(**data: Any) -> ev.DigestReady:
    raw = sample_events()["newsroom.digest.ready"]
    raw["data"].update(data)
    return ev.DigestReady.model_validate(raw)


def wire(message: EmailMessage) -> Message:
    """The message as a receiving mail client parses it from the bytes sent."""
    return email.message_from_bytes(message.as_bytes(), policy=default)


def parts(message: Message) -> tuple[str, str]:
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_a_notification_is_a_multipart_mail_with_one_click_unsubscribe() -> None:
    event = notification(manage_token="mgmt.tok")
    mail = render_notification(event, CONFIG)
    got = wire(mail.message)
    assert got.get_content_type() == "multipart/alternative"
    assert str(got["To"]) == "Geoff Roach <geoff.roach@example.org>"
    assert str(got["From"]) == "The Daily Example <notifications@news.example.com>"
    assert got["Message-ID"] == "<n-5d1c0a6f9b2e4c7a8f3e@news.example.com>"
    token = event.data.unsubscribe_token
    assert got["List-Unsubscribe"] == (
        f"<https://news.example.com/notify/v1/unsubscribe?token={token}>"
    )
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Ana Lima replied to your comment" in str(got["Subject"])
    text, html = parts(got)
    manage = (
        "https://news.example.com/notify/v1/subscribers/guest_onbqi3yoqwo6fdoozjighifv23"
        "/subscriptions?token=mgmt.tok"
    )
    for body in (text, html):
        assert "@Geoff Roach the bus lanes stay" in body
        assert "So where do the buses go?" in body  # the comment replied to
        assert manage in body
        assert f"v1/unsubscribe?token={token}" in body
    assert (mail.sender, mail.recipient) == (
        "notifications@news.example.com",
        "geoff.roach@example.org",
    )


def test_names_and_titles_cannot_add_headers() -> None:
    hostile = "Eve\r\nBcc: victim@example.net\r\nX-Evil: 1"
    event = notification(
        recipient={"id": "m-1", "name": hostile, "email": "ana@example.org"},
        article={"id": "a-1", "title": "Title\nBcc: x@example.net", "url": "https://e.x/a"},
        comment={
            "id": "c-1",
            "author_name": "Mallory\r\nReply-To: m@evil.example",
            "excerpt": "hi",
            "url": "https://e.x/a#c-1",
        },
    )
    got = wire(render_notification(event, CONFIG).message)
    assert got["Bcc"] is None
    assert got["X-Evil"] is None
    assert got["Reply-To"] is None
    assert got.get_all("To") is not None
    assert len(got.get_all("To") or []) == 1
    assert "\n" not in str(got["Subject"])
    assert "\r" not in str(got["Subject"])
    assert "Mallory Reply-To: m@evil.example replied" in str(got["Subject"])


def test_html_is_escaped_and_script_links_are_refused() -> None:
    event = notification(
        comment={
            "id": "c-1",
            "author_name": "<b>Bob</b>",
            "excerpt": '<script>alert(1)</script> & "quotes"',
            "url": "https://e.x/a#c-1",
        }
    )
    _, html = parts(wire(render_notification(event, CONFIG).message))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Bob</b>" not in html
    assert "&lt;b&gt;Bob&lt;/b&gt;" in html
    js = notification(
        comment={"id": "c-1", "author_name": "B", "excerpt": "x", "url": "javascript:alert(1)"}
    )
    with pytest.raises(Unsendable, match=r"comment\.url is not an http\(s\) URL"):
        render_notification(js, CONFIG)


@pytest.mark.parametrize(
    "address",
    ["geoff@example.org\r\nBcc: x@example.net", "not an address", "a@b@c", "<a@example.org>"],
)
def test_an_address_that_is_not_one_is_unsendable(address: str) -> None:
    event = notification(recipient={"id": "m-1", "name": "A", "email": address})
    with pytest.raises(Unsendable, match="recipient address"):
        render_notification(event, CONFIG)


def test_no_address_and_odd_ids_are_unsendable() -> None:
    with pytest.raises(Unsendable, match="no e-mail address"):
        render_notification(notification(recipient={"id": "m", "name": "A", "email": None}), CONFIG)
    with pytest.raises(Unsendable, match="Message-ID"):
        render_notification(notification(notification_id="n-1>\r\nBcc: x"), CONFIG)


def test_a_guest_confirmation_links_to_the_confirm_endpoint() -> None:
    event = notification(reason="confirm_subscription", confirm_token="conf/tok+1", parent=None)
    text, html = parts(wire(render_notification(event, CONFIG).message))
    assert "https://news.example.com/notify/v1/confirm?token=conf%2Ftok%2B1" in text
    assert "confirm?token=conf%2Ftok%2B1" in html
    with pytest.raises(Unsendable, match="confirm_token"):
        render_notification(notification(reason="confirm_subscription"), CONFIG)


def test_a_confirmation_request_as_the_worker_builds_it_is_sendable() -> None:
    # The worker's confirm_subscription is about no article page: its article URL is empty.
    event = notification(
        reason="confirm_subscription",
        confirm_token="conf.tok",
        comment=None,
        parent=None,
        article={"id": "a-1", "title": "Confirm your replies subscription", "url": ""},
    )
    got = wire(render_notification(event, CONFIG).message)
    assert got["Subject"] == "Please confirm your subscription"
    text, html = parts(got)
    assert "Confirm your replies subscription." in text
    assert "v1/confirm?token=conf.tok" in html
    assert 'href=""' not in html
    other = notification(article={"id": "a-1", "title": "T", "url": ""})
    assert 'href=""' not in parts(wire(render_notification(other, CONFIG).message))[1]


def test_an_erasure_confirmation_links_to_the_erasure_endpoint_without_unsubscribe() -> None:
    # As the worker builds it: no article page, no unsubscribe token, the erasure token.
    event = notification(
        reason="confirm_erasure",
        confirm_token="erase.tok",
        unsubscribe_token="",
        manage_token=None,
        comment=None,
        parent=None,
        article={"id": "", "title": "Confirm the erasure of your data", "url": ""},
    )
    got = wire(render_notification(event, CONFIG).message)
    assert got["Subject"] == "Please confirm the erasure of your data"
    assert got["List-Unsubscribe"] is None
    assert got["List-Unsubscribe-Post"] is None
    text, html = parts(got)
    for body in (text, html):
        assert "https://news.example.com/notify/v1/erasure/confirm?token=erase.tok" in body
        assert "unsubscribe?token=" not in body
        assert "/v1/confirm?" not in body


def test_a_digest_shows_its_period_in_the_configured_time_zone() -> None:
    event = digest()
    berlin = MailConfig(**{**CONFIG.__dict__, "timezone": "Europe/Berlin"})
    got = wire(render_digest(event, berlin).message)
    assert got["Message-ID"] == "<d-0c3e9a1f2b7d4e6a@news.example.com>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(got["Subject"]) == "Your daily digest: 14 new comments"
    assert got["Date"] == "Sat, 28 Nov 2026 09:01:12 +0100"  # 08:01:12Z in Berlin
    text, html = parts(got)
    # 2026-11-27T07:00Z .. 2026-11-28T07:00Z is 08:00 .. 08:00 in Berlin (UTC+1 in November).
    assert "Fri 27 Nov 2026, 08:00 to Sat 28 Nov 2026, 08:00 (Europe/Berlin)" in text
    assert "City council votes to pedestrianise the old town" in html
    assert "14 new comments" in text


def test_header_text_drops_control_and_bidi_characters() -> None:
    # Control characters become spaces (then collapsed); bidi overrides go.
    assert header_text("a\r\nb\x00c\x1b[31m\u202eevil\u2066") == "a b c [31mevil"
    assert len(header_text("x" * 500, 50)) == 50


def test_the_mailer_decodes_the_output_topics_and_names_what_is_wrong() -> None:
    raw = sample_events()["newsroom.digest.ready"]
    key = raw["data"]["recipient"]["id"].encode()
    assert isinstance(codec.decode("digests", key, orjson.dumps(raw), 10_000), ev.DigestReady)
    del raw["data"]["digest_id"]
    with pytest.raises(Rejected, match=r"data\.digest_id: Field required"):
        codec.decode("digests", key, orjson.dumps(raw), 10_000)
    retract = sample_events()["newsroom.notification.retracted"]
    with pytest.raises(Rejected, match="key must be the recipient id"):
        codec.decode("notifications", b"someone-else", orjson.dumps(retract), 10_000)
    with pytest.raises(Rejected, match="not accepted on the notifications topic"):
        codec.decode(
            "notifications", key, orjson.dumps(sample_events()["newsroom.digest.ready"]), 10_000
        )


def test_the_ledger_skips_sent_and_retracted_ids_and_stays_bounded() -> None:
    ledger = Ledger(max_sent=3, max_retracted=2)
    assert ledger.decide("n-1", retractable=True) is Decision.SEND
    ledger.sent("n-1")
    assert ledger.decide("n-1", retractable=True) is Decision.DUPLICATE
    assert ledger.retract("n-1") is True  # already sent: counted, nothing to undo
    assert ledger.retract("n-2") is False
    assert ledger.decide("n-2", retractable=True) is Decision.RETRACTED
    assert ledger.decide("n-2", retractable=False) is Decision.SEND  # digests are not retracted
    for i in range(3, 10):
        ledger.sent(f"n-{i}")
        ledger.retract(f"r-{i}")
    assert ledger.sizes == (3, 2)
    assert ledger.decide("n-1", retractable=True) is Decision.SEND  # forgotten: oldest first
    assert ledger.decide("n-9", retractable=True) is Decision.DUPLICATE


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@x")]),
            True,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "busy", "a@x")]),
            False,
        ),
        (aiosmtplib.SMTPDataError(554, "content rejected"), True),
        (aiosmtplib.SMTPDataError(451, "try again later"), False),
        # The relay, the network or our credentials: another try or an operator can fix it.
        (aiosmtplib.SMTPSenderRefused(550, "sender refused", "n@x"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False),
        (aiosmtplib.SMTPConnectError("refused"), False),
        (aiosmtplib.SMTPServerDisconnected("gone"), False),
        (ConnectionResetError(), False),
        (TimeoutError(), False),
    ],
)
def test_only_a_refusal_of_this_mail_is_permanent(error: Exception, permanent: bool) -> None:
    assert isinstance(classify(error), Permanent) is permanent
    assert "@" not in str(classify(error))  # the reason goes to a dead letter: no address


# A real token's length (the compose run's guest tokens: ~150 characters), so the header is
# longer than the 78 characters SMTP's default policy folds at.
LONG_TOKEN = "WyJndWVzdF9vbmJxaTN5b3F3bzZmZG9vemppZ2hpZnYyMyIsInJlcGxpZXMiLCJhLXRyYW0tMjAy" * 2


def test_the_bytes_handed_to_smtp_keep_the_unsubscribe_url_as_a_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by make compose-test (Mailpit showed the raw header): aiosmtplib re-flattens an
    EmailMessage under email.policy.SMTP, folding a long List-Unsubscribe into RFC 2047 encoded
    words that no mail client reads as a URL. What goes on the wire keeps it on one line, and
    is 7-bit (a relay without 8BITMIME takes it as is)."""
    comment = sample_events()["newsroom.notification.created"]["data"]["comment"]
    comment["excerpt"] = "Ça « passe » ou pas, déjà"
    event = notification(unsubscribe_token=LONG_TOKEN, comment=comment)
    mail = render_notification(event, CONFIG)
    handed: list[Any] = []

    async def send(message: Any, **kwargs: Any) -> None:
        handed.append(message)
        assert kwargs["sender"] == mail.sender
        assert kwargs["recipients"] == [mail.recipient]

    monkeypatch.setattr(aiosmtplib, "send", send)
    asyncio.run(smtp_sender(Settings())(mail))
    (message,) = handed
    # aiosmtplib sends bytes as they are, and flattens a message object this way.
    raw = message if isinstance(message, bytes) else aiosmtplib.email.flatten_message(message)
    url = f"https://news.example.com/notify/v1/unsubscribe?token={LONG_TOKEN}"
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert max(raw) < 128
    got = email.message_from_bytes(raw, policy=default)
    text, _ = parts(got)
    assert "Ça « passe » ou pas, déjà" in text
