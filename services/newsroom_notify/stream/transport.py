"""Faust's aiokafka transport with an idempotent producer.

Faust enables idempotence only inside transactions; for at-least-once processing we want it on
every producer so a retried batch is never written twice by the broker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka


class IdempotentProducer(faust_aiokafka.Producer):
    """acks=all and enable_idempotence on every producer Faust creates."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport, producing through ``IdempotentProducer``."""

    Producer = IdempotentProducer
