"""Reader pages: the HTML a reader lands on from the links in a mail.

Thin adapters over ``SubscriptionApi`` (the JSON API's logic): a page reads a link token,
shows what a button would do, and its form's POST calls the same service function as the JSON
API. Nothing changes on a GET (link scanners and mail clients prefetch links).

* ``GET /v1/unsubscribe?token=`` — what will stop, and a button; ``POST`` (the page's form)
  unsubscribes and offers an "undo" (``POST /v1/unsubscribe/undo``) that restores the
  subscription, without a new confirmation, for ``tokens.undo_max_age_s``. The RFC 8058
  one-click POST of mail clients (no CSRF token) still answers JSON: see ``unsubscribe``.
* ``GET /v1/confirm?token=`` — a guest's confirmation page; ``POST`` confirms.
* ``GET /v1/erasure/confirm?token=`` — the erasure confirmation page; ``POST`` erases.
* ``GET /v1/subscribers/{id}/subscriptions?token=<manage token>`` with ``Accept: text/html``
  — the subscription manager; its forms post to ``/v1/subscribers/{id}/manage``.

CSRF: every page form carries a token (``Tokens.form``) bound to the form and to the link token
the page was reached with, expiring after ``tokens.form_max_age_s``; a POST without a valid one,
or one a browser marks as coming from another site (``Sec-Fetch-Site``, ``Origin``), is refused
with 403. Pages load nothing but ``/v1/pages.css`` from this origin (``SECURITY_HEADERS``'
Content-Security-Policy holds: no inline style or script), link to no third party, and are sent
with ``Referrer-Policy: no-referrer``. URLs in pages are relative, so the API can sit under a
path prefix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import time as dtime
from pathlib import Path
from typing import Any

import jinja2
import orjson

from newsroom_notify.api.models import SubscriberView
from newsroom_notify.api.service import ApiError, ApiResponse, SubscriptionApi
from newsroom_notify.domain.tokens import InvalidToken, TokenClaims

HERE = Path(__file__).parent
STYLESHEET = (HERE / "static" / "pages.css").read_bytes()
SITE = "Newsroom notifications"
FREQUENCIES = (("hourly", "Every hour"), ("daily", "Once a day"), ("weekly", "Once a week"))
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NOTICES = {
    "cancel": "Unsubscribed.",
    "cancel_all": "Unsubscribed from everything.",
    "preferences": "Saved.",
    "delivery": "Delivery changed.",
    "mute": "Muted.",
    "unmute": "Unmuted.",
}
CHANGES_LAG = " Changes can take a moment to show here."

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value is escaped: names, ids and tokens are data, never markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

ReadView = Callable[[str, str], Awaitable[SubscriberView]]
"""Read a subscriber's state with their manage token (sid, token): ``ApiError`` if refused."""


def describe(scope: str, target: str | None) -> str:
    """What a subscription is about, in words."""
    if scope == "article":
        return f"new comments on the article {target}"
    if scope == "replies":
        return f"replies to your comments on {target}" if target else "replies to your comments"
    if scope == "commenter":
        return f"new comments by the commenter {target}"
    if scope == "journalist":
        return f"new articles by the journalist {target}"
    if scope == "section":
        return f"new articles in the section {target}"
    if scope == "digest":
        return f"your {target} digest" if target else "your digests"
    return f"{scope} {target or ''}".strip()


def is_form(content_type: str | None) -> bool:
    """Whether the body is a form (what a page's form posts), not JSON."""
    return (content_type or "").split(";", 1)[0].strip().lower() in FORM_TYPES


