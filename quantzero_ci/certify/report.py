"""The Report: one JSON-able dict that every renderer reads and nothing recomputes.

`build_report` assembles the core's results; `decide.evaluate_checks` adds the checks and the
decision; `signing` adds the signature. The shape is documented in docs/certificate.md.
"""

from __future__ import annotations

import platform
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from quantzero_ci import __version__

SCHEMA = "quantzero-ci/certificate/v1"
DISCLAIMER = (
    "Methodology: carbon figures are analytical estimates, not meter readings. Per layer, time = "
    "max(FLOPs / (throughput × precision factor), bytes moved / memory bandwidth) on the stated "
    "hardware class, plus the class's per-operator overhead and, where the precision changes "
    "between layers, the conversion of the activation (its bytes at memory bandwidth, plus one "
    "operator); energy = time × the class's power; carbon = energy × the country's grid "
    "intensity (Ember, lifecycle g CO2e/kWh). The proxy assumes the hardware runs at the table's "
    "throughput (a vendor peak for most classes, so absolute figures lean optimistic) and power; "
    "it does not cover idle power, data loading and pre-processing, "
    "cooling, networking or embodied (manufacturing) carbon, and real kernels may reach less than "
    "the nominal INT8/BF16 speed-ups. The 95% intervals propagate each coefficient's stated "
    "uncertainty by Monte Carlo; they do not bound model-structure error, which can exceed them "
    "(treat the figures as ±50% absolute, and the before/after comparison as the robust result). "
    "Latency is measured on the machine that ran the gate, not on the deployment hardware."
)


@dataclass(frozen=True)
class ModelFacts:
    """What the certificate says about one model file."""

    label: str
    format: str
    path: str | None
    sha256: str
    size_bytes: int
    note: str | None = None


def build_report(
    *,
    model: ModelFacts,
    compressed: ModelFacts,
    input_shape: tuple[int, ...],
    total_params: int,
    profile: Mapping[str, Any],
    deployment: Mapping[str, Any],
    compression: Mapping[str, Any],
    carbon: Mapping[str, Any],
    verification: Any,
    sizes: tuple[int, int],
    baseline: Mapping[str, Any] | None,
    thresholds: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """Assemble the report (without checks, decision or signature)."""
    import torch

    before_bytes, after_bytes = sizes
    return {
        "schema": SCHEMA,
        "certificate_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "tool": {
            "name": "quantzero-ci",
            "version": __version__,
            "torch": torch.__version__.split("+")[0],
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "model": {
            "label": model.label,
            "format": model.format,
            "path": model.path,
            "sha256": model.sha256,
            "input_shape": list(input_shape),
            "params": total_params,
            "size_bytes": model.size_bytes,
            "note": model.note,
        },
        "compressed_model": {
            "label": compressed.label,
            "format": compressed.format,
            "path": compressed.path,
            "sha256": compressed.sha256,
            "size_bytes": compressed.size_bytes,
        },
        "profile": dict(profile),
        "deployment": dict(deployment),
        "compression": dict(compression),
        "carbon": dict(carbon),
        "consistency": verification.consistency_dict(),
        "accuracy": verification.accuracy_dict(),
        "size": {
            "before_bytes": before_bytes,
            "after_bytes": after_bytes,
            "ratio": before_bytes / after_bytes if after_bytes else None,
            "measure": "serialized state_dict (torch.save) of each model",
        },
        "latency": verification.latency_dict(),
        "baseline": dict(baseline) if baseline is not None else None,
        "thresholds": dict(thresholds),
        "provenance": dict(provenance),
        "disclaimer": DISCLAIMER,
    }
