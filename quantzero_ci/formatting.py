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