def same_origin(headers: Mapping[str, str], public_url: str) -> bool:
    """False when the browser says the request comes from another site. ``Sec-Fetch-Site``
    (every current browser) decides when present: same-origin, or none (typed, bookmarked).
    Without it, an ``Origin`` must be the API's public origin or the one the request was
    addressed to; ``Origin: null`` (what Chromium sends from a page with
    ``Referrer-Policy: no-referrer``) and no header at all rely on the CSRF token alone."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() in ("same-origin", "none")
    origin = headers.get("Origin")
    if origin is None or origin == "null":
        return True
    parts = urllib.parse.urlsplit(public_url)
    allowed = {f"{parts.scheme}://{parts.netloc}"}
    host = headers.get("Host")
    if host:
        allowed |= {f"http://{host}", f"https://{host}"}
    return origin in allowed


def _html(status: int, template: str, **values: Any) -> ApiResponse:
    values.setdefault("site", SITE)
    page = _templates.get_template(template).render(**values)
    return ApiResponse(status, page, "text/html")


def message(
    status: int, title: str, text: str, *, root: str, kind: str = "done", back: str = ""
) -> ApiResponse:
    """A page that only says something (done, or what went wrong)."""
    return _html(
        status, "message.html.j2", title=title, message=text, root=root, kind=kind, back=back
    )


def stylesheet() -> ApiResponse:
    """GET /v1/pages.css: the pages' only stylesheet (cacheable: it holds nothing personal)."""
    return ApiResponse(
        200, STYLESHEET.decode(), "text/css", {"Cache-Control": "public, max-age=3600"}
    )


def _time(value: str) -> dtime:
    try:
        return dtime.fromisoformat(value)
    except ValueError as exc:
        raise ApiError(422, "Unprocessable Content", "a time must be HH:MM") from exc


def _int(value: str | None, what: str) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise ApiError(422, "Unprocessable Content", f"{what} must be a number") from exc


