"""The fleet's annual totals and their 95% intervals, with draws shared where members share a
coefficient. Pure: member facts in, a JSON-able dict out.

Each distinct hardware class is drawn once per sample (throughput, power, INT8 and BF16 factors,
bandwidth) and each distinct country's grid intensity once per sample, from a PCG64 generator
seeded by the fleet seed and a SHA-256 of the coefficient's key, so the draws do not depend on
the members' order. Members on the same class (or in the same country) therefore move together;
members that share nothing are independent. Each member's annual kg per sample is its roofline
carbon (`carbon.energy`) at that sample × inferences per day × 365 × deployments; the totals sum
them per sample. Point figures are the exact sums of the members' nominal annual figures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantzero_ci.carbon import energy
from quantzero_ci.carbon.grid import GridIntensity
from quantzero_ci.carbon.hardware import HardwareClass
from quantzero_ci.precisions import FP32

SAMPLES = 4000
SEED = 20240601
UNIT = "kg CO2e per year"
METHOD = (
    "Monte-Carlo, {samples} draws: each distinct hardware class (throughput, power, INT8 and "
    "BF16 factors, bandwidth) and each distinct country's grid intensity drawn once per sample "
    "(lognormal, median at the table value, the table's relative 1σ) from numpy PCG64 seeded "
    "with [{seed}, the first 8 bytes of SHA-256 of 'hardware:<key>' or 'grid:<iso2>']; members "
    "that share a class or a country share its draws; per sample, the sum over members of "
    "g CO2e per 1,000 inferences × inferences per day × 365 × deployments / 1e6; "
    "2.5th-97.5th percentiles"
)
# Appended where any member's class has a per-operator overhead (certificates made before it
# existed keep the method text, and the numbers, they were made with).
OVERHEAD_METHOD = (
    "; each class's per-operator overhead is drawn last from its own generator, after the "
    "coefficients above"
)


@dataclass(frozen=True)
class MemberWork:
    """What the totals need of one member."""

    label: str
    hardware: HardwareClass
    grid: GridIntensity
    before: Sequence[energy.LayerWork]
    after: Sequence[energy.LayerWork]
    inferences_per_day: float
    deployments: int
    before_kg: float  # the member's own nominal annual figures (its certificate's)
    after_kg: float
    base_kg: float | None = None  # base-branch FP32 annual kg; None: not compared


def stream(seed: int, key: str) -> np.random.Generator:
    """The generator of one coefficient key: independent of every other key and of order."""
    word = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, word])))


def _draws(hw: HardwareClass, rng: np.random.Generator, samples: int) -> energy.HardwareDraws:
    """One class's draws: the original coefficients, then its per-operator overhead."""
    return energy.with_overhead(energy.draw_hardware(hw, rng, samples), hw, rng)


