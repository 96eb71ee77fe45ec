"""Faust tables seen as typed mappings, so the domain stages use them like dicts.

Values are stored as the JSON of their pydantic model (bytes in the changelog, no pickling);
deleting a key writes a tombstone to the changelog topic, which compaction then removes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
import rocksdict
from faust.streams import _current_event, current_event
from pydantic import BaseModel

from newsroom_notify.domain.construct import copier

M = TypeVar("M", bound=BaseModel)


class StateTooLarge(Exception):
    """A record the service would write is larger than its size limit. The message names the
    table or topic and the size, never the key or value (they hold personal data)."""


READS_KEPT = 10_000  # values read from the store kept per table and batch (bounded memory)
# The JSON bytes of the values kept decoded per table and batch (bounded memory: a decoded
# value weighs a few times its JSON).
DECODED_BYTES_KEPT = 8 << 20
# Values smaller than this are decoded again at each read: decoding a small record (a profile,
# 600 bytes: 5 µs) costs less than copying its models (8 µs); a thread of 500 participants
# (11 kB) costs 53 µs to decode and 4 µs to copy.
DECODED_MIN_BYTES = 1_024


class ModelTable(MutableMapping[str, M]):
    """A Faust table of ``str`` keys and ``model`` values. A value whose record would be
    larger than ``max_bytes`` is refused (``StateTooLarge``) before the store or the
    changelog sees it.

    With a ``WriteBack``, a write is kept (encoded, with the event that made it) until the
    batch it belongs to ends: a key written several times by one batch goes to the store and
    the changelog once, with its last value; reads see the kept value meanwhile. Values read
    from the store are kept until then too (one RocksDB read per key per batch), and large
    values decoded or written (one decode per key per batch): each read gets its own deep
    copy, as it got its own decode."""

    def __init__(
        self,
        table: Any,
        model: type[M],
        max_bytes: int | None = None,
        write_back: WriteBack | None = None,
    ) -> None:
        self.table = table
        self.model = model
        self.max_bytes = max_bytes
        # (partition, key) -> (encoded value or None for a deletion, the event that wrote it).
        # By partition too: a table may keep a copy of one key in every partition (each
        # written by that partition's copy of a broadcast message), and a batch mixes them.
        self._written: dict[tuple[int, str], tuple[bytes | None, Any]] = {}
        self._read: dict[tuple[int, str], bytes | None] = {}
        # (partition, key) -> the large value the batch decoded or wrote, handed out as a copy
        # (the domain changes the values it reads, and writes them back or not).
        # Each with its JSON's size: what counts against ``DECODED_BYTES_KEPT``. A kept copy of
        # a written value equals its decode and writes the same JSON; only its
        # ``model_fields_set`` is the written object's (nothing in the service reads it).
        self._decoded: dict[tuple[int, str], tuple[M, int]] = {}
        self._decoded_bytes = 0
        self._copy = copier(model)
        self.write_back = write_back
        if write_back is not None:
            write_back.tables.append(self)

    def _batch_event(self) -> Any:
        """The record being handled, whose batch keeps this table's reads and writes; None
        when there is none (a web page's read, a timer's) or the table has no ``WriteBack``:
        the store as it is."""
        return current_event() if self.write_back is not None else None

    def _raw(self, key: str) -> bytes | None:
        event = self._batch_event()
        if event is None:
            return self._stored(key)
        return self._raw_in((event.message.partition, key))

    def _raw_in(self, slot: tuple[int, str]) -> bytes | None:
        written = self._written.get(slot)
        if written is not None:
            return written[0]
        if slot in self._read:  # not a KeyError caught: a miss is the rule in a fan-out
            return self._read[slot]
        raw = self._stored_in(*slot)
        if len(self._read) < READS_KEPT:
            self._read[slot] = raw
        return raw

    def _stored(self, key: str) -> bytes | None:
        # Straight from the store (the current event's partition when there is one): Faust's
        # own ``table[key]`` asks the store twice (``in``, then the value), two RocksDB reads
        # per hit. Writes go through the table, which sends the changelog record.
        try:
            raw: bytes | None = self.table.data[key.encode("utf-8")]
        except KeyError:
            raw = None
        return raw

    def _stored_in(self, partition: int, key: str) -> bytes | None:
        # The partition's RocksDB itself when it is open: Faust's store would encode the key,
        # look the current event up again, index the key's partition in an LRU and decode the
        # value (raw bytes both ways here), a third of a read's cost. The index only spares a
        # read without an event (a web page's) a look into every partition. ``flush`` writes
        # the same way.
        db = self._db(partition)
        if db is None:
            return self._stored(key)
        raw: bytes | None = db.get(key.encode("utf-8"))
        return raw

    def read_ahead(self, keys: Iterable[str]) -> None:
        """Read ``keys`` of the current record's partition from its RocksDB together (one
        multi-get) and keep them as the batch keeps its single reads: for a fan-out record,
        whose recipients' values are each read once, one after the other. A read of one of
        them then gives what a single read would have (a value the batch wrote still wins);
        at most ``READS_KEPT`` kept. Nothing without a record, or without an open RocksDB."""
        event = self._batch_event()
        if event is None:
            return
        partition = event.message.partition
        db = self._db(partition)
        room = READS_KEPT - len(self._read)
        if db is None or room <= 0:
            return
        wanted = []
        for key in keys:
            slot = (partition, key)
            if slot not in self._read and slot not in self._written:
                wanted.append(key)
                if len(wanted) >= room:
                    break
        if wanted:
            values = db.get([key.encode("utf-8") for key in wanted])
            for key, raw in zip(wanted, values, strict=True):
                self._read[(partition, key)] = raw

    def _db(self, partition: int) -> Any:
        """The partition's RocksDB if it is open (None: another store, or not open yet)."""
        dbs = getattr(self.table.data, "_dbs", None)
        return dbs.get(partition) if dbs is not None and not self.table.is_global else None

    def __getitem__(self, key: str) -> M:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:  # no KeyError raised and caught
        event = self._batch_event()
        if event is None:
            raw = self._stored(key)
            return default if raw is None else self.model.model_validate_json(raw)
        slot = (event.message.partition, key)
        kept = self._decoded.get(slot)
        if kept is not None:
            return self._copy(kept[0])
        raw = self._raw_in(slot)
        if raw is None:
            return default
        decoded = self.model.model_validate_json(raw)
        if self._keep_decoded(slot, decoded, len(raw)):
            return self._copy(decoded)
        return decoded

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._raw(key) is not None

    def __setitem__(self, key: str, value: M) -> None:
        encoded = value.model_dump_json().encode("utf-8")
        size = len(key.encode("utf-8")) + len(encoded)
        if self.max_bytes is not None and size > self.max_bytes:
            raise StateTooLarge(f"table {self.model.__name__}: {size} bytes > {self.max_bytes}")
        self._write(key, encoded, value)

    def __delitem__(self, key: str) -> None:
        if self._raw(key) is None:
            raise KeyError(key)
        self._write(key, None)

    def _write(self, key: str, encoded: bytes | None, value: M | None = None) -> None:
        event = self._batch_event()
        if event is None:  # written at once (Faust refuses it outside of a stream)
            if encoded is not None:
                self.table[key.encode("utf-8")] = encoded
            else:
                del self.table[key.encode("utf-8")]
        else:
            slot = (event.message.partition, key)
            size = 0 if encoded is None else len(encoded)
            copy = None  # a copy: the caller may go on changing what it wrote
            if size >= DECODED_MIN_BYTES and type(value) is self.model:
                try:
                    copy = self._copy(value)
                except Exception:  # a value not of its fields' types: decoded when read
                    copy = None
            self._written[slot] = (encoded, event)
            if copy is None:
                self._forget_decoded(slot)
            else:
                self._keep_decoded(slot, copy, size)

    def _keep_decoded(self, slot: tuple[int, str], value: M, size: int) -> bool:
        """Keep ``value`` decoded for ``slot`` (in place of what was kept) if it is large and
        the bound allows it."""
        self._forget_decoded(slot)
        if size < DECODED_MIN_BYTES or self._decoded_bytes + size > DECODED_BYTES_KEPT:
            return False
        self._decoded[slot] = (value, size)
        self._decoded_bytes += size
        return True

    def _forget_decoded(self, slot: tuple[int, str]) -> None:
        kept = self._decoded.pop(slot, None)
        if kept is not None:
            self._decoded_bytes -= kept[1]

    def drop(self) -> None:
        """Forget what the batch kept (it was interrupted: it is read and handled again)."""
        self._written.clear()
        self._read.clear()
        self._decoded.clear()
        self._decoded_bytes = 0

    def flush(self) -> None:
        """Write what the batch kept to the store and the changelog (each under the event that
        wrote it, so in its partition), and forget what it read."""
        written, self._written = self._written, {}
        self._read.clear()
        self._decoded.clear()
        self._decoded_bytes = 0
        # Each write under its own event, set once for a run of writes of the same event (a
        # fan-out record's writes, in the inbox: one per recipient).
        current, token = None, None
        try:
            for (partition, key), (encoded, event) in written.items():
                if event is not current:
                    if token is not None:
                        _current_event.reset(token)
                    current, token = event, _current_event.set(weakref.ref(event))
                raw_key = key.encode("utf-8")
                if encoded is None:
                    if raw_key in self.table.data:
                        del self.table[raw_key]
                    continue
                db = self._db(partition)
                if db is None:
                    self.table[raw_key] = encoded
                else:  # what ``table[key] = value`` does, without Faust's store layers
                    self.table.on_key_set(raw_key, encoded)  # the changelog record
                    db.put(raw_key, encoded)
        finally:
            if token is not None:
                _current_event.reset(token)

    def __iter__(self) -> Iterator[str]:
        kept = {key for _, key in self._written}
        for raw_key in self.table:
            key = raw_key.decode("utf-8")
            if key not in kept:
                yield key
        yield from {key for (_, key), (encoded, _) in self._written.items() if encoded is not None}

    def __len__(self) -> int:
        return len(self.table)

    def raw_items(self) -> Iterator[tuple[str, bytes]]:
        """Every key with its JSON as stored (a batch's kept write in place of the store's), in
        one pass over the store and without decoding: for a timer that looks at every value.
        For a table whose keys each live in one partition (not one copy per partition: a
        kept write of one copy would hide the others)."""
        kept = {key: encoded for (_, key), (encoded, _) in self._written.items()}
        for raw_key, raw in self.table.data.items():
            key = raw_key.decode("utf-8")
            if key not in kept:
                yield key, raw
        for key, encoded in kept.items():
            if encoded is not None:
                yield key, encoded


