"""Per-layer carbon before and after in the comment, and the base branch's figure per layer."""

from __future__ import annotations

import json

from quantzero_ci.config import load_config
from quantzero_ci.github.baseline import from_certificate
from quantzero_ci.render import render_comment

from .conftest import cli


def _run(workspace, mode: str, thresholds: list[float]) -> dict:
    workspace.write_config(**{"compression.mode": "custom", "compression.thresholds": thresholds})
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code in (0, 1), outcome.text
    out = workspace.root / "quantzero-out"
    cert = json.loads((out / "certificate.json").read_text())
    (workspace.root / f"{mode}.json").write_text(json.dumps(cert))
    return cert


def test_plan_table_shows_each_layers_carbon_and_the_base_branchs(workspace):
    base = _run(workspace, "all_int8", [1.0, 1.0])  # every layer starts below both shares
    head = _run(workspace, "all_bf16", [0.0, 1.0])  # BF16 costs more than INT8 on a Pi 4
    rows = {row["name"]: row for row in head["carbon"]["layers"]}
    assert set(rows) == {layer["name"] for layer in head["profile"]["layers"]}
    applied = {layer["name"]: layer["applied"] for layer in head["compression"]["layers"]}
    for name, row in rows.items():
        assert row["precision"] == applied.get(name, "FP32")
    comment = (workspace.root / "quantzero-out" / "comment.md").read_text()
    assert "g CO2e / 1,000: FP32 → shipped" in comment
    assert "base branch |" not in comment  # no base certificate on this run

    config = load_config(workspace.root / ".quantzero.yml")
    section = from_certificate(workspace.root / "all_int8.json", config).section
    base_after = {row["name"]: row["after_g"] for row in base["carbon"]["layers"]}
    assert section["layers"] == base_after
    dearer = [n for n, row in rows.items() if row["after_g"] > base_after[n]]
    assert dearer, "BF16 layers should cost more than INT8 ones"
    head["baseline"] = {**section, "current_g_per_1000_inferences": 0.0, "change_pct": 0.0}
    text = render_comment(head)
    assert "base branch |" in text
    for line in text.splitlines():
        name = line.split("|")[1].strip() if line.startswith("| ") else None
        if name in rows:
            assert ("⬆" in line) is (name in dearer), line
    assert sum("⬆" in line for line in text.splitlines() if line.startswith("| ")) == len(dearer)
