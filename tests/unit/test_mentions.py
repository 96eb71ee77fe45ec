"""Mentions found with the kept participants' index are those of reading every name (the rule as
it was written first, kept here as the oracle), however the thread changes between comments; a
comment's ``@`` beyond ``MENTIONS_MAX`` mention nobody (the bound on a hostile comment's cost).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from newsroom_notify.domain import mentions
from newsroom_notify.domain.mentions import MENTIONS_MAX, find_mentions, handles_of

_HANDLE = re.compile(r"@([\w.\-]+)", re.UNICODE)


def oracle(text: str, participants: Mapping[str, str]) -> set[str]:
    """Every ``@`` against every name, longest first; then the handle (no bound)."""
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
        if at > 0 and (lowered[at - 1].isalnum() or lowered[at - 1] in "_.+-"):
            continue
        rest = lowered[at + 1 :]
        for name, sid in by_name:
            after = len(name)
            if rest.startswith(name) and not (
                after < len(rest) and (rest[after].isalnum() or rest[after] == "_")
            ):
                found.add(sid)
                break
        else:
            match = _HANDLE.match(lowered, at)
            if match:
                handle = match.group(1).rstrip(".-")
                if handle in by_handle:
                    found.add(by_handle[handle])
    return found


def readable_ats(text: str) -> int:
    lowered = text.lower()
    return sum(
        1
        for m in re.finditer("@", lowered)
        if not (
            m.start() > 0 and (lowered[m.start() - 1].isalnum() or lowered[m.start() - 1] in "_.+-")
        )
    )


# Names from a few letters, so that they overlap, share prefixes and collide across participants;
# a dotted, an underscored and a Turkish capital I (lower-cased into two characters).
_NAMES = st.lists(
    st.sampled_from(["ana", "Ana", "ana lima", "Lima", "b", "B b", "İz", "o.k", "x_y", " "]),
    min_size=1,
    max_size=3,
).map(" ".join)
_IDS = st.sampled_from(["m-1", "m-2", "m-12", "guest_a", "Ana", "lima", "b"])
_PARTICIPANTS = st.dictionaries(_IDS, _NAMES, max_size=6)
_PIECES = st.sampled_from(
    [
        "@",
        "@ana",
        "@Ana Lima",
        "@ana lima",
        "@analima",
        "@ana_lima",
        "@m-1",
        "@M-12",
        "@guest_a",
        "@b b",
        "@iz",
        "@i̇z",
        "@o.k",
        "@x_y",
        "@lima.",
        " ",
        ", ",
        "s",
        "foo@",
        "_",
        ".",
        "-",
        "\n",
    ]
)
_TEXTS = st.lists(_PIECES, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(participants=_PARTICIPANTS, text=_TEXTS)
def test_the_same_mentions_as_reading_every_name(participants: dict[str, str], text: str) -> None:
    assert find_mentions(text, participants) == oracle(text, participants)
    assert find_mentions(text, participants, "article") == oracle(text, participants)


# One thread's participants changing between its comments as the threads stage changes them:
# a newcomer appended, a name changed in place, a participant erased.
_CHANGES = st.lists(
    st.tuples(st.sampled_from(["join", "rename", "erase"]), _IDS, _NAMES, _TEXTS), max_size=10
)


@settings(max_examples=300, deadline=None)
@given(start=_PARTICIPANTS, changes=_CHANGES, other=_PARTICIPANTS)
def test_a_kept_index_follows_its_thread_through_every_change(
    start: dict[str, str],
    changes: list[tuple[str, str, str, str]],
    other: dict[str, str],
) -> None:
    participants = dict(start)
    for change, sid, name, text in changes:
        if change == "erase":
            participants.pop(sid, None)
        elif (change == "join") != (sid in participants):  # a newcomer joins, or a name changes
            participants[sid] = name
        assert find_mentions(text, participants, "t1") == oracle(text, participants)
        # Another thread under the same key (a caller's mistake) is answered right too.
        assert find_mentions(text, other, "t1") == oracle(text, other)


def test_the_same_participants_in_another_order_are_indexed_again() -> None:
    # The first of two sharing a name wins it: the order is part of what is indexed.
    first, then = {"m-1": "Ana", "m-2": "ana"}, {"m-2": "ana", "m-1": "Ana"}
    assert find_mentions("@ana", first, "t-order") == {"m-1"}
    assert find_mentions("@ana", then, "t-order") == oracle("@ana", then) == {"m-2"}


def test_kept_indexes_are_bounded_in_number() -> None:
    for n in range(mentions.INDEXES_KEPT * 3):
        assert find_mentions("@ana", {f"m-{n}": "Ana"}, f"thread-{n}") == {f"m-{n}"}
    assert len(mentions._INDEXES) == mentions.INDEXES_KEPT


def test_kept_indexes_are_bounded_in_characters() -> None:
    # Threads at the participants' cap with the contract's longest ids and names: the newest
    # one is kept (alone if need be), the others go while the bound is exceeded.
    for n in range(3):
        participants = {f"{n}-{i:05d}-" + "i" * 190: f"{i:05d} " + "n" * 194 for i in range(5_000)}
        assert find_mentions("@00042 " + "n" * 194, participants, f"big-{n}") == {
            f"{n}-00042-" + "i" * 190
        }
        kept = sum(index.characters for index in mentions._INDEXES.values())
        assert len(mentions._INDEXES) == 1 or kept <= mentions.CHARACTERS_KEPT
        assert f"big-{n}" in mentions._INDEXES
    assert list(mentions._INDEXES) == ["big-2"]


def test_forget_all_drops_every_kept_index() -> None:
    find_mentions("@ana", {"m-1": "Ana"}, "t-a")
    find_mentions("@ana", {"m-2": "Ana"}, "t-b")
    mentions.forget_all()
    assert not mentions._INDEXES


def test_a_comment_whose_at_signs_are_all_inside_words_builds_no_index() -> None:
    mentions.forget_all()
    assert find_mentions("mail foo@ana.com", {"m-1": "Ana"}, "t-mail") == set()
    assert not mentions._INDEXES


def test_only_the_first_mentions_max_at_signs_are_read() -> None:
    participants = {f"m-{i}": f"Reader {i}" for i in range(MENTIONS_MAX + 10)}
    text = " ".join(f"@Reader {i}" for i in range(MENTIONS_MAX + 10))
    assert len(oracle(text, participants)) == MENTIONS_MAX + 10
    assert find_mentions(text, participants, "a") == {f"m-{i}" for i in range(MENTIONS_MAX)}
    # An ``@`` inside a word (an address) is not one of them.
    addresses = " ".join(f"x{i}@example.com" for i in range(100))
    assert find_mentions(f"{addresses} @Reader 7", participants, "a") == {"m-7"}


def test_a_comment_of_at_signs_on_a_full_thread_reads_only_the_first_ones() -> None:
    # The attack: the contract's longest text, all ``@``, on a thread at its 5,000 participants'
    # cap, one of whom chose a name of ``@`` to match at every one. Reading all 20,000 took five
    # seconds of the worker's CPU (docs/security.md); only the first MENTIONS_MAX are read.
    participants = {f"m-{i}": f"Reader {i}" for i in range(4_999)}
    participants["m-attacker"] = "@" * 200
    text = "@" * 19_990 + " @Reader 7"
    assert readable_ats(text) > MENTIONS_MAX
    assert find_mentions(text, participants, "a") == {"m-attacker"}
    assert find_mentions(" @Reader 7", participants, "a") == {"m-7"}  # alone, it mentions
