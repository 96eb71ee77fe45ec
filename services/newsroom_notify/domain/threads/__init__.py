"""The threads stage (keyed by article id), one module per capability:

* ``discussion``: the article, its comments and participants, the candidates of each approved
  comment (reply, mention, follow-up), moderation, edits, article follows and erasure;
* ``activity``: article digests (each comment counted once per slot, fanned out per schedule
  group and period);
* ``base``: the tables and how a comment is shown.
"""

from __future__ import annotations

from newsroom_notify.domain.threads.discussion import ThreadsStage

__all__ = ["ThreadsStage"]
