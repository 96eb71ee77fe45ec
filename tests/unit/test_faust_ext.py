"""The Faust extensions (stream/faust_ext) refuse a faust-streaming they were not written for."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message

from newsroom_notify.bootstrap import build_tokens, create_worker
from newsroom_notify.domain import mentions
from newsroom_notify.settings import Settings
from newsroom_notify.stream import faust_ext
from newsroom_notify.stream.app import create_app
from newsroom_notify.stream.faust_ext import SUPPORTED_FAUST, UnsupportedFaust, check_faust_version
from newsroom_notify.stream.faust_ext.raw import RawSchema
from newsroom_notify.stream.stages import raw_topic

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_faust_is_one_the_extensions_were_written_for() -> None:
    check_faust_version()  # raises UnsupportedFaust otherwise


def test_the_lock_and_the_requirement_pin_a_supported_faust() -> None:
    lock = (ROOT / "constraints.txt").read_text()
    pinned = re.findall(r"^faust-streaming==(\S+)$", lock, flags=re.MULTILINE)
    assert pinned, "constraints.txt pins no faust-streaming"
    assert set(pinned) <= SUPPORTED_FAUST
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [requirement] = [d for d in project["dependencies"] if d.startswith("faust-streaming")]
    assert requirement.endswith("==" + pinned[0]), requirement


@pytest.mark.parametrize("other", ["0.15.2", "0.15.4", "0.16.0", "1.0.0"])
def test_another_faust_version_is_refused_naming_both_versions(other: str) -> None:
    with pytest.raises(UnsupportedFaust) as refused:
        check_faust_version(other)
    assert f"faust-streaming {other} is installed" in str(refused.value)
    assert "0.15.3" in str(refused.value)


def test_the_worker_does_not_start_on_another_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust_ext, "installed_faust_version", lambda: "0.16.0")
    settings = Settings(dev_mode=True)
    with pytest.raises(UnsupportedFaust):
        create_worker(settings)
    with pytest.raises(UnsupportedFaust):
        create_app(settings, build_tokens(settings))


@pytest.mark.parametrize("wait_ms", [20, 700])
async def test_the_fetch_wait_setting_reaches_the_kafka_consumer(
    wait_ms: int, tmp_path: Path
) -> None:
    # Faust builds its aiokafka consumer with a fixed fetch_max_wait_ms of 1500: the setting
    # must replace it (how long a fetch the broker holds delays each stage's next record).
    settings = Settings(
        dev_mode=True,
        store="memory://",
        data_dir=str(tmp_path),
        kafka={"fetch_max_wait_ms": wait_ms},  # type: ignore[arg-type]
    )
    app = create_app(settings, build_tokens(settings))
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(thread.transport)
    try:
        assert consumer._fetch_max_wait_ms == wait_ms
    finally:
        await consumer.stop()


def test_every_table_store_is_opened_with_the_bounded_memory_settings(tmp_path: Path) -> None:
    # Faust's RocksDB defaults (64 MB memtables, three of them, and a 2 GiB block cache per
    # table partition) let a worker's memory grow with each key written or read (a million
    # followers' fan-out grew one worker from 649 to 915 MiB).
    settings = Settings(
        dev_mode=True,
        store="rocksdb://",
        data_dir=str(tmp_path),
        rocksdb_write_buffer_mb=3,
        rocksdb_block_cache_mb=5,
    )
    app = create_app(settings, build_tokens(settings))
    tables = list(app.tables.values())
    assert len(tables) > 10
    for table in tables:
        options = table.data.rocksdb_options
        assert options.write_buffer_size == 3 * 1024 * 1024
        assert options.max_write_buffer_number == 2
        assert options.block_cache_size == 5 * 1024 * 1024


async def test_a_worker_losing_partitions_keeps_no_index_of_their_participants(
    tmp_path: Path,
) -> None:
    # Another worker handles the erasures of those threads from now on (domain/mentions.py).
    settings = Settings(dev_mode=True, store="memory://", data_dir=str(tmp_path))
    app = create_app(settings, build_tokens(settings))
    assert mentions.find_mentions("@Ana Lima", {"m-ana": "Ana Lima"}, "a-1") == {"m-ana"}
    assert mentions._INDEXES
    await app.on_partitions_revoked.send(set())
    assert not mentions._INDEXES


@pytest.mark.parametrize(
    ("key", "value", "headers"),
    [
        (b"article-1", b'{"type": "comment.posted"}', [("content-type", b"application/json")]),
        (None, b"\xff\x00 not JSON", []),
        (b"article-1", None, None),  # a tombstone
        (None, None, [("x", b"")]),
    ],
)
async def test_the_agents_topics_hand_over_each_record_as_faust_would_decode_it(
    key: bytes | None, value: bytes | None, headers: Any, tmp_path: Path
) -> None:
    # The agents' topics skip Faust's serializer registry (raw.RawSchema): their events must
    # be what Faust's own decoding of a bytes/raw topic gives, for every record (the ingestor
    # dead-letters what it cannot read; a key or value changed here would be lost).
    settings = Settings(dev_mode=True, store="memory://", data_dir=str(tmp_path))
    app = create_app(settings, build_tokens(settings))
    agent_topics = [agent.channel for agent in app.agents.values()]
    assert agent_topics
    assert all(isinstance(topic.schema, RawSchema) for topic in agent_topics)
    assert all(topic.schema.allow_empty and topic.allow_empty for topic in agent_topics)
    faust_schema = faust.Schema(
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )
    message = Message("comments", 2, 17, 1.0, 1, headers, key, value, None)
    ours = await agent_topics[0].decode(message, propagate=True)
    faust_event = await faust_schema.compile(app)(message, propagate=True)
    assert type(ours) is type(faust_event)
    assert (ours.key, ours.value, ours.headers, ours.message) == (
        faust_event.key,
        faust_event.value,
        faust_event.headers,
        faust_event.message,
    )
    assert (ours.key, ours.value) == (key, value)
    assert ours.app is app


async def test_a_raw_topic_derived_with_another_value_type_decodes_as_faust_does(
    tmp_path: Path,
) -> None:
    # RawSchema hands bytes over as they came only while its topic carries bytes with the raw
    # codec: derived with text values, a record's value is decoded by Faust (as it would be
    # encoded when sent), not handed over as bytes.
    settings = Settings(dev_mode=True, store="memory://", data_dir=str(tmp_path))
    app = create_app(settings, build_tokens(settings))
    derived = raw_topic(app, "elsewhere").derive(value_type=str)
    message = Message("elsewhere", 0, 0, 1.0, 1, [], b"k", b'{"a": 1}', None)
    event = await derived.decode(message, propagate=True)
    assert (event.key, event.value) == (b"k", '{"a": 1}')


def test_the_monitor_keeps_what_faust_and_the_lag_gauge_read_and_nothing_per_record(
    tmp_path: Path,
) -> None:
    # Faust's monitor counts and times every record an agent reads (a few µs each) for web
    # pages the service does not serve; the app's monitor keeps only what is read: when a
    # partition's stream last took a record (Faust's stall check) and the committed and end
    # offsets (the consumer-lag gauge, tests/integration/test_api.py).
    settings = Settings(dev_mode=True, store="memory://", data_dir=str(tmp_path))
    app = create_app(settings, build_tokens(settings))
    list(app.on_init_dependencies())  # what starting the app does: its monitor, a sensor
    monitor = app.monitor
    assert set(app.sensors) == {monitor}
    tp = TP("newsroom-notify-inbox", 3)
    message = Message(tp.topic, tp.partition, 7, 1.0, 1, [], b"k", b"v", None)
    stream = app.stream(raw_topic(app, tp.topic))
    sensors = app.sensors
    sensors.on_message_in(tp, 7, message)
    state = sensors.on_stream_event_in(tp, 7, stream, None)
    assert monitor.stream_inbound_time[tp] > 0
    sensors.on_stream_event_out(tp, 7, stream, None, state)
    sensors.on_message_out(tp, 7, message)
    table = next(iter(app.tables.values()))
    sensors.on_table_get(table, b"k")
    sensors.on_table_set(table, b"k", b"v")
    sensors.on_table_del(table, b"k")
    assert (monitor.messages_received_total, monitor.events_total) == (0, 0)
    assert (monitor.messages_active, monitor.events_active) == (0, 0)
    assert not monitor.events_runtime
    assert not monitor.tables
    monitor.on_tp_commit({tp: 5})
    monitor.track_tp_end_offset(tp, 9)
    assert (monitor.tp_committed_offsets[tp], monitor.tp_end_offsets[tp]) == (5, 9)
