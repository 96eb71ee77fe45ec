"""The composition root: the one place that builds the service's parts from its settings and
wires them together; the command line (``cli``) calls it, nothing else of the service imports
it.

* ``create_worker``: the worker process, a Faust app (``stream.app``: the pipeline's topics,
  tables and agents) with the subscription API's internal routes mounted on its web server
  (``api.web``), the API reading profiles from the worker's own table;
* ``serve_api``: the stand-alone, stateless API process (``api.standalone``);
* ``build_tokens``: the token minter/verifier both of them use.

The layers (checked by ``make lint``, see pyproject.toml's ``[tool.importlinter]``)::

    cli                           the command line
    bootstrap                     this module
    stream | api | mailer         the Faust shell | the HTTP API | the e-mail sender
    domain                        the rules, pure
    contract                      events, codec, topics, dead-letter headers
    settings, clock, metrics, logs

The demo, the local Kafka, the process supervisor, builders and samples are the development
harness, its own distribution (``newsroom_dev``, services/dev), which the service never imports.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import faust

from newsroom_notify.api import standalone
from newsroom_notify.api.service import SubscriptionApi
from newsroom_notify.api.web import mount, publisher
from newsroom_notify.clock import Clock
from newsroom_notify.domain.state import Profile
from newsroom_notify.domain.tokens import Tokens
from newsroom_notify.settings import Settings
from newsroom_notify.stream.app import create_app
from newsroom_notify.stream.faust_ext.tables import ModelTable
from newsroom_notify.stream.stages import raw_topic


def build_tokens(settings: Settings) -> Tokens:
    """The token minter/verifier configured by ``settings.tokens``."""
    return Tokens(
        [k.get_secret_value() for k in settings.tokens.secret_keys],
        settings.tokens.unsubscribe_max_age_s,
        settings.tokens.confirm_max_age_s,
        settings.tokens.manage_max_age_s,
        undo_max_age=settings.tokens.undo_max_age_s,
        form_max_age=settings.tokens.form_max_age_s,
    )


def create_worker(settings: Settings, clock: Callable[[], datetime] | None = None) -> faust.App:
    """The worker's Faust app, the subscription API mounted on its internal web server
    (``clock``: tests may inject one)."""
    clock = clock or Clock(settings.digest.clock_speed, settings.digest.clock_anchor)
    tokens = build_tokens(settings)
    app = create_app(settings, tokens, clock)
    profiles = app.pipeline.inbox.profiles

    async def read_profile(subscriber_id: str) -> Profile | None:
        return profiles.get(subscriber_id)

    topics = settings.topics
    api = SubscriptionApi(
        settings=settings.api,
        tokens=tokens,
        publish=publisher(raw_topic(app, topics.name(topics.subscriptions))),
        read_profile=read_profile,
        clock=clock,
        source=f"{settings.source}:api",
    )
    assert isinstance(profiles, ModelTable)
    mount(app, settings, api, profiles.table)
    return app


async def serve_api(settings: Settings) -> None:
    """Run the stand-alone API until SIGTERM or Ctrl-C."""
    await standalone.serve(settings, build_tokens(settings))
