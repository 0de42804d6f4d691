"""End to end: the real gate on the bundled example, signed, then verified from JSON and PDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from quantzero_ci.certify.signing import generate_keypair
from quantzero_ci.cli import main
from quantzero_ci.cli_certs import model_card_command, verify_command

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "digits" / ".quantzero.yml"


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("gate")
    private, public = generate_keypair(base / "keys")
    out = base / "out"
    result = CliRunner().invoke(
        main,
        ["gate", "--config", str(CONFIG), "--output-dir", str(out)],
        env={"QUANTZERO_SIGNING_KEY": private.read_text()},
    )
    assert result.exit_code in (0, 1), result.output  # pass or fail, never a usage error
    return {"out": out, "public": public}


@pytest.mark.slow
def test_real_gate_certificate_verifies_from_json_and_pdf(gate_run):
    out, runner = gate_run["out"], CliRunner()
    files = [
        "--public-key", str(gate_run["public"]),
        "--model", str(ROOT / "examples" / "digits" / "model.pt"),
        "--compressed-model", str(out / "model.compressed.pte"),
    ]  # fmt: skip
    for cert in ("certificate.json", "certificate.pdf"):
        result = runner.invoke(verify_command, [str(out / cert), *files])
        assert result.exit_code == 0, result.output
        assert "✗" not in result.output and "VERIFIED" in result.output


@pytest.mark.slow
def test_real_gate_detects_a_swapped_compressed_model(gate_run, tmp_path):
    out = gate_run["out"]
    swapped = tmp_path / "model.compressed.pte"
    swapped.write_bytes((out / "model.compressed.pte").read_bytes() + b"\0")
    result = CliRunner().invoke(
        verify_command, [str(out / "certificate.pdf"), "--compressed-model", str(swapped)]
    )
    assert result.exit_code == 1
    assert "✗ compressed model file" in result.output
    assert "compressed_model.sha256" in result.output


@pytest.mark.slow
def test_real_gate_model_card(gate_run):
    result = CliRunner().invoke(model_card_command, [str(gate_run["out"] / "certificate.pdf")])
    assert result.exit_code == 0
    assert "co2_eq_emissions:" in result.output
    assert 'geographical_location: "Kenya (KE)"' in result.output
