"""A repository with a fleet of three small, really trained models of different shapes.

- ``models/mlp``: an MLP on the 64 digit features (input 1×64), laptop-cpu in Germany;
- ``models/cnn``: a CNN on the 8×8 digit images (input 1×1×8×8), laptop-cpu in Kenya;
- ``vision/conv1d``: a 1-D conv net over the features as a sequence (1×1×64), raspberry-pi-4 in
  Germany.

Two members share a hardware class, two share a country; each has its own deployments. Training
is a few hundred full-batch Adam steps on scikit-learn's digits (seconds); calibration and
evaluation sets are disjoint held-out slices.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import torch
from torch import nn

from tests.support import write_workspace

FACTORIES = {
    "mlp": """
        from torch import nn

        def build_model():
            return nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
    """,
    "cnn": """
        from torch import nn

        def build_model():
            return nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
            )
    """,
    "conv1d": """
        from torch import nn

        def build_model():
            return nn.Sequential(
                nn.Conv1d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 8, 5, padding=2), nn.ReLU(),
                nn.MaxPool1d(4), nn.Flatten(), nn.Linear(8 * 16, 10),
            )
    """,
}
SHAPES = {"mlp": (1, 64), "cnn": (1, 1, 8, 8), "conv1d": (1, 1, 64)}
FOLDERS = {"mlp": "models/mlp", "cnn": "models/cnn", "conv1d": "vision/conv1d"}
DEPLOYMENT = {
    "mlp": ("laptop-cpu", "DE", 50000, 4),
    "cnn": ("laptop-cpu", "KE", 2000, 25),
    "conv1d": ("raspberry-pi-4", "DE", 10000, 3),
}


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(7))
    return x[order], y[order]


def _factory(name: str) -> nn.Module:
    scope: dict = {}
    exec(textwrap.dedent(FACTORIES[name]), scope)  # the test's own factory source, not a PR's
    return scope["build_model"]()


def build_workspace(path: Path, *, min_carbon_reduction: float = -30.0) -> Path:
    """Write the three members (model.py, model.pt, data, .quantzero.yml) under ``path``.

    The members are tiny (a few thousand MACs), so per-operator overhead and the quantize and
    dequantize around their cortical INT8 layers outweigh what INT8 saves on laptop-cpu: the
    MLP's plan is estimated at −22% and the CNN's at −10% (an increase). The gate's carbon
    threshold is set below that: these tests are about the fleet, not the members' saving."""
    x, y = _digits()
    train, calib, evaluation = slice(0, 700), slice(700, 900), slice(900, 1200)
    for name, folder in FOLDERS.items():
        torch.manual_seed(0)
        model = _factory(name)
        shape = SHAPES[name]
        inputs = x.reshape(-1, *shape[1:])
        optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
        for _ in range(60):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs[train]), y[train])
            loss.backward()
            optimiser.step()
        model.eval()
        hardware, country, per_day, deployments = DEPLOYMENT[name]
        config = {
            "version": 1,
            "model": {
                "path": "model.pt",
                "factory": "model:build_model",
                "input_shape": list(shape),
            },
            "data": {"calibration": "calibration.pt", "evaluation": "evaluation.pt"},
            "deployment": {
                "hardware": hardware,
                "country": country,
                "inferences_per_day": per_day,
                "deployments": deployments,
            },
            "compression": {"mode": "accuracy_preserving"},
            "gate": {"min_carbon_reduction_pct": min_carbon_reduction, "min_pcs": 0.9},
        }
        files = {
            "model.py": FACTORIES[name],
            "model.pt": model.state_dict(),
            "calibration.pt": inputs[calib].clone(),
            "evaluation.pt": {
                "inputs": inputs[evaluation].clone(),
                "labels": y[evaluation].clone(),
            },
        }
        write_workspace(path / folder, files, config)
    return path


def copy_workspace(source: Path, target: Path) -> Path:
    """A copy of the members (configs, models, data) without any outputs."""
    for folder in FOLDERS.values():
        shutil.copytree(source / folder, target / folder)
    return target
