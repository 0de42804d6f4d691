"""The planner's fake quantization: the same values as PyTorch's fused op, faster."""

from __future__ import annotations

import torch

from quantzero_ci.neuroquant import fakequant


def _activation() -> torch.Tensor:
    x = torch.randn(3, 8, 5, 7, generator=torch.Generator().manual_seed(0)) * 4.0
    x[0, 0, 0, :4] = torch.tensor([0.125, 0.375, -0.125, 100.0])  # half-way points, a clamp
    return x.contiguous(memory_format=torch.channels_last)


def test_per_tensor_equals_pytorchs_fake_quantize_bitwise() -> None:
    x = _activation()
    for scale, zero, qmin, qmax in [(0.25, 128, 0, 255), (0.05, 0, -128, 127), (0.1, 3, 0, 127)]:
        expected = torch.fake_quantize_per_tensor_affine(x, scale, zero, qmin, qmax)
        got = fakequant.per_tensor(x, scale, zero, qmin, qmax)
        assert torch.equal(got, expected), (scale, zero)
    # rounding is half to even, as the kernels round: 0.125/0.25 = 0.5 → 0, 0.375/0.25 → 2
    assert fakequant.per_tensor(x, 0.25, 0, -128, 127)[0, 0, 0, :2].tolist() == [0.0, 0.5]


def test_per_tensor_leaves_its_input_alone() -> None:
    x = _activation()
    before = x.clone()
    fakequant.per_tensor(x, 0.25, 128, 0, 255)
    assert torch.equal(x, before)


def test_value_range_is_the_range_in_any_memory_order() -> None:
    x = _activation()
    for tensor in (x, x.contiguous(), x[:, :, 1:, :], x.transpose(1, 2)):
        low, high = torch.aminmax(tensor)
        assert fakequant.value_range(tensor) == (float(low), float(high))
