"""Which topics must have NEWSROOM_TOPICS__PARTITIONS partitions, and what the refusal says
(the real broker: tests/integration/test_topics.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from newsroom_notify.settings import Settings
from newsroom_notify.stream.admin import (
    TopicLayoutError,
    check_partitions,
    co_partitioned_topics,
)

CHANGELOGS = ["notify-profiles-changelog", "notify-sent-changelog"]


class Admin:
    """Answers ``describe_topics`` as aiokafka's admin client does, from name -> partitions."""

    def __init__(self, layout: dict[str, int]) -> None:
        self.layout = layout
        self.asked: list[list[str]] = []

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self.asked.append(names)
        return [
            {"topic": n, "error_code": 0, "partitions": [{} for _ in range(self.layout[n])]}
            for n in names
        ]


def _settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NEWSROOM_TOPICS__PREFIX", "t.")
    monkeypatch.setenv("NEWSROOM_TOPICS__PARTITIONS", "8")
    return Settings()


def test_the_threads_inputs_the_stages_topics_and_the_changelogs_are_co_partitioned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    names = co_partitioned_topics(settings, CHANGELOGS)
    app = settings.app_id
    assert names == [
        "t.newsroom.articles",
        "t.newsroom.comments",
        f"{app}-threads",
        f"{app}-follows",
        f"{app}-inbox",
        *CHANGELOGS,
    ]
    # The subscriptions agent keeps no table (it re-keys into -inbox), the outputs are others'.
    for free in ("subscriptions", "notifications", "digests", "deadletter"):
        assert f"t.newsroom.{free}" not in names


def test_a_changelog_of_another_count_is_refused_with_the_count_to_go_back_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The likeliest cause: the setting changed under a running deployment. The advice is to
    set it back, not to recreate the topics (the changelogs hold the tables' state)."""
    settings = _settings(monkeypatch)
    names = co_partitioned_topics(settings, CHANGELOGS)
    layout = dict.fromkeys(names, 8) | {CHANGELOGS[1]: 4, f"{settings.app_id}-inbox": 4}
    with pytest.raises(TopicLayoutError) as refused:
        asyncio.run(check_partitions(Admin(layout), names, 8))  # type: ignore[arg-type]
    message = str(refused.value)
    assert f"{settings.app_id}-inbox has 4, notify-sent-changelog has 4" in message
    assert "NEWSROOM_TOPICS__PARTITIONS is 8" in message
    assert "set NEWSROOM_TOPICS__PARTITIONS back to 4" in message
    assert "deleting them to recreate them loses it" in message
    assert "t.newsroom.comments" not in message


def test_topics_that_disagree_among_themselves_are_not_given_one_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(monkeypatch)
    names = co_partitioned_topics(settings, CHANGELOGS)
    layout = dict.fromkeys(names, 8) | {"t.newsroom.comments": 2, CHANGELOGS[0]: 4}
    with pytest.raises(TopicLayoutError) as refused:
        asyncio.run(check_partitions(Admin(layout), names, 8))  # type: ignore[arg-type]
    message = str(refused.value)
    assert "notify-profiles-changelog has 4, t.newsroom.comments has 2" in message
    assert "disagree among themselves" in message
    assert "back to" not in message


def test_topics_of_the_configured_count_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    names = co_partitioned_topics(settings, CHANGELOGS)
    admin = Admin(dict.fromkeys(names, 8))
    asyncio.run(check_partitions(admin, names, 8))  # type: ignore[arg-type]
    assert admin.asked == [names]
