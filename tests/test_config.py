"""Config: parsing, overrides, and one clear ConfigError per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantzero_ci.config import load_config
from quantzero_ci.errors import EXIT_USAGE, ConfigError

MINIMAL = """
version: 1
model:
  path: model.pt
  factory: model:build_model
  input_shape: [1, 1, 16, 16]
data:
  evaluation: eval.pt
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".quantzero.yml"
    path.write_text(text)
    return path


def test_minimal_file_gets_defaults_and_paths_relative_to_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(write(tmp_path, MINIMAL))
    assert config.model.format == "state_dict"
    assert config.model.path == tmp_path / "model.pt"
    assert config.data.evaluation == tmp_path / "eval.pt"
    assert config.model.input_shape == (1, 1, 16, 16)
    assert config.compression.mode == "auto"
    assert config.compression.thresholds is None
    assert config.compression.target_pcs == config.gate.min_pcs  # auto plans to the gate's PCS
    assert config.output_dir == tmp_path / "quantzero-out"
    assert config.gate.max_accuracy_drop_pp is None


def test_max_savings_mode_sets_its_thresholds(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + "compression:\n  mode: max_savings\n"))
    assert config.compression.thresholds == (0.30, 0.70)


def test_overrides_win_and_resolve_against_the_working_directory(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config = load_config(
        write(tmp_path, MINIMAL),
        {
            "model": "other.pt",
            "gate.min_pcs": "0.5",
            "deployment.country": "ke",
            "output_dir": "out",
        },
    )
    assert config.model.path == work / "other.pt"
    assert config.model.factory == "model:build_model"
    assert config.gate.min_pcs == 0.5
    assert config.output_dir == work / "out"


def test_torchvision_shorthand(tmp_path):
    config = load_config(
        None,
        {"model": "torchvision:resnet18", "model.input_shape": "1,3,224,224"},
        base_dir=tmp_path,
    )
    assert config.model.format == "torchvision"
    assert config.model.label == "torchvision:resnet18"
    assert config.model.input_shape == (1, 3, 224, 224)


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        ("gate:\n  min_pcs: 1.5\n", "gate.min_pcs", "between 0 and 1"),
        ("gate:\n  min_pcs: high\n", "gate.min_pcs", "not a number"),
        ("gate:\n  max_accuracy_drop_pp: -1\n", "gate.max_accuracy_drop_pp", "out of range"),
        ("compression:\n  mode: fast\n", "compression.mode", "accuracy_preserving"),
        ("compression:\n  thresholds: [0.7, 0.2]\n", "compression.thresholds", "not ascending"),
        ("deployment:\n  deployments: 0\n", "deployment.deployments", "out of range"),
        ("deployment:\n  colour: red\n", "deployment.colour", "not a known setting"),
        ("deployment:\n  batch_size: 0\n", "deployment.batch_size", "between 1 and 4096"),
        ("deployment:\n  batch_size: 2.5\n", "deployment.batch_size", "not a whole number"),
        ("surprise: 1\n", "surprise", "not a known setting"),
    ],
)
def test_bad_values_name_the_field(tmp_path, extra, field, fix):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + extra))
    assert caught.value.field == field
    assert fix in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_deployment_batch_size_is_optional_and_a_whole_number(tmp_path):
    assert load_config(write(tmp_path, MINIMAL)).deployment.batch_size is None
    config = load_config(write(tmp_path, MINIMAL + "deployment:\n  batch_size: 32\n"))
    assert config.deployment.batch_size == 32


def test_state_dict_without_factory_is_rejected(tmp_path):
    text = MINIMAL.replace("  factory: model:build_model\n", "  format: state_dict\n")
    with pytest.raises(ConfigError, match=r"model\.factory: is required"):
        load_config(write(tmp_path, text))


def test_pickle_needs_explicit_trust(tmp_path):
    text = MINIMAL.replace("  factory: model:build_model\n", "  format: pickle\n")
    with pytest.raises(ConfigError, match="trust_pickle"):
        load_config(write(tmp_path, text))


def test_input_shape_must_have_batch_one(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.input_shape: starts with batch size 8"):
        load_config(write(tmp_path, MINIMAL.replace("[1, 1, 16, 16]", "[8, 1, 16, 16]")))


def test_bad_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "model:\n  path: [unclosed\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
