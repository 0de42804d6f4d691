"""`quantzero verify`: signatures, hashes and re-derived figures, with their exit codes."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from quantzero_ci.certificate import render_pdf
from quantzero_ci.certify.certificate_check import (
    load_certificate,
    verify_certificate,
    verify_report,
)
from quantzero_ci.certify.signing import certificate_json_bytes, sign_report
from quantzero_ci.cli_certs import verify_command
from quantzero_ci.errors import InputError


def _write(report: dict[str, Any], path: Path) -> Path:
    path.write_bytes(certificate_json_bytes(report))
    return path


def _tampered(report: dict[str, Any], where: tuple[Any, ...], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(report)
    target = copied
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = change(target[where[-1]])
    return copied


def _failed(result: Any) -> dict[str, str]:
    return {check.name: check.message for check in result.failures}


def test_signed_certificate_verifies(signed_report, keys, workdir):
    result = verify_report(
        signed_report,
        public_key_pem=keys["a.pub"].read_bytes(),
        model_path=workdir / "model.pt",
        compressed_model_path=workdir / "model.compressed.pt",
    )
    assert result.exit_code == 0, result.lines()
    statuses = {check.name: check.status for check in result.checks}
    assert statuses == {
        "signature": "pass",
        "payload hash": "pass",
        "model file": "pass",
        "compressed model file": "pass",
        "tables": "pass",
        "profile": "pass",
        "carbon": "pass",
        "annual projection": "pass",
        "consistency (PCS)": "pass",
        "accuracy and size": "pass",
        "checks and decision": "pass",
    }
    assert result.verdict.startswith("VERIFIED")


TAMPERS = {
    "a carbon figure": (
        ("carbon", "after", "g_per_1000_inferences"),
        lambda v: v * 1.01,
        "carbon.after.g_per_1000_inferences",
    ),
    "an interval bound": (("carbon", "reduction_ci95", 0), lambda v: v - 1.0, "reduction_ci95[0]"),
    "pcs": (("consistency", "pcs"), lambda v: v - 0.05, "consistency.pcs"),
    "a layer's flops": (("profile", "layers", 1, "flops"), lambda v: v + 1000, "flops"),
    "a threshold": (("thresholds", "min_pcs"), lambda v: 0.5, "checks[pcs].threshold"),
    "the decision": (("decision", "passed"), lambda v: not v, "decision.passed"),
    "the grid coefficient": (
        ("deployment", "grid", "g_per_kwh"),
        lambda v: v / 2,
        "deployment.grid.g_per_kwh",
    ),
    "an annual figure": (("carbon", "annual", "saved_kg"), lambda v: v * 2, "annual.saved_kg"),
    "the accuracy": (("accuracy", "after"), lambda v: v + 0.01, "accuracy.drop_pp"),
    "the memory-bound layers": (
        ("carbon", "memory_bound"),
        lambda v: [*v, "not-a-layer"],
        "carbon.memory_bound",
    ),
    "a layer's carbon": (
        ("carbon", "layers", 1, "after_g"),
        lambda v: v * 0.5,
        "carbon.layers[1].after_g",
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_changing_one_figure_fails_and_names_it(signed_report, name):
    where, change, named = TAMPERS[name]
    result = verify_report(_tampered(signed_report, where, change))
    assert result.exit_code == 1
    failed = _failed(result)
    assert "changed after signing" in failed["signature"]
    assert "payload hash" in failed
    assert any(named in message for message in failed.values()), failed


@pytest.mark.parametrize("name", ["a carbon figure", "pcs", "the decision"])
def test_changed_figures_fail_an_unsigned_certificate_too(unsigned_report, name):
    where, change, named = TAMPERS[name]
    result = verify_report(_tampered(unsigned_report, where, change))
    assert result.exit_code == 1  # not 3: a tampered certificate is not merely unsigned
    assert any(named in message for message in _failed(result).values())


def test_a_re_signed_per_layer_figure_still_fails_the_carbon_check(signed_report, keys):
    layers = signed_report["carbon"]["layers"]
    assert layers[-1]["precision"] == "INT8" and layers[-1]["after_g"] < layers[-1]["before_g"]
    forged = sign_report(
        _tampered(signed_report, ("carbon", "layers", -1, "before_g"), lambda v: v * 3),
        keys["a"].read_bytes(),
    )  # the signer's own key: the signature and payload hash hold, the figure does not
    result = verify_report(forged, public_key_pem=keys["a.pub"].read_bytes())
    assert result.exit_code == 1
    failed = _failed(result)
    assert set(failed) == {"carbon"}, failed
    assert f"carbon.layers[{len(layers) - 1}].before_g: recorded" in failed["carbon"]


def test_a_certificate_from_before_the_per_layer_table_still_verifies(signed_report, keys):
    older = copy.deepcopy(signed_report)
    del older["carbon"]["layers"]
    result = verify_report(sign_report(older, keys["a"].read_bytes()))
    assert result.exit_code == 0, result.lines()


def test_altered_signature_value_fails(signed_report):
    raw = bytearray(base64.b64decode(signed_report["signature"]["value"]))
    raw[0] ^= 1
    report = _tampered(
        signed_report, ("signature", "value"), lambda _: base64.b64encode(raw).decode()
    )
    result = verify_report(report)
    assert result.exit_code == 1
    assert set(_failed(result)) == {"signature"}
    assert "signature.value was altered" in _failed(result)["signature"]


def test_resigned_by_another_key_fails_against_the_pinned_key(signed_report, keys):
    forged = sign_report(signed_report, keys["b"].read_bytes())
    assert verify_report(forged).exit_code == 0  # self-consistent with its own embedded key...
    result = verify_report(forged, public_key_pem=keys["a.pub"].read_bytes())
    assert result.exit_code == 1  # ...but not by the key the reader trusts
    assert "not by --public-key" in _failed(result)["signature"]


def test_swapped_embedded_key_fails(signed_report, keys):
    other = sign_report(signed_report, keys["b"].read_bytes())["signature"]
    report = copy.deepcopy(signed_report)
    report["signature"].update(public_key=other["public_key"], fingerprint=other["fingerprint"])
    assert "does not match" in _failed(verify_report(report))["signature"]
    report["signature"]["fingerprint"] = signed_report["signature"]["fingerprint"]
    assert "is not the embedded public key's" in _failed(verify_report(report))["signature"]


def test_unsigned_but_consistent_exits_3(unsigned_report, keys):
    result = verify_report(unsigned_report)
    assert result.exit_code == 3 and not result.failures
    assert next(c for c in result.checks if c.name == "signature").status == "note"
    pinned = verify_report(unsigned_report, public_key_pem=keys["a.pub"].read_bytes())
    assert pinned.exit_code == 1
    assert "unsigned" in _failed(pinned)["signature"]


def test_changed_model_file_fails_and_names_it(signed_report, workdir, tmp_path):
    changed = tmp_path / "model.pt"
    changed.write_bytes((workdir / "model.pt").read_bytes() + b"\0")
    result = verify_report(
        signed_report, model_path=changed, compressed_model_path=workdir / "model.compressed.pt"
    )
    assert result.exit_code == 1
    assert set(_failed(result)) == {"model file"}
    assert "model.sha256" in _failed(result)["model file"]


def test_pdf_embeds_the_exact_json_and_verifies(signed_report, keys, tmp_path):
    pdf = tmp_path / "certificate.pdf"
    render_pdf(signed_report, pdf)
    from pypdf import PdfReader

    assert PdfReader(pdf).attachments["certificate.json"] == [certificate_json_bytes(signed_report)]
    assert load_certificate(pdf) == signed_report
    result = verify_certificate(pdf, public_key_path=keys["a.pub"])
    assert result.exit_code == 0, result.lines()


def test_pdf_with_a_tampered_embedded_json_fails(signed_report, tmp_path):
    pdf = tmp_path / "certificate.pdf"
    tampered = _tampered(signed_report, ("consistency", "pcs"), lambda v: 1.0)
    render_pdf(signed_report, pdf, json_bytes=certificate_json_bytes(tampered))
    assert verify_certificate(pdf).exit_code == 1


def test_usage_errors_raise_input_error(tmp_path, signed_report):
    with pytest.raises(InputError, match="does not exist"):
        load_certificate(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not an EcoInfer Certificate"):
        load_certificate(tmp_path / "other.json")
    (tmp_path / "dup.json").write_text('{"schema": "quantzero-ci/certificate/v1", "a": 1, "a": 2}')
    with pytest.raises(InputError, match="duplicate key 'a'"):
        load_certificate(tmp_path / "dup.json")
    (tmp_path / "nan.json").write_text('{"schema": "quantzero-ci/certificate/v1", "a": NaN}')
    with pytest.raises(InputError, match="NaN"):
        load_certificate(tmp_path / "nan.json")
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    with (tmp_path / "plain.pdf").open("wb") as handle:
        writer.write(handle)
    with pytest.raises(InputError, match=r"no embedded certificate\.json"):
        load_certificate(tmp_path / "plain.pdf")
    cert = _write(signed_report, tmp_path / "certificate.json")
    with pytest.raises(InputError, match=r"--model: .* does not exist"):
        verify_certificate(cert, model_path=tmp_path / "nope.pt")


def test_missing_field_is_named(signed_report):
    report = copy.deepcopy(signed_report)
    del report["carbon"]["interval"]
    assert "carbon.interval.samples is missing" in _failed(verify_report(report))["carbon"]


def test_cli_verify_prints_one_line_per_check_and_exits(
    signed_report, unsigned_report, keys, tmp_path
):
    runner = CliRunner()
    signed = _write(signed_report, tmp_path / "signed.json")
    ok = runner.invoke(verify_command, [str(signed), "--public-key", str(keys["a.pub"])])
    assert ok.exit_code == 0, ok.output
    assert "✓ signature: valid Ed25519 signature" in ok.output
    assert "✗" not in ok.output

    bad = _write(
        _tampered(signed_report, ("consistency", "pcs"), lambda v: 1.0), tmp_path / "b.json"
    )
    failed = runner.invoke(verify_command, [str(bad)])
    assert failed.exit_code == 1
    assert "✗ consistency (PCS): consistency.pcs: recorded 1.0" in failed.output

    unsigned = _write(unsigned_report, tmp_path / "unsigned.json")
    result = runner.invoke(verify_command, [str(unsigned), "--json"])
    assert result.exit_code == 3
    assert json.loads(result.output)["signed"] is False

    missing = runner.invoke(verify_command, [str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


# ---- certificates made before the roofline counted what quantization costs (issue 18) ----

OLD = Path(__file__).parent / "data" / "certificate_before_op_overhead.json"


def _old() -> dict[str, Any]:
    """A signed certificate written by the code before the per-operator overhead (main at
    a37dfc4, tests/certs/conftest.build_report): no op_overhead_us, no profile input_bytes."""
    report = json.loads(OLD.read_text(encoding="utf-8"))
    assert "op_overhead_us" not in report["deployment"]["hardware"]
    assert all("input_bytes" not in layer for layer in report["profile"]["layers"])
    return report


def test_a_certificate_from_before_the_operator_overhead_still_verifies():
    result = verify_certificate(OLD, public_key_path=OLD.with_suffix(".pub"))
    assert result.exit_code == 0, result.lines()
    statuses = {check.name: check.status for check in result.checks}
    assert statuses["carbon"] == statuses["annual projection"] == "pass"
    assert statuses["tables"] == "note"  # its hardware table is not this tool's


def test_a_changed_figure_in_an_old_certificate_still_fails(keys):
    tampered = _tampered(_old(), ("carbon", "after", "g_per_1000_inferences"), lambda v: v / 2)
    result = verify_report(sign_report(tampered, keys["a"].read_bytes()))
    assert result.exit_code == 1
    assert "carbon.after.g_per_1000_inferences" in _failed(result)["carbon"]


def test_an_old_certificate_claiming_the_overhead_fails(keys):
    """Its figures were made without the overhead: adding the coefficient to its recorded
    hardware (and re-signing) makes them re-derive differently, so verify uses what is recorded."""
    from quantzero_ci.carbon.hardware import get_hardware

    overhead = get_hardware("raspberry-pi-4").op_overhead_us
    assert overhead is not None
    report = _old()
    report["deployment"]["hardware"]["op_overhead_us"] = overhead.to_dict()
    result = verify_report(sign_report(report, keys["a"].read_bytes()))
    assert result.exit_code == 1
    assert "carbon" in _failed(result)
