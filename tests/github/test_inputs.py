"""INPUT_* → config overrides and adapter settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.github.inputs import env_name, parse_inputs


def test_env_name_keeps_dashes() -> None:
    assert env_name("min-pcs") == "INPUT_MIN-PCS"
    assert env_name("github-token") == "INPUT_GITHUB-TOKEN"


def test_inputs_become_overrides(tmp_path: Path) -> None:
    (tmp_path / ".quantzero.yml").write_text("version: 1\n", encoding="utf-8")
    env = {
        "INPUT_MODEL": "torchvision:resnet18",
        "INPUT_HARDWARE": "edge-arm",
        "INPUT_COUNTRY": "KE",
        "INPUT_MODE": "max_savings",
        "INPUT_MIN-CARBON-REDUCTION": "10",
        "INPUT_MIN-PCS": " 0.97 ",
        "INPUT_MAX-CARBON-INCREASE": "5",
        "INPUT_OUTPUT-DIR": "out",
        "INPUT_GITHUB-TOKEN": "secret-token",
        "INPUT_COMMENT": "false",
        "INPUT_BASELINE": "none",
    }
    parsed = parse_inputs(env, tmp_path)
    assert parsed.config_path == tmp_path / ".quantzero.yml"
    assert parsed.overrides == {
        "model": "torchvision:resnet18",
        "deployment.hardware": "edge-arm",
        "deployment.country": "KE",
        "compression.mode": "max_savings",
        "output_dir": "out",
        "gate.min_carbon_reduction_pct": 10.0,
        "gate.min_pcs": 0.97,
        "gate.max_carbon_increase_pct": 5.0,
    }
    assert parsed.comment is False
    assert parsed.baseline.mode == "none"
    assert parsed.token == "secret-token"
    assert "secret-token" not in repr(parsed)


def test_empty_inputs_mean_not_given(tmp_path: Path) -> None:
    env = {"INPUT_MODEL": "", "INPUT_MIN-PCS": "  ", "INPUT_CONFIG": "", "INPUT_COMMENT": ""}
    parsed = parse_inputs(env, tmp_path)
    assert parsed.overrides == {}
    assert parsed.config_path is None  # default .quantzero.yml absent: defaults + inputs decide
    assert parsed.comment is True
    assert parsed.baseline.mode == "auto"


def test_bad_number_names_the_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_inputs({"INPUT_MIN-PCS": "high"}, tmp_path)
    assert "input `min-pcs` (INPUT_MIN-PCS)" in str(caught.value)
    assert caught.value.exit_code == 2


def test_decide_on_input_reads_like_the_config_setting(tmp_path: Path) -> None:
    parsed = parse_inputs({"INPUT_DECIDE-ON": " lower-bound "}, tmp_path)
    assert parsed.overrides == {"gate.decide_on": "lower_bound"}
    with pytest.raises(ConfigError) as caught:
        parse_inputs({"INPUT_DECIDE-ON": "median"}, tmp_path)
    message = str(caught.value)
    assert "input `decide-on` (INPUT_DECIDE-ON): 'median' is not one of" in message
    assert "estimate, lower_bound" in message and caught.value.exit_code == 2


def test_bad_boolean_names_the_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"input `comment`.*'true' or 'false'"):
        parse_inputs({"INPUT_COMMENT": "sometimes"}, tmp_path)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"input `config`.*actions/checkout"):
        parse_inputs({"INPUT_CONFIG": "models/.quantzero.yml"}, tmp_path)


def test_baseline_certificate_path_resolves_against_workspace(tmp_path: Path) -> None:
    (tmp_path / "base.json").write_text("{}", encoding="utf-8")
    parsed = parse_inputs({"INPUT_BASELINE": "base.json"}, tmp_path)
    assert parsed.baseline.mode == "file"
    assert parsed.baseline.certificate == tmp_path / "base.json"
    with pytest.raises(InputError, match="input `baseline`"):
        parse_inputs({"INPUT_BASELINE": "missing.json"}, tmp_path)


def test_signing_key_content_or_path(tmp_path: Path) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"
    parsed = parse_inputs({"INPUT_SIGNING-KEY": pem}, tmp_path)
    assert parsed.signing_key_pem == pem.encode()
    assert "signing_key" not in parsed.overrides
    assert "BEGIN" not in repr(parsed)
    parsed = parse_inputs({"INPUT_SIGNING-KEY": "keys/ci.pem"}, tmp_path)
    assert parsed.overrides["signing_key"] == "keys/ci.pem"


def test_token_falls_back_to_github_token_env(tmp_path: Path) -> None:
    assert parse_inputs({"GITHUB_TOKEN": "t2"}, tmp_path).token == "t2"
