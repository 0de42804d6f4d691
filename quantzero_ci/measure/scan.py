"""`quantzero scan`: profile one model and estimate its FP32 carbon cost, without compressing."""

from __future__ import annotations

from typing import Any

from quantzero_ci.config import Config
from quantzero_ci.precisions import FP32


def scan_model(config: Config) -> dict[str, Any]:
    """Profile and estimate the FP32 model described by `config`; JSON-able result."""
    import torch

    from quantzero_ci.carbon.energy import formula_for, point_estimate
    from quantzero_ci.carbon.grid import get_grid
    from quantzero_ci.carbon.hardware import get_hardware
    from quantzero_ci.carbon.section import layer_works
    from quantzero_ci.inputs.loading import load_model
    from quantzero_ci.measure.profiler import profile_model

    hardware = get_hardware(config.deployment.hardware)
    grid = get_grid(config.deployment.country)
    loaded = load_model(config.model)
    with torch.no_grad():
        profile = profile_model(loaded.module, torch.zeros(config.model.input_shape))
    works = layer_works(profile.layers, lambda name: FP32)
    estimate = point_estimate(works, hardware, grid.g_per_kwh)
    return {
        "model": {"label": config.model.label, "sha256": loaded.sha256, "note": loaded.note},
        "flops": profile.total_flops,
        "params": profile.total_params,
        "profile": profile.to_dict(),
        "carbon": {"formula": formula_for(hardware), **estimate.to_dict()},
        "hardware": hardware.to_dict(),
        "grid": grid.to_dict(),
    }