@dataclass
class WriteBack:
    """The tables whose writes wait for the end of a batch; ``flush`` writes them all."""

    tables: list[ModelTable[Any]] = field(default_factory=list)
    max_kept: int = 10_000  # writes kept before a flush in mid-batch (bounded memory)

    @classmethod
    def per_record(cls) -> WriteBack:
        """Writes that go to the store and the changelog after each record of the batch (the
        agent's ``flush_if_full`` after each record flushes every kept write)."""
        return cls(max_kept=1)

    def kept(self) -> int:
        """Writes waiting for the flush."""
        return sum(len(table._written) for table in self.tables)

    def flush(self) -> None:
        for table in self.tables:
            table.flush()

    def drop(self) -> None:
        for table in self.tables:
            table.drop()

    def flush_if_full(self) -> None:
        """Flush now if too many writes are kept (a batch of big fan-outs)."""
        if self.kept() >= self.max_kept:
            self.flush()


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
        # The RocksDB store then deletes the key from the partition its key index last saw it
        # in, not the current event's: a table keeping one key in several partitions (the
        # threads stage's unfollowed-commenters) lost another partition's copy and kept this
        # one (seen in the fault suite: a followed commenter's comment skipped the follows
        # stage). Point the index at this partition first.
        index = getattr(self.data, "_key_index", None)
        if index is not None:
            index[key] = partition
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
