"""Mounting the API on the worker's Faust web server.

Views only translate HTTP to ``SubscriptionApi`` calls. Reads of a subscriber's state are
routed with ``app.table_route`` to the worker that owns the subscriber's partition of the
profiles table (Faust proxies the request there); writes are published to Kafka from whichever
worker received them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import structlog
from faust.web import Request, Response, View

from newsroom_notify.api.models import Health
from newsroom_notify.api.service import ApiError, ApiResponse, SubscriptionApi
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.settings import Settings

log = structlog.get_logger(__name__)


def _to_response(view: View, result: ApiResponse) -> Response:
    response = view.bytes(result.payload(), content_type=result.content_type, status=result.status)
    for name, value in result.headers.items():
        response.headers[name] = value
    return response


async def _body(request: Any, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "Content Too Large", f"request body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while size <= limit:  # read() returns what has arrived: loop until the end of the body
        chunk: bytes = await request.content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise ApiError(413, "Content Too Large", f"request body over {limit} bytes")
    return b"".join(chunks)


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of an RFC 8058 POST body: urlencoded or multipart; {} when unreadable."""
    if content_type.lower().startswith("multipart/form-data"):
        message = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace") + body,
            policy=email.policy.HTTP,
        )
        fields = {}
        for part in message.iter_parts() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload.decode("utf-8", "replace").strip()
        return fields
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def client_ip(remote: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The client's address for rate limits: behind ``trusted_hops`` proxies (a Kubernetes
    ingress, a load balancer) it is the entry that many hops from the end of X-Forwarded-For;
    anything further left was written by the client and is not trusted."""
    if trusted_hops > 0 and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if hops:
            return hops[max(len(hops) - trusted_hops, 0)]
    return remote or "unknown"


def _ip(api: SubscriptionApi, request: Any) -> str:
    forwarded = request.headers.get("X-Forwarded-For")
    return client_ip(request.remote, forwarded, api.settings.trusted_proxy_hops)


async def broker_reachable(settings: Settings) -> bool:
    """Whether a TCP connection to one of the bootstrap servers succeeds within a second."""
    for server in settings.kafka.bootstrap_list:
        host, _, port = server.rpartition(":")
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            writer.close()
            return True
    return False


Route = Callable[[SubscriptionApi, Any, Mapping[str, str], int], Awaitable[ApiResponse]]


async def _subscribe(
    api: SubscriptionApi, request: Any, _: Mapping[str, str], limit: int
) -> ApiResponse:
    return await api.subscribe(request.headers, await _body(request, limit), _ip(api, request))


async def _list(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], _: int
) -> ApiResponse:
    return await api.subscriptions(match["subscriber_id"], request.headers, request.query)


async def _cancel(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], _: int
) -> ApiResponse:
    sid, scope = match["subscriber_id"], match["scope"]
    return await api.cancel(sid, scope, request.headers, request.query)


async def _preferences(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    body = await _body(request, limit)
    return await api.preferences(match["subscriber_id"], request.headers, request.query, body)


async def _erase(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], _: int
) -> ApiResponse:
    return await api.erase(match["subscriber_id"], request.headers, request.query)


async def _sign_out(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    return await api.sign_out(match["subscriber_id"], request.headers, request.query)


async def _request_erasure(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    return await api.request_erasure(await _body(request, limit), _ip(api, request))


async def _confirm_erasure(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    return await api.confirm_erasure(await _body(request, limit), _ip(api, request))


async def _confirm(
    api: SubscriptionApi, request: Any, _: Mapping[str, str], limit: int
) -> ApiResponse:
    return await api.confirm(await _body(request, limit), _ip(api, request))


async def _unsubscribe_page(
    api: SubscriptionApi, request: Any, _: Mapping[str, str], __: int
) -> ApiResponse:
    return api.unsubscribe_page(request.query)


async def _unsubscribe(
    api: SubscriptionApi, request: Any, _: Mapping[str, str], limit: int
) -> ApiResponse:
    form = parse_form(request.headers.get("Content-Type", ""), await _body(request, limit))
    return await api.unsubscribe(request.query, form)


PROFILE_READ = "/v1/subscribers/{subscriber_id}/subscriptions"
ROUTES: dict[str, dict[str, Route]] = {
    "/v1/subscriptions": {"post": _subscribe},
    PROFILE_READ: {"get": _list},
    "/v1/subscribers/{subscriber_id}/subscriptions/{scope}": {"delete": _cancel},
    "/v1/subscribers/{subscriber_id}/preferences": {"put": _preferences},
    "/v1/subscribers/{subscriber_id}": {"delete": _erase},
    "/v1/subscribers/{subscriber_id}/sign-out": {"post": _sign_out},
    "/v1/erasure": {"post": _request_erasure},
    "/v1/erasure/confirm": {"post": _confirm_erasure},
    "/v1/confirm": {"post": _confirm},
    "/v1/unsubscribe": {"get": _unsubscribe_page, "post": _unsubscribe},
}
"""Every API route: path -> HTTP method -> handler. Both servers mount this one table."""


async def answer(
    api: SubscriptionApi, route: Route, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    """The route's response; an ``ApiError`` or a bug becomes a problem document."""
    try:
        return await route(api, request, match, limit)
    except ApiError as error:
        return error.response()
    except Exception:  # never a stack trace or an internal id in a response
        log.exception("api handler failed")
        return ApiError(500, "Internal Server Error", "something went wrong").response()


def _faust_view(
    api: SubscriptionApi, methods: dict[str, Route], limit: int, route_get: Any = None
) -> type[View]:
    def method(route: Route) -> Callable[..., Awaitable[Response]]:
        async def handle(self: View, request: Request, **match: str) -> Response:
            return _to_response(self, await answer(api, route, request, match, limit))

        return handle

    handlers = {name: method(route) for name, route in methods.items()}
    if route_get is not None:
        handlers["get"] = route_get(handlers["get"])
    return type("ApiView", (View,), handlers)


def mount(app: faust.App, settings: Settings, api: SubscriptionApi, profiles_table: Any) -> None:
    """Register the API's routes, /healthz and /readyz on ``app``'s web server."""
    limit = settings.api.max_body_bytes
    # A profile is read on the worker that owns the subscriber's partition (Faust proxies).
    owner = app.table_route(table=profiles_table, match_info="subscriber_id")
    for path, methods in ROUTES.items():
        app.page(path)(_faust_view(api, methods, limit, owner if path == PROFILE_READ else None))

    @app.page("/healthz")
    class Liveness(View):
        async def get(self, request: Request) -> Response:
            return _to_response(self, ApiResponse(200, Health(status="ok")))

    @app.page("/readyz")
    class Readiness(View):
        async def get(self, request: Request) -> Response:
            checks = {
                "broker_reachable": await broker_reachable(settings),
                "tables_recovered": bool(app.tables.recovery.completed.is_set()),  # type: ignore[attr-defined]
                "not_rebalancing": not app.rebalancing,
            }
            return _to_response(self, readiness(checks))


def readiness(checks: dict[str, bool]) -> ApiResponse:
    """200 when every check holds, else 503, with the checks in the body."""
    ready = all(checks.values())
    health = Health(status="ok" if ready else "unavailable", checks=checks)
    return ApiResponse(200 if ready else 503, health)


def publisher(topic: Any) -> Callable[[ev.CloudEvent], Awaitable[None]]:
    """Publish a command to the subscriptions topic and wait for the broker's ack."""

    async def publish(event: ev.CloudEvent) -> None:
        key, value = codec.encode(event, event.partition_key() or "api")
        pending = await topic.send(key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER])
        await pending

    return publish
