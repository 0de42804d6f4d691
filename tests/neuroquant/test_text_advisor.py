"""The text route's advice: which INT8 Linear layers to raise to win back a PCS deficit."""

from __future__ import annotations

import torch
from torch import nn

from quantzero_ci.neuroquant.textplan import ErrorAdvisor


def test_names_the_largest_errors_first_and_only_as_many_as_the_deficit_needs() -> None:
    advisor = ErrorAdvisor(nn.Identity(), [], ["a", "b", "c"], {"a": 0.1, "b": 0.6, "c": 0.3})
    assert advisor.restore(0.01, 0.95) == ["b"]  # 20% of the disagreement: b carries 60%
    assert advisor.restore(0.04, 0.95) == ["b", "c"]  # 80%: b + c carry 90%
    assert advisor.restore(0.2, 0.95) == ["b", "c", "a"]  # more than the whole disagreement
    assert advisor.restore(0.0, 0.95) == []


def test_measures_each_layers_error_on_the_planning_inputs_when_first_asked() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():  # layer 2 reads a dead input through huge weights: harmless in
        model[0].weight[0], model[0].bias[0] = 0.0, 0.0  # FP32, but they set each output
        model[2].weight[:, 0] = 1000.0  # channel's INT8 scale and crush its real weights
    planning = [torch.randn(32, 16)]
    advisor = ErrorAdvisor(model, planning, ["0", "2"], None)
    first = advisor.restore(0.001, 0.99)
    assert first == ["2"]  # the layer that reads the outlier activation loses the most
    assert advisor.restore(0.01, 0.99) == ["2", "0"]
