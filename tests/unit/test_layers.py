"""Every module and package at the top of ``newsroom_notify`` stands in one of the layers that
``make lint`` checks (``lint-imports``): a new one cannot slip past the layering unnoticed."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import newsroom_notify

ROOT = Path(__file__).resolve().parents[2]


def layered() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return [name.strip("() ") for layer in layers for name in re.split(r"[|:]", layer)]


def test_every_top_level_module_is_in_one_layer() -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules(newsroom_notify.__path__))
    names = layered()
    assert sorted(names) == modules
