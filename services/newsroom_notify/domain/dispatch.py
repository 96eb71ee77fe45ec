"""The one router: which handler of which stage a message goes to, as a table, and ``deliver``,
used alike by the in-process ``LocalPipeline`` and the Faust shell (``stream/stages.py``).

A new message type gets one line in ``ROUTES``, nothing else: both pipelines route it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.intents import Intent, Stage, ToRecipients, ToStage
from newsroom_notify.domain.messages import (
    Activity,
    Candidacy,
    Command,
    CommenterFollowed,
    Contribution,
    DigestTick,
    Edit,
    Erase,
    FanoutMoved,
    FanoutStep,
    FollowChange,
    FollowEnded,
    Forget,
    ForgetParticipant,
    FormChoice,
    Gated,
    NoFollowers,
    Participated,
    Release,
    Retraction,
)
from newsroom_notify.domain.threads import ThreadsStage
from newsroom_notify.domain.tokens import Tokens


@dataclass(frozen=True)
class Stages:
    """The three stages of one pipeline (each over its own tables)."""

    threads: ThreadsStage
    follows: FollowsStage
    inbox: InboxStage


# A handler: the stages, the record's key (the stage's key: article id, entity, subscriber id)
# and the message; it returns what to send next.
Handler = Callable[[Stages, str, Any], list[Intent]]

THREADS, FOLLOWS, INBOX = Stage.THREADS, Stage.FOLLOWS, Stage.INBOX

ROUTES: dict[tuple[Stage, type[BaseModel]], Handler] = {
    # threads (key: article id): the contract's article and comment events, thread commands
    (THREADS, ev.ArticlePublished): lambda s, key, m: s.threads.on_article(m),
    (THREADS, ev.ArticleUpdated): lambda s, key, m: s.threads.on_article(m),
    (THREADS, ev.CommentPosted): lambda s, key, m: s.threads.on_comment_posted(m),
    (THREADS, ev.CommentModerated): lambda s, key, m: s.threads.on_moderated(m),
    (THREADS, ev.CommentEdited): lambda s, key, m: s.threads.on_edited(m),
    (THREADS, ev.CommentDeleted): lambda s, key, m: s.threads.on_deleted(m),
    (THREADS, FollowChange): lambda s, key, m: s.threads.on_follow_change(key, m),
    (THREADS, Erase): lambda s, key, m: s.threads.on_erase(key, m),
    (THREADS, ForgetParticipant): lambda s, key, m: s.threads.on_forget_participant(m),
    (THREADS, DigestTick): lambda s, key, m: s.threads.on_tick(key, m.at),
    (THREADS, NoFollowers): lambda s, key, m: s.threads.on_no_followers(m),
    (THREADS, CommenterFollowed): lambda s, key, m: s.threads.on_commenter_followed(m),
    # follows (key: followed entity)
    (FOLLOWS, Activity): lambda s, key, m: s.follows.on_activity(key, m),
    (FOLLOWS, FollowChange): lambda s, key, m: s.follows.on_follow_change(key, m),
    (FOLLOWS, Erase): lambda s, key, m: s.follows.on_erase(key, m),
    (FOLLOWS, FanoutMoved): lambda s, key, m: s.follows.on_fanout_moved(key, m),
    (FOLLOWS, FanoutStep): lambda s, key, m: s.follows.on_fanout_step(key, m),
    # inbox (key: subscriber id; a Gated's: its mailbox's quota key)
    (INBOX, Candidacy): lambda s, key, m: s.inbox.on_candidacy(m),
    (INBOX, Retraction): lambda s, key, m: s.inbox.on_retraction(m),
    (INBOX, Edit): lambda s, key, m: s.inbox.on_edit(m),
    (INBOX, FormChoice): lambda s, key, m: s.inbox.on_form_choice(m),
    (INBOX, Participated): lambda s, key, m: s.inbox.on_participated(m),
    (INBOX, Gated): lambda s, key, m: s.inbox.on_gated(key, m),
    (INBOX, Release): lambda s, key, m: s.inbox.on_release(m),
    (INBOX, Contribution): lambda s, key, m: s.inbox.on_contribution(m),
    (INBOX, DigestTick): lambda s, key, m: s.inbox.on_digest_tick(key, m.at),
    (INBOX, FollowEnded): lambda s, key, m: s.inbox.on_follow_ended(m),
    (INBOX, Forget): lambda s, key, m: s.inbox.on_forget(m),
    (INBOX, Command): lambda s, key, m: s.inbox.on_command(m),
}


def deliver(stages: Stages, stage: Stage, key: str, message: BaseModel) -> list[Intent]:
    """Hand ``message`` (a record of ``stage``'s topic, under ``key``) to its handler."""
    handler = ROUTES.get((stage, type(message)))
    if handler is None:
        raise TypeError(f"{stage} stage cannot handle {type(message).__name__}")
    return handler(stages, key, message)


def in_sending_order(intents: Sequence[Intent]) -> list[Intent]:
    """What a handler asked for, in the order it is sent (by the Faust shell and
    ``LocalPipeline`` alike): a fan-out's candidacies first (nothing the handler asks for must
    reach a recipient before their candidacy: an edit, a retraction after a fan-out step), then
    the rest in the handler's order, a fan-out's next step last (after the candidacies it
    follows)."""
    fans: list[Intent] = []
    rest: list[Intent] = []
    steps: list[Intent] = []
    for intent in intents:
        if isinstance(intent, ToRecipients):
            fans.append(intent)
        elif isinstance(intent, ToStage) and isinstance(intent.message, FanoutStep):
            steps.append(intent)
        else:
            rest.append(intent)
    if not fans and not steps:
        return list(intents)
    return [*fans, *rest, *steps]


def command(event: ev.CloudEvent, tokens: Tokens) -> Command:
    """A subscription event as the inbox's command, keyed by its subscriber.

    For a confirmation (of a subscription or an erasure) the subscriber is inside the signed
    token, whatever key the record had; raises ``InvalidToken`` for a forged or expired one.
    """
    if isinstance(event, ev.SubscriptionConfirmed):
        key = tokens.read_confirm(event.data.token).subscriber_id
    elif isinstance(event, ev.ErasureConfirmed):
        key = tokens.read_erase(event.data.token).subscriber_id
    else:
        found = event.partition_key()
        if found is None:
            raise ValueError(f"{event.type} has no subscriber key")
        key = found
    return Command(subscriber_id=key, event=event, at=event.time)
