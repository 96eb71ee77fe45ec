"""The reader pages' HTTP routes (``api.pages``) on the stand-alone API's aiohttp server.

Some share a path with a JSON route: a page answers a browser (``Accept: text/html`` on the
manager's GET, a form body on ``/v1/confirm`` and ``/v1/erasure/confirm``, a CSRF field on
``/v1/unsubscribe``); a handler answering None hands the request to the JSON route instead.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from newsroom_notify.api import pages as p
from newsroom_notify.api.service import ApiError, ApiResponse, SubscriptionApi
from newsroom_notify.api.web import PROFILE_READ, _body, _ip, parse_form, require_media_type

log = structlog.get_logger(__name__)

PageRoute = Callable[[Any, Mapping[str, str]], Awaitable[ApiResponse | None]]


def wants_html(accept: str | None) -> bool:
    """Whether a GET comes from a browser navigating (HTML before JSON in ``Accept``)."""
    kinds = [part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")]
    if "text/html" not in kinds:
        return False
    return "application/json" not in kinds or kinds.index("text/html") < kinds.index(
        "application/json"
    )


async def read_form(request: Any, limit: int) -> tuple[dict[str, str], list[str]]:
    """A form body's fields (the last value of each) and every ``muted`` value."""
    content_type = request.headers.get("Content-Type", "")
    require_media_type(content_type, p.FORM_TYPES)
    body = await _body(request, limit)
    if content_type.lower().startswith("multipart/form-data"):
        return parse_form(content_type, body), []
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs), [value for name, value in pairs if name == "muted"]


def routes(
    pages: p.ReaderPages, api: SubscriptionApi, limit: int
) -> dict[str, dict[str, PageRoute]]:
    """path -> method -> page handler."""

    async def stylesheet(_: Any, __: Mapping[str, str]) -> ApiResponse:
        return p.stylesheet()

    async def unsubscribe_page(request: Any, _: Mapping[str, str]) -> ApiResponse:
        return pages.unsubscribe_page(request.query)

    async def unsubscribe(request: Any, _: Mapping[str, str]) -> ApiResponse:
        form, _muted = await read_form(request, limit)  # RFC 8058 posts a form as well
        return await pages.unsubscribe(request.query, form, request.headers)

    async def undo(request: Any, _: Mapping[str, str]) -> ApiResponse:
        form, _muted = await read_form(request, limit)
        return await pages.undo(form, request.headers)

    def confirm_page(erasure: bool) -> PageRoute:
        async def page(request: Any, _: Mapping[str, str]) -> ApiResponse:
            return pages.confirm_page(request.query, erasure)

        return page

    def confirm(erasure: bool) -> PageRoute:
        async def post(request: Any, _: Mapping[str, str]) -> ApiResponse | None:
            if not p.is_form(request.headers.get("Content-Type")):
                return None  # the JSON API
            form, _muted = await read_form(request, limit)
            return await pages.confirm(form, request.headers, _ip(api, request), erasure)

        return post

    async def manage_page(request: Any, match: Mapping[str, str]) -> ApiResponse | None:
        if not wants_html(request.headers.get("Accept")):
            return None  # the JSON read
        return await pages.manage_page(match["subscriber_id"], request.query)

    async def manage(request: Any, match: Mapping[str, str]) -> ApiResponse:
        form, muted = await read_form(request, limit)
        return await pages.manage(match["subscriber_id"], form, muted, request.headers)

    return {
        "/v1/pages.css": {"get": stylesheet},
        "/v1/unsubscribe": {"get": unsubscribe_page, "post": unsubscribe},
        "/v1/unsubscribe/undo": {"post": undo},
        "/v1/confirm": {"get": confirm_page(False), "post": confirm(False)},
        "/v1/erasure/confirm": {"get": confirm_page(True), "post": confirm(True)},
        PROFILE_READ: {"get": manage_page},
        "/v1/subscribers/{subscriber_id}/manage": {"post": manage},
    }


async def answer(route: PageRoute, request: Any, match: Mapping[str, str]) -> ApiResponse | None:
    """The page's response, None to hand over to the JSON route; an error as the JSON API's."""
    try:
        return await route(request, match)
    except ApiError as error:
        return error.response()
    except Exception:  # never a stack trace or an internal id in a response
        log.exception("page handler failed")
        return ApiError(500, "Internal Server Error", "something went wrong").response()