def _ci95(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def fleet_totals(
    members: Sequence[MemberWork], *, samples: int = SAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """Annual before/after kg CO2e of the whole fleet, the reduction, and 95% intervals.

    Members are summed in label order, so the figures are the same bits in any input order.
    """
    members = sorted(members, key=lambda m: m.label)
    hardware = {m.hardware.key: m.hardware for m in members}
    grids = {m.grid.iso2: m.grid for m in members}
    hw_draws = {
        key: _draws(hw, stream(seed, f"hardware:{key}"), samples)
        for key, hw in sorted(hardware.items())
    }
    grid_draws = {
        iso2: energy.draw_grid(g, stream(seed, f"grid:{iso2}"), samples)
        for iso2, g in sorted(grids.items())
    }
    total_before = np.zeros(samples)
    total_after = np.zeros(samples)
    for m in members:
        per_year = energy.annual_kg(1.0, m.inferences_per_day, m.deployments)
        draws, g_per_kwh = hw_draws[m.hardware.key], grid_draws[m.grid.iso2]
        before = energy.layer_arrays(m.before, f"{m.label} before")
        after = energy.layer_arrays(m.after, f"{m.label} after")
        total_before += per_year * energy.sampled_g_per_1000(before, draws, g_per_kwh)
        total_after += per_year * energy.sampled_g_per_1000(after, draws, g_per_kwh)
    before_kg = math.fsum(m.before_kg for m in members)
    after_kg = math.fsum(m.after_kg for m in members)
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = 100.0 * (1.0 - total_after / total_before)
    return {
        "unit": UNIT,
        "members": len(members),
        "inferences_per_year": math.fsum(
            m.inferences_per_day * 365 * m.deployments for m in members
        ),
        "before_kg": before_kg,
        "after_kg": after_kg,
        "saved_kg": before_kg - after_kg,
        "reduction_pct": 100.0 * (1.0 - after_kg / before_kg) if before_kg > 0 else None,
        "before_ci95": _ci95(total_before),
        "after_ci95": _ci95(total_after),
        "reduction_ci95": _ci95(reduction) if bool(np.all(total_before > 0)) else None,
        "interval": {
            "method": METHOD.format(samples=samples, seed=seed)
            + (
                OVERHEAD_METHOD
                if any(hw.op_overhead_us is not None for hw in hardware.values())
                else ""
            ),
            "samples": samples,
            "seed": seed,
            "shared": {"hardware": sorted(hardware), "grid": sorted(grids)},
        },
        "baseline": _baseline(members, before_kg),
    }


def _baseline(members: Sequence[MemberWork], before_kg: float) -> dict[str, Any]:
    """The fleet's FP32 annual total against the base branch's, when every member was compared."""
    missing = [m.label for m in members if m.base_kg is None]
    if missing:
        return {
            "status": "not compared",
            "base_kg": None,
            "change_pct": None,
            "note": (
                f"no base-branch figure for {', '.join(missing)} (a pull request gated by the "
                "action compares each member against its base branch)"
            ),
        }
    base_kg = math.fsum(float(m.base_kg or 0.0) for m in members)
    if base_kg <= 0:
        return {
            "status": "not compared",
            "base_kg": base_kg,
            "change_pct": None,
            "note": "every member is new on this branch: there is no base total to compare",
        }
    return {
        "status": "compared",
        "base_kg": base_kg,
        "change_pct": (before_kg - base_kg) / base_kg * 100.0,
        "note": "FP32 annual totals; a member that is new on this branch counts 0 at the base",
    }


def member_work(report: Mapping[str, Any]) -> MemberWork:
    """A member certificate's facts for the totals (its recorded profile, plan and deployment)."""
    from quantzero_ci.carbon.section import layer_works
    from quantzero_ci.neuroquant.policy import DYNAMIC, Plan

    applied = Plan.from_dict(report["compression"]).applied_precisions()
    layers = report["profile"]["layers"]
    deployment = report["deployment"]
    ipd, deployments = deployment["inferences_per_day"], deployment["deployments"]
    return MemberWork(
        label=str(report["model"]["label"]),
        hardware=HardwareClass.from_dict(deployment["hardware"]),
        grid=GridIntensity.from_dict(deployment["grid"]),
        before=layer_works(layers, lambda name: FP32),
        after=layer_works(
            layers,
            lambda name: applied.get(name, FP32),
            report["compression"].get("method") == DYNAMIC,
        ),
        inferences_per_day=float(ipd),
        deployments=int(deployments),
        before_kg=float(report["carbon"]["annual"]["before_kg"]),
        after_kg=float(report["carbon"]["annual"]["after_kg"]),
        base_kg=_base_kg(report.get("baseline"), float(ipd), int(deployments)),
    )


def _base_kg(baseline: Any, ipd: float, deployments: int) -> float | None:
    if not isinstance(baseline, Mapping):
        return None
    if baseline.get("status") == "new":
        return 0.0
    base_g = baseline.get("g_per_1000_inferences")
    if baseline.get("status") != "found" or base_g is None:
        return None
    return energy.annual_kg(float(base_g), ipd, deployments)
