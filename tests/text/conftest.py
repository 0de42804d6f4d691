from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from tests.text import tinybert

HERE = Path(__file__).parent
INPUTS = {
    name: {"shape": [1, tinybert.LENGTH], "dtype": "int64"}
    for name in ("input_ids", "attention_mask", "token_type_ids")
}


@pytest.fixture()
def text_project(tmp_path: Path):
    """A project dir with the tiny model, calibration/evaluation token data and a config writer."""
    shutil.copy(HERE / "tinybert.py", tmp_path / "tinybert.py")
    torch.save(tinybert.build_model().state_dict(), tmp_path / "model.pt")
    torch.save(tinybert.token_data(40, 1), tmp_path / "calibration.pt")
    torch.save(tinybert.token_data(60, 2), tmp_path / "evaluation.pt")

    def write(consistency: dict | None = None, output: str = "last_hidden_state", **gate) -> Path:
        config = {
            "version": 1,
            "model": {
                "path": "model.pt",
                "factory": "tinybert:build_model",
                "inputs": INPUTS,
                "output": output,
            },
            "data": {"calibration": "calibration.pt", "evaluation": "evaluation.pt"},
            "deployment": {"hardware": "laptop-cpu", "country": "DE"},
            "gate": {"min_pcs": 0.9, "min_carbon_reduction_pct": 0, **gate},
        }
        if consistency is not None:
            config["consistency"] = consistency
        path = tmp_path / ".quantzero.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return tmp_path, write
