"""End to end: the real `quantzero` CLI in a subprocess, on the example and on a torchvision model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pypdf import PdfReader

from tests.support import EXAMPLE, ROOT, quantzero, write_workspace

pytestmark = pytest.mark.slow  # the real CLI in a subprocess, on the example and torchvision


@pytest.fixture(scope="session")
def example_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("example-out")
    done = quantzero("gate", "--config", str(EXAMPLE / ".quantzero.yml"), "--output-dir", str(out))
    return done, out


@pytest.fixture(scope="session")
def cortical_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("example-cortical-out")
    done = quantzero(
        "gate", "--config", str(EXAMPLE / ".quantzero.cortical.yml"), "--output-dir", str(out)
    )
    return done, out


def test_example_gate_passes_and_writes_four_outputs(example_run):
    done, out = example_run
    assert done.returncode == 0, done.stderr
    for name in ("certificate.json", "certificate.pdf", "comment.md", "model.compressed.pte"):
        assert (out / name).stat().st_size > 0, name
    assert "PASSED" in done.stdout


def test_example_certificate_json_has_the_promised_keys(example_run):
    _, out = example_run
    cert = json.loads((out / "certificate.json").read_text())
    before = cert["carbon"]["before"]["g_per_1000_inferences"]
    after = cert["carbon"]["after"]["g_per_1000_inferences"]
    assert 0 < after < before
    assert cert["carbon"]["reduction_pct"] == pytest.approx(100 * (1 - after / before))
    low, high = cert["carbon"]["reduction_ci95"]
    assert low <= cert["carbon"]["reduction_pct"] <= high
    assert 0.97 <= cert["consistency"]["pcs"] <= 1.0
    assert cert["consistency"]["n"] == 360
    assert cert["decision"]["passed"] is True
    assert len(cert["model"]["sha256"]) == 64
    applied = {layer["applied"] for layer in cert["compression"]["layers"]}
    assert "INT8" in applied
    assert cert["compression"]["method"] == "static-int8-pt2e"
    assert cert["compressed_model"]["runtime"]["name"] == "executorch-xnnpack"
    assert cert["compression"]["calibration_inputs"] == 180
    assert cert["deployment"]["grid"]["iso2"] == "KE"
    assert cert["accuracy"]["before"] == pytest.approx(0.9944, abs=1e-4)
    assert cert["latency"]["before_ms"] > 0 and cert["latency"]["after_ms"] > 0
    assert cert["size"]["after_bytes"] < cert["size"]["before_bytes"]


def test_compressed_model_loads_with_its_one_line_alone_and_matches_its_hash(example_run):
    _, out = example_run
    cert = json.loads((out / "certificate.json").read_text())
    import hashlib

    digest = hashlib.sha256((out / "model.compressed.pte").read_bytes()).hexdigest()
    assert digest == cert["compressed_model"]["sha256"]
    code = (
        cert["compressed_model"]["load"]
        + "\nimport sys; assert not any(m.startswith('quantzero_ci') for m in sys.modules)"
        + "\nprint(tuple(model(torch.zeros(70, 1, 16, 16)).shape))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=out, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().endswith("(70, 10)")


def test_example_pdf_text(example_run):
    _, out = example_run
    cert = json.loads((out / "certificate.json").read_text())
    reader = PdfReader(out / "certificate.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "EcoInfer Certificate" in text
    assert "Prediction Consistency Score" in text
    assert cert["model"]["sha256"] in text.replace("\n", "")
    for page in reader.pages:
        assert "Methodology" in page.extract_text()


def test_example_comment(example_run):
    _, out = example_run
    cert = json.loads((out / "certificate.json").read_text())
    comment = (out / "comment.md").read_text()
    assert "gate passed" in comment
    assert f"{cert['consistency']['matches']}/{cert['consistency']['n']}" in comment
    assert "| Carbon reduction |" in comment and "✅ pass" in comment
    assert "model.compressed.pte" in comment and "load\\_program" in comment
    low = cert["carbon"]["reduction_ci95"][0]
    # the interval excludes zero, or the certificate says it does not establish a saving
    if low > 0:
        assert "excludes zero" in comment
    else:
        assert "does not establish" in comment


def test_example_uses_the_default_planner_and_the_cortical_config_beside_it_compares(
    example_run, cortical_run
):
    (_, out), (cortical_done, cortical_out) = example_run, cortical_run
    assert cortical_done.returncode in (0, 1), cortical_done.stderr
    auto = json.loads((out / "certificate.json").read_text())
    cortical = json.loads((cortical_out / "certificate.json").read_text())
    assert auto["compression"]["mode"] == "auto"
    assert cortical["compression"]["mode"] == "accuracy_preserving"
    assert auto["model"]["sha256"] == cortical["model"]["sha256"]
    assert auto["deployment"] == cortical["deployment"]
    comment = (cortical_out / "comment.md").read_text()
    assert "INT8" in comment and "BF16" in comment  # BF16 planned, FP32 applied, and why


def test_too_strict_threshold_fails_with_exit_1(tmp_path):
    done = quantzero(
        "gate",
        "--config",
        str(EXAMPLE / ".quantzero.yml"),
        "--output-dir",
        str(tmp_path),
        "--min-carbon-reduction",
        "99",
    )
    assert done.returncode == 1, done.stderr
    cert = json.loads((tmp_path / "certificate.json").read_text())
    assert cert["decision"]["failed"] == ["carbon_reduction"]
    assert "❌ fail" in (tmp_path / "comment.md").read_text()


def test_decide_on_lower_bound_flips_a_borderline_pass_to_exit_1(tmp_path, example_run):
    done, out = example_run
    assert done.returncode == 0, done.stderr
    passed = json.loads((out / "certificate.json").read_text())
    low, estimate = passed["carbon"]["reduction_ci95"][0], passed["carbon"]["reduction_pct"]
    borderline = f"{(low + estimate) / 2:.6f}"  # the estimate clears it, the lower bound not
    assert low < float(borderline) < estimate
    pcs_floor = f"{passed['consistency']['ci95'][0] - 0.01:.4f}"  # PCS passes on either figure
    flags = ("--min-carbon-reduction", borderline, "--min-pcs", pcs_floor)
    config = ("gate", "--config", str(EXAMPLE / ".quantzero.yml"), "--output-dir")
    done = quantzero(*config, str(tmp_path), *flags, "--decide-on", "lower-bound")
    assert done.returncode == 1, done.stderr
    cert = json.loads((tmp_path / "certificate.json").read_text())
    assert cert["thresholds"]["decide_on"] == "lower_bound"
    assert cert["decision"]["failed"] == ["carbon_reduction"]
    assert cert["carbon"]["reduction_pct"] == estimate  # the same figures, decided otherwise
    assert "carbon reduction on the lower bound" in (tmp_path / "comment.md").read_text()


def test_max_savings_mode_quantizes_more(tmp_path, cortical_run):
    _, default_out = cortical_run
    done = quantzero(
        "gate",
        "--config",
        str(EXAMPLE / ".quantzero.cortical.yml"),
        "--output-dir",
        str(tmp_path),
        "--mode",
        "max_savings",
    )
    assert done.returncode in (0, 1), done.stderr
    default = json.loads((default_out / "certificate.json").read_text())
    savings = json.loads((tmp_path / "certificate.json").read_text())
    assert savings["compression"]["mode"] == "max_savings"

    def int8(cert: dict) -> int:
        return sum(layer["applied"] == "INT8" for layer in cert["compression"]["layers"])

    assert int8(savings) > int8(default)
    assert savings["carbon"]["reduction_pct"] > default["carbon"]["reduction_pct"]


@pytest.fixture(scope="session")
def torchvision_dir(tmp_path_factory) -> Path:
    """ResNet-18 (random weights, seed 0) on small synthetic inputs: exercises the real pipeline."""
    work = tmp_path_factory.mktemp("tv")
    generator = torch.Generator().manual_seed(1)
    files = {
        "calib.pt": {"inputs": torch.randn(16, 3, 64, 64, generator=generator)},
        "eval.pt": {"inputs": torch.randn(40, 3, 64, 64, generator=generator)},
    }
    config = {
        "version": 1,
        "model": {"torchvision": "resnet18", "input_shape": [1, 3, 64, 64]},
        "data": {"calibration": "calib.pt", "evaluation": "eval.pt"},
        "deployment": {"hardware": "cloud-vcpu", "country": "DE"},
        "gate": {"min_carbon_reduction_pct": 0, "min_pcs": 0},
    }
    write_workspace(work, files, config)
    return work


def test_torchvision_model_end_to_end(torchvision_dir):
    done = quantzero("gate", "--config", ".quantzero.yml", cwd=torchvision_dir)
    assert done.returncode == 0, done.stderr
    cert = json.loads((torchvision_dir / "quantzero-out" / "certificate.json").read_text())
    assert cert["model"]["label"] == "torchvision:resnet18"
    assert "random weights" in cert["model"]["note"]
    assert cert["compression"]["backend"] == "executorch-xnnpack"
    # ResNet-18 FLOPs scale with the input area: 1.814 GFLOPs at 224² → about 0.148 at 64².
    assert cert["profile"]["total_flops"] == pytest.approx(1.814e9 * (64 / 224) ** 2, rel=0.05)
    assert cert["consistency"]["n"] == 40
    assert (
        "Prediction Consistency Score"
        in (torchvision_dir / "quantzero-out" / "comment.md").read_text()
    )


def test_scan_json_prints_flops_and_carbon():
    done = quantzero(
        "scan",
        "--model",
        "torchvision:resnet18",
        "--input-shape",
        "1,3,224,224",
        "--hardware",
        "raspberry-pi-4",
        "--country",
        "KE",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["flops"] == pytest.approx(1.814e9, rel=0.01)
    assert result["carbon"]["g_per_1000_inferences"] > 0


def test_hardware_and_countries_list_the_tables():
    hardware = quantzero("hardware")
    assert hardware.returncode == 0 and "raspberry-pi-4" in hardware.stdout
    from quantzero_ci.carbon.hardware import COEFFICIENT_FIELDS, list_hardware

    flat = " ".join(hardware.stdout.split())
    for hw in list_hardware():
        for field in COEFFICIENT_FIELDS:
            c = getattr(hw, field)
            assert f"{c.basis} {' '.join(c.source.split())}" in flat, (hw.key, field)
    countries = quantzero("countries")
    assert (
        countries.returncode == 0 and "KE" in countries.stdout and "CC BY 4.0" in countries.stdout
    )


def test_help_does_not_import_torch_or_reportlab():
    code = (
        "import sys\nfrom quantzero_ci import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', 'torch' in sys.modules, 'reportlab' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY False False" in done.stdout, done.stdout + done.stderr
    assert "gate" in done.stdout and "scan" in done.stdout


# ---- bad input: one message naming the field or file, exit 2, nothing overwritten ----


@pytest.fixture
def example_copy(tmp_path) -> Path:
    work = tmp_path / "digits"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("quantzero-out", "__pycache__"))
    return work


def run_bad(work: Path, *flags: str) -> subprocess.CompletedProcess:
    return quantzero("gate", "--config", ".quantzero.yml", *flags, cwd=work)


def edit_config(work: Path, old: str, new: str) -> None:
    path = work / ".quantzero.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    ("change", "flags", "message"),
    [
        (("model.pt ", "missing.pt "), (), "model.path: "),
        (
            ("[1, 1, 16, 16]", "[1, 1, 8, 8]"),
            (),
            "data.evaluation: evaluation.pt holds inputs of shape (360, 1, 16, 16)",
        ),
        (None, ("--country", "XX"), "deployment.country"),
        (None, ("--hardware", "toaster"), "unknown hardware 'toaster'"),
        (
            ("min_pcs: 0.97", "min_pcs: 97"),
            (),
            "gate.min_pcs: 97 is out of range. Use a number between 0 and 1.",
        ),
        (("version: 1", "version: 1\n  oops: [unclosed"), (), "is not valid YAML"),
        (
            None,
            ("--decide-on", "median"),
            "--decide-on: 'median' is not one of estimate, lower_bound.",
        ),
    ],
)
def test_bad_input_gives_one_clear_message_and_exit_2(example_copy, change, flags, message):
    if change:
        edit_config(example_copy, *change)
    before = {p.name: p.read_bytes() for p in example_copy.iterdir() if p.is_file()}
    done = run_bad(example_copy, *flags)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    after = {p.name: p.read_bytes() for p in example_copy.iterdir() if p.is_file()}
    assert after == before


UNTRACEABLE = '''
import torch
from torch import nn


class Gated(nn.Module):
    """Data-dependent Python control flow: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8 * 16 * 16, 10)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        if y.mean() > 100:
            y = y * 0
        return self.head(y.flatten(1))


