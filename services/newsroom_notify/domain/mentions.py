"""Finding ``@mentions`` of thread participants in a comment's text (rule "Mentions").

A participant is mentioned by ``@`` followed by their display name (``@Geoff Roach``) or one of
their handles: the name without spaces (``@GeoffRoach``), with underscores (``@Geoff_Roach``),
or their subscriber id (``@m-3381``, ``@guest_…``). Case does not matter. The name must end at a
word boundary: ``@Geoff Roaches`` does not mention "Geoff Roach". When names overlap, the longest
match wins (``@Ana Lima`` mentions "Ana Lima", not "Ana"). The ``@`` must not be inside a word:
in ``foo@ana.com`` (an e-mail address) nobody is mentioned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_HANDLE = re.compile(r"@([\w.\-]+)", re.UNICODE)


def handles_of(subscriber_id: str, name: str) -> set[str]:
    """The lower-case handles a participant answers to."""
    base = name.strip().lower()
    return {base.replace(" ", ""), base.replace(" ", "_"), subscriber_id.lower()}


def find_mentions(text: str, participants: Mapping[str, str]) -> set[str]:
    """Subscriber ids of the participants (id -> display name) mentioned in ``text``."""
    if "@" not in text or not participants:
        return set()
    lowered = text.lower()
    by_name = sorted(
        ((name.strip().lower(), sid) for sid, name in participants.items() if name.strip()),
        key=lambda item: len(item[0]),
        reverse=True,
    )
    by_handle: dict[str, str] = {}
    for sid, name in participants.items():
        for handle in handles_of(sid, name):
            by_handle.setdefault(handle, sid)
    found: set[str] = set()
    for at in (m.start() for m in re.finditer("@", lowered)):
        if _inside_word(lowered, at):
            continue
        rest = lowered[at + 1 :]
        for name, sid in by_name:
            if rest.startswith(name) and not _continues_word(rest, len(name)):
                found.add(sid)
                break
        else:
            match = _HANDLE.match(lowered, at)
            if match:
                handle = match.group(1).rstrip(".-")
                if handle in by_handle:
                    found.add(by_handle[handle])
    return found


def _inside_word(text: str, at: int) -> bool:
    """Whether the ``@`` at ``at`` follows a character an address could contain before it."""
    return at > 0 and (text[at - 1].isalnum() or text[at - 1] in "_.+-")


def _continues_word(rest: str, end: int) -> bool:
    return end < len(rest) and (rest[end].isalnum() or rest[end] == "_")
