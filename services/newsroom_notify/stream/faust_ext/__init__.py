"""Every extension of Faust's internals, fenced in one package.

The rest of the service uses Faust as it is (``app.topic``, ``app.Table``, ``app.agent``,
``app.timer``, ``app.page``). Whatever here overrides a Faust method, calls a private one or
reads a private attribute was written against faust-streaming ``SUPPORTED_FAUST`` and is
re-checked by hand before that version moves: ``check_faust_version`` refuses any other
version when the app is built (``app.ExtendedApp``), so an upgrade fails loudly at start-up
(and in tests/unit/test_faust_ext.py) instead of quietly losing records.

What is overridden, and why:

``app.py``
  ``ExtendedApp._new_transport`` / ``_new_producer_transport`` (private factories): the
  transport below instead of Faust's aiokafka one. ``LeanMonitor`` (the app's ``Monitor``
  setting): Faust's ``Monitor`` without its per-record statistics (``on_message_in`` /
  ``_out``, ``on_stream_event_in`` / ``_out``, ``on_table_get`` / ``_set`` / ``_del``),
  keeping ``stream_inbound_time``, which Faust's aiokafka driver reads to tell a stalled
  stream.
``recovery.py`` (the app's ``TableManager`` setting)
  ``ChunkedTableManager.recovery`` (sets the private ``_recovery``) builds
  ``ChunkedRecovery``, whose ``_slurp_changelogs`` replaces Faust's (a ``Service.task`` of
  the same name) and uses its private state (``buffers``, ``buffer_sizes``, the offsets,
  ``_set_recovery_ended``, the tracing spans, ``_processing_times``): the changelog records
  of a recovery or a standby replica are taken in chunks, and whether the recovery is over is
  asked once per chunk instead of once per record; ``need_recovery`` answers without a
  ``Counter``.
``transport.py``
  ``IdempotentProducer._settings_extra`` (private hook): acks=all and idempotence on every
  producer; Faust turns idempotence on only inside transactions.
  ``IdempotentProducer.flush`` / ``on_stop``: Faust flushes before every commit; the queued
  changelog records (``ChangelogWriter``) go first, so no offset is committed before the
  state changes it caused are in the changelog.
  ``ContinuousConsumer.seek`` / ``seek_to_committed`` / ``on_partitions_revoked`` /
  ``getmany``: every fetched record is judged by ``continuity.Continuity``; 0.15 can hand a
  stream a stale prefetch from beyond a fresh seek and then mark the records in between as
  processed. A partition never committed is read again from its start.
  ``ContinuousConsumer.perform_seek`` (stops the flow, waits with ``wait_empty``): Faust's
  recovery resumes the flow before it seeks the stream partitions to their committed offsets
  when no changelog needs reading, so records processed meanwhile were read again (the
  SIGTERM mid-stream duplicates); processed records are committed before the seek.
  ``ContinuousConsumer.ack`` (takes Faust's ``ack_lock``, edits the private
  ``_unacked_messages``): an acknowledgement from an older consumer generation is dropped;
  the record is read again in this one.
  ``ContinuousConsumer._commit`` (private): no commit once ``app.undelivered`` is set.
  ``ContinuousConsumer._drain_messages`` (private; Faust's loop, using its private
  ``_read_offset``, ``_add_gap``, ``_n_acked``, ``_commit_every``, ``callback``): each fetched
  record is delivered ``eager.eagerly`` (no task) and only a delivery that waits goes through
  Faust's ``wait_first`` with ``suspend_flow``.
  ``ContinuousConsumer._new_consumer_thread`` / ``TunedConsumerThread._create_worker_consumer``
  (private factories; sets aiokafka's private ``_fetch_max_wait_ms`` before ``start``): the
  app's fetch wait (``NEWSROOM_KAFKA__FETCH_MAX_WAIT_MS``) instead of Faust's fixed 1500 ms.
  ``Sender``: records go straight to ``app.producer.send`` (no ``FutureMessage``), and the
  ``KafkaError`` inside Faust's ``ProducerSendError`` is raised as it is, so it is retried.
  ``check_delivery``: a record the producer gave up on sets ``app.undelivered`` (an attribute
  of ours on Faust's app) and crashes the app (``app.crash``).
  ``ChangelogWriter``: writes the tables' changelog records itself and stores the offsets with
  the store's ``set_persisted_offset``.
``tables.py``
  ``DirectChangelogTable.on_key_set`` / ``on_key_del`` (calling the private
  ``_maybe_set_key_ttl``, ``_maybe_del_key_ttl``, ``_sensor_on_set``, ``_sensor_on_del``):
  changelog records through ``ChangelogWriter`` instead of a ``FutureMessage`` each.
  ``on_key_del`` also sets the RocksDB store's private ``_key_index`` to the current event's
  partition, so the deletion reaches that partition's copy of a key kept in several.
  ``DirectChangelogTable._new_store`` (private) with ``without_wal``: RocksDB's write-ahead
  log off (the changelog is the state's log), by wrapping the store's ``rocksdb_options.open``.
  ``ModelTable``: reads values from ``table.data`` (the store) instead of ``table[key]``,
  which asks RocksDB twice.
  ``table_size``: the RocksDB store's private ``_dbs``, for the key-count estimate.
``batches.py``
  ``event_batches`` turns Faust's per-record acknowledgement off (``stream.enable_acks``),
  looks at the stream's ``channel.queue`` and acknowledges with ``stream.ack``, as Faust's own
  ``take_events`` does; takes a record it gathers out of the consumer's in-flight set
  (``Consumer.unacked``, which Faust's stream loop adds it to) until its batch is handed over,
  and ``ExtendedApp.flow_control`` (Faust's cached ``App.flow_control``) is a
  ``StoppingFlow``, mode's ``FlowControlEvent`` counting its ``suspend`` calls;
  ``handling`` sets the private ``faust.streams._current_event`` so a record's reads and
  writes go to its partition.
``tables.py`` (again)
  ``ModelTable`` with a ``WriteBack`` sets ``_current_event`` to the event that made each
  kept write when it writes it.
``continuity.py``
  the pure rule ``ContinuousConsumer`` applies (no Faust import).
``raw.py``
  ``RawSchema.compile`` (Faust's hook for a topic's decoding): the service's bytes topics
  (``stages.raw_topic``: the agents' inputs, and the dead-letter and subscriptions topics it
  sends to, whose encoding is Faust's as before) carry bytes with the ``raw`` codec, so each
  record's event is built straight from its key and value, without the serializer registry's
  two look-ups and ``app.create_event``'s settings read per record (4.2-4.8 µs a record
  against 0.6-1.2). A topic derived with other types or codecs decodes as Faust does.
``tables.py`` (read ahead)
  ``ModelTable.read_ahead`` reads the partition's RocksDB (the store's private ``_dbs``) with
  rocksdict's multi-get (``get`` of a list).
"""

from __future__ import annotations

from importlib.metadata import version

SUPPORTED_FAUST = frozenset({"0.15.3"})
"""The faust-streaming versions these extensions were written for and tested with."""


class UnsupportedFaust(RuntimeError):
    """The installed faust-streaming is not one the extensions were written for."""


def installed_faust_version() -> str:
    """The installed faust-streaming's version."""
    return version("faust-streaming")


def check_faust_version(installed: str | None = None) -> None:
    """Raise ``UnsupportedFaust`` unless ``installed`` (default: the installed version) is in
    ``SUPPORTED_FAUST``."""
    installed = installed or installed_faust_version()
    if installed not in SUPPORTED_FAUST:
        supported = ", ".join(sorted(SUPPORTED_FAUST))
        raise UnsupportedFaust(
            f"faust-streaming {installed} is installed; newsroom_notify.stream.faust_ext "
            f"overrides Faust internals written for {supported} only. Re-check every override "
            "listed in its docstring against the new version, then add it to SUPPORTED_FAUST "
            "and to the pins (pyproject.toml, constraints.txt)."
        )