def build_model():
    torch.manual_seed(0)
    return Gated()
'''


def test_a_model_torch_export_cannot_capture_is_refused_with_the_fix(example_copy, tmp_path):
    (example_copy / "gated.py").write_text(UNTRACEABLE)
    torch.manual_seed(0)
    namespace: dict = {}
    exec(UNTRACEABLE, namespace)
    torch.save(namespace["build_model"]().state_dict(), example_copy / "gated.pt")
    edit_config(example_copy, "path: model.pt ", "path: gated.pt ")
    edit_config(example_copy, "model:build_model", "gated:build_model")
    done = run_bad(
        example_copy, "--min-carbon-reduction", "0", "--min-pcs", "0", "--max-accuracy-drop", "100"
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "torch.export could not capture the model" in errors[0]
    assert "control flow" in errors[0] and "Traceback" not in done.stderr
    assert not (example_copy / "quantzero-out" / "certificate.json").exists()


def test_auto_plan_is_chosen_on_calibration_inputs_alone(tmp_path):
    """Two runs whose evaluation sets differ get the same plan: the evaluation decides nothing."""
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("quantzero-out"))
    data = torch.load(example / "evaluation.pt", weights_only=True)
    plans = []
    for name, keep in (("all", slice(None)), ("half", slice(0, None, 2))):
        torch.save(
            {"inputs": data["inputs"][keep], "labels": data["labels"][keep]},
            example / "evaluation.pt",
        )
        out = tmp_path / name
        done = quantzero(
            "gate",
            "--config",
            str(example / ".quantzero.yml"),
            "--output-dir",
            str(out),
            "--mode",
            "auto",
        )
        assert done.returncode == 0, done.stderr
        cert = json.loads((out / "certificate.json").read_text())
        planner = cert["compression"]["planner"]
        assert cert["compression"]["mode"] == "auto"
        assert planner["observe_inputs"] == 180 and planner["planning_inputs"] == 128
        assert planner["reached_target"]
        assert cert["latency"]["batch1"]["speedup"] > 0
        plans.append(
            [(la["name"], la["applied"], la["sensitivity"]) for la in cert["compression"]["layers"]]
        )
    assert plans[0] == plans[1]
