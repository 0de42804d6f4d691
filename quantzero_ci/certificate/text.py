"""Report look-ups and the text the certificate draws: Helvetica-safe, Paragraph-markup-safe."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from quantzero_ci.formatting import NOT_MEASURED, significant

__all__ = ["NOT_MEASURED", "TITLE", "ci", "count", "get", "mono", "num", "plain", "safe"]

TITLE = "EcoInfer Certificate"
# Powers of ten in Paragraph markup, for numbers too small or large for fixed notation.
_POWER_MARKUP = "{mantissa}×10<super>{power}</super>"
# Helvetica speaks WinAnsi (cp1252) only; these characters are spelled out instead.
_SPELLED = {
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "→": "->",
    "−": "-",
    "σ": "sigma",
    "γ": "gamma",
    "Σ": "sum ",
    "₂": "2",
    "²": "2",
    "✓": "ok",
    "✗": "x",
    "≈": "~",
    "×": "×",
    "µ": "µ",
}


def get(data: Any, dotted: str, default: Any = None) -> Any:
    """data["a"]["b"] for "a.b", or default where a step is missing or None."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or data.get(part) is None:
            return default
        data = data[part]
    return data


def plain(text: Any) -> str:
    """Text Helvetica can draw: known symbols spelled out, anything else outside cp1252 dropped."""
    out = []
    for char in str(text):
        char = _SPELLED.get(char, char)
        try:
            char.encode("cp1252")
        except UnicodeEncodeError:
            char = unicodedata.normalize("NFKD", char).encode("cp1252", "ignore").decode("cp1252")
        out.append(char)
    return "".join(out)


def safe(text: Any) -> str:
    """Plain text made safe for Paragraph markup."""
    return escape(plain(text))


def num(value: Any, sig: int = 3) -> str:
    """A number with sig significant digits; powers of ten in markup when very small or large."""
    return significant(value, sig, scientific=_POWER_MARKUP)


def ci(pair: Any, fmt: Callable[[Any], str] = num) -> str:
    """An interval "low to high", each end written by fmt."""
    if not isinstance(pair, Sequence) or len(pair) != 2:
        return NOT_MEASURED
    return f"{fmt(pair[0])} to {fmt(pair[1])}"


def count(value: Any) -> str:
    """A count with thousands separators (1,825,000), or the number itself if not whole."""
    if value is None:
        return NOT_MEASURED
    return f"{int(value):,}" if float(value).is_integer() else num(value)


def mono(text: Any) -> str:
    """Text in small Courier (hashes, keys)."""
    return f'<font name="Courier" size="7">{safe(text)}</font>'
