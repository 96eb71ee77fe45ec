"""Events -> e-mail messages. Pure: no I/O, no clock (tests/unit/test_mailer_render.py).

Every value that reaches a header goes through ``header_text`` (control characters, CR/LF and
bidirectional overrides removed, whitespace collapsed, length capped) and then through the
``email`` package's header objects under ``email.policy.SMTP``, which fold and encode it: a
name or a title cannot add a header. The bodies come from Jinja2 templates with autoescaping on
for the HTML part; templates never see the headers. Links in a message are the event's own
http(s) URLs and the API's public URL with a token; anything else makes the event unsendable.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from newsroom_notify.contract import events as ev

ONE_CLICK = "List-Unsubscribe=One-Click"
"""The value of ``List-Unsubscribe-Post`` (RFC 8058)."""

_ENV = Environment(
    loader=PackageLoader("newsroom_notify.mailer", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
POLICY = SMTP.clone(max_line_length=998)
"""CRLF line ends; headers folded only past RFC 5322's hard limit, so that a long
``List-Unsubscribe`` URL stays a URL instead of becoming an RFC 2047 encoded word."""
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_HTTP_URL = re.compile(r"^https?://[^\s<>\"'\x00-\x1f\x7f]+$")
_SPACES = re.compile(r"\s+")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")

WHY = {
    "reply": "someone replied to your comment",
    "mention": "you were mentioned in a comment",
    "follow_up": "you asked to be notified of follow-up comments on this article",
    "followed_commenter": "you follow this commenter",
    "new_article": "you follow this journalist or section",
    "confirm_subscription": "someone asked to subscribe this address to a discussion",
    "confirm_erasure": "someone asked to erase the data kept for this address",
}
CONFIRM_PATHS = {
    "confirm_subscription": "/v1/confirm",
    "confirm_erasure": "/v1/erasure/confirm",
}
"""Where each confirmation request's token is used (the API's endpoints)."""


class Unsendable(Exception):
    """An event that can never become a mail. ``reason`` is safe to log (no values)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MailConfig:
    """What the rendering needs from the settings."""

    sender: str
    """The From address (also the SMTP envelope sender)."""
    sender_name: str
    public_url: str
    """The subscription API's public base URL (links and List-Unsubscribe)."""
    timezone: str = "UTC"
    """Time zone for dates in the messages (contract v1 events carry none per reader)."""
    language: str = "en"
    message_id_domain: str | None = None
    """Right-hand side of Message-ID (default: the sender's domain)."""

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise Unsendable(f"unknown time zone {self.timezone[:60]!r}") from exc


@dataclass(frozen=True)
class Mail:
    """A rendered message and the addresses of its SMTP envelope."""

    message: EmailMessage
    sender: str
    recipient: str
    message_id: str
    """The notification or digest id the Message-ID was made from."""


def header_text(value: str, limit: int = 200) -> str:
    """A value safe for a header: no control characters (CR, LF, NUL, ESC...), no bidi
    overrides, whitespace collapsed to single spaces, at most ``limit`` characters."""
    kept = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in value
        if ch not in _BIDI
    )
    flat = _SPACES.sub(" ", kept).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def message_id(event_id: str, config: MailConfig) -> str:
    """``<id@domain>`` from a notification or digest id; ids outside [A-Za-z0-9._-] refused."""
    if not _ID.match(event_id):
        raise Unsendable("id is not usable as a Message-ID (only letters, digits, . _ -)")
    domain = config.message_id_domain or config.sender.rsplit("@", 1)[-1]
    return f"<{event_id}@{domain}>"


def unsubscribe_url(token: str, config: MailConfig) -> str:
    """The API's one-click unsubscribe URL (GET: a page; POST: RFC 8058)."""
    return f"{_base(config)}/v1/unsubscribe?token={quote(token, safe='')}"


def manage_url(subscriber_id: str, token: str, config: MailConfig) -> str:
    """The subscriber's "manage my subscriptions" link (a manage token)."""
    sid = quote(subscriber_id, safe="")
    return f"{_base(config)}/v1/subscribers/{sid}/subscriptions?token={quote(token, safe='')}"


def confirm_url(token: str, config: MailConfig, reason: str = "confirm_subscription") -> str:
    """A confirmation link: the API's endpoint for the request's reason, with its token."""
    return f"{_base(config)}{CONFIRM_PATHS[reason]}?token={quote(token, safe='')}"


def _base(config: MailConfig) -> str:
    return config.public_url.rstrip("/")


def _link(url: str, what: str) -> str:
    if len(url) > 2048 or not _HTTP_URL.match(url):
        raise Unsendable(f"{what} is not an http(s) URL")
    return url


def _optional_link(url: str, what: str) -> str | None:
    """No link for an empty URL (a confirmation request is about no article page)."""
    return _link(url, what) if url else None


def _recipient(recipient: ev.Recipient) -> Address:
    if not recipient.email:
        raise Unsendable("recipient has no e-mail address")
    try:
        return Address(display_name=header_text(recipient.name, 100), addr_spec=recipient.email)
    except (ValueError, IndexError, HeaderParseError) as exc:  # CR/LF, junk around it
        raise Unsendable("recipient address is not a valid addr-spec") from exc


