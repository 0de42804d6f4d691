"""The gate shows the measured reduction beside the modelled one where the runner can speak for
the deployment class, and says what the reduction's interval establishes."""

from __future__ import annotations

import json

import pytest

from quantzero_ci.carbon.evidence import interval_text
from quantzero_ci.verify.latency import BATCH_N_RUNS, runner_kernel_family

from .conftest import cli


@pytest.mark.skipif(runner_kernel_family() != "x86", reason="needs an x86 runner")
def test_gate_on_an_x86_class_shows_modelled_and_measured_reduction_side_by_side(workspace):
    from pypdf import PdfReader

    workspace.write_config(**{"deployment.hardware": "laptop-cpu"})
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code in (0, 1), outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    evidence = cert["latency"]["measured_reduction"]
    assert evidence["applies"] and evidence["runner"] == "x86"
    assert evidence["modelled_pct"] == cert["carbon"]["reduction_pct"]
    b1, batch = cert["latency"]["batch1"], cert["latency"]
    rows = {row["batch_size"]: row for row in evidence["measured"]}
    assert set(rows) == {1, batch["batch_size"]}
    assert rows[1]["reduction_pct"] == pytest.approx(
        100 * (1 - b1["compressed_ms"] / b1["fp32_ms"])
    )
    assert rows[batch["batch_size"]]["reduction_pct"] == pytest.approx(
        100 * (1 - batch["after_ms"] / batch["before_ms"])
    )
    comment = (out / "comment.md").read_text()
    assert "Reduction measured on this runner, batch 1" in comment
    assert f"Reduction measured on this runner, batch {batch['batch_size']}" in comment
    assert "Modelled reduction" in comment
    assert ("excludes zero" in comment) or ("includes zero" in comment) or ("below zero" in comment)
    outside = [row for row in evidence["measured"] if not row["within_interval"]]
    assert (evidence["warning"] is not None) == bool(outside)
    if outside:
        assert "the model's 95% interval" in comment and "⚠️ Measured on this x86 runner" in comment
    pdf = " ".join(
        " ".join(p.extract_text() for p in PdfReader(out / "certificate.pdf").pages).split()
    )
    assert "Measured, batch 1" in pdf
    assert "the modelled interval" in pdf
    assert cli(workspace, "verify", "quantzero-out/certificate.json").exit_code in (0, 3)


def test_gate_on_an_arm_class_says_why_no_measurement_is_shown(workspace):
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")  # raspberry-pi-4
    assert outcome.exit_code in (0, 1), outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    evidence = cert["latency"]["measured_reduction"]
    if runner_kernel_family() == "x86":
        assert evidence["applies"] is False
        assert "No measured reduction is shown" in (out / "comment.md").read_text()
    assert (
        interval_text(cert["carbon"], cert["deployment"]["hardware"]["name"])
        in (out / "comment.md").read_text()
    )


def test_the_deployment_batch_is_measured_and_shown_beside_batch_1(workspace):
    from pypdf import PdfReader

    workspace.write_config(**{"deployment.batch_size": 500})  # above the 36 evaluation inputs
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code in (0, 1), outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    batch_n, batch1 = cert["latency"]["batch_n"], cert["latency"]["batch1"]
    assert batch_n["requested"] == 500 and batch_n["batch"] == 36  # capped at the inputs there are
    assert "capped at the number of evaluation inputs (36)" in batch_n["note"]
    assert (
        batch_n["runs"] == BATCH_N_RUNS and batch_n["fp32_ms"] > 0 and batch_n["compressed_ms"] > 0
    )
    assert set(batch1) - {"batch", "requested"} <= set(batch_n)  # batch 1's fields, and its batch
    comment = (out / "comment.md").read_text()
    assert "Latency on this runner, batch 36, the deployment's (capped from 500)" in comment
    pdf = " ".join(
        " ".join(p.extract_text() for p in PdfReader(out / "certificate.pdf").pages).split()
    )
    assert "Latency, batch 36 (deployment, capped)" in pdf
    assert cli(workspace, "verify", "quantzero-out/certificate.json").exit_code in (0, 3)
    workspace.write_config(**{"deployment.batch_size": None})
    assert cli(workspace, "gate", "--config", ".quantzero.yml").exit_code in (0, 1)
    cert = json.loads((out / "certificate.json").read_text())
    assert "batch_n" not in cert["latency"]  # batch 1 only, as before


def test_the_runtime_share_is_measured_when_asked_and_split_from_the_precisions(workspace):
    from pypdf import PdfReader

    # a class of this runner's kernel family: x86 on an x86 runner, the Pi on an ARM one
    hardware = "laptop-cpu" if runner_kernel_family() == "x86" else "raspberry-pi-4"
    workspace.write_config(
        **{"deployment.hardware": hardware, "deployment.measure_runtime_share": True}
    )
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code in (0, 1), outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    split = cert["compression"]["saving_split"]
    measured = split["measurement"]
    assert measured["measured"] and measured["runner"] == runner_kernel_family()
    eager, runtime, shipped = (
        measured["fp32_eager_ms"],
        measured["fp32_runtime_ms"],
        measured["shipped_ms"],
    )
    assert min(eager, runtime, shipped) > 0
    assert split["runtime"]["factor"] == pytest.approx(eager / runtime)
    assert split["precision"]["measured_factor"] == pytest.approx(runtime / shipped)
    assert "measured on this runner" in split["runtime"]["source"]
    assert cert["timings"]["stages_s"]["runtime_share"] > 0
    assert not [p for p in out.iterdir() if "fp32" in p.name.lower()]  # the FP32 program
    assert (out / "model.compressed.pte").is_file()  # never joins the outputs
    comment = (out / "comment.md").read_text()
    assert f"runtime share ×{split['runtime']['factor']:.3g}" in comment
    pdf = " ".join(
        " ".join(p.extract_text() for p in PdfReader(out / "certificate.pdf").pages).split()
    )
    assert "The reduction, split: runtime share" in pdf
    assert cli(workspace, "verify", "quantzero-out/certificate.json").exit_code in (0, 3)


def test_the_runtime_share_is_not_measured_for_another_kernel_family():
    from dataclasses import replace

    import torch

    from quantzero_ci.runtimes import get_runtime
    from quantzero_ci.verify.runtime_share import measure

    other = "qnnpack" if runner_kernel_family() == "x86" else "x86"
    lowered: list[object] = []
    runtime = replace(get_runtime("executorch-xnnpack"), lower=lambda *args: lowered.append(args))
    result = measure(
        torch.nn.Identity(),
        None,
        torch.nn.Identity(),
        torch.zeros(1, 2),
        [torch.zeros(1, 2)],
        runtime,
        other,
    )
    assert result["measured"] is False and "kernel family" in result["note"]
    assert lowered == []  # nothing is lowered where the timings would be no evidence
