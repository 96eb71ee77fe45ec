"""Request and response bodies of the HTTP API (the OpenAPI document is generated from them)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from newsroom_notify.contract.events import Delivery, Frequency, QuietHours, Scope

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def plain_text(value: str) -> str:
    """A name or an id as it may appear in a mail header or subject: no control characters
    (CR, LF, NUL... would let a value write its own mail headers) and no bidirectional
    overrides (which make "moc.elpmaxe" read as "example.com")."""
    for char in value:
        if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS:
            raise ValueError("control and bidirectional-override characters are not allowed")
    return value


PlainText = Annotated[str, AfterValidator(plain_text)]


class Body(BaseModel):
    """Strict request bodies: unknown fields are an error (400), not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class GuestIdentity(Body):
    """Who a guest is: a display name and an e-mail address."""

    name: PlainText = Field(min_length=1, max_length=200, examples=["Geoff Roach"])
    email: EmailStr = Field(examples=["geoff.roach@example.org"])


class SubscribeRequest(Body):
    """Subscribe to something. Members authenticate with a bearer token; guests send ``guest``
    and receive a confirmation request first."""

    scope: Scope = Field(examples=["article"])
    target: PlainText | None = Field(
        None, min_length=1, max_length=200, examples=["a-20261128-council"]
    )
    delivery: Delivery | None = Field(None, examples=["digest"])
    guest: GuestIdentity | None = None


class DeliveryRequest(Body):
    """Change how one existing subscription is delivered (no new confirmation)."""

    target: PlainText | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The subscription's target; null only for site-wide replies.",
        examples=["a-20261128-council"],
    )
    delivery: Delivery = Field(examples=["digest"])


class PreferencesRequest(Body):
    """Delivery preferences."""

    digest: Frequency = Field("daily", examples=["daily"])
    timezone: str = Field("UTC", max_length=64, examples=["Europe/Berlin"])
    digest_hour: int = Field(8, ge=0, le=23)
    digest_weekday: int = Field(0, ge=0, le=6)
    quiet_hours: QuietHours | None = None
    paused: bool = False
    muted_articles: list[str] = Field(default_factory=list, max_length=500)


class ConfirmRequest(Body):
    """A guest confirms their address with the token from the confirmation notification."""

    token: str = Field(min_length=1, max_length=2000)


class ErasureRequest(Body):
    """A guest asks for the erasure of the data kept about an address (confirmed by mail)."""

    email: EmailStr = Field(examples=["geoff.roach@example.org"])


class Accepted(BaseModel):
    """The request was accepted and will take effect within moments."""

    status: Literal["accepted", "confirmation_requested", "unsubscribed", "signed_out"]
    subscriber_id: str


class SubscriptionView(BaseModel):
    """One subscription."""

    scope: Scope
    target: str | None
    delivery: Delivery
    active: bool = Field(description="False while a guest address is unconfirmed.")


class SubscriberView(BaseModel):
    """A subscriber's subscriptions and preferences."""

    subscriber_id: str
    confirmed: bool
    subscriptions: list[SubscriptionView]
    preferences: PreferencesRequest


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Too Many Requests"])
    status: int = Field(examples=[429])
    detail: str = Field(examples=["Too many requests from this address; try again later."])
