"""The schema of the agents' topics: bytes in, bytes out, decoded by the service itself."""

from __future__ import annotations

from typing import Any

import faust

# What a raw topic carries, and what ``RawSchema.compile`` hands over as it came.
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


class RawSchema(faust.Schema[bytes, bytes]):
    """A schema of ``bytes`` keys and values with Faust's ``raw`` codec (what the agents'
    topics use: each record is decoded by ``stream.ingest``). Its compiled ``decode`` builds
    the record's event straight from the key and value as they came, which is what Faust's own
    ``Schema.compile`` returns for them (the ``raw`` codec hands ``bytes`` back unchanged, and
    a missing key or value stays None) without its two serializer-registry look-ups and the
    settings read of ``app.create_event`` per record (Faust's conductor calls it for every
    record it delivers: 2-3 per comment)."""

    def __init__(self) -> None:
        super().__init__(allow_empty=True, **RAW)

    def compile(
        self,
        app: Any,
        *,
        on_key_decode_error: Any = None,  # bytes as they came: nothing to fail
        on_value_decode_error: Any = None,
        default_propagate: bool = False,
    ) -> Any:
        if any(getattr(self, name) != value for name, value in RAW.items()):
            # a topic derived with other types or codecs: Faust's decoding for them
            callbacks = {
                name: callback
                for name, callback in (
                    ("on_key_decode_error", on_key_decode_error),
                    ("on_value_decode_error", on_value_decode_error),
                )
                if callback is not None  # else Faust's own default
            }
            return super().compile(app, default_propagate=default_propagate, **callbacks)
        event_type = app.conf.Event  # the setting, read once

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return event_type(app, message.key, message.value, message.headers, message)

        return decode
