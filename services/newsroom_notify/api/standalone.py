"""The stand-alone, stateless subscription API (``newsroom-notify api``).

Serves the same routes as every worker (``api.web.ROUTES``) on its own port, so it can be scaled
and exposed apart from the stateful workers: commands are published to the subscriptions topic
by its own idempotent producer; a profile read (GET .../subscriptions) is forwarded to
``api.worker_url``, whose worker routes it to the partition's owner.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from newsroom_notify.api.models import Health
from newsroom_notify.api.service import ApiResponse, SubscriptionApi
from newsroom_notify.api.web import PROFILE_READ, ROUTES, Route, answer, broker_reachable, readiness
from newsroom_notify.clock import Clock
from newsroom_notify.contract import codec
from newsroom_notify.contract import events as ev
from newsroom_notify.settings import Settings
from newsroom_notify.stream.stages import build_tokens

log = structlog.get_logger(__name__)

FORWARDED_HEADERS = ("Authorization", "Accept")
PASSED_BACK_HEADERS = ("Content-Type", "Retry-After", "WWW-Authenticate", "Cache-Control")


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


def build_app(
    settings: Settings, api: SubscriptionApi, http: aiohttp.ClientSession
) -> web.Application:
    """The aiohttp application: every API route, profile reads forwarded, health, metrics."""
    limit = settings.api.max_body_bytes
    worker = settings.api.worker_url.rstrip("/")
    app = web.Application(client_max_size=limit + 1)

    def handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return _response(await answer(api, route, request, request.match_info, limit))

        return handle

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        try:
            target = URL(worker + request.rel_url.raw_path_qs, encoded=True)  # as received
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
        except (aiohttp.ClientError, TimeoutError):
            log.warning("worker unreachable for a profile read", worker=worker)
            problem = ApiResponse(
                503, Health(status="unavailable", checks={"worker_reachable": False})
            )
            return _response(problem)

    for path, methods in ROUTES.items():
        for method, route in methods.items():
            target = forward if path == PROFILE_READ else handler(route)
            app.router.add_route(method.upper(), path, target)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return _response(ApiResponse(200, Health(status="ok")))

    async def readyz(_: web.Request) -> web.StreamResponse:
        return _response(readiness({"broker_reachable": await broker_reachable(settings)}))

    async def metrics(_: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(settings: Settings) -> None:
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
        tokens=build_tokens(settings),
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
            await runner.setup()
            try:
                site = web.TCPSite(runner, settings.api.host, settings.api.port)
                await site.start()
                log.info("api listening", host=settings.api.host, port=settings.api.port)
                await stop.wait()
                log.info("api stopping")
            finally:
                await runner.cleanup()
    finally:
        await producer.stop()


async def _no_local_profiles(_: str) -> Any:
    raise AssertionError("profile reads are forwarded to a worker")
