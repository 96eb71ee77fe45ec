"""One readable line for a record of an output topic, with why — never the e-mail address.

The one renderer of output events for people: ``newsroom-notify tail`` prints it after the
topic's name, the demo prints it with colours (``markup=True``: Rich console markup). The mail
a reader gets is rendered elsewhere (``mailer/render.py``, in the second person).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

DLT_CLASS = "newsroom.dlt.error.class"
DLT_MESSAGE = "newsroom.dlt.error.message"

WHY = {
    "reply": "someone replied to their comment",
    "mention": "they were @mentioned in a comment",
    "follow_up": 'they chose "Notify of: new follow-up comments" on this article',
    "followed_commenter": "they follow this commenter",
    "new_article": "they follow this journalist or section",
    "confirm_subscription": "a guest confirms by e-mail before getting anything (double opt-in)",
    "confirm_erasure": "erasing by e-mail link is confirmed by mail first",
}


def _plain(text: object) -> str:
    return str(text)


def _escaped(text: object) -> str:
    """Text that Rich prints as it is (a name like ``[bold]`` is not markup)."""
    return str(text).replace("\\", "\\\\").replace("[", "\\[")


def describe_output(event: Mapping[str, Any], *, markup: bool = False, ids: bool = True) -> str:
    """One line for an output event: what happened, to whom, and why (``ids``: with the
    recipient's, comment's and article's ids, as an operator wants them; the demo's story
    leaves them out)."""
    say = _escaped if markup else _plain

    def tag(word: str, style: str) -> str:
        return f"[{style}]{word}[/]" if markup else word

    data = event["data"]
    kind = event["type"]
    if kind == "newsroom.notification.created":
        recipient = data["recipient"]
        comment = data.get("comment") or {}
        about = f" about {say(comment['author_name'])}'s comment" if comment else ""
        who = say(recipient["name"])
        if ids:
            who += f" ({say(recipient['id'])})"
            about += f" {say(comment['id'])}" if comment else ""
            article = data.get("article") or {}
            about += f" on {say(article['id'])}" if article.get("id") else ""
        reason = data["reason"]
        return f"{tag('notify', 'bold green')} {who}{about} — {reason}: {WHY.get(reason, reason)}"
    if kind == "newsroom.notification.retracted":
        return (
            f"{tag('retract', 'bold red')} {say(data['notification_id'])} for "
            f"{say(data['recipient_id'])} — the comment was removed ({say(data['cause'])})"
        )
    if kind == "newsroom.digest.ready":
        articles = ", ".join(
            f"{say(a['article']['title'])} (+{a['new_comments']})" for a in data["articles"]
        )
        return (
            f"{tag('digest', 'bold blue')} for {say(data['recipient']['name'])} "
            f"({data['period']['frequency']}): {data['total_comments']} new comments — {articles}"
        )
    return f"{say(kind)} id={say(event.get('id'))}"


def describe_record(
    topic: str, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> str:
    """One line for a record read from an output topic or the dead-letter topic."""
    extra = dict(headers)
    if DLT_CLASS in extra:
        return (
            f"{topic}  DEAD LETTER {extra[DLT_CLASS].decode(errors='replace')}: "
            f"{extra.get(DLT_MESSAGE, b'').decode(errors='replace')}"
        )
    try:
        return f"{topic}  {describe_output(orjson.loads(value or b''))}"
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return f"{topic}  (unreadable record, key={key!r})"
