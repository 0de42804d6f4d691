"""The PR comment and job summary: pure functions of the report, with untrusted text made inert."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantzero_ci.render import escape_markdown, render_comment, render_summary, significant

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example" / "certificate.json"


@pytest.fixture
def report() -> dict:
    return json.loads(EXAMPLE.read_text())


def test_committed_example_certificate_is_real_and_consistent():
    done = subprocess.run(
        [sys.executable, "-m", "quantzero_ci.cli", "verify", str(EXAMPLE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stdout + done.stderr  # consistent, unsigned
    assert "CONSISTENT BUT UNSIGNED" in done.stdout


def test_comment_shows_verdict_figures_checks_and_plan(report):
    comment = render_comment(report)
    assert comment.startswith("## ✅ QuantZero CI — gate passed")
    assert significant(report["carbon"]["before"]["g_per_1000_inferences"]) in comment
    assert f"{report['carbon']['reduction_pct']:.1f}%" in comment
    assert f"{report['consistency']['matches']}/{report['consistency']['n']}" in comment
    for check in report["checks"]:
        assert f"| {check['label']} |" in comment
    int8 = sum(layer["applied"] == "INT8" for layer in report["compression"]["layers"])
    assert f"| INT8 | {int8} |" in comment
    assert "not measured" not in comment


def test_failed_check_shows_by_how_much(report):
    failing = copy.deepcopy(report)
    failing["decision"] = {"passed": False, "failed": ["pcs"], "summary": "Gate failed"}
    failing["checks"][1].update(passed=False, value=0.9, margin=-0.07)
    comment = render_comment(failing)
    assert "## ❌ QuantZero CI — gate failed" in comment
    assert "❌ fail by 0.0700" in comment


def test_unmeasured_latency_says_so(report):
    report["latency"]["after_ms"] = None
    assert "not measured" in render_comment(report)


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        (
            {
                "status": "found",
                "ref": "abc123def4567890",
                "g_per_1000_inferences": 1.0,
                "current_g_per_1000_inferences": 1.1,
                "change_pct": 10.0,
            },
            "(+10.0%)",
        ),
        ({"status": "new", "ref": None, "change_pct": None}, "new model"),
        (
            {"status": "unavailable", "ref": None, "change_pct": None, "note": "shallow clone"},
            "not compared: shallow clone",
        ),
    ],
)
def test_base_branch_comparison(report, baseline, expected):
    report["baseline"] = baseline
    assert expected in render_comment(report)


def test_text_from_the_report_cannot_inject_markup(report):
    report["model"]["label"] = "x <img src=y> | [link](http://z) **b**"
    report["compression"]["notes"] = ["<script>alert(1)</script>"]
    comment = render_comment(report)
    assert "<img" not in comment and "<script>" not in comment
    assert "\\[link\\](http:/&#8203;/z)" in comment and "\\*\\*b\\*\\*" in comment
    assert escape_markdown("a|b\nc") == "a\\|b c"


def test_summary_adds_the_per_layer_table(report):
    summary = render_summary(report)
    assert summary.startswith(render_comment(report).rstrip("\n").split("\n")[0])
    assert summary.count("| Conv2d |") == 4
    assert "Per-layer plan (5 layers)" in summary


def test_auto_plan_failure_names_the_layers_to_restore_and_the_sensitivities(report):
    failing = copy.deepcopy(report)
    failing["compression"]["layers"][0]["sensitivity"] = 0.0123
    failing["compression"]["advice"] = {
        "deficit": 0.03,
        "layers_to_keep_fp32": ["features.0", "classifier"],
        "carbon_reduction_pct_then": 41.5,
        "basis": "predicted from the planning inputs' sensitivities; not verified",
    }
    failing["consistency"]["changed_inputs"] = [3, 17]
    failing["latency"]["slower_warning"] = "The compressed model ran 1.50× slower than FP32."
    comment = render_comment(failing)
    assert "**To restore PCS**" in comment
    assert "`features.0`, `classifier`" in comment
    assert "41.5%" in comment
    assert "1.23%" in comment  # the first layer's sensitivity column
    assert "2 changed inputs" in comment
    assert "⚠️ The compressed model ran 1.50× slower" in comment


def test_no_advice_without_a_failed_auto_plan(report):
    comment = render_comment(report)
    assert "To restore PCS" not in comment


def test_a_non_top1_measure_is_defined_in_the_comment_by_its_own_definition(report):
    cosine = copy.deepcopy(report)
    cosine["consistency"]["measure"] = "cosine"
    cosine["consistency"]["definition"] = "Share of inputs whose embedding cosine is at least 0.99."
    comment = render_comment(cosine)
    assert "embedding cosine is at least 0.99" in comment
    assert "top-1 prediction is unchanged" not in comment


@pytest.mark.parametrize(
    ("before", "after", "words"),
    [
        (1.8, 1.0, "1.8× faster"),
        (12.3, 1.0, "12× faster"),
        (1.0, 0.96, "4% faster"),
        (0.45, 0.4635, "3% slower"),
        (1.0, 2.5, "2.5× slower"),
        (1.0, 1.002, "the same speed"),
        (None, 1.0, ""),
        (1.0, 0.0, ""),
    ],
)
def test_speed_change_reads_as_a_reader_reads_it(before, after, words):
    from quantzero_ci.formatting import speed_change

    assert speed_change(before, after) == words


def test_comment_words_a_batch1_slowdown_as_slower_never_as_a_fraction_faster(report):
    from quantzero_ci.formatting import speed_change

    b1 = report["latency"]["batch1"]
    b1["compressed_ms"] = b1["fp32_ms"] * 1.03
    b1["speedup"] = b1["fp32_ms"] / b1["compressed_ms"]
    comment = render_comment(report)
    assert "3% slower" in comment
    assert "×0." not in comment and "× faster" not in comment.split("3% slower")[0][-40:]
    batch = report["latency"]
    assert speed_change(batch["before_ms"], batch["after_ms"]) in comment


def test_comment_shows_the_deployment_batch_beside_batch_1_only_when_measured(report):
    assert "the deployment's" not in render_comment(report)  # no deployment.batch_size
    report["latency"]["batch_n"] = {
        "batch": 32,
        "requested": 32,
        "fp32_ms": 4.0,
        "compressed_ms": 8.4,
        "speedup": 4.0 / 8.4,
        "runs": 5,
    }
    row = next(
        line
        for line in render_comment(report).splitlines()
        if "Latency on this runner, batch 32, the deployment's" in line
    )
    assert "capped" not in row and "median of 5 runs in alternating blocks" in row
    assert "2.1× slower" in row
    report["latency"]["batch_n"] = {**report["latency"]["batch_n"], "requested": 500}
    assert "batch 32, the deployment's (capped from 500)" in render_comment(report)
