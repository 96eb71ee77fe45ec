"""The rules are cited by name: every ``rule "..."`` in the code and the tests names a rule of the
README's "What gets notified, and why" (its bold names), and none is cited by a number (the repo
has no numbered list of them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for p in [*(ROOT / "services").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    if p != Path(__file__).resolve()
    and not any(
        part.startswith(".") or part == "node_modules" for part in p.relative_to(ROOT).parts
    )
)  # the project's own files, not the tools' virtualenvs under tests/tools/
CITED = re.compile(r'\b[Rr]ules?\s+"([^"]+)"')
NUMBERED = re.compile(r"\b[Rr]ules?\s+#?\d")


def readme_rules() -> set[str]:
    text = (ROOT / "docs" / "rules.md").read_text()
    section = text.split("## What gets notified, and why", 1)[1].split("\n## ", 1)[0]
    return {m.rstrip(".") for m in re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.MULTILINE)}


def citations() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for match in CITED.finditer(path.read_text()):
            words = [w for w in match.group(1).split() if w != "#"]  # wrapped comments
            found.append((str(path.relative_to(ROOT)), " ".join(words)))
    return found


def test_the_readme_names_the_rules() -> None:
    assert {"Only approved comments notify", "Replies", "Erasure"} <= readme_rules()


def test_every_rule_cited_in_the_code_is_a_rule_of_the_readme() -> None:
    rules = readme_rules()
    cited = citations()
    assert len(cited) > 20
    assert [(path, name) for path, name in cited if name not in rules] == []


def test_no_rule_is_cited_by_a_number() -> None:
    numbered = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if NUMBERED.search(line)
    ]
    assert numbered == []
