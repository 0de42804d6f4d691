"""Which layer kinds get which real kernel, and what a quantized module looks like."""

from __future__ import annotations

import torch
from torch import nn

ROOT_NAME = "(model)"

# Layers FX graph mode quantizes statically with the native (x86/qnnpack) backend config.
STATIC_INT8_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

# Layers with a weights-only dynamic INT8 kernel (quantized::linear_dynamic and the RNN ops).
DYNAMIC_INT8_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.LSTM,
    nn.GRU,
    nn.LSTMCell,
    nn.GRUCell,
    nn.RNNCell,
)

CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

_QUANTIZED_PACKAGES = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")


def module_path(layer_name: str) -> str:
    """The ``named_modules`` path of a profile layer name (the root is "")."""
    return "" if layer_name == ROOT_NAME else layer_name


def is_quantized_module(module: nn.Module) -> bool:
    """True for modules that run quantized kernels (static or dynamic INT8)."""
    return type(module).__module__.startswith(_QUANTIZED_PACKAGES)


def is_dynamic_quantized_module(module: nn.Module) -> bool:
    return is_quantized_module(module) and ".dynamic." in type(module).__module__


def quantized_weight(module: nn.Module) -> torch.Tensor | None:
    """The packed INT8 weight of a quantized module, unpacked, or None."""
    weight = getattr(module, "weight", None)
    if callable(weight):
        return weight()
    if isinstance(weight, torch.Tensor) and weight.is_quantized:
        return weight
    return None
