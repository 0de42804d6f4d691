"""PCS, accuracy and latency come from one pass of each model over the evaluation batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quantzero_ci.verify.consistency import (
    ACTIVATION_BUDGET,
    compare_passes,
    eval_batch_size,
    run_pass,
    wilson_interval,
)


class CountingModel(nn.Module):
    """A linear classifier that counts its forward calls and the inputs it saw."""

    def __init__(self, flip: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
            if flip:
                self.linear.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        self.calls = 0
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen += int(x.shape[0])
        return self.linear(x)


def test_each_input_runs_once_and_pcs_counts_matches():
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 3.0]] * 5)
    labels = torch.tensor([0, 1, 0, 1] * 5)
    batches = list(torch.split(inputs, 2))
    fp32, other = CountingModel(), CountingModel(flip=True)
    before, after = run_pass(fp32, batches), run_pass(other, batches)
    assert (fp32.calls, fp32.seen) == (10, 20)
    assert (other.calls, other.seen) == (10, 20)
    result = compare_passes(before, after, labels, batch_size=2, threads=1)
    assert result.matches == 0 and result.pcs == 0.0
    assert result.accuracy_before == 1.0 and result.accuracy_after == 0.0
    assert result.accuracy_dict()["drop_pp"] == 100.0
    assert result.batches_timed == 9
    assert result.latency_before_ms is not None and result.latency_before_ms > 0


def test_identical_models_have_pcs_one_and_no_labels_means_no_accuracy():
    batches = list(torch.split(torch.randn(12, 2), 4))
    model = CountingModel()
    result = compare_passes(
        run_pass(model, batches), run_pass(model, batches), None, batch_size=4, threads=1
    )
    assert result.pcs == 1.0 and result.matches == 12
    assert result.accuracy_dict() is None
    low, high = result.pcs_ci95
    assert low < 1.0 and high == 1.0


def test_single_batch_latency_is_reported_as_not_measured():
    batches = [torch.randn(3, 2)]
    model = CountingModel()
    result = compare_passes(
        run_pass(model, batches), run_pass(model, batches), None, batch_size=3, threads=1
    )
    assert result.latency_before_ms is None
    assert "Not measured" in result.latency_dict()["note"]


@pytest.mark.parametrize(
    ("k", "n", "low", "high"), [(356, 360, 0.9718, 0.9957), (0, 10, 0.0, 0.2775)]
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-4) and hi == pytest.approx(high, abs=5e-4)


def test_eval_batch_size_gives_enough_timed_batches():
    assert eval_batch_size(360) == 40
    assert eval_batch_size(5000) == 64
    assert eval_batch_size(4) == 1
    assert eval_batch_size(360, requested=7) == 7


def test_batches_of_a_network_with_large_activations_stay_within_the_budget():
    lite0_largest_layer = 6_107_520  # bytes per input, EfficientNet-Lite0 at 224 px
    assert eval_batch_size(384, activation_bytes=lite0_largest_layer) == 5
    assert eval_batch_size(384, activation_bytes=ACTIVATION_BUDGET * 3) == 1
    assert eval_batch_size(384, activation_bytes=1_000) == 42  # small: the timed-batches rule
    assert eval_batch_size(384, requested=64, activation_bytes=lite0_largest_layer) == 64


class _Convs(nn.Module):
    """A conv net that records the memory order of each batch it is given, and writes into it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.channels_last: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.channels_last.append(
            not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        )
        out = self.conv(x).mean((2, 3))
        x.mul_(0)  # model code that writes into its input
        return out


def test_a_pass_in_channels_last_order_gives_the_same_predictions_and_spares_the_inputs():
    torch.manual_seed(0)
    model = _Convs().eval()
    images = torch.randn(12, 3, 8, 8)
    batches = list(images.split(4))
    plain = run_pass(model, batches, keep_outputs=True)
    assert model.channels_last == [False] * 3
    ordered = run_pass(model, batches, keep_outputs=True, channels_last=True)
    assert model.channels_last == [False] * 3 + [True] * 3
    assert torch.equal(plain.top1, ordered.top1)
    assert torch.allclose(plain.outputs, ordered.outputs, atol=1e-5)
    assert torch.equal(torch.cat(batches), images) and images.abs().sum() > 0  # copies were fed


def test_channels_last_leaves_inputs_that_are_not_images_in_their_order():
    model = CountingModel()
    batches = [torch.randn(4, 2)]
    passed = run_pass(model, batches, channels_last=True)
    assert passed.top1.shape == (4,) and model.seen == 4


def test_the_latency_record_says_when_fp32_ran_channels_last():
    from dataclasses import replace

    model = _Convs().eval()
    batches = list(torch.randn(40, 3, 8, 8, generator=torch.Generator().manual_seed(2)).split(4))
    before = run_pass(model, batches, channels_last=True)
    after = run_pass(model, batches)
    plain = compare_passes(before, after, None, batch_size=4, threads=1)
    assert plain.latency_dict()["fp32_memory_format"] == "contiguous"
    assert "channels-last" not in plain.latency_dict()["note"]
    ordered = replace(plain, fp32_channels_last=True).latency_dict()
    assert ordered["fp32_memory_format"] == "channels_last"
    assert "channels-last" in ordered["note"]
