"""Small torch-free helpers shared by the gate and by `quantzero verify`: intervals and hashes."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def wilson_share(share: float, units: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson interval for a mean share over `units` independent units (inputs), each of
    which may score several correlated positions or tokens: the effective sample size is the
    number of units, never the number of positions within them."""
    return wilson_interval(min(1.0, max(0.0, share)) * units, units, z)  # type: ignore[arg-type]


def min_units_for(threshold: float, z: float = Z95) -> int | None:
    """The fewest independent units whose perfect score's Wilson lower bound reaches
    `threshold` (n / (n + z²) ≥ t ⇔ n ≥ z²·t / (1 − t)); None when no finite set can (t ≥ 1)."""
    if threshold <= 0:
        return 0
    if threshold >= 1:
        return None
    n = max(1, math.ceil(z * z * threshold / (1 - threshold)) - 1)
    while wilson_interval(n, n, z)[0] < threshold:
        n += 1
    return n


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
