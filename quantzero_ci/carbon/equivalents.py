"""Real-world equivalents of an amount of CO2e (for the annual projection figures).

Each conversion factor carries its source in :data:`FACTORS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from quantzero_ci.carbon.grid import GridIntensity

_MILE_KM = 1.609344


@dataclass(frozen=True)
class EquivalenceFactor:
    """A conversion factor: ``value`` of ``unit``, with its source."""

    key: str
    value: float
    unit: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "unit": self.unit, "source": self.source}


CAR = EquivalenceFactor(
    key="petrol-car-km",
    value=8887.0 / 22.0 / _MILE_KM,  # 251.0 g CO2 per km
    unit="g CO2/km",
    source=(
        "US EPA, 'Greenhouse Gas Emissions from a Typical Passenger Vehicle': 8,887 g CO2 per "
        "gallon of gasoline at the 22.0 mpg average of US gasoline passenger vehicles -> 404 g/mile "
        "= 251 g CO2/km, tailpipe CO2 only. The US fleet includes light trucks; an average "
        "European petrol car emits less per km."
    ),
)
TREE = EquivalenceFactor(
    key="tree-years",
    value=60_000.0 / 10.0,  # 6.0 kg CO2 per tree per year
    unit="g CO2/tree-year",
    source=(
        "US EPA Greenhouse Gas Equivalencies Calculator, Calculations and References, 'urban "
        "tree seedlings grown for 10 years': 36.4 lb C x 44/12 = 0.060 t CO2 per tree over 10 "
        "years -> 6.0 kg CO2 per tree-year, averaged over a young medium-growth urban tree's "
        "first decade (mature trees take up more)."
    ),
)
HOUSEHOLD = EquivalenceFactor(
    key="household-electricity-days",
    value=10_715.0 / 365.0,  # 29.36 kWh per day
    unit="kWh/day",
    source=(
        "US EIA FAQ 'How much electricity does an American home use?' (updated 2021-10-07): "
        "10,715 kWh in 2020 per residential customer -> 29.4 kWh/day, valued at the deployment "
        "country's grid intensity. Households in most other countries use less electricity, so "
        "elsewhere this understates the days."
    ),
)

FACTORS: Mapping[str, EquivalenceFactor] = MappingProxyType(
    {f.key: f for f in (CAR, TREE, HOUSEHOLD)}
)


@dataclass(frozen=True)
class Equivalent:
    """An amount of CO2e expressed as ``value`` ``unit`` of something familiar."""

    key: str
    label: str
    value: float
    unit: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
        }


def equivalents(grams_co2: float, grid: GridIntensity) -> tuple[Equivalent, ...]:
    """``grams_co2`` as petrol-car km, tree-years and days of a household's electricity.

    The household figure uses the deployment country's grid intensity; it is left out where
    that intensity is zero, since no amount of that electricity emits anything.
    """
    result = [
        Equivalent(
            key=CAR.key,
            label="km driven by an average petrol car",
            value=grams_co2 / CAR.value,
            unit="km",
            source=CAR.source,
        ),
        Equivalent(
            key=TREE.key,
            label="years of CO2 uptake by one young tree",
            value=grams_co2 / TREE.value,
            unit="tree-years",
            source=TREE.source,
        ),
    ]
    if grid.g_per_kwh > 0:
        result.append(
            Equivalent(
                key=HOUSEHOLD.key,
                label=f"days of an average household's electricity in {grid.country}",
                value=grams_co2 / (HOUSEHOLD.value * grid.g_per_kwh),
                unit="days",
                source=(
                    f"{HOUSEHOLD.source} Grid: {grid.g_per_kwh:g} g CO2e/kWh ({grid.country}, "
                    f"{grid.year}; Ember, CC BY 4.0)."
                ),
            )
        )
    return tuple(result)
