"""The service's wheel holds the service and nothing of the development harness; the harness
(local Kafka, the demo, the process supervisor, the SMTP sink, builders, samples, the workload,
the schemas/ generator) is the wheel of ``newsroom-notify-dev``.

Both wheels are built the way the image builds the service (``pip wheel``, from a copy of
exactly what the Dockerfile copies: pyproject.toml, README.md, services/), without build
isolation so no package index is needed (the venv's setuptools: pyproject's ``[dev]``)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MOVED_OUT = {  # what the service's wheel shipped before the harness became its own distribution
    "newsroom_notify/demo.py",
    "newsroom_notify/devkafka.py",
    "newsroom_notify/devprocess.py",
    "newsroom_notify/schemas.py",
    "newsroom_notify/contract/builders.py",
    "newsroom_notify/contract/samples.py",
    "newsroom_notify/mailer/sink.py",
}
DEV_ONLY = {"newsroom_dev", "aiosmtpd", "pytest", "hypothesis", "tests", "bench"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Distribution name -> file name -> content, of each wheel."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # Build leftovers (build/lib keeps files deleted since) would leak into the wheel.
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / "services", src / "services", ignore=ignore)
    out = src / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    projects = [str(src), str(src / "services" / "dev")]
    subprocess.run(
        [*pip_wheel, "--no-build-isolation", "--wheel-dir", str(out), *projects],
        check=True,
        cwd=src,
    )
    found = {}
    for wheel in out.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            found[wheel.name.split("-")[0]] = {n: archive.read(n) for n in archive.namelist()}
    return found


def module_level_imports(source: str) -> set[str]:
    """Top-level package of every import a module runs when it is imported."""
    names = set()
    for node in ast.parse(source).body:  # not inside functions: those run when asked
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_service_wheel_holds_the_service_and_none_of_the_harness(
    wheels: dict[str, dict[str, bytes]],
) -> None:
    files = set(wheels["newsroom_notify"])
    packages = {f.split("/")[0] for f in files if not f.split("/")[0].endswith(".dist-info")}
    assert packages == {"newsroom_notify"}
    assert {"newsroom_notify/cli.py", "newsroom_notify/bootstrap.py"} <= files
    assert any(f.startswith("newsroom_notify/mailer/templates/") for f in files)
    assert sorted(files & MOVED_OUT) == []


def test_no_module_of_the_service_wheel_imports_development_tooling(
    wheels: dict[str, dict[str, bytes]],
) -> None:
    """What the image imports must import there: no module of the service needs the harness,
    the SMTP sink's aiosmtpd or the test tools when it is imported."""
    offenders = {}
    for name, content in sorted(wheels["newsroom_notify"].items()):
        if name.endswith(".py"):
            imported = module_level_imports(content.decode()) & DEV_ONLY
            if imported:
                offenders[name] = sorted(imported)
    assert offenders == {}


def test_the_dev_wheel_holds_the_harness_and_none_of_the_service(
    wheels: dict[str, dict[str, bytes]],
) -> None:
    files = set(wheels["newsroom_notify_dev"])
    modules = {f.removeprefix("newsroom_dev/") for f in files if f.startswith("newsroom_dev/")}
    assert modules >= {
        "kafka.py",
        "demo/__init__.py",
        "demo/story.py",
        "demo/render.py",
        "demo/clock.py",
        "demo/stack.py",
        "process.py",
        "smtpsink.py",
        "builders.py",
        "samples.py",
        "workload.py",
        "schemas.py",
    }
    assert [f for f in files if f.startswith("newsroom_notify/")] == []
