"""One line for an event the demo publishes (what goes in). What comes out is rendered by the
one renderer of output events, ``newsroom_notify.contract.describe``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from newsroom_notify.contract import events as ev


def describe_input(event: ev.CloudEvent) -> str:
    data: Any = event.data
    kind = event.type.removeprefix("newsroom.")
    if isinstance(event, ev.CommentPosted):
        to = f" replying to {data.parent_id}" if data.parent_id else ""
        notify = escape(f" [notify of: {data.notify}]") if data.notify else ""
        return f'{kind}  {data.author.name}{to}: "{escape(data.text)}"{notify}'
    if isinstance(event, ev.ArticlePublished):
        return f'{kind}  "{data.title}" by {data.author.name}'
    if isinstance(event, ev.SubscriptionRequested):
        mode = data.delivery or "instant"
        return f"{kind}  {data.subscriber.name}: {data.scope} {data.target} ({mode})"
    if isinstance(event, ev.CommentModerated):
        return f"{kind}  {data.comment_id} marked {data.status}"
    if isinstance(event, ev.PreferencesUpdated):
        return f"{kind}  {data.subscriber_id}: digest {data.digest}"
    return f"{kind}  {event.id}"
