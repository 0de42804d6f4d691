"""Passes when it should refuse: non-finite data or outputs, bad labels, unevaluable checks,
evaluation data that is not held out, per-position outputs scored as if they were classes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from .conftest import cli


def _gate(workspace, *extra: str):
    return cli(workspace, "gate", "--config", ".quantzero.yml", *extra)


def _evaluation(workspace) -> dict:
    return torch.load(workspace.root / "evaluation.pt")


def test_a_model_with_nan_outputs_is_refused_not_passed_with_pcs_1(workspace, refused):
    state = torch.load(workspace.root / "model.pt")
    state["3.weight"][0, 0] = float("inf")
    torch.save(state, workspace.root / "model.pt")
    refused(lambda: _gate(workspace), 2, "model", "NaN or infinite", "data.calibration")


def test_nan_inputs_are_an_error_naming_the_data(workspace, refused):
    data = _evaluation(workspace)
    data["inputs"][5, 0, 0, 0] = float("nan")
    torch.save(data, workspace.root / "evaluation.pt")
    refused(lambda: _gate(workspace), 2, "data.evaluation", "evaluation.pt", "input 5")


def test_infinite_calibration_inputs_are_an_error_naming_the_data(workspace, refused):
    calibration = torch.load(workspace.root / "calibration.pt")
    calibration[2] = float("-inf")
    torch.save(calibration, workspace.root / "calibration.pt")
    refused(lambda: _gate(workspace), 2, "data.calibration", "calibration.pt", "input 2")


@pytest.mark.slow
def test_labels_beyond_the_models_classes_are_refused(workspace, refused):
    data = _evaluation(workspace)
    data["labels"][3] = 7  # the model has 5 classes
    torch.save(data, workspace.root / "evaluation.pt")
    refused(lambda: _gate(workspace), 2, "data.evaluation", "label 7", "5 classes")


def test_negative_labels_are_refused(workspace, refused):
    data = _evaluation(workspace)
    data["labels"][0] = -1
    torch.save(data, workspace.root / "evaluation.pt")
    refused(lambda: _gate(workspace), 2, "data.evaluation", "evaluation.pt", "-1")


def test_labels_of_the_wrong_length_are_refused(workspace, refused):
    data = _evaluation(workspace)
    np.savez(
        workspace.root / "evaluation.npz",
        inputs=data["inputs"].numpy(),
        labels=data["labels"][:-4].numpy(),
    )
    workspace.write_config(**{"data.evaluation": "evaluation.npz"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "evaluation.npz", "one per input")


def test_an_accuracy_threshold_without_labels_is_an_error_not_dropped(workspace, refused):
    torch.save(_evaluation(workspace)["inputs"], workspace.root / "unlabelled.pt")
    workspace.write_config(
        **{"data.evaluation": "unlabelled.pt", "gate": {"max_accuracy_drop_pp": 1.0}}
    )
    refused(lambda: _gate(workspace), 2, "gate.max_accuracy_drop_pp", "unlabelled.pt", "labels")


def test_evaluation_data_equal_to_the_calibration_data_is_not_held_out(workspace, refused):
    calibration = torch.load(workspace.root / "calibration.pt")
    torch.save({"inputs": calibration.clone()}, workspace.root / "copy.pt")  # other name, bytes
    workspace.write_config(**{"data.evaluation": "copy.pt"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "calibration", "copy.pt")


def test_partly_overlapping_evaluation_data_is_refused(workspace, refused):
    data = _evaluation(workspace)
    data["inputs"][10] = torch.load(workspace.root / "calibration.pt")[4]
    torch.save(data, workspace.root / "evaluation.pt")
    refused(lambda: _gate(workspace), 2, "data.evaluation", "evaluation input 10")


SEGMENTER = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
"""


def _segmenter(workspace):
    (workspace.root / "seg.py").write_text(SEGMENTER, encoding="utf-8")
    torch.manual_seed(0)
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    torch.save(model.state_dict(), workspace.root / "seg.pt")
    workspace.write_config(**{"model.path": "seg.pt", "model.factory": "seg:build"})


@pytest.mark.slow
def test_a_segmentation_map_without_labels_gets_pcs_over_positions_within_0_1(workspace):
    _segmenter(workspace)
    torch.save(_evaluation(workspace)["inputs"], workspace.root / "unlabelled.pt")
    workspace.write_config(**{"data.evaluation": "unlabelled.pt"})
    before = workspace.snapshot()
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    assert "Traceback" not in outcome.text
    cert = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    consistency = cert["consistency"]
    assert 0.0 <= consistency["pcs"] <= 1.0
    assert consistency["unit"] == "positions" and consistency["positions_per_input"] == 64
    assert consistency["n"] == 36 * 64 and consistency["inputs"] == 36
    assert "per position" in consistency["definition"]
    from pypdf import PdfReader

    pdf = PdfReader(workspace.root / "quantzero-out" / "certificate.pdf")
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert "positions agree" in " ".join(text.split()) and "per position" in text
    assert workspace.snapshot() == before


def test_an_npz_of_python_objects_is_an_error_naming_the_data(workspace, refused):
    np.savez(workspace.root / "objects.npz", inputs=np.array([object(), 1], dtype=object))
    workspace.write_config(**{"data.evaluation": "objects.npz"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "objects.npz")
