"""Per-token dynamic INT8 Linear: exact integer products, per-token scales, batch independence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quantzero_ci.neuroquant.pertoken import (
    PerTokenInt8Linear,
    kernel_available,
    quantize_per_token,
)


def test_the_pinned_torch_has_the_cpu_kernel() -> None:
    assert kernel_available()


def _linear(seed: int = 0, k: int = 48, n: int = 20) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(k, n)


def test_matches_the_integer_formula() -> None:
    linear = _linear()
    q = PerTokenInt8Linear(linear)
    x = torch.randn(5, 48)
    peak = x.abs().amax(1, keepdim=True)
    sx = peak / 127
    qx = torch.round(x * (127 / peak))
    w = linear.weight.detach()
    sw = w.abs().amax(1) / 127
    qw = torch.round(w / sw[:, None]).clamp(-127, 127)
    expected = (qx.double() @ qw.double().T) * (sx.double() * sw.double()) + linear.bias.double()
    assert torch.allclose(q(x).double(), expected, rtol=1e-5, atol=1e-5)


def test_close_to_fp32_even_with_an_outlier_token() -> None:
    linear = _linear(1)
    q = PerTokenInt8Linear(linear)
    x = torch.randn(2, 16, 48)
    x[0, 3] *= 200.0  # one huge token: a per-tensor scale would crush every other token
    with torch.no_grad():
        ref, out = linear(x), q(x)
    rel = (out - ref).norm(dim=-1) / ref.norm(dim=-1)
    assert out.shape == ref.shape
    assert float(rel.max()) < 0.03


def test_a_token_does_not_depend_on_its_batch() -> None:
    q = PerTokenInt8Linear(_linear(2))
    x = torch.randn(8, 48)
    together = q(x)
    alone = torch.cat([q(row[None]) for row in x])
    assert torch.equal(together, alone)


def test_replaces_named_linears_and_refuses_others() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    quantize_per_token(model, ["2"])
    assert type(model[0]) is nn.Linear and isinstance(model[2], PerTokenInt8Linear)
    with pytest.raises(TypeError, match=r"not an nn\.Linear"):
        quantize_per_token(model, ["1"])


def test_traces_to_torchscript() -> None:
    model = nn.Sequential(PerTokenInt8Linear(_linear(3)))
    x = torch.randn(3, 48)
    traced = torch.jit.trace(model, x)
    assert torch.equal(traced(x), model(x))
