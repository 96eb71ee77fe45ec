"""Subscriber ids, including the derived id of a guest commenter.

A member's subscriber id is their account id from the newsroom's identity system, as given.

A guest has no account, only an e-mail address. Their subscriber id is derived from the
*normalised* address so that every event about the same guest lands on the same key and
partition, without the address itself appearing in keys, ids or logs:

    normalise(email)   = email.strip().lower()   (Unicode NFC; nothing provider-specific is
                         removed: "a.b+news@x.org" and "ab@x.org" are different guests)
    guest_id(email)    = "guest_" + base32(sha256("newsroom-notify:guest:v1:" + normalised))[:26]
                         (lower-case, no padding; 130 bits of the hash)

The id is stable (v1 never changes) and one-way: it cannot be turned back into the address,
although, as for any unkeyed hash, someone who already has a candidate address can check it.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata

GUEST_PREFIX = "guest_"
_NAMESPACE = b"newsroom-notify:guest:v1:"


def normalise_email(email: str) -> str:
    """The canonical form of an e-mail address used for identity and dedupe."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def guest_subscriber_id(email: str) -> str:
    """The stable, non-reversible subscriber id of the guest with this e-mail address."""
    digest = hashlib.sha256(_NAMESPACE + normalise_email(email).encode("utf-8")).digest()
    return GUEST_PREFIX + base64.b32encode(digest).decode("ascii").lower()[:26]


# Gmail ignores dots in the name and serves both domains from one mailbox (Google Workspace
# domains do not: there a dot is part of the name). Its ~2^(n-1) spellings of one n-letter
# name would otherwise each get a per-address quota of their own.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(email: str) -> str:
    """The key of the mailbox an address delivers to, for per-address limits: the guest id of
    the normalised address without its ``+tag`` (``Ana+1@x.org`` and ``ana+2@x.org`` share
    one) and, at Gmail, without dots and on one domain (``mary.jones@googlemail.com`` is
    ``maryjones@gmail.com``), so the limit lives in the partition that owns that address."""
    local, at, domain = normalise_email(email).rpartition("@")
    if not at:
        return guest_subscriber_id(email)
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS_DOMAINS:
        local, domain = local.replace(".", "") or local, _DOTLESS_DOMAINS[domain]
    return guest_subscriber_id(f"{local}@{domain}")


def is_guest_id(subscriber_id: str) -> bool:
    """Whether a subscriber id belongs to a guest (derived from an e-mail address)."""
    return subscriber_id.startswith(GUEST_PREFIX)
