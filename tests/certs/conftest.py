"""A small but real certificate: a tiny CNN profiled, run and estimated with the real APIs.

The profile, PCS, accuracy and latency come from running the real profiler and verification
passes on a two-layer model; the carbon section from the gate's own builders
(`carbon.section.layer_works` and `carbon_section`) on the real hardware and grid tables; the
report from `report.build_report`; the checks and decision from decide.evaluate_checks. Only the precision plan is written
by hand (a copy with rounded last-layer weights stands in for the compressed model).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from quantzero_ci.certify.signing import generate_keypair, sign_report, unsigned_signature

THRESHOLDS = {
    "min_carbon_reduction_pct": 5.0,
    "min_pcs": 0.8,
    "max_accuracy_drop_pp": 10.0,
    "max_carbon_increase_pct": None,
}


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10)
    ).eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_report(out_dir: Path) -> dict[str, Any]:
    """An unsigned-yet report (checks and decision included), with its model files in out_dir."""
    from quantzero_ci.carbon import energy
    from quantzero_ci.carbon import grid as grid_module
    from quantzero_ci.carbon import hardware as hardware_module
    from quantzero_ci.carbon.section import carbon_section, layer_carbon, layer_works
    from quantzero_ci.certify.decide import evaluate_checks
    from quantzero_ci.certify.report import ModelFacts, build_report
    from quantzero_ci.inputs.loading import state_dict_bytes
    from quantzero_ci.measure.profiler import profile_model
    from quantzero_ci.neuroquant.policy import LayerDecision
    from quantzero_ci.verify.consistency import compare_passes, run_pass

    model = _tiny_model()
    compressed = copy.deepcopy(model)
    with torch.no_grad():  # a stand-in for INT8 rounding of the last layer's weights
        weight = compressed[3].weight
        weight.copy_(torch.round(weight * 256) / 256)
    model_path, compressed_path = out_dir / "model.pt", out_dir / "model.compressed.pt"
    torch.save(model.state_dict(), model_path)
    torch.save(compressed.state_dict(), compressed_path)

    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(40, 1, 16, 16, generator=generator)
    labels = model(inputs).argmax(dim=1)
    labels[:3] = (labels[:3] + 1) % 10  # accuracy below 1, so the drop is a real figure
    batches = list(torch.split(inputs, 4))
    verification = compare_passes(
        run_pass(model, batches), run_pass(compressed, batches), labels, batch_size=4, threads=1
    )

    profile = profile_model(model, inputs[:1])
    hardware = hardware_module.get_hardware("raspberry-pi-4")
    grid = grid_module.get_grid("DE")
    applied = {profile.layers[0].name: "FP32", profile.layers[-1].name: "INT8"}
    reasons = {profile.layers[0].name: "first layer: kept FP32", profile.layers[-1].name: "INT8"}
    plan_layers = [
        LayerDecision.planned_as(layer, applied[layer.name], reasons[layer.name]).to_dict()
        for layer in profile.layers
    ]

    fp32 = layer_works(profile.layers, lambda _: "FP32")
    shipped = layer_works(profile.layers, applied.__getitem__)
    comparison = energy.compare(fp32, shipped, hardware, grid, samples=500, seed=7)
    carbon = carbon_section(comparison, grid, inferences_per_day=5000, deployments=3)
    carbon["memory_bound"] = energy.memory_bound_layers(shipped, hardware)
    carbon["layers"] = layer_carbon(profile.layers, applied, hardware, grid.g_per_kwh)
    report = build_report(
        model=ModelFacts("model.pt", "state_dict", "model.pt", _sha256(model_path),
                         model_path.stat().st_size),
        compressed=ModelFacts("model.compressed.pt", "state_dict", "model.compressed.pt",
                              _sha256(compressed_path), compressed_path.stat().st_size),
        input_shape=(1, 1, 16, 16),
        total_params=profile.total_params,
        profile=profile.to_dict(),
        deployment={"hardware": hardware.to_dict(), "grid": grid.to_dict(),
                    "inferences_per_day": 5000, "deployments": 3},
        compression={"mode": "accuracy_preserving", "thresholds": [0.15, 0.6],
                     "method": "hand-written test plan", "backend": hardware.quant_backend,
                     "notes": [], "calibration_inputs": 0, "layers": plan_layers},
        carbon=carbon,
        verification=verification,
        sizes=(len(state_dict_bytes(model)), len(state_dict_bytes(compressed))),
        baseline=None,
        thresholds=THRESHOLDS,
        provenance={"grid_table_sha256": grid_module.table_sha256(),
                    "hardware_table_sha256": hardware_module.table_sha256(),
                    "grid_attribution": grid_module.ATTRIBUTION},
    )  # fmt: skip
    checks, decision = evaluate_checks(report, report["thresholds"])
    return {**report, "checks": checks, "decision": decision}


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def base_report(workdir: Path) -> dict[str, Any]:
    """The report before signing; tests copy it (never mutate)."""
    return build_report(workdir)


@pytest.fixture(scope="session")
def keys(workdir: Path) -> dict[str, Path]:
    """Two independent key pairs: a (the signer) and b (someone else)."""
    a_private, a_public = generate_keypair(workdir / "key-a")
    b_private, b_public = generate_keypair(workdir / "key-b")
    return {"a": a_private, "a.pub": a_public, "b": b_private, "b.pub": b_public}


@pytest.fixture(scope="session")
def signed_report(base_report: dict[str, Any], keys: dict[str, Path]) -> dict[str, Any]:
    return sign_report(base_report, keys["a"].read_bytes())


@pytest.fixture(scope="session")
def unsigned_report(base_report: dict[str, Any]) -> dict[str, Any]:
    return {**base_report, "signature": unsigned_signature(base_report)}
