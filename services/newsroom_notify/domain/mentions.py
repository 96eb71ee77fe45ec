"""Finding ``@mentions`` of thread participants in a comment's text (rule "Mentions").

A participant is mentioned by ``@`` followed by their display name (``@Geoff Roach``) or one of
their handles: the name without spaces (``@GeoffRoach``), with underscores (``@Geoff_Roach``),
or their subscriber id (``@m-3381``, ``@guest_…``). Case does not matter. The name must end at a
word boundary: ``@Geoff Roaches`` does not mention "Geoff Roach". When names overlap, the longest
match wins (``@Ana Lima`` mentions "Ana Lima", not "Ana"). The ``@`` must not be inside a word:
in ``foo@ana.com`` (an e-mail address) nobody is mentioned. Only the first ``MENTIONS_MAX``
``@`` of a comment that can start a mention are read: the rest is plain text.

The work is bounded whatever the comment and the thread: each ``@`` read costs one dictionary
look-up per distinct length of the participants' names (not a comparison with every name), and
the participants' index is kept per thread between comments (``_INDEXES``), extended when the
thread only gained participants, rebuilt when it changed otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import islice

_HANDLE = re.compile(r"@([\w.\-]+)", re.UNICODE)
_AT = re.compile("@")

# A comment's ``@`` that can start a mention, read at most: a comment mentions at most this many
# participants, and one of 20,000 ``@`` (the contract's longest text) on a thread of 5,000
# participants costs what 50 do, not seconds of the worker's CPU.
MENTIONS_MAX = 50

# Participants' indexes kept, the threads that had a mention most recently: at most this many,
# and at most ``CHARACTERS_KEPT`` characters of ids and names in all (each is held about five
# times: as given, lower-cased, and in three handles; a thread at its cap of 5,000 participants
# with ids and names of 25 characters is 125,000, about 3 MB; the contract's longest ids and
# names in four-byte characters, 2,000,000 for one thread, which is kept alone). An erasure
# drops its thread's (``forget``), a worker losing partitions all of them (``forget_all``).
INDEXES_KEPT = 8
CHARACTERS_KEPT = 1_000_000


def handles_of(subscriber_id: str, name: str) -> set[str]:
    """The lower-case handles a participant answers to."""
    base = name.strip().lower()
    return {base.replace(" ", ""), base.replace(" ", "_"), subscriber_id.lower()}


class _Index:
    """The participants of a thread (``seen``, id -> display name, in their order) by lower-case
    name and by handle, the first participant winning a name or handle two of them share."""

    __slots__ = ("characters", "handles", "lengths", "names", "seen")

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.handles: dict[str, str] = {}
        self.lengths: list[int] = []  # of the names, longest first
        self.characters = 0  # of the ids and names indexed

    def add(self, participants: Mapping[str, str], after: int) -> None:
        """Index the participants from the ``after``-th on (those before are indexed)."""
        names, handles, lengths = self.names, self.handles, set(self.lengths)
        for sid, name in islice(participants.items(), after, None):
            self.seen[sid] = name
            self.characters += len(sid) + len(name)
            base = name.strip().lower()
            if base and base not in names:
                names[base] = sid
                lengths.add(len(base))
            for handle in handles_of(sid, name):
                handles.setdefault(handle, sid)
        self.lengths = sorted(lengths, reverse=True)

    def grown_into(self, participants: Mapping[str, str]) -> bool:
        """Whether ``participants`` are the indexed ones in the same order (the first of two
        sharing a name wins it), perhaps followed by newcomers."""
        seen = self.seen
        if len(participants) == len(seen):
            return participants == seen and list(participants) == list(seen)
        return len(participants) > len(seen) and list(
            islice(participants.items(), len(seen))
        ) == list(seen.items())


_INDEXES: dict[str, _Index] = {}  # thread -> index; least recently used first


def _index_of(participants: Mapping[str, str], thread: str | None) -> _Index:
    index = _INDEXES.pop(thread, None) if thread is not None else None
    if index is None or not index.grown_into(participants):
        index = _Index()
    if len(index.seen) < len(participants):
        index.add(participants, len(index.seen))
    if thread is not None:
        _INDEXES[thread] = index
        while len(_INDEXES) > 1 and (
            len(_INDEXES) > INDEXES_KEPT
            or sum(kept.characters for kept in _INDEXES.values()) > CHARACTERS_KEPT
        ):
            del _INDEXES[next(iter(_INDEXES))]
    return index


def forget(thread: str) -> None:
    """Drop the thread's kept index (an erasure: no copy of a name outlives it here)."""
    _INDEXES.pop(thread, None)


def forget_all() -> None:
    """Drop every kept index (partitions revoked: their threads' erasures may be handled by
    another worker from now on, out of this one's reach)."""
    _INDEXES.clear()


def find_mentions(
    text: str, participants: Mapping[str, str], thread: str | None = None
) -> set[str]:
    """Subscriber ids of the participants (id -> display name) mentioned in ``text``.

    ``thread`` names the thread the participants are of: their index is kept for its next
    comment (None: built for this call alone). The index is checked against ``participants``
    on every call, so a wrong or shared name costs a rebuild, never a wrong answer."""
    if "@" not in text or not participants:
        return set()
    lowered = text.lower()
    ats = _readable_at_signs(lowered)
    if not ats:
        return set()
    index = _index_of(participants, thread)
    names, handles, lengths = index.names, index.handles, index.lengths
    end_of_text = len(lowered)
    found: set[str] = set()
    for at in ats:
        start = at + 1
        for length in lengths:  # the longest name first
            end = start + length
            if end <= end_of_text and not _continues_word(lowered, end):
                sid = names.get(lowered[start:end])
                if sid is not None:
                    found.add(sid)
                    break
        else:
            match = _HANDLE.match(lowered, at)
            if match:
                handle = match.group(1).rstrip(".-")
                if handle in handles:
                    found.add(handles[handle])
    return found


def _readable_at_signs(text: str) -> list[int]:
    """Where the first ``MENTIONS_MAX`` ``@`` that can start a mention (not inside a word) are."""
    at_signs = (match.start() for match in _AT.finditer(text))
    return list(islice((at for at in at_signs if not _inside_word(text, at)), MENTIONS_MAX))


def _inside_word(text: str, at: int) -> bool:
    """Whether the ``@`` at ``at`` follows a character an address could contain before it."""
    return at > 0 and (text[at - 1].isalnum() or text[at - 1] in "_.+-")


def _continues_word(text: str, end: int) -> bool:
    return end < len(text) and (text[end].isalnum() or text[end] == "_")
