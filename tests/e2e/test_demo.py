"""Issue 9: the demo, end to end, as a user runs it (``newsroom-notify demo``) on the real broker.

The demo starts its own worker and stand-alone API against the test broker, publishes its story
and prints what comes out; this test reads that output as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.demo_story import EXPECTED
from tests.integration.kafka_helpers import unique

NOTIFY = re.compile(r"← notify (?P<who>[A-Z]\w+ [A-Z]\w+|reader)\b.*? — (?P<reason>[a-z_]+):")


def test_the_demo_story_produces_each_notification_retraction_and_digest(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = unique("demo") + "."
    env = {
        **os.environ,
        "NEWSROOM_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "NEWSROOM_TOPICS__PREFIX": prefix,
        "NEWSROOM_APP_ID": prefix + "notify",
        "COLUMNS": "400",  # one line per event, as in a wide terminal
    }
    result = subprocess.run(
        [sys.executable, "-m", "newsroom_notify.cli", "demo", "--no-stay", "--dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    got = {(m["who"], m["reason"]) for m in NOTIFY.finditer(out)}
    assert got == EXPECTED, out
    # Ana's instant notification about the spam is withdrawn when a moderator removes it.
    assert re.search(r"← retract n-\w+ for m-ana — the comment was removed \(spam\)", out), out
    # Dan follows in an hourly digest: one digest with the four approved comments, no spam.
    digests = re.findall(r"← digest for (.+?) \((\w+)\): (\d+) new comments", out)
    assert digests == [("Dan Hale", "hourly", "4")], out
    # Nothing about the spam except its retraction reaches anyone else.
    assert out.count("about Cheap Watches's comment") == 1, out
    # Issue 18: every notification with an address and Dan's digest land in the demo's SMTP sink
    # as mails, printed with where to open them (Ana's spam notification may have been mailed
    # before its retraction); the demo waits for every due mail and says when one is missing.
    mails = re.findall(r"✉ mail to (.+?): “(.+?)”.*? — open (\S+)", out)
    who = [m[0] for m in mails]
    for name, _reason in EXPECTED:
        assert name in who, out
    assert any(m[0] == "Dan Hale" and m[1].startswith("Your hourly digest") for m in mails), out
    assert "Please confirm your subscription" in [m[1] for m in mails if m[0] == "reader"]
    for _name, _subject, opened in mails:
        page = Path(opened)
        assert page.suffix == ".html", opened
        assert page.parent == tmp_path / "mail", opened
        assert page.with_suffix(".eml").read_bytes().startswith(b"From: "), opened
        assert "Unsubscribe" in page.read_text(), opened
    assert re.search(r"comment posted → mail accepted: median [0-9.]+ s", out), out
    assert "still missing" not in out, out
    # Never an address on screen.
    assert "@example.org" not in out, out
    # The processes the demo started are gone: it stopped what it started.
    assert "Stopped." in out
