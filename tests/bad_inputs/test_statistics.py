"""PCS that a pull request cannot game: set size against the threshold, one-logit decisions,
and an interval over independent inputs, not positions."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from quantzero_ci.stats import wilson_interval
from quantzero_ci.verify.consistency import compare_passes, run_pass

from .conftest import cli


def _gate(workspace):
    return cli(workspace, "gate", "--config", ".quantzero.yml")


def _shrink_evaluation(workspace, n: int) -> None:
    data = torch.load(workspace.root / "evaluation.pt")
    torch.save(
        {"inputs": data["inputs"][:n].clone(), "labels": data["labels"][:n].clone()},
        workspace.root / "evaluation.pt",
    )


def test_one_evaluation_input_cannot_pass_a_high_pcs_threshold(workspace, refused):
    _shrink_evaluation(workspace, 1)
    workspace.write_config(**{"gate.min_pcs": 0.999})
    outcome = refused(lambda: _gate(workspace), 2, "data.evaluation", "gate.min_pcs", "3838")
    assert not (workspace.root / "quantzero-out").exists()
    assert "PASSED" not in outcome.text


def test_36_inputs_cannot_show_the_default_threshold(workspace, refused):
    workspace.write_config(**{"gate.min_pcs": None})  # default 0.95 needs 73 inputs
    refused(lambda: _gate(workspace), 2, "data.evaluation", "gate.min_pcs 0.95", "73")


@pytest.mark.slow
def test_the_gate_can_decide_on_the_lower_bound_and_says_so(workspace):
    workspace.write_config(**{"gate.min_pcs": 0.85, "gate.pcs_decides_on": "lower_bound"})
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    check = next(c for c in cert["checks"] if c["name"] == "pcs")
    assert check["decided_on"] == "lower_bound"
    assert check["value"] == cert["consistency"]["ci95"][0] < cert["consistency"]["pcs"]
    assert cert["thresholds"]["pcs_decides_on"] == "lower_bound"
    assert "lower bound" in (out / "comment.md").read_text()
    assert cli(workspace, "verify", "quantzero-out/certificate.json").exit_code in (0, 3)


def test_an_unknown_pcs_decides_on_is_a_config_error(workspace, refused):
    workspace.write_config(**{"gate.pcs_decides_on": "median"})
    refused(lambda: _gate(workspace), 2, "gate.pcs_decides_on", "lower_bound")


def _passes(before: nn.Module, after: nn.Module, inputs: torch.Tensor):
    batches = [inputs[i : i + 8] for i in range(0, len(inputs), 8)]
    return run_pass(before, batches), run_pass(after, batches)


def test_a_one_logit_output_is_compared_by_its_sign_not_argmax():
    torch.manual_seed(0)
    fp32 = nn.Linear(4, 1).eval()
    flipped = nn.Linear(4, 1).eval()
    flipped.load_state_dict(fp32.state_dict())
    with torch.no_grad():
        flipped.bias += 0.5  # moves some decisions across 0
    inputs = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        changed = int(((fp32(inputs) > 0) != (flipped(inputs) > 0)).sum())
    assert changed > 0
    before, after = _passes(fp32, flipped, inputs)
    verification = compare_passes(before, after, None, batch_size=8, threads=1)
    assert verification.n == 64 and verification.matches == 64 - changed


def test_a_feature_map_interval_counts_inputs_not_positions():
    torch.manual_seed(0)
    fp32 = nn.Conv2d(1, 3, 3, padding=1).eval()
    other = nn.Conv2d(1, 3, 3, padding=1).eval()
    other.load_state_dict(fp32.state_dict())
    with torch.no_grad():
        other.bias[0] += 0.3
    inputs = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    before, after = _passes(fp32, other, inputs)
    v = compare_passes(before, after, None, batch_size=8, threads=1)
    assert v.n == 16 * 64 and v.inputs == 16
    per_position = wilson_interval(v.matches, v.n)
    assert v.pcs_ci95[1] - v.pcs_ci95[0] > 2 * (per_position[1] - per_position[0])
    assert v.pcs_ci95 == wilson_interval(v.pcs * 16, 16)


def test_decide_on_lower_bound_decides_carbon_on_its_interval_and_flips_a_borderline_pass(
    workspace,
):
    from quantzero_ci.certify.decide import evaluate_checks

    workspace.write_config(
        **{"gate.min_carbon_reduction_pct": -100.0, "gate.decide_on": "lower_bound"}
    )
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["thresholds"]["decide_on"] == "lower_bound"
    carbon = next(c for c in cert["checks"] if c["name"] == "carbon_reduction")
    assert carbon["decided_on"] == "lower_bound"
    low, estimate = cert["carbon"]["reduction_ci95"][0], cert["carbon"]["reduction_pct"]
    assert carbon["value"] == low < estimate
    pcs = next(c for c in cert["checks"] if c["name"] == "pcs")
    assert pcs["decided_on"] == "lower_bound"  # one switch moves both checks
    comment = (out / "comment.md").read_text()
    assert "carbon reduction on the lower bound of its 95% interval" in comment
    from pypdf import PdfReader

    pdf = " ".join(p.extract_text() for p in PdfReader(out / "certificate.pdf").pages)
    assert "carbon reduction on the lower bound of its 95% interval" in " ".join(pdf.split())
    # A threshold between the two: the estimate passes it, the lower bound does not.
    borderline = {**cert["thresholds"], "min_carbon_reduction_pct": (low + estimate) / 2}
    _, on_bound = evaluate_checks(cert, borderline)
    _, on_estimate = evaluate_checks(cert, {**borderline, "decide_on": "estimate"})
    assert "carbon_reduction" in on_bound["failed"]
    assert "carbon_reduction" not in on_estimate["failed"]
    assert cli(workspace, "verify", "quantzero-out/certificate.json").exit_code in (0, 3)


def test_an_unknown_decide_on_is_a_config_error(workspace, refused):
    workspace.write_config(**{"gate.decide_on": "median"})
    refused(lambda: _gate(workspace), 2, "gate.decide_on", "lower_bound", "estimate")
