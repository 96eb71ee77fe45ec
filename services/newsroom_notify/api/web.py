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
from collections.abc import Awaitable, Callable
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


async def _answer(view: View, call: Callable[[], Awaitable[ApiResponse]]) -> Response:
    try:
        result = await call()
    except ApiError as error:
        result = error.response()
    except Exception:  # never a stack trace or an internal id in a response
        log.exception("api handler failed")
        result = ApiError(500, "Internal Server Error", "something went wrong").response()
    return _to_response(view, result)


async def _body(request: Any, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "Content Too Large", f"request body over {limit} bytes")
    body: bytes = await request.content.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "Content Too Large", f"request body over {limit} bytes")
    return body


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


def _ip(request: Any) -> str:
    return str(request.remote or "unknown")


async def broker_reachable(settings: Settings) -> bool:
    """Whether a TCP connection to one of the bootstrap servers succeeds within a second."""
    for server in settings.kafka.bootstrap_list:
        host, _, port = server.rpartition(":")
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
            writer.close()
            return True
    return False


def mount(app: faust.App, settings: Settings, api: SubscriptionApi, profiles_table: Any) -> None:
    """Register the API's routes on ``app``'s web server."""
    limit = settings.api.max_body_bytes

    @app.page("/v1/subscriptions")
    class Subscriptions(View):
        async def post(self, request: Request) -> Response:
            async def call() -> ApiResponse:
                body = await _body(request, limit)
                return await api.subscribe(request.headers, body, _ip(request))

            return await _answer(self, call)

    @app.page("/v1/subscribers/{subscriber_id}/subscriptions")
    class SubscriberSubscriptions(View):
        @app.table_route(table=profiles_table, match_info="subscriber_id")  # type: ignore[arg-type]
        async def get(self, request: Request, subscriber_id: str) -> Response:
            return await _answer(
                self, lambda: api.subscriptions(subscriber_id, request.headers, request.query)
            )

    @app.page("/v1/subscribers/{subscriber_id}/subscriptions/{scope}")
    class SubscriberSubscription(View):
        async def delete(self, request: Request, subscriber_id: str, scope: str) -> Response:
            return await _answer(
                self, lambda: api.cancel(subscriber_id, scope, request.headers, request.query)
            )

    @app.page("/v1/subscribers/{subscriber_id}/preferences")
    class SubscriberPreferences(View):
        async def put(self, request: Request, subscriber_id: str) -> Response:
            async def call() -> ApiResponse:
                body = await _body(request, limit)
                return await api.preferences(subscriber_id, request.headers, request.query, body)

            return await _answer(self, call)

    @app.page("/v1/subscribers/{subscriber_id}")
    class Subscriber(View):
        async def delete(self, request: Request, subscriber_id: str) -> Response:
            return await _answer(
                self, lambda: api.erase(subscriber_id, request.headers, request.query)
            )

    @app.page("/v1/confirm")
    class Confirm(View):
        async def post(self, request: Request) -> Response:
            async def call() -> ApiResponse:
                body = await _body(request, limit)
                return await api.confirm(body, _ip(request))

            return await _answer(self, call)

    @app.page("/v1/unsubscribe")
    class Unsubscribe(View):
        async def get(self, request: Request) -> Response:
            async def call() -> ApiResponse:
                return api.unsubscribe_page(request.query)

            return await _answer(self, call)

        async def post(self, request: Request) -> Response:
            async def call() -> ApiResponse:
                body = await _body(request, limit)
                form = parse_form(request.headers.get("Content-Type", ""), body)
                return await api.unsubscribe(request.query, form)

            return await _answer(self, call)

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
            ready = all(checks.values())
            health = Health(status="ok" if ready else "unavailable", checks=checks)
            return _to_response(self, ApiResponse(200 if ready else 503, health))


def publisher(topic: Any) -> Callable[[ev.CloudEvent], Awaitable[None]]:
    """Publish a command to the subscriptions topic and wait for the broker's ack."""

    async def publish(event: ev.CloudEvent) -> None:
        key, value = codec.encode(event, event.partition_key() or "api")
        pending = await topic.send(key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER])
        await pending

    return publish
