"""INT8 quantize-then-dequantize of a tensor with one scale, in four elementwise passes.

The same values as ``torch.fake_quantize_per_tensor_affine`` (and as torchao's
``quantize_per_tensor`` → ``dequantize_per_tensor`` pair, which also multiplies by ``1 / scale``),
but without that op's cachemask kernel: on a (4, 144, 60, 60) channels-last activation on 2 cores
it took 6.7 ms where these passes take 0.5 ms, with bitwise equal results. The planner simulates
every INT8 activation of a plan this way, so it decides how long each plan check takes.
"""

from __future__ import annotations

import torch


def per_tensor(x: torch.Tensor, scale: float, zero: int, qmin: int, qmax: int) -> torch.Tensor:
    """``(clamp(round(x / scale) + zero, qmin, qmax) − zero) · scale``, rounding half to even.

    Subtracting ``zero`` from the clamp's bounds instead of adding it to the rounded value is
    exact: both are integers far below 2²⁴, where float32 counts exactly."""
    return torch.mul(x, 1.0 / scale).round_().clamp_(qmin - zero, qmax - zero).mul_(scale)


def flat(x: torch.Tensor) -> torch.Tensor:
    """``x``'s values as one dimension, a view where ``x`` is contiguous or channels-last."""
    if x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        x = x.permute(0, 2, 3, 1)
    return x.reshape(-1)


def value_range(x: torch.Tensor) -> tuple[float, float]:
    """``x``'s smallest and largest value, reduced over its flat view: ``aminmax`` over a 4-D
    channels-last view took 1.6 ms where the flat view takes 0.12 ms (same (4, 144, 60, 60)
    tensor, 2 cores)."""
    lowest, highest = torch.aminmax(flat(x))
    return float(lowest), float(highest)