def _envelope(
    config: MailConfig, to: Address, subject: str, event_id: str, when: datetime
) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(
        display_name=header_text(config.sender_name, 100), addr_spec=config.sender
    )
    message["To"] = to
    message["Subject"] = header_text(subject, 200)
    message["Date"] = format_datetime(when.astimezone(config.zone()))
    message["Message-ID"] = message_id(event_id, config)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    return message


def _comment(ref: ev.CommentRef | None, what: str) -> dict[str, str] | None:
    if ref is None:
        return None
    return {
        "author_name": header_text(ref.author_name, 100),
        "excerpt": ref.excerpt,
        "url": _link(ref.url, f"{what}.url"),
    }


def _subject(data: ev.NotificationCreatedData) -> str:
    title = data.article.title
    author = data.comment.author_name if data.comment else ""
    return {
        "reply": f"{author} replied to your comment on “{title}”",
        "mention": f"{author} mentioned you on “{title}”",
        "follow_up": f"New comment on “{title}”",
        "followed_commenter": f"{author} commented on “{title}”",
        "new_article": f"New article: {title}",
        "confirm_subscription": "Please confirm your subscription",
        "confirm_erasure": "Please confirm the erasure of your data",
    }.get(data.reason, f"News about “{title}”")


def render_notification(event: ev.NotificationCreated, config: MailConfig) -> Mail:
    """A ``notification.created`` as a multipart/alternative mail (plain text + HTML)."""
    data = event.data
    to = _recipient(data.recipient)
    subject = header_text(_subject(data))
    # A request to confirm an erasure has no subscription to leave (and no unsubscribe token).
    unsubscribe = (
        unsubscribe_url(data.unsubscribe_token, config) if data.unsubscribe_token else None
    )
    message = _envelope(config, to, subject, data.notification_id, event.time)
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = ONE_CLICK
    confirming = data.reason in CONFIRM_PATHS
    if confirming and not data.confirm_token:
        raise Unsendable(f"{data.reason} without a confirm_token")
    context: dict[str, Any] = {
        "lang": config.language,
        "subject": subject,
        "name": header_text(data.recipient.name, 100),
        "headline": (data.article.title if confirming else subject) + ".",
        "article": {
            "title": data.article.title,
            "url": _optional_link(data.article.url, "article.url"),
        },
        "comment": _comment(data.comment, "comment"),
        "parent": _comment(data.parent, "parent"),
        "why": WHY.get(data.reason, "you subscribed to it"),
        "unsubscribe_url": unsubscribe,
        "manage_url": (
            manage_url(data.recipient.id, data.manage_token, config) if data.manage_token else None
        ),
        "confirm_url": (
            confirm_url(data.confirm_token, config, data.reason)
            if confirming and data.confirm_token
            else None
        ),
        "confirm_what": (
            "the erasure of your data" if data.reason == "confirm_erasure" else "your subscription"
        ),
    }
    _bodies(message, "notification", context)
    return Mail(message, config.sender, to.addr_spec, data.notification_id)


def _period(period: ev.Period, config: MailConfig) -> str:
    zone = config.zone()
    start, end = period.start.astimezone(zone), period.end.astimezone(zone)
    fmt = "%a %d %b %Y, %H:%M"
    return f"{start.strftime(fmt)} to {end.strftime(fmt)} ({config.timezone})"


def render_digest(event: ev.DigestReady, config: MailConfig) -> Mail:
    """A ``digest.ready`` as a multipart/alternative mail (plain text + HTML)."""
    data = event.data
    to = _recipient(data.recipient)
    total = data.total_comments
    noun = "comment" if total == 1 else "comments"
    subject = f"Your {data.period.frequency} digest: {total} new {noun}"
    unsubscribe = unsubscribe_url(data.unsubscribe_token, config)
    message = _envelope(config, to, subject, data.digest_id, event.time)
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = ONE_CLICK
    articles = [
        {
            "title": a.article.title,
            "url": _link(a.article.url, "article.url"),
            "new_article": a.new_article,
            "new_comments": a.new_comments,
            "comments": [_comment(item.comment, "comment") for item in a.items],
            "unsubscribe_url": (
                unsubscribe_url(a.unsubscribe_token, config) if a.unsubscribe_token else None
            ),
        }
        for a in data.articles
    ]
    context: dict[str, Any] = {
        "lang": config.language,
        "subject": subject,
        "name": header_text(data.recipient.name, 100),
        "headline": f"{total} new {noun} in the discussions you follow.",
        "period": _period(data.period, config),
        "frequency": data.period.frequency,
        "articles": articles,
        "unsubscribe_url": unsubscribe,
    }
    _bodies(message, "digest", context)
    return Mail(message, config.sender, to.addr_spec, data.digest_id)


def _bodies(message: EmailMessage, template: str, context: dict[str, Any]) -> None:
    text = _ENV.get_template(f"{template}.txt.j2").render(context)
    html = _ENV.get_template(f"{template}.html.j2").render(context)
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
