"""The docs stay true and findable: every link of the README and of docs/ reaches a file and a
heading that exist, every metric the service exports and every CLI command is documented, and
the README's map names every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

import newsroom_notify.metrics  # noqa: F401  (registers the service's metrics)
from newsroom_notify.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", title.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_link_reaches_a_file_and_a_heading_that_exist() -> None:
    broken, local = [], 0
    for page in PAGES:
        for target in LINK.findall(FENCE.sub("", page.read_text())):
            if re.match(r"^(https?:|mailto:)", target):
                continue
            local += 1
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert local > 50  # the README's map, the pages' links between each other and to files
    assert broken == []


def test_the_readme_maps_every_page_of_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(list(DOCS.glob("*.md"))) >= 10
    assert [p.name for p in DOCS.glob("*.md") if f"(docs/{p.name})" not in readme] == []


def test_every_exported_metric_is_documented() -> None:
    page = "".join(p.read_text() for p in DOCS.glob("*.md"))
    names = {
        metric.name
        for metric in REGISTRY.collect()
        if metric.name.startswith(("newsroom_", "mailer_"))
    }
    assert len(names) >= 10
    assert sorted(n for n in names if n not in page) == []


def test_every_cli_command_is_documented() -> None:
    page = (DOCS / "operations.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) >= {"worker", "api", "mailer", "demo", "topics", "post", "tail"}
    assert sorted(c for c in commands if f"newsroom-notify {c}" not in page) == []
