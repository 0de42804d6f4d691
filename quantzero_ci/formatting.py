"""Numbers as text, shared by the markdown renderings (render.py) and the certificate PDF.

Pure functions of the standard library only: importing this module loads nothing heavy. Every
formatter writes NOT_MEASURED for a missing (None) value.
"""

from __future__ import annotations

import math
from typing import Any

NOT_MEASURED = "not measured"


def significant(value: Any, digits: int = 3, *, scientific: str | None = None) -> str:
    """A number with `digits` significant figures and thousands separators (1,234, 0.0123).

    With `scientific`, a format string with the fields {mantissa} and {power}, numbers below 1e-3
    or from 1e6 up are written in that form instead (mantissa with `digits` significant figures);
    without it they stay in fixed notation.
    """
    if value is None:
        return NOT_MEASURED
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exponent = math.floor(math.log10(abs(x)))
    if scientific is None or -3 <= exponent < 6:
        return f"{x:,.{max(0, digits - 1 - exponent)}f}"
    mantissa, power = f"{x:.{digits - 1}e}".split("e")
    return scientific.format(mantissa=mantissa, power=int(power))


def percent(value: Any, decimals: int = 1) -> str:
    """A percentage with a sign-free fixed number of decimals."""
    return NOT_MEASURED if value is None else f"{float(value):.{decimals}f}%"


def human_bytes(value: Any, *, exact: bool = False) -> str:
    """Bytes as B/KiB/MiB/GiB ("1.5 KiB").

    With `exact`, counts carry thousands separators and a larger unit is followed by the exact
    byte count: "1.5 KiB (1,536 B)".
    """
    if value is None:
        return NOT_MEASURED
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    if exact:
        return f"{int(size):,} B" if unit == "B" else f"{size:,.1f} {unit} ({int(value):,} B)"
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def milliseconds(value: Any) -> str:
    """Milliseconds with three significant figures."""
    return NOT_MEASURED if value is None else f"{significant(value)} ms"


def speed_change(before: Any, after: Any) -> str:
    """A measured speed change as a reader reads it, from the time before and after.

    "1.8× faster" from 10% faster up, "4% faster" below that, "3% slower" for a slowdown under
    2×, "2.5× slower" beyond; "the same speed" when the times agree to 0.5%. Empty when either
    time is missing or not positive (nothing measured, nothing said).
    """
    if before is None or after is None or not (float(before) > 0 and float(after) > 0):
        return ""
    ratio = float(before) / float(after)  # > 1: the compressed model is faster
    if ratio >= 1.1:
        return f"{significant(ratio, 2)}× faster"
    if ratio >= 1.0:
        saved = (1.0 - 1.0 / ratio) * 100.0
        return "the same speed" if saved < 0.5 else f"{saved:.0f}% faster"
    longer = (1.0 / ratio - 1.0) * 100.0
    if longer < 0.5:
        return "the same speed"
    return f"{significant(1.0 / ratio, 2)}× slower" if longer >= 100.0 else f"{longer:.0f}% slower"
