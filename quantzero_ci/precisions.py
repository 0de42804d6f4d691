"""What a precision is, in one torch-free table: storage size, hardware factor, label.

Every other module (policy, planners, energy, hardware, renderers) reads precisions from here, so
adding one touches this table and the quantization handler that produces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from quantzero_ci.errors import InputError


@dataclass(frozen=True)
class Precision:
    """One numeric precision a layer can run at."""

    name: str
    bytes_per_element: int
    hardware_factor: str | None  # the HardwareClass field holding its speed-up; None: FP32 itself
    label: str

    @property
    def bytes_factor(self) -> float:
        """Bytes moved relative to FP32 (the roofline's s_p)."""
        return self.bytes_per_element / 4.0


INT8, BF16, FP32 = "INT8", "BF16", "FP32"  # the names other modules use instead of literals

TABLE: Mapping[str, Precision] = MappingProxyType(
    {
        INT8: Precision(INT8, 1, "int8_factor", "8-bit integer (real quantized kernels)"),
        BF16: Precision(BF16, 2, "bf16_factor", "bfloat16 (a real cast)"),
        FP32: Precision(FP32, 4, None, "32-bit float (untouched)"),
    }
)

NAMES: tuple[str, ...] = tuple(TABLE)


def get_precision(name: str) -> Precision:
    """The table row for ``name``; an InputError names the known ones otherwise."""
    try:
        return TABLE[name]
    except KeyError:
        raise InputError(
            f"unknown precision {name!r}: expected one of {', '.join(NAMES)}"
        ) from None
