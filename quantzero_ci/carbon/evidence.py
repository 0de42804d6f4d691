"""The measurement beside the model: the shipped file's measured time ratio as a reduction.

When the runner that ran the gate and the deployment class share an instruction set and kernel
family (an x86 CPU class on an x86 runner), the measured latency ratio of the shipped file
against FP32 is direct evidence about the energy ratio: the same chip at the same power draw
spends energy in proportion to time. Then the certificate shows the measured reduction beside
the modelled one, at batch 1, at the batch the gate ran and at the deployment's batch
(`deployment.batch_size`, when set), and warns where a measurement falls outside the model's 95%
interval. For any other class the runner's timings are evidence about
the runner only, and the section says so. Pure: numbers in, a dict out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# CPU classes whose kernels an x86 runner runs itself: the shipped file's timings on the runner
# speak for them. desktop-gpu is x86-hosted but deploys on the GPU, so it is not one of them.
RUNNER_COMPARABLE: Mapping[str, str] = {
    "laptop-cpu": "x86",
    "desktop-cpu": "x86",
    "cloud-vcpu": "x86",
}

BASIS = (
    "same chip at the same power draw, so the energy ratio equals the measured time ratio: the "
    "measured reduction is 100·(1 − shipped file's time / FP32 PyTorch eager's time), the "
    "runtime's share included"
)


def _reduction(before_ms: Any, after_ms: Any) -> float | None:
    if before_ms is None or after_ms is None or not (before_ms > 0 and after_ms > 0):
        return None
    return 100.0 * (1.0 - float(after_ms) / float(before_ms))


def _listed(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{row['reduction_pct']:.1f}% at {row['label']}" for row in rows)


def measured_reduction(
    hardware_key: str,
    runner_family: str | None,
    batch1: Mapping[str, Any],
    batch: Mapping[str, Any],
    modelled_pct: float,
    modelled_ci95: tuple[float, float] | list[float],
    batch_n: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The measured reduction beside the modelled one, or why there is none.

    ``batch1`` holds the interleaved batch-1 medians (``fp32_ms``, ``compressed_ms``);
    ``batch`` the per-input medians at the gate's batch size (``before_ms``, ``after_ms``,
    ``batch_size``); ``batch_n`` the interleaved medians at the deployment's batch (``batch``),
    when the config names one.
    """
    family = RUNNER_COMPARABLE.get(hardware_key)
    if family is None or runner_family != family:
        why = (
            f"{hardware_key} is not a CPU class of this runner's kernel family"
            if family is None
            else f"{hardware_key} runs {family} kernels and this runner runs {runner_family}"
        )
        return {
            "applies": False,
            "reason": f"{why}: its timings are evidence about the runner only",
        }
    low, high = float(modelled_ci95[0]), float(modelled_ci95[1])
    rows = []
    measured = [
        ("batch 1", 1, batch1.get("fp32_ms"), batch1.get("compressed_ms")),
        (
            f"batch {batch.get('batch_size')}",
            batch.get("batch_size"),
            batch.get("before_ms"),
            batch.get("after_ms"),
        ),
    ]
    if batch_n is not None:
        measured.append(
            (
                f"batch {batch_n.get('batch')} (deployment)",
                batch_n.get("batch"),
                batch_n.get("fp32_ms"),
                batch_n.get("compressed_ms"),
            )
        )
    for label, size, before_ms, after_ms in measured:
        pct = _reduction(before_ms, after_ms)
        if pct is None:
            continue
        rows.append(
            {
                "label": label,
                "batch_size": size,
                "fp32_ms": before_ms,
                "compressed_ms": after_ms,
                "reduction_pct": pct,
                "within_interval": low <= pct <= high,
            }
        )
    below = [row for row in rows if row["reduction_pct"] < low]
    above = [row for row in rows if row["reduction_pct"] > high]
    where = f"(the kernel family of {hardware_key})"
    interval = (
        f"the model's 95% interval ({low:.1f}% to {high:.1f}%) around its {modelled_pct:.1f}%"
    )
    warnings = []
    if below:
        warnings.append(
            f"Measured on this {family} runner {where}, the shipped model's reduction is "
            f"{_listed(below)}, below {interval}: the estimated saving is not borne out at "
            f"{'that batch size' if len(below) == 1 else 'those batch sizes'}. The model counts "
            "a per-operator overhead and the quantize/dequantize of activations, but not the "
            "runtime's fixed cost per call or the operators between the profiled layers, which "
            "weigh most on small models."
        )
    if above:
        warnings.append(
            f"Measured on this {family} runner {where}, the shipped model's reduction is "
            f"{_listed(above)}, above {interval}: the measurement compares FP32 in PyTorch "
            "eager with the shipped runtime, whose own share the estimate counts as 1.0, so "
            "the estimate may understate the saving."
        )
    warning = " ".join(warnings) or None
    return {
        "applies": True,
        "runner": family,
        "basis": BASIS,
        "modelled_pct": modelled_pct,
        "modelled_ci95": [low, high],
        "measured": rows,
        "warning": warning,
    }


def interval_text(carbon: Mapping[str, Any], hardware_name: str) -> str | None:
    """Whether the reduction's 95% interval establishes a saving, in one sentence."""
    ci = carbon.get("reduction_ci95")
    if not ci:
        return None
    low, high = float(ci[0]), float(ci[1])
    span = f"{low:.1f}% to {high:.1f}%"
    if low > 0:
        return (
            f"The reduction's 95% interval ({span}) excludes zero: on {hardware_name} the "
            "saving holds across the coefficients' stated uncertainty."
        )
    if high < 0:
        return (
            f"The reduction's 95% interval ({span}) lies below zero: on {hardware_name} this "
            "plan is estimated to increase carbon."
        )
    return (
        f"The reduction's 95% interval ({span}) includes zero: this estimate does not establish "
        f"that the change saves carbon on {hardware_name}."
    )
