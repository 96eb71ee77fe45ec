"""The Faust app with the service's transport (``transport.Transport``); built only for a
faust-streaming version the extensions were written for."""

from __future__ import annotations

from time import monotonic
from typing import Any

import faust
from faust.sensors import Monitor
from mode.utils.objects import cached_property

from newsroom_notify.stream.faust_ext import check_faust_version
from newsroom_notify.stream.faust_ext.batches import StoppingFlow
from newsroom_notify.stream.faust_ext.transport import ChangelogWriter, Transport


class LeanMonitor(Monitor):
    """Faust's monitor (``app.monitor``, one of ``app.sensors``) without its statistics per
    record, which nothing of the service reads (Faust's pages that show them are switched off
    in ``stream/app.py``; turned on, its /performance page would show none):
    about 5 µs of counters, timings and look-ups per record an agent reads, every record
    (docs/benchmarks.md). Kept: what Faust and the service read of it. The time a partition's
    stream last took a record (``stream_inbound_time``: Faust's check for a stalled stream),
    and, not overridden, the committed and end offsets the consumer-lag gauge reads
    (``on_tp_commit``, ``track_tp_end_offset``, called on ``app.monitor`` directly) and what
    it records per commit, send, rebalance and assignment."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """(Counted and timed by Faust's monitor: not here.)"""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        """The partition's stream took a record now (what Faust's stall check reads)."""
        self.stream_inbound_time[tp] = monotonic()  # as Faust's, which its check compares with
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """(Timed by Faust's monitor: not here.)"""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """(Timed by Faust's monitor: not here.)"""

    def on_table_get(self, table: Any, key: Any) -> None:
        """(Counted by Faust's monitor: not here.)"""

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        """(Counted by Faust's monitor: not here.)"""

    def on_table_del(self, table: Any, key: Any) -> None:
        """(Counted by Faust's monitor: not here.)"""


class ExtendedApp(faust.App):
    """A Faust app whose producers are idempotent and whose consumer skips nothing (see
    ``transport``), with a ``LeanMonitor``. Refuses to be built on an unsupported
    faust-streaming."""

    changelog_writer: ChangelogWriter  # set by ``create_app``; used by the tables
    fetch_max_wait_ms: int | None = None  # the consumer's fetch wait (None: Faust's 1500 ms)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust_version()
        kwargs.setdefault("Monitor", LeanMonitor)
        super().__init__(*args, **kwargs)

    @cached_property
    def flow_control(self) -> StoppingFlow:
        """Faust's flow control, counting its stops (``batches.event_batches`` reads them)."""
        return StoppingFlow(loop=self.loop)

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)
