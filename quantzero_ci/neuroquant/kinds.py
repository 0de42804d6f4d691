"""Which layer kinds get which real kernel, and what a quantized module looks like."""

from __future__ import annotations

from torch import nn

from quantzero_ci.profiler import ROOT_NAME

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
