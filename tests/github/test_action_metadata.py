"""action.yml against SchemaStore's github-action.json, and against the code that reads it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from quantzero_ci.config import GATE_CHOICES
from quantzero_ci.github.inputs import CHOICE_OVERRIDES, INPUT_NAMES
from quantzero_ci.github.outputs import action_outputs

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ACTION = ROOT / ".github" / "actions" / "source" / "action.yml"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "github-action.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))


def test_action_yml_validates_against_the_published_schema(action: dict) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(action, SCHEMA, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize(
    "broken",
    [
        {"runs": {"using": "docker"}},  # no image
        {"inputs": {"min-pcs": {"default": "0.9", "required": False}}},  # no description
        {"branding": {"icon": "cpu", "color": "teal"}},  # not a badge colour
    ],
)
def test_the_schema_rejects_broken_metadata(action: dict, broken: dict) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**action, **broken}, SCHEMA, cls=jsonschema.Draft7Validator)


def test_docker_action_runs_the_published_image_of_this_version(action: dict) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    assert action["runs"] == {
        "using": "docker",
        "image": f"docker://ghcr.io/quantzero/quantzero-ci:{version}",
    }
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "/app/entrypoint.py"]' in dockerfile


def test_the_source_action_is_the_same_action_built_from_the_dockerfile(action: dict) -> None:
    source = yaml.safe_load(SOURCE_ACTION.read_text(encoding="utf-8"))
    jsonschema.validate(source, SCHEMA, cls=jsonschema.Draft7Validator)
    assert source["runs"] == {"using": "docker", "image": "../../../Dockerfile"}
    assert (SOURCE_ACTION.parent / source["runs"]["image"]).resolve() == ROOT / "Dockerfile"
    assert source["inputs"] == action["inputs"] and source["outputs"] == action["outputs"]


def test_inputs_are_kebab_case_described_and_read_by_the_adapter(action: dict) -> None:
    inputs = action["inputs"]
    assert set(inputs) == set(INPUT_NAMES)
    for name, spec in inputs.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), name
        assert spec["description"].strip()
        assert isinstance(spec.get("default", ""), str)
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["comment"]["default"] == "true"


def test_choice_inputs_name_their_setting_and_every_choice(action: dict) -> None:
    assert CHOICE_OVERRIDES == {"decide-on": "decide_on"}
    for name, key in CHOICE_OVERRIDES.items():
        description = action["inputs"][name]["description"]
        assert f"gate.{key}" in description
        assert all(choice in description for choice in GATE_CHOICES[key][0]), description
        assert action["inputs"][name]["default"] == ""  # empty: the config file decides


def test_declared_outputs_are_the_ones_written(action: dict, tmp_path: Path) -> None:
    report = {"carbon": {}, "consistency": {}, "decision": {"passed": True}, "baseline": None}
    written = action_outputs(
        report,
        certificate_json=tmp_path / "a",
        certificate_pdf=tmp_path / "b",
        compressed_model=tmp_path / "c",
        comment_markdown="",
        workspace=tmp_path,
        comment_url="u",
    )
    from quantzero_ci.fleet.outputs import FleetFiles
    from quantzero_ci.github.fleet_mode import fleet_outputs, matrix_output

    fleet = {
        "totals": {"before_kg": 1.0, "after_kg": 0.5, "reduction_pct": 50.0},
        "decision": {"passed": True, "failed_members": []},
    }
    files = FleetFiles(tmp_path / "f.json", tmp_path / "f.pdf", tmp_path / "f.md")
    written |= fleet_outputs(fleet, files, tmp_path, "") | matrix_output([])
    assert set(action["outputs"]) == set(written) | {"error"}
    for required in (
        "passed",
        "carbon-before",
        "carbon-after",
        "carbon-reduction",
        "pcs",
        "certificate-pdf",
        "certificate-json",
        "compressed-model",
        "comment-url",
    ):
        assert required in action["outputs"]
