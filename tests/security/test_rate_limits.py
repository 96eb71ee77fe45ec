"""Issue 15 item 3 (per-IP part): the per-IP limit cannot be dodged by rewriting
X-Forwarded-For or by walking an IPv6 /64. The stack trusts two proxies (ingress + load
balancer): the client is the entry two from the right; anything further left is the client's
own writing."""

from __future__ import annotations

import itertools

from tests.security.conftest import PER_IP_PER_MINUTE, PROXY, Stack, fresh_ip

_emails = itertools.count()


def _subscribe(stack: Stack, forwarded_for: str) -> int:
    email = f"rate.{next(_emails)}@example.org"
    body = {"scope": "article", "target": "a-rate", "guest": {"name": "R", "email": email}}
    return stack.call("POST", "/v1/subscriptions", body=body, forwarded_for=forwarded_for).status


def test_the_per_ip_limit_holds_and_other_clients_are_unaffected(stack: Stack) -> None:
    client = fresh_ip()
    statuses = [_subscribe(stack, f"{client}, {PROXY}") for _ in range(PER_IP_PER_MINUTE + 2)]
    assert statuses == [202] * PER_IP_PER_MINUTE + [429, 429]
    assert _subscribe(stack, f"{fresh_ip()}, {PROXY}") == 202


def test_a_client_cannot_escape_its_limit_by_writing_x_forwarded_for(stack: Stack) -> None:
    client = fresh_ip()
    for _ in range(PER_IP_PER_MINUTE):
        assert _subscribe(stack, f"{client}, {PROXY}") == 202
    # Entries the client writes land left of its real address: they change nothing.
    for n in range(5):
        assert _subscribe(stack, f"203.0.113.{n}, {client}, {PROXY}") == 429


def test_fewer_entries_than_trusted_hops_never_trusts_the_client_written_one(
    stack: Stack,
) -> None:
    """A request reaching the API past the proxies (one entry, written by the client itself)
    is counted against the connection's address, not against whatever address it claims."""
    claimed = [f"192.0.2.{n}" for n in range(PER_IP_PER_MINUTE + 3)]
    statuses = [_subscribe(stack, ip) for ip in claimed]  # a fresh claim each time
    assert 429 in statuses
    assert statuses[-1] == 429


def test_an_ipv6_client_is_limited_by_its_64_not_per_address(stack: Stack) -> None:
    prefix = "2001:db8:15:7"
    statuses = [
        _subscribe(stack, f"{prefix}::{n:x}, {PROXY}") for n in range(1, PER_IP_PER_MINUTE + 3)
    ]
    assert statuses == [202] * PER_IP_PER_MINUTE + [429, 429]
    assert _subscribe(stack, f"2001:db8:15:8::1, {PROXY}") == 202  # the next /64 is another client
