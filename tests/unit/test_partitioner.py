"""The service's murmur2 is Kafka's: the same hash as aiokafka's byte-at-a-time version (itself
checked against the Java client's partitions in ``test_fanout_batches``) for keys of every
length and any bytes."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from newsroom_notify.stream.faust_ext import partitioner
from newsroom_notify.stream.faust_ext.partitioner import key_partition, murmur2


def test_murmur2_equals_aiokafkas_on_random_keys_of_every_length() -> None:
    rnd = random.Random(19)
    for length in range(70):
        for _ in range(40):
            key = bytes(rnd.randrange(256) for _ in range(length))
            assert murmur2(key) == aiokafka_murmur2(key), key


def test_key_partition_is_the_default_partitioners() -> None:
    rnd = random.Random(20)
    for _ in range(2_000):
        key = f"m-{rnd.randrange(10**9)}-ü".encode()
        for partitions in (1, 2, 8, 12, 100):
            every = list(range(partitions))
            assert key_partition(key, partitions) == DefaultPartitioner()(key, every, every)


def test_the_partitions_kept_are_right_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys seen again (a busy article's followers) are answered from the kept partitions, the
    same answer for the same key and partition count; the kept ones never exceed the bound."""
    monkeypatch.setattr(partitioner, "PARTITIONS_KEPT", 50)
    monkeypatch.setattr(partitioner, "_PARTITIONS", {})
    rnd = random.Random(21)
    keys = [f"m-{rnd.randrange(10**9)}".encode() for _ in range(40)]
    for _ in range(3):
        for key in [*keys, *(f"x-{rnd.randrange(10**9)}".encode() for _ in range(30))]:
            for partitions in (3, 8):
                every = list(range(partitions))
                assert key_partition(key, partitions) == DefaultPartitioner()(key, every, every)
                assert len(partitioner._PARTITIONS) <= 50
