"""The compression modes and their thresholds, checked in one place (torch-free).

`auto` measures each layer's sensitivity (`neuroquant.auto`); the cortical modes map a layer's
cumulative FLOP share at its start to a precision by two thresholds: `accuracy_preserving` and
`max_savings` carry their own, `custom` takes them from `compression.thresholds`. The config
parser, the cortical policy and the planner registry all ask this module, so a mode is added or
its thresholds changed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from quantzero_ci.errors import ConfigError

AUTO_MODE = "auto"
CUSTOM_MODE = "custom"
CORTICAL_MODES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"accuracy_preserving": (0.15, 0.60), "max_savings": (0.30, 0.70)}
)
MODE_NAMES: tuple[str, ...] = (AUTO_MODE, *CORTICAL_MODES, CUSTOM_MODE)
_FIX = "e.g. thresholds: [0.15, 0.60] (cumulative FLOP shares between 0 and 1)."
_MAX_NUMBER_CHARS = 64


def check_mode(value: object) -> str:
    """The mode's name (``max-savings`` reads as ``max_savings``); a ConfigError otherwise."""
    from quantzero_ci.safeload import quote

    mode = str(value).strip().replace("-", "_")
    if mode not in MODE_NAMES:
        raise ConfigError(
            "compression.mode",
            f"{quote(value)} is not a NeuroQuant mode",
            f"Use one of: {', '.join(MODE_NAMES)}.",
        )
    return mode


def cortical_thresholds(mode: str, thresholds: object = None) -> tuple[float, float]:
    """The (int8_below, bf16_below) pair a cortical ``mode`` plans with: ``thresholds`` when
    given (checked: two shares in [0, 1], ascending), else the
    mode's own. `custom` needs them; `auto` has none."""
    if mode == AUTO_MODE:
        raise ConfigError(
            "compression.thresholds",
            "applies to the cortical modes, not auto",
            "Remove thresholds, or set mode: accuracy_preserving, max_savings or custom.",
        )
    if mode not in CORTICAL_MODES and mode != CUSTOM_MODE:
        check_mode(mode)  # raises, naming the modes
    if thresholds is None:
        if mode == CUSTOM_MODE:
            raise ConfigError(
                "compression.thresholds",
                "is missing for the custom mode",
                "Give two cumulative FLOP shares, e.g. thresholds: [0.15, 0.60].",
            )
        return CORTICAL_MODES[mode]
    if not isinstance(thresholds, (list, tuple)) or len(thresholds) != 2:
        raise ConfigError(
            "compression.thresholds", "must be two numbers [int8_below, bf16_below]", _FIX
        )
    low, high = (_share(value) for value in thresholds)
    if low > high:
        raise ConfigError(
            "compression.thresholds",
            f"[{low}, {high}] is not ascending",
            "The INT8 threshold must not exceed the BF16 threshold, e.g. [0.15, 0.60].",
        )
    return low, high


def _share(value: object) -> float:
    from quantzero_ci.safeload import quote

    fix = f"Use a number between 0 and 1, {_FIX}"
    too_long = (
        isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200
    ) or (
        isinstance(value, str) and len(value) > _MAX_NUMBER_CHARS
    )  # as config reads numbers: never convert an integer or text longer than any setting
    if too_long:
        raise ConfigError(
            "compression.thresholds", f"{quote(value)} is too long to be a number", fix
        )
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise ConfigError(
            "compression.thresholds", f"{quote(value)} is not a number", fix
        ) from None
    if isinstance(value, bool) or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ConfigError("compression.thresholds", f"{quote(value)} is out of range", fix)
    return number
