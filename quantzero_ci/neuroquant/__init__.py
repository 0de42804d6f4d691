"""NeuroQuant: the cortical precision policy and its application with real kernels.

``policy`` is pure Python; ``quantize`` (which imports torch) is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from quantzero_ci.neuroquant.policy import MODES, PRECISIONS, LayerDecision, Plan, make_plan

__all__ = [
    "MODES",
    "PRECISIONS",
    "CompressionResult",
    "LayerDecision",
    "Plan",
    "compress",
    "make_plan",
]

_LAZY = {"CompressionResult", "compress"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from quantzero_ci.neuroquant import quantize

        return getattr(quantize, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
