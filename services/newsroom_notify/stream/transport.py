"""Faust's aiokafka transport, hardened: idempotent producers, and a consumer that never
commits past a record the app did not process.

Producer: Faust enables idempotence only inside transactions; for at-least-once processing we
want it on every producer so a retried batch is never written twice by the broker.

Consumer: during a rebalance, faust-streaming 0.15 can acknowledge records that were skipped
(stale generation, flow suspended during table recovery) while it has forgotten the partition's
committed offset; its commit timer then commits the end of that run, and the records in the
hole are never processed (seen here as lost fan-outs after one of two workers was killed). Its
"gap at the head" guard is also off by one. This consumer:

* commits nothing for a partition until it has been seeked to its committed offset after the
  latest assignment, and forgets acknowledgements made before that seek;
* commits nothing while the first acknowledged offset is past the committed one (a hole at the
  head), unless Faust knows of a real gap there (compaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka


class IdempotentProducer(faust_aiokafka.Producer):
    """acks=all and enable_idempotence on every producer Faust creates."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class SafeCommitConsumer(faust_aiokafka.Consumer):
    """Commits only offsets that were processed since the partition was last seeked."""

    @property
    def _seeked(self) -> set[Any]:
        seeked: set[Any] | None = self.__dict__.get("_newsroom_seeked")
        if seeked is None:
            seeked = set()
            self.__dict__["_newsroom_seeked"] = seeked
        return seeked

    async def perform_seek(self) -> None:
        await super().perform_seek()
        for tp in self.assignment():
            # The position is back at the committed offset: earlier acks mean nothing now.
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._seeked.add(tp)

    async def on_partitions_revoked(self, revoked: Set[Any]) -> None:
        self._seeked.difference_update(revoked)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: Any) -> int | None:
        if tp not in self._seeked:
            return None
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None and not self._gap[tp] and min(acked) > committed:
            return None  # the record at the committed offset is not processed yet
        result: int | None = super()._new_offset(tp)
        return result


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with the producer and consumer above."""

    Producer = IdempotentProducer
    Consumer = SafeCommitConsumer
