"""Faust tables seen as typed mappings, so the domain stages use them like dicts.

Values are stored as the JSON of their pydantic model (bytes in the changelog, no pickling);
deleting a key writes a tombstone to the changelog topic, which compaction then removes.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, TypeVar

import faust
import rocksdict
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class StateTooLarge(Exception):
    """A record the service would write is larger than its size limit. The message names the
    table or topic and the size, never the key or value (they hold personal data)."""


class ModelTable(MutableMapping[str, M]):
    """A Faust table of ``str`` keys and ``model`` values. A value whose record would be
    larger than ``max_bytes`` is refused (``StateTooLarge``) before the store or the
    changelog sees it."""

    def __init__(self, table: Any, model: type[M], max_bytes: int | None = None) -> None:
        self.table = table
        self.model = model
        self.max_bytes = max_bytes

    def __getitem__(self, key: str) -> M:
        # Straight from the store: Faust's own ``table[key]`` asks the store twice (``in``,
        # then the value), two RocksDB reads per hit. Writes still go through the table, which
        # sends the changelog record.
        try:
            raw = self.table.data[key.encode("utf-8")]
        except KeyError:
            raise KeyError(key) from None
        return self.model.model_validate_json(raw)

    def __setitem__(self, key: str, value: M) -> None:
        encoded_key, encoded = key.encode("utf-8"), value.model_dump_json().encode("utf-8")
        size = len(encoded_key) + len(encoded)
        if self.max_bytes is not None and size > self.max_bytes:
            raise StateTooLarge(f"table {self.model.__name__}: {size} bytes > {self.max_bytes}")
        self.table[encoded_key] = encoded

    def __delitem__(self, key: str) -> None:
        encoded = key.encode("utf-8")
        if encoded not in self.table.data:
            raise KeyError(key)
        del self.table[encoded]

    def __iter__(self) -> Iterator[str]:
        return (k.decode("utf-8") for k in self.table)

    def __len__(self) -> int:
        return len(self.table)


class DirectChangelogTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog records go through the app's ``ChangelogWriter``
    (``stream.transport``) instead of a ``FutureMessage`` each. Keys and values are bytes."""

    def _new_store(self) -> Any:
        store = super()._new_store()
        options = getattr(store, "rocksdb_options", None)
        if options is not None:
            options.open = without_wal(options.open)
        return store

    @property
    def _writer(self) -> Any:
        return getattr(self.app, "changelog_writer")  # noqa: B009 - set by create_app

    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None:
            raise RuntimeError(f"table {self.name} written outside of a stream")
        self._writer.put(self, partition, key, value)
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None:
            raise RuntimeError(f"table {self.name} written outside of a stream")
        self._writer.put(self, partition, key, None)
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)


def without_wal(open_db: Any) -> Any:
    """RocksDB's write-ahead log off, as Kafka Streams does: the changelog topic is the state's
    log. A crash loses at most the writes since the last memtable flush, together with the
    changelog offset stored among them, so recovery replays exactly those from the changelog."""

    def open_db_without_wal(path: Any, **kwargs: Any) -> Any:
        db = open_db(path, **kwargs)
        if hasattr(db, "set_write_options"):  # rocksdict
            write = rocksdict.WriteOptions()
            setattr(write, "disable_wal", True)  # noqa: B010 - a property; the stub says method
            db.set_write_options(write)
        return db

    return open_db_without_wal


def table_size(table: Any) -> int:
    """Keys of a table on this worker: RocksDB's own estimate (no scan) when the store is
    RocksDB, else the exact count."""
    dbs = getattr(table.data, "_dbs", None)
    if dbs is not None:
        return sum(
            int(db.property_int_value("rocksdb.estimate-num-keys") or 0) for db in dbs.values()
        )
    return len(table)
