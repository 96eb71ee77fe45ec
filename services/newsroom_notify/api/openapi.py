"""The OpenAPI 3.1 document of the HTTP API, generated from the request/response models.

Written to ``schemas/openapi.json`` by ``make schemas``; a test fails when it is stale.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from newsroom_notify import __version__
from newsroom_notify.api.models import (
    Accepted,
    ConfirmRequest,
    DeliveryRequest,
    ErasureRequest,
    Health,
    PreferencesRequest,
    Problem,
    SubscribeRequest,
    SubscriberView,
)

REF = "#/components/schemas/{model}"
MODELS: list[type[BaseModel]] = [
    Accepted,
    ConfirmRequest,
    DeliveryRequest,
    ErasureRequest,
    Health,
    PreferencesRequest,
    Problem,
    SubscribeRequest,
    SubscriberView,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problems(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request or invalid token",
        401: "Missing or invalid credentials",
        403: "Not your data",
        404: "Nothing here",
        413: "Body too large",
        415: "Body is not JSON (or, for one-click unsubscribe, not a form)",
        422: "Invalid fields",
        429: "Rate limit reached",
    }
    return {
        str(code): {
            "description": reasons[code],
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
        for code in codes
    }


SUBSCRIBER = {
    "name": "subscriber_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "Member id, or a guest's derived id (guest_...).",
}
MANAGE = {
    "name": "token",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Manage token from a notification (guests); members use a bearer token.",
}
UNSUB_TOKEN = {
    "name": "token",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "The unsubscribe token of a notification or digest.",
}
SECURED: list[dict[str, list[str]]] = [{"member": []}, {}]


def _scope(digest: bool) -> dict[str, Any]:
    """The ``{scope}`` path parameter (``digest``: every digest-mode subscription, to cancel)."""
    scopes = ["article", "replies", "commenter", "journalist", "section"]
    return {
        "name": "scope",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [*scopes, "digest"] if digest else scopes},
    }


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    accepted = _json(Accepted, "Accepted; takes effect within moments")
    paths: dict[str, Any] = {
        "/v1/subscriptions": {
            "post": {
                "operationId": "subscribe",
                "summary": "Subscribe (member with a bearer token, or guest with 'guest')",
                "security": SECURED,
                "requestBody": _body(SubscribeRequest),
                "responses": {"202": accepted, **_problems(400, 401, 413, 415, 422, 429)},
            }
        },
        "/v1/subscribers/{subscriber_id}/subscriptions": {
            "get": {
                "operationId": "listSubscriptions",
                "summary": "List my subscriptions and preferences",
                "security": SECURED,
                "parameters": [SUBSCRIBER, MANAGE],
                "responses": {
                    "200": _json(SubscriberView, "Subscriptions and preferences"),
                    **_problems(401, 403, 404),
                },
            }
        },
        "/v1/subscribers/{subscriber_id}/subscriptions/{scope}": {
            "put": {
                "operationId": "changeDelivery",
                "summary": "Deliver one existing subscription instantly or in the digest (no "
                "new confirmation; a subscription the subscriber does not have is left alone)",
                "security": SECURED,
                "parameters": [SUBSCRIBER, _scope(digest=False), MANAGE],
                "requestBody": _body(DeliveryRequest),
                "responses": {"202": accepted, **_problems(400, 401, 403, 413, 415, 422)},
            },
            "delete": {
                "operationId": "cancelSubscription",
                "summary": "Cancel one subscription",
                "security": SECURED,
                "parameters": [
                    SUBSCRIBER,
                    _scope(digest=True),
                    {
                        "name": "target",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    MANAGE,
                ],
                "responses": {"202": accepted, **_problems(401, 403, 422)},
            },
        },
        "/v1/subscribers/{subscriber_id}/preferences": {
            "put": {
                "operationId": "updatePreferences",
                "summary": "Update delivery preferences",
                "security": SECURED,
                "parameters": [SUBSCRIBER, MANAGE],
                "requestBody": _body(PreferencesRequest),
                "responses": {"202": accepted, **_problems(400, 401, 403, 413, 415, 422)},
            }
        },
        "/v1/subscribers/{subscriber_id}": {
            "delete": {
                "operationId": "eraseSubscriber",
                "summary": "Erase me (right to erasure): at once with a member's bearer token; "
                "with a manage token the address is first asked to confirm by mail",
                "security": SECURED,
                "parameters": [SUBSCRIBER, MANAGE],
                "responses": {"202": accepted, **_problems(401, 403)},
            }
        },
        "/v1/subscribers/{subscriber_id}/sign-out": {
            "post": {
                "operationId": "signOutEverywhere",
                "summary": "Sign me out everywhere: every link minted for me so far stops working",
                "security": SECURED,
                "parameters": [SUBSCRIBER, MANAGE],
                "responses": {"202": accepted, **_problems(401, 403)},
            }
        },
        "/v1/erasure": {
            "post": {
                "operationId": "requestErasure",
                "summary": "A guest asks, by address, for erasure; the address gets a mail to "
                "confirm it (the same answer whether or not the address is known)",
                "requestBody": _body(ErasureRequest),
                "responses": {"202": accepted, **_problems(400, 413, 422, 429)},
            }
        },
        "/v1/erasure/confirm": {
            "post": {
                "operationId": "confirmErasure",
                "summary": "Confirm an erasure with the token of the confirm_erasure mail",
                "requestBody": _body(ConfirmRequest),
                "responses": {"202": accepted, **_problems(400, 413, 422, 429)},
            }
        },
        "/v1/confirm": {
            "post": {
                "operationId": "confirm",
                "summary": "Confirm a guest address with its confirmation token",
                "requestBody": _body(ConfirmRequest),
                "responses": {"202": accepted, **_problems(400, 413, 415, 422, 429)},
            }
        },
        "/v1/unsubscribe": {
            "get": {
                "operationId": "unsubscribePage",
                "summary": "Confirmation page for an unsubscribe link (changes nothing)",
                "parameters": [UNSUB_TOKEN],
                "responses": {
                    "200": {
                        "description": "An HTML page with a one-click form",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "400": {
                        "description": "An HTML page: the link is invalid or has expired",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                },
            },
            "post": {
                "operationId": "unsubscribeOneClick",
                "summary": "RFC 8058 one-click unsubscribe",
                "parameters": [UNSUB_TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "List-Unsubscribe": {"type": "string", "const": "One-Click"}
                                },
                                "required": ["List-Unsubscribe"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Unsubscribed (the reader page's form, which adds its "
                        "`csrf` field: the 'done' page)",
                        "content": {
                            "application/json": {"schema": _ref(Accepted)},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems(413, 415),
                    "400": {
                        "description": "Invalid token (an HTML page for the reader page's form)",
                        "content": {
                            "application/problem+json": {"schema": _ref(Problem)},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "403": {
                        "description": "The reader page's form with an invalid CSRF token",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                },
            },
        },
        "/healthz": {
            "get": {
                "operationId": "liveness",
                "summary": "Liveness",
                "responses": {"200": _json(Health, "Alive")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Readiness: broker reachable, tables recovered, not rebalancing",
                "responses": {
                    "200": _json(Health, "Ready"),
                    "503": _json(Health, "Not ready"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "newsroom-notify subscription API",
            "version": __version__,
            "description": "Subscribe, confirm, one-click unsubscribe, preferences, erasure. "
            "Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "member": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (HS256, signed by the newsroom's identity system)",
                }
            },
        },
    }
