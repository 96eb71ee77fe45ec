"""README "Operations", topics, on the real broker: a worker refuses topics laid out for
another partition count instead of routing records to partitions whose state lives elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.kafka_helpers import create_topics, run, worker_env


async def _topics_with(bootstrap: str, prefix: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if n.startswith(prefix)]
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()


def _cli(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsroom_notify.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_input_topic_with_another_partition_count_is_refused_before_anything_is_created(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The platform team created `comments` with 2 partitions; the service is set for 4. The
    threads stage reads `comments` with its own repartition topic, whose records it routes by
    the setting: started anyway, half the comments' threads would live in partitions no
    record of theirs reaches."""
    env = worker_env(kafka_bootstrap, tmp_path)
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    comments = f"{prefix}newsroom.comments"
    run(create_topics(kafka_bootstrap, [comments], partitions=2))

    topics = _cli(env, "topics")
    assert topics.returncode == 2, topics.stderr
    assert f"{comments} has 2" in topics.stderr
    assert "newsroom-notify topics: refusing to create topics" in topics.stderr
    assert "NEWSROOM_TOPICS__PARTITIONS is 4" in topics.stderr
    assert run(_topics_with(kafka_bootstrap, prefix)) == {comments: 2}  # nothing created

    # The worker refuses too, also when it is told not to create topics.
    worker = _cli({**env, "NEWSROOM_CREATE_TOPICS": "false"}, "worker")
    assert worker.returncode == 2, worker.stderr[-2000:]
    assert "newsroom-notify worker: refusing to start: NEWSROOM_TOPICS__PARTITIONS is 4" in (
        worker.stderr
    )
    assert f"{comments} has 2" in worker.stderr


def test_topics_of_the_configured_count_pass_and_only_missing_ones_are_created(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = worker_env(kafka_bootstrap, tmp_path)
    prefix = env["NEWSROOM_TOPICS__PREFIX"]
    # The outputs are read by other services, and the subscriptions agent keeps no table (it
    # re-keys each command into -inbox): those may have any count.
    free = [f"{prefix}newsroom.notifications", f"{prefix}newsroom.subscriptions"]
    run(create_topics(kafka_bootstrap, [f"{prefix}newsroom.comments"], partitions=4))
    run(create_topics(kafka_bootstrap, free, partitions=6))

    first = _cli(env, "topics")
    assert first.returncode == 0, first.stderr
    created = first.stdout.removeprefix("created: ").strip().split(", ")
    assert f"{prefix}newsroom.comments" not in created
    assert not set(free) & set(created)
    assert f"{prefix}newsroom.articles" in created
    assert any(name.endswith("-changelog") for name in created)
    layout = run(_topics_with(kafka_bootstrap, prefix))
    assert [layout[name] for name in free] == [6, 6]
    assert {count for name, count in layout.items() if name not in free} == {4}

    again = _cli(env, "topics")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "created: nothing (all topics exist)"
