"""schemas/ is generated from the models, current, and valid by independent validators."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from newsroom_dev.samples import sample_events
from newsroom_dev.schemas import stale_files

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
TOOLS = ROOT / "tests" / "tools"


def test_committed_schemas_match_the_models() -> None:
    assert stale_files(SCHEMAS) == [], "schemas/ is stale: run `make schemas` and commit"


def test_staleness_check_notices_a_changed_file(tmp_path: Path) -> None:
    copy_dir = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, copy_dir)
    target = copy_dir / "json" / "newsroom.comment.posted.v1.json"
    target.write_text(target.read_text().replace('"Comment id."', '"Id of a comment."'))
    assert stale_files(copy_dir) == ["json/newsroom.comment.posted.v1.json"]


def _validator(event_type: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "json" / f"{event_type}.v1.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize("event_type", sorted(sample_events()))
def test_samples_validate_against_the_json_schemas(event_type: str) -> None:
    sample = json.loads((SCHEMAS / "examples" / f"{event_type}.json").read_text())
    errors = list(_validator(event_type).iter_errors(sample))
    assert errors == []


@pytest.mark.parametrize("event_type", sorted(sample_events()))
def test_json_schemas_reject_a_wrong_type_and_a_missing_field(event_type: str) -> None:
    validator = _validator(event_type)
    sample = sample_events()[event_type]
    wrong_type = {**sample, "type": "newsroom.something.else"}
    assert list(validator.iter_errors(wrong_type))
    missing = copy.deepcopy(sample)
    del missing["id"]
    assert list(validator.iter_errors(missing))


def _validate_asyncapi(path: Path) -> subprocess.CompletedProcess[str]:
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").exists():
        pytest.fail("tests/tools/node_modules missing: `make test` installs it (npm ci)")
    return subprocess.run(
        ["node", str(TOOLS / "validate-asyncapi.mjs"), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    result = _validate_asyncapi(SCHEMAS / "asyncapi.yaml")
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert report["version"] == "3.0.0"
    assert report["channels"] == 6
    assert report["errors"] == []


def test_asyncapi_validator_rejects_a_broken_document(tmp_path: Path) -> None:
    doc = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())
    doc["operations"]["receive_comments"]["action"] = "consume"  # not an AsyncAPI 3 action
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    result = _validate_asyncapi(broken)
    assert result.returncode == 1
    assert json.loads(result.stdout)["errors"]
