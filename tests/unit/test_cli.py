"""The command line: parser, and the readable lines of ``newsroom-notify tail``."""

from __future__ import annotations

import gc
import sys

import orjson
import pytest

from newsroom_dev.samples import sample_events
from newsroom_notify import cli
from newsroom_notify.cli import GC_THRESHOLDS, build_parser, main
from newsroom_notify.contract.describe import describe_output, describe_record


@pytest.mark.parametrize("command", ["worker", "topics", "post", "tail"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_tail_lines_say_who_why_and_never_the_address() -> None:
    event = sample_events()["newsroom.notification.created"]
    line = describe_record("newsroom.notifications", b"k", orjson.dumps(event), [])
    assert line.startswith(
        "newsroom.notifications  notify Geoff Roach (guest_onbqi3yoqwo6fdoozjighifv23)"
    )
    assert (
        "about Ana Lima's comment c-88120 on a-20261128-council — reply: someone replied to" in line
    )
    assert "@" not in line


def test_tail_lines_for_retractions_digests_and_dead_letters() -> None:
    samples = sample_events()
    retracted = orjson.dumps(samples["newsroom.notification.retracted"])
    retraction = describe_record("n", None, retracted, [])
    assert "retract n-5d1c0a6f9b2e4c7a8f3e for" in retraction
    assert "the comment was removed (spam)" in retraction
    digest = describe_record("d", None, orjson.dumps(samples["newsroom.digest.ready"]), [])
    assert "digest for Geoff Roach (daily): 14 new comments" in digest
    dead = describe_record(
        "dl",
        None,
        b"{broken",
        [("newsroom.dlt.error.class", b"InvalidJson"), ("newsroom.dlt.error.message", b"x")],
    )
    assert "DEAD LETTER InvalidJson" in dead


def test_an_unreadable_record_is_named_by_its_key() -> None:
    assert describe_record("n", b"k-1", b"{broken", []) == "n  (unreadable record, key=b'k-1')"


def test_markup_in_a_name_is_printed_as_it_is_in_the_demo() -> None:
    from rich.console import Console  # noqa: PLC0415

    event = sample_events()["newsroom.notification.created"]
    event["data"]["recipient"]["name"] = "[blink]Eve[/blink]"
    console = Console(width=400, color_system=None, record=True)
    console.print(describe_output(event, markup=True, ids=False), highlight=False)
    assert console.export_text().startswith(
        "notify [blink]Eve[/blink] about Ana Lima's comment — reply: someone replied to their"
    )


@pytest.mark.parametrize("argv", [["demo", "--no-stay"], ["post", "--samples"]])
def test_dev_commands_without_the_dev_package_say_how_to_install_it(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The service's image has no development harness: its demo and samples refuse in one
    line that names the package to install, instead of a traceback (or publishing anything)."""
    monkeypatch.setitem(sys.modules, "newsroom_dev", None)  # as if not installed
    assert main(argv) == 2
    err = capsys.readouterr().err
    command = "post --samples" if argv[0] == "post" else "demo"
    assert f"newsroom-notify {command}: this command is development tooling" in err
    assert "newsroom-notify-dev" in err
    assert "make install" in err


def test_the_worker_runs_with_its_start_up_frozen_and_rare_full_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the worker's app and imports built is out of the collector's reach before the
    worker runs, and the collector's thresholds are the worker's, not CPython's (700, 10, 10),
    whose full collections took 15-20 % of a fan-out's CPU."""
    import faust  # noqa: PLC0415

    from newsroom_notify import bootstrap  # noqa: PLC0415

    seen: dict[str, object] = {}

    class Worker:
        def __init__(self, app: object, **_: object) -> None:
            assert app == "the app"

        def execute_from_commandline(self) -> None:
            seen["threshold"] = gc.get_threshold()
            seen["frozen"] = gc.get_freeze_count()

    before = gc.get_threshold()
    monkeypatch.setattr(bootstrap, "create_worker", lambda settings: "the app")
    monkeypatch.setattr(faust, "Worker", Worker)
    # No broker here: the topics' check (tests/integration/test_topics.py) finds them right.
    monkeypatch.setattr(cli, "changelog_topics", lambda app: [])
    monkeypatch.setattr(cli, "_ensure_topics", lambda *args, **kwargs: [])
    monkeypatch.setenv("NEWSROOM_DEV_MODE", "true")
    try:
        assert main(["worker"]) == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert seen["threshold"] == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700
    assert GC_THRESHOLDS[2] > 10
    frozen = seen["frozen"]
    assert isinstance(frozen, int)
    assert frozen > 10_000  # the modules, the models, the app


def test_the_worker_does_not_start_on_topics_laid_out_for_another_partition_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import faust  # noqa: PLC0415

    from newsroom_notify import bootstrap  # noqa: PLC0415

    def no_worker(*args: object, **kwargs: object) -> None:
        raise AssertionError("the worker started")

    monkeypatch.setattr(bootstrap, "create_worker", lambda settings: "the app")
    monkeypatch.setattr(faust, "Worker", no_worker)
    monkeypatch.setattr(cli, "changelog_topics", lambda app: [])
    monkeypatch.setattr(cli, "_ensure_topics", lambda *args, **kwargs: None)  # refused
    monkeypatch.setenv("NEWSROOM_DEV_MODE", "true")
    assert main(["worker"]) == 2
