"""The composite keys of the stages' tables, in one place (a key built by hand in two places
is a lookup that silently misses when one of them changes).

Every key starts with the stage's own key (article id, followed entity, subscriber id) where
the table is kept by that stage, so a key's partition is its owner's.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime

import orjson

FOLLOWER_CHUNKS = 64  # digest followers of an article are split so one subscribe is O(N/64)
# The followers of a commenter, journalist or section are split by a hash of their id into
# this many chunk records, so a subscription, an unsubscription or an erasure rewrites one chunk
# (about N/4096 followers) and the entity's head, and a fan-out walks them a few chunks at a
# time. At the cap of 10 million (NEWSROOM_LIMITS__PUBLISHER_FOLLOWERS) a chunk holds about
# 2,450 followers: under 600 KB even with 200-character ids, below the record size limit.
# Changing it moves every follower to another chunk: it is part of the stored layout.
ENTITY_FOLLOWER_CHUNKS = 4096


def comment_key(article_id: str, comment_id: str) -> str:
    """threads ``comments``: a comment of an article."""
    return f"{article_id}/{comment_id}"


def member_key(article_id: str, subscriber_id: str) -> str:
    """threads ``authored`` and ``digest_members``: one person in one article's discussion."""
    return f"{article_id}|{subscriber_id}"


def chunk_key(article_id: str, schedule: str, subscriber_id: str) -> str:
    """threads ``digest_followers``: the follower chunk a digest-mode follower belongs to."""
    chunk = zlib.crc32(subscriber_id.encode("utf-8")) % FOLLOWER_CHUNKS
    return chunk_key_of(article_id, schedule, chunk)


def chunk_key_of(article_id: str, schedule: str, chunk: int) -> str:
    """threads ``digest_followers``: chunk number ``chunk`` of an article's followers on a
    schedule."""
    return f"{article_id}|{schedule}|{chunk}"


def follower_chunk(subscriber_id: str) -> int:
    """follows ``follower_chunks``: the number of the chunk a follower of an entity is kept in."""
    return zlib.crc32(subscriber_id.encode("utf-8")) % ENTITY_FOLLOWER_CHUNKS


def follower_chunk_key(entity: str, chunk: int) -> str:
    """follows ``follower_chunks``: chunk number ``chunk`` of an entity's followers."""
    return f"{entity}|{chunk}"


def activity_key(article_id: str, period_start: datetime) -> str:
    """threads ``activity``: an article's comments in the digest period starting then."""
    return f"{article_id}|{period_start.isoformat()}"


def fanout_key(entity: str, subject_key: str) -> str:
    """follows ``fanout``: who a followed entity's comment or article went to."""
    return fanout_prefix(entity) + subject_key


def fanout_prefix(entity: str) -> str:
    """The start of every ``fanout`` key of ``entity``."""
    return f"{entity}|"


def subscription_key(scope: str, target: str | None) -> str:
    """inbox: a subscription in a profile."""
    return f"{scope}|{target or ''}"


def contribution_key(article_id: str, period_end: datetime) -> str:
    """inbox: an article's activity for one period, as a digest buffer keys it."""
    return f"{article_id}|{period_end.isoformat()}"


def entity_key(scope: str, target: str) -> str:
    """follows: the stage key of a followable entity (``commenter:<id>``, ``journalist:<id>``,
    ``section:<name>``)."""
    return f"{scope}:{target}"


def sent_key(recipient_id: str, subject_key: str) -> str:
    """inbox ``sent``: what a recipient got for one subject: one small record each, so the cost
    of a notification does not grow with how many the recipient already got. JSON, because ids
    may contain any character (``auth0|abc``): no two (recipient, subject) pairs share a key."""
    both = recipient_id + subject_key
    if both.isascii() and "\x7f" not in both:  # one per notification: the fast way
        return orjson.dumps([recipient_id, subject_key]).decode("ascii")
    return _COMPACT.encode([recipient_id, subject_key])


# json.dumps's, built once (a hot path). It escapes every non-ASCII character and DEL (these
# keys are stored: their bytes cannot change); orjson writes the other strings the same.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def sent_prefix(recipient_id: str) -> str:
    """The start of every ``sent_key`` of this recipient, and of no other's."""
    return json.dumps([recipient_id], separators=(",", ":"))[:-1] + ","


def comment_subject(comment_id: str) -> str:
    """The subject key of a comment (what notifications, fan-out records and ``sent`` keys
    are about)."""
    return f"c:{comment_id}"


def article_subject(article_id: str) -> str:
    """The subject key of an article (a ``new_article`` notification)."""
    return f"a:{article_id}"


def confirm_subject(subscription: str, request_id: str) -> str:
    """The subject key of a confirmation mail: the subscription asked for, and the request."""
    return f"confirm:{subscription}:{request_id}"
