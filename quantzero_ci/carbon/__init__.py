"""Carbon estimation: hardware classes, grid intensity, the roofline energy formula, equivalents.

Light to import: numpy and the standard library only.
"""

from __future__ import annotations

from quantzero_ci.carbon.energy import (
    FORMULA,
    PRECISIONS,
    CarbonComparison,
    LayerWork,
    PointEstimate,
    annual_kg,
    compare,
    point_estimate,
)
from quantzero_ci.carbon.equivalents import Equivalent, equivalents
from quantzero_ci.carbon.grid import ATTRIBUTION, GridIntensity, get_grid, list_grid
from quantzero_ci.carbon.hardware import (
    HARDWARE,
    Coefficient,
    HardwareClass,
    get_hardware,
    list_hardware,
)

__all__ = [
    "ATTRIBUTION",
    "FORMULA",
    "HARDWARE",
    "PRECISIONS",
    "CarbonComparison",
    "Coefficient",
    "Equivalent",
    "GridIntensity",
    "HardwareClass",
    "LayerWork",
    "PointEstimate",
    "annual_kg",
    "compare",
    "equivalents",
    "get_grid",
    "get_hardware",
    "list_grid",
    "list_hardware",
    "point_estimate",
]
