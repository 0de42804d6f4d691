from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import CONFIG_NAME, write_config, write_workspace
from tests.text import tinybert

HERE = Path(__file__).parent
INPUTS = {
    name: {"shape": [1, tinybert.LENGTH], "dtype": "int64"}
    for name in ("input_ids", "attention_mask", "token_type_ids")
}


@pytest.fixture()
def text_project(tmp_path: Path):
    """A project dir with the tiny model, calibration/evaluation token data and a config writer."""
    files = {
        "tinybert.py": (HERE / "tinybert.py").read_text(encoding="utf-8"),
        "model.pt": tinybert.build_model().state_dict(),
        "calibration.pt": tinybert.token_data(40, 1),
        "evaluation.pt": tinybert.token_data(60, 2),
    }
    write_workspace(tmp_path, files)

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
        return write_config(tmp_path / CONFIG_NAME, config)

    return tmp_path, write
