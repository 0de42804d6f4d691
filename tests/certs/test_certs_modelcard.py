"""Hugging Face model-card metadata, and the keygen / model-card commands."""

from __future__ import annotations

import stat

import pytest
import yaml
from click.testing import CliRunner

from quantzero_ci.certify.modelcard import model_card_metadata
from quantzero_ci.certify.signing import certificate_json_bytes
from quantzero_ci.cli_certs import keygen_command, model_card_command


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n") and text.endswith("\n---\n")
    return yaml.safe_load(text[4:-4])


def test_metadata_is_yaml_with_hf_fields_and_the_inference_extension(signed_report):
    text = model_card_metadata(signed_report)
    data = _front_matter(text)
    co2 = data["co2_eq_emissions"]
    assert set(co2) == {
        "emissions",
        "source",
        "training_type",
        "geographical_location",
        "hardware_used",
    }
    grams = signed_report["carbon"]["annual"]["after_kg"] * 1000.0
    assert co2["emissions"] == pytest.approx(grams, rel=1e-5)
    assert "INFERENCE" in text and "TRAINING" in text  # the comment says what the number is
    assert co2["geographical_location"] == "Germany (DE)"
    assert co2["hardware_used"] == signed_report["deployment"]["hardware"]["name"]
    ext = data["quantzero_inference_emissions"]
    carbon = signed_report["carbon"]
    assert ext["before_g_per_1000_inferences"] == carbon["before"]["g_per_1000_inferences"]
    assert ext["after_g_per_1000_inferences"] == carbon["after"]["g_per_1000_inferences"]
    assert ext["after_ci95"] == carbon["after"]["ci95"]
    assert ext["hardware"] == "raspberry-pi-4" and ext["country"] == "DE"
    assert ext["certificate_id"] == signed_report["certificate_id"]
    assert ext["fingerprint"] == signed_report["signature"]["fingerprint"]
    assert ext["certificate_sha256"] == signed_report["signature"]["payload_sha256"]


def test_unsigned_metadata_has_no_fingerprint(unsigned_report):
    ext = _front_matter(model_card_metadata(unsigned_report))["quantzero_inference_emissions"]
    assert ext["signature"] == "unsigned" and ext["fingerprint"] is None


def test_model_card_command_prints_the_block(signed_report, tmp_path):
    cert = tmp_path / "certificate.json"
    cert.write_bytes(certificate_json_bytes(signed_report))
    result = CliRunner().invoke(model_card_command, [str(cert)])
    assert result.exit_code == 0
    assert result.output == model_card_metadata(signed_report)
    missing = CliRunner().invoke(model_card_command, [str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_keygen_command_writes_the_pair_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    result = runner.invoke(keygen_command, ["--out", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    private = tmp_path / "keys" / "quantzero-signing.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "fingerprint  SHA256:" in result.output and "gh secret set" in result.output
    again = runner.invoke(keygen_command, ["--out", str(tmp_path / "keys")])
    assert again.exit_code == 2 and "already exists" in again.output
