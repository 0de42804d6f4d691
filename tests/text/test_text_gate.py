"""The gate on a tiny transformer: token inputs, dict outputs, each consistency measure."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from quantzero_ci.config import load_config
from quantzero_ci.gate import run_gate
from tests.text import tinybert


@pytest.mark.slow
@pytest.mark.parametrize(
    ("consistency", "output", "unit"),
    [
        ({"measure": "cosine", "min_cosine": 0.99}, "last_hidden_state", "inputs"),
        ({"measure": "neighbours"}, "pooler_output", "inputs"),
        ({"measure": "token-top1"}, "logits", "tokens"),
    ],
)
def test_gate_measures(text_project, consistency, output, unit) -> None:
    _root, write = text_project
    outcome = run_gate(load_config(write(consistency, output)))
    report = json.loads(outcome.certificate_json.read_text())
    c = report["consistency"]
    assert c["measure"] == consistency["measure"]
    assert c["unit"] == unit
    assert c["definition"].startswith(
        {"cosine": "Embedding", "neighbours": "Embedding", "token-top1": "Token"}[c["measure"]]
    )
    assert 0.9 <= c["pcs"] <= 1.0 and c["matches"] <= c["n"]
    assert report["compression"]["planner"]["route"] == "dynamic-int8-linear"
    assert report["compression"]["method"] == "dynamic-int8-pt2e"
    int8 = [x for x in report["compression"]["layers"] if x["applied"] == "INT8"]
    assert int8 and all(x["kind"] == "Linear" for x in int8)
    assert report["carbon"]["reduction_pct"] > 0
    names = {layer["name"]: layer["kind"] for layer in report["profile"]["layers"]}
    bound = report["carbon"]["memory_bound"]
    assert set(bound) <= set(names)
    assert any(names[n] == "Embedding" for n in bound)  # a lookup moves bytes, computes nothing
    assert "memory-bound" in outcome.comment_md.read_text()
    assert report["model"]["inputs"]["sequence_length"] == 16
    if c["measure"] == "cosine":
        assert c["cosine_min"] <= c["cosine_p01"] <= c["cosine_median"] <= 1.0 + 1e-9
        assert c["n"] == 60
    if c["measure"] == "token-top1":
        assert c["n"] == pytest.approx(report["model"]["inputs"]["real_tokens_mean"] * 60)
    assert outcome.passed


@pytest.mark.slow
def test_cosine_threshold_applies(text_project) -> None:
    root, write = text_project
    # 0.99 can be shown only by 381 inputs or more (docs/pcs.md)
    torch.save(tinybert.token_data(400, 2), root / "evaluation.pt")
    outcome = run_gate(load_config(write({"measure": "cosine", "min_cosine": 1.0}, min_pcs=0.99)))
    assert not outcome.passed
    assert json.loads(outcome.certificate_json.read_text())["consistency"]["pcs"] < 0.99


@pytest.mark.slow
def test_a_target_above_the_noise_floor_is_clipped_to_it(text_project) -> None:
    """min_cosine 1.0: FP32 itself falls below it under 1% embedding noise, so a target of 1.0
    cannot be shown by the planning inputs; it is clipped to their floor, and the notes say so."""
    _root, write = text_project
    config = write({"measure": "cosine", "min_cosine": 1.0})
    settings = yaml.safe_load(config.read_text())  # gate.min_pcs 1.0 no set can show: plan only
    settings["compression"] = {"target_pcs": 1.0}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    outcome = run_gate(load_config(config))
    report = json.loads(outcome.certificate_json.read_text())
    planner = report["compression"]["planner"]
    assert planner["target_clipped"] and planner["noise_perturbation"] == "embedding"
    assert planner["effective_target"] == planner["noise_floor_planning_continuous"] < 1.0
    assert any("noise floor" in note for note in report["compression"]["notes"])
    counts = [r["int8_layers"] for r in planner["rounds"]]
    assert counts[0] == planner["candidates"] and planner["reached_target"]
