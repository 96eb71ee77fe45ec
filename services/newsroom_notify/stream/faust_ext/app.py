"""The Faust app with the service's transport (``transport.Transport``); built only for a
faust-streaming version the extensions were written for."""

from __future__ import annotations

from typing import Any

import faust
from mode.utils.objects import cached_property

from newsroom_notify.stream.faust_ext import check_faust_version
from newsroom_notify.stream.faust_ext.batches import StoppingFlow
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter, Transport


class ExtendedApp(faust.App):
    """A Faust app whose producers are idempotent and whose consumer skips nothing (see
    ``transport``). Refuses to be built on an unsupported faust-streaming."""

    changelog_writer: ChangelogWriter  # set by ``create_app``; used by the tables
    fetch_max_wait_ms: int | None = None  # the consumer's fetch wait (None: Faust's 1500 ms)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust_version()
        super().__init__(*args, **kwargs)

    @cached_property
    def flow_control(self) -> StoppingFlow:
        """Faust's flow control, counting its stops (``batches.event_batches`` reads them)."""
        return StoppingFlow(loop=self.loop)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)
