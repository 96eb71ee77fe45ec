"""The API's routes, and the worker's internal port.

Views only translate HTTP to ``SubscriptionApi`` calls. Readers reach the API on the
stand-alone process (``api.standalone``), never on a worker. A worker's Faust web server is its
*internal* port: probes, ``/metrics`` and ``INTERNAL_PROFILE_READ``, the one route through which
a profile read reaches the worker owning the subscriber's partition of the profiles table
(``app.table_route``: Faust proxies it worker to worker). The reader's credential travels with
the read and is checked by the owner, so even a caller on the internal network learns nothing
without one. Faust's own pages (``/table/``, ``/router/``) are not served at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ipaddress
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
import structlog
from faust.web import Request, Response, View

from newsroom_notify.api.models import Health
from newsroom_notify.api.service import SECURITY_HEADERS, ApiError, ApiResponse, SubscriptionApi
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.settings import Settings

log = structlog.get_logger(__name__)


def _to_response(view: View, result: ApiResponse) -> Response:
    response = view.bytes(result.payload(), content_type=result.content_type, status=result.status)
    for name, value in {**SECURITY_HEADERS, **result.headers}.items():
        response.headers[name] = value
    return response


JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(content_type: str | None, accepted: tuple[str, ...]) -> None:
    """415 unless the body is one of ``accepted``. A JSON API that also took ``text/plain``
    or a form would let any web page post to it from its visitors' browsers (a "simple"
    cross-site request needs no CORS preflight); ``application/json`` does need one."""
    kind = media_type(content_type)
    if kind not in accepted:
        raise ApiError(
            415,
            "Unsupported Media Type",
            f"send the body as {' or '.join(accepted)}",
        )


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
    """The client's address for rate limits.

    Behind ``trusted_hops`` proxies (a Kubernetes ingress, a load balancer), each appending the
    address it received the request from, the client is the entry ``trusted_hops`` from the
    right end of X-Forwarded-For; everything further left was written by the client and is not
    trusted. With fewer entries than hops the request did not come through every proxy (or a
    proxy does not append): no entry can be trusted, so the connection's own address is used,
    and so it is when the entry is not an IP address."""
    if trusted_hops > 0:
        # Several X-Forwarded-For headers are one list (RFC 9110 5.3), joined by the caller.
        hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
        if len(hops) >= trusted_hops:
            entry = hops[len(hops) - trusted_hops]
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(entry))
    return remote or "unknown"


def _ip(api: SubscriptionApi, request: Any) -> str:
    forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
    return client_ip(request.remote, forwarded, api.settings.trusted_proxy_hops)


async def _json_body(request: Any, limit: int) -> bytes:
    require_media_type(request.headers.get("Content-Type"), JSON_TYPES)
    return await _body(request, limit)


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
    return await api.subscribe(request.headers, await _json_body(request, limit), _ip(api, request))


async def _list(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], _: int
) -> ApiResponse:
    return await api.subscriptions(match["subscriber_id"], request.headers, request.query)


async def _cancel(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], _: int
) -> ApiResponse:
    sid, scope = match["subscriber_id"], match["scope"]
    return await api.cancel(sid, scope, request.headers, request.query)


async def _change_delivery(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    body = await _json_body(request, limit)
    sid, scope = match["subscriber_id"], match["scope"]
    return await api.change_delivery(sid, scope, request.headers, request.query, body)


async def _preferences(
    api: SubscriptionApi, request: Any, match: Mapping[str, str], limit: int
) -> ApiResponse:
    body = await _json_body(request, limit)
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
    return await api.confirm(await _json_body(request, limit), _ip(api, request))


async def _unsubscribe(
    api: SubscriptionApi, request: Any, _: Mapping[str, str], limit: int
) -> ApiResponse:
    content_type = request.headers.get("Content-Type", "")
    require_media_type(content_type, FORM_TYPES)  # RFC 8058: the mail client posts a form
    form = parse_form(content_type, await _body(request, limit))
    return await api.unsubscribe(request.query, form)


PROFILE_READ = "/v1/subscribers/{subscriber_id}/subscriptions"
INTERNAL_PREFIX = "/internal"
INTERNAL_PROFILE_READ = INTERNAL_PREFIX + PROFILE_READ
"""The profile read on a worker's internal port: the stand-alone API forwards a reader's
``PROFILE_READ`` here (same query, same credential), and workers proxy it to the owner."""
ROUTES: dict[str, dict[str, Route]] = {
    "/v1/subscriptions": {"post": _subscribe},
    PROFILE_READ: {"get": _list},
    "/v1/subscribers/{subscriber_id}/subscriptions/{scope}": {
        "delete": _cancel,
        "put": _change_delivery,
    },
    "/v1/subscribers/{subscriber_id}/preferences": {"put": _preferences},
    "/v1/subscribers/{subscriber_id}": {"delete": _erase},
    "/v1/subscribers/{subscriber_id}/sign-out": {"post": _sign_out},
    "/v1/erasure": {"post": _request_erasure},
    "/v1/erasure/confirm": {"post": _confirm_erasure},
    "/v1/confirm": {"post": _confirm},
    "/v1/unsubscribe": {"post": _unsubscribe},
}
"""Every public JSON API route: path -> HTTP method -> handler, served by ``api.standalone``
(with the reader pages of ``api.pages_http``, some on the same paths)."""


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


def _faust_view(api: SubscriptionApi, route: Route, limit: int, route_get: Any) -> type[View]:
    async def get(self: View, request: Request, **match: str) -> Response:
        return _to_response(self, await answer(api, route, request, match, limit))

    return type("InternalProfileView", (View,), {"get": route_get(get)})


def mount(app: faust.App, settings: Settings, api: SubscriptionApi, profiles_table: Any) -> None:
    """Register the worker's internal routes: the routed profile read, /healthz, /readyz.

    The app must be built with Faust's table and router pages disabled (``stream.app``)."""
    limit = settings.api.max_body_bytes
    # A profile is read on the worker that owns the subscriber's partition (Faust proxies).
    owner = app.table_route(table=profiles_table, match_info="subscriber_id")
    app.page(INTERNAL_PROFILE_READ)(_faust_view(api, _list, limit, owner))

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
