"""The stand-alone, stateless subscription API (``newsroom-notify api``): the reader-facing port.

Serves the API routes (``api.web.ROUTES``) on ``api.port``, apart from the stateful workers:
commands are published to the subscriptions topic by its own idempotent producer; a profile read
(GET .../subscriptions) is forwarded to the internal route of ``api.worker_url``, whose worker
routes it to the partition's owner. ``/metrics`` is on a second, internal port
(``api.metrics_port``) that readers never reach; the public port serves nothing else.
"""

from __future__ import annotations

import asyncio
import signal
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from yarl import URL

from newsroom_notify.api import pages_http
from newsroom_notify.api.models import Health, Problem, SubscriberView
from newsroom_notify.api.pages import ReaderPages
from newsroom_notify.api.service import SECURITY_HEADERS, ApiError, ApiResponse, SubscriptionApi
from newsroom_notify.api.web import (
    INTERNAL_PREFIX,
    PROFILE_READ,
    ROUTES,
    Route,
    answer,
    broker_reachable,
    readiness,
)
from newsroom_notify.clock import Clock
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.metrics import metrics_app
from newsroom_notify.settings import Settings

log = structlog.get_logger(__name__)

FORWARDED_HEADERS = ("Authorization", "Accept")
PASSED_BACK_HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate")


async def _security_headers(_: web.Request, response: web.StreamResponse) -> None:
    """Every answer, the router's own 404 and 405 included, carries ``SECURITY_HEADERS``."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _response(result: ApiResponse) -> web.Response:
    response = web.Response(
        body=result.payload(), status=result.status, content_type=result.content_type
    )
    response.headers.update(result.headers)
    return response


def kafka_publisher(
    producer: AIOKafkaProducer, topic: str
) -> Callable[[ev.CloudEvent], Awaitable[None]]:
    """Publish a command and wait for the broker's acknowledgement."""

    async def publish(event: ev.CloudEvent) -> None:
        key, value = codec.encode(event, event.partition_key() or "api")
        await producer.send_and_wait(
            topic, key=key, value=value, headers=[codec.CONTENT_TYPE_HEADER]
        )

    return publish


def view_reader(
    worker: str, http: aiohttp.ClientSession
) -> Callable[[str, str], Awaitable[SubscriberView]]:
    """The manager page's read: the same internal worker route as a JSON read, with the token."""

    async def read_view(sid: str, token: str) -> SubscriberView:
        path = PROFILE_READ.format(subscriber_id=urllib.parse.quote(sid, safe=""))
        target = URL(worker + INTERNAL_PREFIX + path, encoded=True).with_query(token=token)
        try:
            async with http.get(target, headers={"Accept": "application/json"}) as upstream:
                body = await upstream.read()
                if upstream.status == 200:
                    return SubscriberView.model_validate_json(body)
                problem = Problem.model_validate_json(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("worker unreachable for a page's read", error=type(exc).__name__)
            raise ApiError(503, "Service Unavailable", "try again in a moment") from exc
        raise ApiError(problem.status, problem.title, problem.detail)

    return read_view


def build_app(
    settings: Settings, api: SubscriptionApi, http: aiohttp.ClientSession
) -> web.Application:
    """The public aiohttp application: every API route, profile reads forwarded, health."""
    limit = settings.api.max_body_bytes
    worker = settings.api.worker_url.rstrip("/")
    app = web.Application(client_max_size=limit + 1)
    app.on_response_prepare.append(_security_headers)

    def handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return _response(await answer(api, route, request, request.match_info, limit))

        return handle

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        # As received, under the internal prefix of the worker's internal port.
        target = URL(worker + INTERNAL_PREFIX + request.rel_url.raw_path_qs, encoded=True)
        for attempt in (1, 2):
            try:
                async with http.get(target, headers=headers) as upstream:
                    body = await upstream.read()
                    return web.Response(
                        body=body,
                        status=upstream.status,
                        headers={
                            name: upstream.headers[name]
                            for name in PASSED_BACK_HEADERS
                            if name in upstream.headers
                        },
                    )
            except aiohttp.ClientConnectionError as exc:
                # A pooled keep-alive connection the worker had just closed: a read is
                # idempotent, so it is tried once more on a fresh connection.
                if attempt == 1 and not isinstance(exc, aiohttp.ServerTimeoutError):
                    continue
                log.warning("worker unreachable for a profile read", error=type(exc).__name__)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("worker unreachable for a profile read", error=type(exc).__name__)
            break
        problem = ApiResponse(503, Health(status="unavailable", checks={"worker_reachable": False}))
        return _response(problem)

    pages = pages_http.routes(ReaderPages(api, view_reader(worker, http)), api, limit)

    def page_first(
        page: pages_http.PageRoute,
        fallback: Callable[[web.Request], Awaitable[web.StreamResponse]] | None,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            result = await pages_http.answer(page, request, request.match_info)
            if result is not None:
                return _response(result)
            if fallback is None:
                raise web.HTTPMethodNotAllowed(request.method, [])
            return await fallback(request)

        return handle

    for path in {**ROUTES, **pages}:
        api_methods, page_methods = ROUTES.get(path, {}), pages.get(path, {})
        for method in {**api_methods, **page_methods}:
            route = api_methods.get(method)
            target = forward if path == PROFILE_READ else handler(route) if route else None
            if method in page_methods:
                target = page_first(page_methods[method], target)
            assert target is not None
            app.router.add_route(method.upper(), path, target)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return _response(ApiResponse(200, Health(status="ok")))

    async def readyz(_: web.Request) -> web.StreamResponse:
        return _response(readiness({"broker_reachable": await broker_reachable(settings)}))

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(settings: Settings, tokens: Tokens) -> None:
    """Run the stand-alone API until SIGTERM or Ctrl-C, then close the producer cleanly."""
    producer = AIOKafkaProducer(
        **settings.kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    topics = settings.topics
    api = SubscriptionApi(
        settings=settings.api,
        tokens=tokens,
        publish=kafka_publisher(producer, topics.name(topics.subscriptions)),
        read_profile=_no_local_profiles,
        clock=Clock(settings.digest.clock_speed, settings.digest.clock_anchor),
        source=f"{settings.source}:api",
    )
    timeout = aiohttp.ClientTimeout(total=10)
    await producer.start()
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            runner = web.AppRunner(build_app(settings, api, http), access_log=None)
            internal = web.AppRunner(metrics_app(), access_log=None)
            await runner.setup()
            await internal.setup()
            try:
                conf = settings.api
                await web.TCPSite(internal, conf.metrics_host, conf.metrics_port).start()
                await web.TCPSite(runner, conf.host, conf.port).start()
                log.info(
                    "api listening",
                    host=conf.host,
                    port=conf.port,
                    metrics_host=conf.metrics_host,
                    metrics_port=conf.metrics_port,
                )
                await stop.wait()
                log.info("api stopping")
            finally:
                await runner.cleanup()
                await internal.cleanup()
    finally:
        await producer.stop()


async def _no_local_profiles(_: str) -> Any:
    raise AssertionError("profile reads are forwarded to a worker")