@dataclass
class ReaderPages:
    """The reader pages: each method takes a request's parts and answers an ``ApiResponse``."""

    api: SubscriptionApi
    read_view: ReadView

    # -------------------------------------------------------------- helpers

    def _guard(
        self, name: str, credential: str, form: Mapping[str, str], headers: Mapping[str, str]
    ) -> None:
        """403 unless the POST comes from this site's page: same origin, and a current CSRF
        token of the form ``name`` bound to ``credential``."""
        if not same_origin(headers, self.api.settings.public_url):
            raise ApiError(403, "Forbidden", "this form was sent from another site")
        try:
            self.api.tokens.check_form(form.get("csrf", ""), name, credential)
        except InvalidToken as exc:
            raise ApiError(
                403, "Forbidden", "this form has expired or was not sent from its page"
            ) from exc

    @staticmethod
    def _failed(error: ApiError, root: str, back: str = "") -> ApiResponse:
        titles = {403: "Not allowed", 404: "Nothing here", 429: "Too many requests"}
        title = titles.get(error.status, "This link does not work")
        text = error.detail[:1].upper() + error.detail[1:] + "."
        response = message(error.status, title, text, root=root, kind="error", back=back)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    # --------------------------------------------------------- unsubscribe

    def unsubscribe_page(self, query: Mapping[str, str]) -> ApiResponse:
        """GET /v1/unsubscribe?token=: what will stop, and the button. Changes nothing."""
        try:
            claims = self.api.unsubscribe_claims(query)
        except ApiError as error:
            return self._failed(error, "")
        token = query["token"]
        return _html(
            200,
            "unsubscribe.html.j2",
            title="Unsubscribe",
            root="",
            what=describe(claims.scope, claims.target),
            token=token,
            csrf=self.api.tokens.form("unsubscribe", token),
        )

    async def unsubscribe(
        self, query: Mapping[str, str], form: Mapping[str, str], headers: Mapping[str, str]
    ) -> ApiResponse:
        """POST /v1/unsubscribe?token=. With the page's CSRF token: the page's button (done,
        and the undo). Without one: RFC 8058 one-click from a mail client, token-only as the RFC
        requires (it sends no CSRF token), answered as JSON as before."""
        if "csrf" not in form:
            return await self.api.unsubscribe(query, form)
        try:
            claims = self.api.unsubscribe_claims(query)
            self._guard("unsubscribe", query["token"], form, headers)
            await self.api.unsubscribe(query, {"List-Unsubscribe": "One-Click"})
        except ApiError as error:
            return self._failed(error, "")
        undo = self.api.tokens.undo(claims)
        return _html(
            200,
            "unsubscribed.html.j2",
            title="Unsubscribed",
            root="",
            what=describe(claims.scope, claims.target),
            undo=undo,
            undo_minutes=max(1, self.api.tokens.undo_max_age // 60),
            csrf=self.api.tokens.form("undo", undo),
        )

    async def undo(self, form: Mapping[str, str], headers: Mapping[str, str]) -> ApiResponse:
        """POST /v1/unsubscribe/undo: restore the subscription the page just cancelled."""
        token = form.get("undo", "")
        try:
            self._guard("undo", token, form, headers)
            await self.api.restore(token)
            claims: TokenClaims = self.api.tokens.read_undo(token)
        except ApiError as error:
            return self._failed(error, "../")
        return _html(
            200,
            "restored.html.j2",
            title="Subscribed again",
            root="../",
            what=describe(claims.scope, claims.target),
        )

    # ------------------------------------------------------------- confirm

    def confirm_page(self, query: Mapping[str, str], erasure: bool = False) -> ApiResponse:
        """GET /v1/confirm?token= (or /v1/erasure/confirm): what the button would confirm."""
        root = "../" if erasure else ""
        token = query.get("token", "")
        read = self.api.tokens.read_erase if erasure else self.api.tokens.read_confirm
        try:
            claims = read(token)
        except InvalidToken:
            what = "erasure" if erasure else "confirmation"
            invalid = ApiError(400, "Bad Request", f"this {what} link is invalid or has expired")
            return self._failed(invalid, root)
        if erasure:
            return _html(
                200,
                "confirm.html.j2",
                title="Erase your data",
                root=root,
                question="Erase everything this service knows about you?",
                what="Your subscriptions, preferences, pending digests and your address",
                action="confirm",
                button="Erase my data",
                token=token,
                csrf=self.api.tokens.form("erase", token),
            )
        return _html(
            200,
            "confirm.html.j2",
            title="Confirm your subscription",
            root=root,
            question="Please confirm that you want e-mails about:",
            what=describe(claims.scope, claims.target),
            action="confirm",
            button="Confirm",
            token=token,
            csrf=self.api.tokens.form("confirm", token),
        )

    async def confirm(
        self, form: Mapping[str, str], headers: Mapping[str, str], ip: str, erasure: bool = False
    ) -> ApiResponse:
        """POST /v1/confirm (or /v1/erasure/confirm) from the page's form."""
        root = "../" if erasure else ""
        token = form.get("token", "")
        body = orjson.dumps({"token": token})
        try:
            self._guard("erase" if erasure else "confirm", token, form, headers)
            if erasure:
                await self.api.confirm_erasure(body, ip)
            else:
                await self.api.confirm(body, ip)
                claims = self.api.tokens.read_confirm(token)
        except ApiError as error:
            return self._failed(error, root)
        if erasure:
            text = "Done: everything this service knew about you is being erased."
            return message(200, "Erased", text, root=root)
        what = describe(claims.scope, claims.target)
        text = f"Thank you: you will receive e-mails about {what}."
        return message(200, "Confirmed", text, root=root)

    # --------------------------------------------------------------- manage

    async def manage_page(
        self, sid: str, query: Mapping[str, str], notice: str | None = None
    ) -> ApiResponse:
        """GET /v1/subscribers/{sid}/subscriptions?token= (text/html): the manager."""
        root = "../../"
        token = query.get("token", "")
        try:
            self.api.authorize(sid, {}, {"token": token})
            view = await self.read_view(sid, token)
        except ApiError as error:
            return self._failed(error, root)
        prefs = view.preferences
        muted = set(prefs.muted_articles)
        subscriptions = [
            {
                "scope": s.scope,
                "target": s.target,
                "what": describe(s.scope, s.target).capitalize(),
                "delivery": s.delivery,
                "delivery_label": "in a digest" if s.delivery == "digest" else "as it happens",
                "active": s.active,
                "article": s.target if s.scope in ("article", "replies") and s.target else None,
                "muted": s.target in muted,
            }
            for s in view.subscriptions
        ]
        done = NOTICES.get(query.get("done", ""))
        return _html(
            200,
            "manage.html.j2",
            title="Your subscriptions",
            root=root,
            notice=notice or (done + CHANGES_LAG if done else None),
            subscriptions=subscriptions,
            prefs=prefs,
            quiet_start=prefs.quiet_hours.start.strftime("%H:%M") if prefs.quiet_hours else "22:00",
            quiet_end=prefs.quiet_hours.end.strftime("%H:%M") if prefs.quiet_hours else "07:00",
            frequencies=FREQUENCIES,
            weekdays=WEEKDAYS,
            action="manage",
            token=token,
            csrf=self.api.tokens.form("manage", token),
        )

    async def manage(
        self, sid: str, form: Mapping[str, str], muted: list[str], headers: Mapping[str, str]
    ) -> ApiResponse:
        """POST /v1/subscribers/{sid}/manage: one of the manager's forms (``action``). Answers
        303 back to the manager (POST-redirect-GET), or a page when the link stops working."""
        root = "../../"
        token = form.get("token", "")
        query = {"token": token}
        action = form.get("action", "")
        back = "subscriptions?" + urllib.parse.urlencode(query)
        try:
            self.api.authorize(sid, {}, query)
            self._guard("manage", token, form, headers)
            if action == "cancel":
                target = form.get("target") or ""
                await self.api.cancel(sid, form.get("scope", ""), {}, {**query, "target": target})
            elif action == "delivery":
                body = orjson.dumps(
                    {"target": form.get("target") or None, "delivery": form.get("delivery", "")}
                )
                await self.api.change_delivery(sid, form.get("scope", ""), {}, query, body)
            elif action == "cancel_all":
                view = await self.read_view(sid, token)
                for sub in [s for s in view.subscriptions if s.active]:
                    target = sub.target or ""
                    await self.api.cancel(sid, sub.scope, {}, {**query, "target": target})
            elif action in ("preferences", "mute", "unmute"):
                body = await self._preferences(sid, token, action, form, muted)
                await self.api.preferences(sid, {}, query, body)
            elif action == "sign_out":
                await self.api.sign_out(sid, {}, query)
                text = "Done: every link we sent you so far has stopped working, this page's too."
                return message(200, "Signed out everywhere", text, root=root)
            elif action == "erase":
                await self.api.erase(sid, {}, query)
                text = (
                    "We sent you an e-mail with a link to confirm the erasure. Nothing is erased "
                    "until you confirm."
                )
                return message(202, "Check your e-mail", text, root=root, back=back)
            else:
                return self._failed(ApiError(400, "Bad Request", "unknown action"), root)
        except ApiError as error:
            return self._failed(error, root, back if error.status == 422 else "")
        done = urllib.parse.urlencode({**query, "done": action})
        return ApiResponse(303, None, "text/plain", {"Location": f"subscriptions?{done}"})

    async def _preferences(
        self, sid: str, token: str, action: str, form: Mapping[str, str], muted: list[str]
    ) -> bytes:
        """The PUT body the form stands for: the preferences form as a whole, or the current
        preferences with one article (un)muted."""
        if action != "preferences":
            current = (await self.read_view(sid, token)).preferences.model_dump(mode="json")
            article = form.get("article", "")
            articles = [a for a in current["muted_articles"] if a != article]
            current["muted_articles"] = [*articles, article] if action == "mute" else articles
            return orjson.dumps(current)
        quiet = None
        if form.get("quiet") == "on":
            quiet = {
                "start": _time(form.get("quiet_start", "")).isoformat("minutes"),
                "end": _time(form.get("quiet_end", "")).isoformat("minutes"),
            }
        return orjson.dumps(
            {
                "digest": form.get("digest", "daily"),
                "timezone": form.get("timezone", "UTC").strip(),
                "digest_hour": _int(form.get("digest_hour"), "the digest hour"),
                "digest_weekday": _int(form.get("digest_weekday"), "the weekday"),
                "quiet_hours": quiet,
                "paused": form.get("paused") == "on",
                "muted_articles": muted,
            }
        )
