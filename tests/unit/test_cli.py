"""The command line: parser, and the readable lines of ``newsroom-notify tail``."""

from __future__ import annotations

import orjson
import pytest

from newsroom_notify.cli import build_parser, describe
from newsroom_notify.contract.samples import sample_events


@pytest.mark.parametrize("command", ["worker", "topics", "post", "tail"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


def test_tail_lines_say_who_why_and_never_the_address() -> None:
    event = sample_events()["newsroom.notification.created"]
    line = describe("newsroom.notifications", b"k", orjson.dumps(event), [])
    assert "NOTIFY Geoff Roach" in line
    assert "reason=reply" in line
    assert "c-88120 by Ana Lima" in line
    assert "@" not in line


def test_tail_lines_for_retractions_digests_and_dead_letters() -> None:
    samples = sample_events()
    retraction = describe("n", None, orjson.dumps(samples["newsroom.notification.retracted"]), [])
    assert "RETRACT n-5d1c0a6f9b2e4c7a8f3e" in retraction
    assert "cause=spam" in retraction
    digest = describe("d", None, orjson.dumps(samples["newsroom.digest.ready"]), [])
    assert "DIGEST" in digest
    assert "total_comments=14" in digest
    dead = describe(
        "dl",
        None,
        b"{broken",
        [("newsroom.dlt.error.class", b"InvalidJson"), ("newsroom.dlt.error.message", b"x")],
    )
    assert "DEAD LETTER InvalidJson" in dead
