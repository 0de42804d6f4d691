"""Quantization schemes as registered handlers: which scheme a planned precision gets per layer.

For each planned precision, schemes are tried in registration order; the first whose ``applies``
accepts the layer (its module, and whether calibration data exists) handles it. The later ones
are the fallbacks, each saying in ``fallback_reason`` why it was used. ``quantize`` dispatches
on the chosen scheme's ``precision`` (INT8 static / INT8 dynamic / BF16 cast / untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.neuroquant.kinds import CONV_TYPES, DYNAMIC_INT8_TYPES, STATIC_INT8_TYPES


@dataclass(frozen=True)
class Scheme:
    """One way to run a layer at a precision, with what it needs."""

    name: str  # the route key that quantize and the reasons use
    precision: str  # the precision it really applies
    kernel: str  # static | dynamic | cast | none
    needs_calibration: bool
    applies: Callable[[nn.Module, bool], bool]  # (module, calibrated) → can it handle the layer


_SCHEMES: dict[str, list[Scheme]] = {}
NAMED: dict[str, Scheme] = {}  # route name → scheme


def register_scheme(planned: str, scheme: Scheme) -> Scheme:
    """Add ``scheme`` as the next choice for layers planned at ``planned``."""
    _SCHEMES.setdefault(planned, []).append(scheme)
    NAMED[scheme.name] = scheme
    return scheme


def schemes_for(planned: str) -> tuple[Scheme, ...]:
    return tuple(_SCHEMES.get(planned, ()))


def choose_scheme(planned: str, module: nn.Module, calibrated: bool) -> Scheme:
    """The first registered scheme for ``planned`` that can handle ``module``."""
    for scheme in _SCHEMES.get(planned, ()):
        if scheme.applies(module, calibrated) and (calibrated or not scheme.needs_calibration):
            return scheme
    raise InputError(f"no quantization scheme handles a {type(module).__name__} planned {planned}")


register_scheme(
    "INT8",
    Scheme("int8-static", "INT8", "static", True, lambda m, c: isinstance(m, STATIC_INT8_TYPES)),
)
register_scheme(
    "INT8",
    Scheme("int8-dynamic", "INT8", "dynamic", True, lambda m, c: isinstance(m, DYNAMIC_INT8_TYPES)),
)
register_scheme(
    "INT8",
    Scheme(
        "int8-dynamic-no-calibration",
        "INT8",
        "dynamic",
        False,
        lambda m, c: not c and isinstance(m, DYNAMIC_INT8_TYPES),
    ),
)
register_scheme(
    "INT8",
    Scheme(
        "bf16-no-calibration",
        "BF16",
        "cast",
        False,
        lambda m, c: not c and isinstance(m, CONV_TYPES),
    ),
)
register_scheme("INT8", Scheme("bf16-no-kernel", "BF16", "cast", False, lambda m, c: True))
register_scheme("BF16", Scheme("bf16", "BF16", "cast", False, lambda m, c: True))
register_scheme("FP32", Scheme("fp32", "FP32", "none", False, lambda m, c: True))
