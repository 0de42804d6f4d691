"""The fleet Monte-Carlo: shared draws where members share a coefficient, order independence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from quantzero_ci.carbon.energy import LayerWork, annual_kg, point_estimate
from quantzero_ci.carbon.grid import get_grid
from quantzero_ci.carbon.hardware import get_hardware
from quantzero_ci.fleet.totals import MemberWork, fleet_totals


def _member(label: str, hardware: str = "laptop-cpu", country: str = "DE") -> MemberWork:
    hw, grid = get_hardware(hardware), get_grid(country)
    before = [
        LayerWork("conv", 2_000_000, 4_000, 40_000, "FP32"),
        LayerWork("fc", 50_000, 200_000, 400, "FP32"),
    ]
    after = [replace(before[0], precision="INT8"), replace(before[1], precision="BF16")]
    kg = [
        annual_kg(point_estimate(w, hw, grid.g_per_kwh).g_per_1000_inferences, 1000, 3)
        for w in (before, after)
    ]
    return MemberWork(label, hw, grid, before, after, 1000, 3, kg[0], kg[1])


def test_two_identical_members_sharing_every_coefficient_double_the_interval_exactly():
    one = fleet_totals([_member("a")])
    two = fleet_totals([_member("a"), _member("b")])
    assert two["before_kg"] == pytest.approx(2 * one["before_kg"], rel=1e-15)
    assert two["before_ci95"] == pytest.approx([2 * v for v in one["before_ci95"]], rel=1e-12)
    assert two["after_ci95"] == pytest.approx([2 * v for v in one["after_ci95"]], rel=1e-12)


def test_members_that_share_nothing_are_independent_so_the_total_is_relatively_narrower():
    one = fleet_totals([_member("a")])
    apart = fleet_totals([_member("a"), _member("b", "raspberry-pi-4", "KE")])
    shared = fleet_totals([_member("a"), _member("b", "raspberry-pi-4", "DE")])

    def width(t):
        return (t["before_ci95"][1] - t["before_ci95"][0]) / t["before_kg"]

    assert width(apart) < width(shared) and width(apart) < width(one)


def test_totals_do_not_depend_on_member_order():
    members = [_member("a"), _member("b", "raspberry-pi-4", "KE"), _member("c", "laptop-cpu", "KE")]
    assert fleet_totals(members) == fleet_totals(members[::-1])


def test_the_increase_against_the_base_needs_every_member_compared():
    a, b = _member("a"), _member("b", country="KE")
    assert fleet_totals([a, b])["baseline"]["status"] == "not compared"
    compared = fleet_totals([replace(a, base_kg=a.before_kg / 2), replace(b, base_kg=0.0)])
    base = compared["baseline"]
    assert base["status"] == "compared" and base["base_kg"] == a.before_kg / 2
    total = a.before_kg + b.before_kg
    assert base["change_pct"] == pytest.approx((total - a.before_kg / 2) / (a.before_kg / 2) * 100)
