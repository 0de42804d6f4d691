"""Real-world equivalents: the arithmetic and the sources."""

from __future__ import annotations

import json

import pytest

from quantzero_ci.carbon.equivalents import CAR, FACTORS, HOUSEHOLD, TREE, equivalents
from quantzero_ci.carbon.grid import get_grid


def test_factor_values() -> None:
    assert CAR.value == pytest.approx(251.006, abs=0.001)  # 8,887 g/gal / 22.0 mpg / 1.609344
    assert TREE.value == 6000.0  # 0.060 t over 10 years
    assert HOUSEHOLD.value == pytest.approx(29.356, abs=0.001)  # 10,715 kWh / 365
    for factor in FACTORS.values():
        assert len(factor.source) > 60


def test_arithmetic() -> None:
    de = get_grid("DE")
    grams = 6000.0
    by_key = {e.key: e for e in equivalents(grams, de)}
    assert set(by_key) == {"petrol-car-km", "tree-years", "household-electricity-days"}
    assert by_key["petrol-car-km"].value == pytest.approx(grams / (8887 / 22.0 / 1.609344))
    assert by_key["tree-years"].value == pytest.approx(1.0)
    one_day = 10_715 / 365 * 344.14  # grams from one day of a household's electricity in DE
    assert by_key["household-electricity-days"].value == pytest.approx(grams / one_day)
    assert "Germany" in by_key["household-electricity-days"].label
    assert "344.14" in by_key["household-electricity-days"].source


def test_scales_linearly_and_keeps_sign() -> None:
    ke = get_grid("KE")
    one = equivalents(1000.0, ke)
    minus_ten = equivalents(-10_000.0, ke)
    for a, b in zip(one, minus_ten, strict=True):
        assert b.value == pytest.approx(-10 * a.value)


def test_zero_carbon_grid_has_no_household_equivalent() -> None:
    keys = [e.key for e in equivalents(500.0, get_grid("CF"))]
    assert keys == ["petrol-car-km", "tree-years"]


def test_to_dict_is_json() -> None:
    for e in equivalents(123.0, get_grid("IN")):
        data = json.loads(json.dumps(e.to_dict()))
        assert data == {
            "key": e.key,
            "label": e.label,
            "value": e.value,
            "unit": e.unit,
            "source": e.source,
        }
