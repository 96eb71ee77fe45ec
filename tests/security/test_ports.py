"""Issue 15 item 1 and table row 1: nothing internal on the port a reader reaches.

Row 1 as written: `GET /table/`, `GET /table/profiles/<guest id>/`, `GET /router/` on the port
the README gives as the API answered 200 with the guest's e-mail address. Now that port is the
stand-alone API; the worker's port is internal (and serves none of Faust's pages either).
"""

from __future__ import annotations

from newsroom_notify.contract.identity import guest_subscriber_id
from tests.security.conftest import Stack, call, guest_subscribes

EMAIL = "row1.victim@example.org"
GUEST_ID = guest_subscriber_id(EMAIL)
FAUST_PAGES = ["/table/", f"/table/profiles/{GUEST_ID}/", "/table/profiles/", "/router/"]


def test_faust_pages_metrics_and_internal_routes_are_not_on_the_api_port(stack: Stack) -> None:
    confirm = guest_subscribes(stack, EMAIL, "Row One", "a-row1")
    manage = confirm["data"]["manage_token"]
    for path in [*FAUST_PAGES, "/", "/metrics"]:
        answer = stack.call("GET", path)
        assert answer.status == 404, path
        assert EMAIL not in answer.text
        assert "newsroom_" not in answer.text  # no metric names either
    # The internal profile route does not exist on the public port, token or not.
    internal = f"/internal/v1/subscribers/{GUEST_ID}/subscriptions?token={manage}"
    assert stack.call("GET", internal).status == 404
    # The reader's own read still reaches the partition's owner (through the internal route).
    own = stack.call("GET", f"/v1/subscribers/{GUEST_ID}/subscriptions?token={manage}")
    assert own.status == 200, own.text
    assert own.json()["subscriptions"][0]["target"] == "a-row1"
    assert EMAIL not in own.text  # the view has no address in it


def test_the_workers_internal_port_serves_no_faust_page_and_no_profile_without_a_credential(
    stack: Stack,
) -> None:
    confirm = guest_subscribes(stack, "row1.internal@example.org", "Row One", "a-row1-internal")
    sid = confirm["data"]["recipient"]["id"]
    for path in [*FAUST_PAGES, f"/table/profiles/{sid}/"]:
        answer = call(stack.worker_url, "GET", path)
        assert answer.status == 404, path
        assert "row1.internal@example.org" not in answer.text
    route = f"/internal/v1/subscribers/{sid}/subscriptions"
    # Even a caller on the internal network needs the reader's credential.
    assert call(stack.worker_url, "GET", route).status == 401
    assert call(stack.worker_url, "GET", route + "?token=forged").status == 401
    owner = call(stack.worker_url, "GET", route + f"?token={confirm['data']['manage_token']}")
    assert owner.status == 200
    # The worker's /metrics is for Prometheus, on this internal port.
    assert "newsroom_events_consumed_total" in call(stack.worker_url, "GET", "/metrics").text


def test_the_apis_metrics_are_on_its_internal_port_only(stack: Stack) -> None:
    assert stack.call("GET", "/metrics").status == 404
    metrics = call(stack.metrics_url, "GET", "/metrics")
    assert metrics.status == 200
    assert "process_resident_memory_bytes" in metrics.text
    # And the internal port serves nothing of the API.
    assert call(stack.metrics_url, "POST", "/v1/subscriptions", body={}).status == 404
