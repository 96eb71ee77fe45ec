"""Every module and package at the top of ``newsroom_notify`` (the service) and of
``newsroom_dev`` (its development harness) stands in one of the layers that ``make lint``
checks (``lint-imports``): a new one cannot slip past the layering unnoticed."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import newsroom_dev
import newsroom_notify

ROOT = Path(__file__).resolve().parents[2]


def layered(container: str) -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [
        c["layers"]
        for c in config["contracts"]
        if c["type"] == "layers" and c["containers"] == [container]
    ]
    return [name.strip("() ") for layer in layers for name in re.split(r"[|:]", layer)]


@pytest.mark.parametrize("package", [newsroom_notify, newsroom_dev], ids=lambda p: p.__name__)
def test_every_top_level_module_is_in_one_layer(package: ModuleType) -> None:
    modules = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    names = layered(package.__name__)
    assert sorted(names) == modules
