"""Hostile bodies (oversized, deeply nested), header injection through names and targets, and
the headers every answer carries (no caching of personal data, no framing, no sniffing)."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest

from newsroom_notify.contract.identity import guest_subscriber_id
from tests.security.conftest import PROXY, Answer, Stack, fresh_ip

MAX_BODY = 16 * 1024  # the default NEWSROOM_API__MAX_BODY_BYTES


def _chunked_post(base: str, path: str, chunks: list[bytes]) -> int:
    """A POST without Content-Length (chunked): the size is only known while reading."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("X-Forwarded-For", f"{fresh_ip()}, {PROXY}")
        conn.endheaders()
        for chunk in chunks:
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        return conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return 413  # the server stopped reading and closed: it refused the body
    finally:
        conn.close()


def test_oversized_bodies_get_413_with_or_without_a_length(stack: Stack) -> None:
    big = b'{"scope": "replies", "target": "' + b"x" * (MAX_BODY + 10) + b'"}'
    assert (
        stack.call("POST", "/v1/subscriptions", raw=big, content_type="application/json").status
        == 413
    )
    assert stack.call("POST", "/v1/confirm", raw=big, content_type="application/json").status == 413
    assert _chunked_post(stack.api_url, "/v1/subscriptions", [b" " * 4096] * 8) == 413
    # Still serving afterwards.
    assert stack.call("GET", "/healthz").status == 200


@pytest.mark.parametrize("depth", [64, 2_000, 8_000])
def test_deeply_nested_bodies_are_refused_without_a_crash(stack: Stack, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    for body in (nested, b'{"scope": "replies", "target": ' + nested + b"}"):
        answer = stack.call("POST", "/v1/subscriptions", raw=body, content_type="application/json")
        assert answer.status in (400, 413, 422), answer.text
        assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert stack.call("GET", "/healthz").status == 200


INJECTIONS = {
    "crlf-header": "Geoff\r\nBcc: everyone@example.org",
    "lf-only": "Geoff\nSubject: your account is locked",
    "nul": "Geoff\x00",
    "bidi-override": "Geoff \u202egro.live\u202c",
    "tab-escape": "Geoff\x1b[31m",
}


@pytest.mark.parametrize(("label", "name"), INJECTIONS.items(), ids=INJECTIONS.keys())
def test_control_and_bidi_characters_in_a_name_or_target_are_refused(
    stack: Stack, label: str, name: str
) -> None:
    email = f"inject.{label}@example.org"
    as_name = stack.call(
        "POST",
        "/v1/subscriptions",
        body={"scope": "article", "target": "a-1", "guest": {"name": name, "email": email}},
    )
    assert as_name.status == 422, as_name.text
    as_target = stack.call(
        "POST",
        "/v1/subscriptions",
        body={"scope": "article", "target": name, "guest": {"name": "Geoff", "email": email}},
    )
    assert as_target.status == 422, as_target.text
    sid = guest_subscriber_id(email)
    assert [k for k, _ in stack.published("newsroom.subscriptions") if k == sid.encode()] == []


def test_crlf_in_a_token_does_not_reach_a_response_header(stack: Stack) -> None:
    token = urllib.parse.quote("x\r\nSet-Cookie: session=stolen")
    page = stack.call("GET", f"/v1/unsubscribe?token={token}")
    assert page.status == 400
    assert "Set-Cookie" not in page.headers
    assert "session=stolen" not in str(page.headers)


def _has_protection(answer: Answer) -> None:
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert headers.get("cache-control") == "no-store", answer.status
    assert headers.get("x-frame-options") == "DENY"
    assert "frame-ancestors 'none'" in headers.get("content-security-policy", "")
    assert headers.get("x-content-type-options") == "nosniff"


def test_every_kind_of_answer_carries_the_protective_headers(stack: Stack) -> None:
    answers = [
        stack.call("GET", "/healthz"),  # 200
        stack.call("POST", "/v1/subscriptions", body={"scope": "replies"}),  # 401 problem
        stack.call("POST", "/v1/subscriptions", raw=b"x", content_type="text/plain"),  # 415
        stack.call("GET", "/no/such/page"),  # the router's own 404
        stack.call("PATCH", "/v1/subscriptions"),  # the router's own 405
        stack.call("GET", "/v1/unsubscribe?token=forged"),  # 400 on the HTML route
        stack.call("GET", "/v1/subscribers/m-x/subscriptions?token=forged"),  # forwarded read
    ]
    assert [a.status for a in answers] == [200, 401, 415, 404, 405, 400, 401]
    for answer in answers:
        _has_protection(answer)
