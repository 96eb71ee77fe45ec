"""Which handler of which stage a message goes to. Shared by the Faust shell and the
in-process ``LocalPipeline`` so both route exactly alike."""

from __future__ import annotations

from pydantic import BaseModel

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.follows import FollowsStage
from newsroom_notify.domain.inbox import InboxStage
from newsroom_notify.domain.messages import (
    Activity,
    Candidacy,
    Command,
    Contribution,
    DigestTick,
    Edit,
    Erase,
    FanoutMoved,
    FollowChange,
    FollowEnded,
    Forget,
    FormChoice,
    Gated,
    Participated,
    Release,
    Retraction,
)
from newsroom_notify.domain.outbox import Outbound
from newsroom_notify.domain.threads import ThreadsStage
from newsroom_notify.domain.tokens import Tokens


def threads_handle(stage: ThreadsStage, key: str, message: BaseModel) -> list[Outbound]:
    """Route an article/comment event or a thread command (key: article id)."""
    if isinstance(message, ev.ArticlePublished | ev.ArticleUpdated):
        return stage.on_article(message)
    if isinstance(message, ev.CommentPosted):
        return stage.on_comment_posted(message)
    if isinstance(message, ev.CommentModerated):
        return stage.on_moderated(message)
    if isinstance(message, ev.CommentEdited):
        return stage.on_edited(message)
    if isinstance(message, ev.CommentDeleted):
        return stage.on_deleted(message)
    if isinstance(message, FollowChange):
        return stage.on_follow_change(key, message)
    if isinstance(message, Erase):
        return stage.on_erase(key, message)
    if isinstance(message, DigestTick):
        return stage.on_tick(key)
    raise TypeError(f"threads stage cannot handle {type(message).__name__}")


def follows_handle(stage: FollowsStage, key: str, message: BaseModel) -> list[Outbound]:
    """Route a follows-stage message (key: followed entity)."""
    if isinstance(message, Activity):
        return stage.on_activity(key, message)
    if isinstance(message, FollowChange):
        return stage.on_follow_change(key, message)
    if isinstance(message, Erase):
        return stage.on_erase(key, message)
    if isinstance(message, FanoutMoved):
        return stage.on_fanout_moved(key, message)
    raise TypeError(f"follows stage cannot handle {type(message).__name__}")


def inbox_handle(
    stage: InboxStage, key: str, message: BaseModel, command: ev.CloudEvent | None = None
) -> list[Outbound]:
    """Route an inbox message (key: subscriber id). ``command`` is the decoded event of a
    ``Command``."""
    if isinstance(message, Candidacy):
        return stage.on_candidacy(message)
    if isinstance(message, Retraction):
        return stage.on_retraction(message)
    if isinstance(message, Edit):
        return stage.on_edit(message)
    if isinstance(message, FormChoice):
        return stage.on_form_choice(message)
    if isinstance(message, Participated):
        return stage.on_participated(message)
    if isinstance(message, Gated):
        return stage.on_gated(key, message)
    if isinstance(message, Release):
        return stage.on_release(message)
    if isinstance(message, Contribution):
        return stage.on_contribution(message)
    if isinstance(message, DigestTick):
        return stage.on_digest_tick(key)
    if isinstance(message, FollowEnded):
        return stage.on_follow_ended(message)
    if isinstance(message, Forget):
        return stage.on_forget(message)
    if isinstance(message, Command):
        if command is None:
            raise ValueError("a Command needs its decoded event")
        return stage.on_command(command, key)
    raise TypeError(f"inbox stage cannot handle {type(message).__name__}")


def command_key(event: ev.CloudEvent, tokens: Tokens) -> str:
    """The subscriber id a subscription command belongs to (the inbox key).

    For a confirmation (of a subscription or an erasure) it is inside the signed token,
    whatever key the record had; raises ``InvalidToken`` for a forged or expired one.
    """
    if isinstance(event, ev.SubscriptionConfirmed):
        return tokens.read_confirm(event.data.token).subscriber_id
    if isinstance(event, ev.ErasureConfirmed):
        return tokens.read_erase(event.data.token).subscriber_id
    key = event.partition_key()
    if key is None:
        raise ValueError(f"{event.type} has no subscriber key")
    return key
