"""Dynamic INT8 with one activation scale per token, as the runtime's kernels compute it.

XNNPACK's dynamic INT8 Linear (``qd8`` kernels, what ExecuTorch runs for a dynamically quantized
Linear) quantizes each row of its input (each token of each sequence) on its own, asymmetric
INT8 over the row's range including zero, and multiplies by INT8 weights quantized per output
channel, symmetric in [-127, 127]. One token with a large activation (common after GELU in
transformer FFNs) therefore coarsens no other token, and a sentence's result does not depend on
what it was batched with. PT2E's graph for the same layer quantizes the whole tensor with one
scale, so the planner's simulation uses `fake_quant_rows` instead: on the bundled text example it
matches the lowered ``.pte`` to 5e-6, where the per-tensor graph is off by 0.14.

`quantize_per_token` puts the same numerics into an eager model, one layer at a time, for the
planner's per-layer sensitivity (no kernel: the shipped file runs XNNPACK's).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from quantzero_ci.neuroquant.kinds import module_path

QMIN, QMAX = -128, 127  # activations: asymmetric INT8
WEIGHT_MAX = 127.0  # weights: symmetric INT8 per output channel


def fake_quant_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` quantized to INT8 and back, one asymmetric scale per row (last dimension)."""
    low = x.amin(-1, keepdim=True).clamp(max=0.0)
    high = x.amax(-1, keepdim=True).clamp(min=0.0)
    scale = ((high - low) / float(QMAX - QMIN)).clamp(min=1e-12)
    zero = (QMIN - torch.round(low / scale)).clamp(QMIN, QMAX)
    return (torch.clamp(torch.round(x / scale) + zero, QMIN, QMAX) - zero) * scale


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` quantized to INT8 per output channel (symmetric) and back."""
    scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / WEIGHT_MAX
    return torch.round(weight / scale).clamp(-WEIGHT_MAX, WEIGHT_MAX) * scale


class PerTokenInt8Linear(nn.Module):
    """An ``nn.Linear`` with the runtime's dynamic INT8 numerics (weights and inputs)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer("weight", fake_quant_weight(linear.weight.detach().float()))
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(fake_quant_rows(x.float()), self.weight, self.bias).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, per-token INT8"


def quantize_per_token(model: nn.Module, layers: Iterable[str]) -> None:
    """Replace the named ``nn.Linear`` modules (profile or module paths) in place."""
    modules = dict(model.named_modules())
    for name in layers:
        path = module_path(name)
        parent, _, child = path.rpartition(".")
        owner = modules[parent] if parent else model
        linear = modules[path]
        if type(linear) is not nn.Linear:
            raise TypeError(f"{path} is a {type(linear).__name__}, not an nn.Linear")
        setattr(owner, child, PerTokenInt8Linear(linear))
