"""What a certificate must hold before a command renders it: one message naming what is missing.

A file with the right ``schema`` but missing sections (hand-made, truncated, from another tool)
is refused with the dotted name of the first missing field, never rendered as a card of nulls or
a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from quantzero_ci.errors import InputError

SECTIONS = (
    "certificate_id",
    "tool.version",
    "model.label",
    "model.sha256",
    "compressed_model.sha256",
    "profile.layers",
    "profile.total_flops",
    "deployment.hardware.name",
    "deployment.grid.country",
    "deployment.inferences_per_day",
    "deployment.deployments",
    "compression.mode",
    "compression.layers",
    "carbon.before.g_per_1000_inferences",
    "carbon.after.g_per_1000_inferences",
    "carbon.reduction_pct",
    "carbon.annual.after_kg",
    "consistency.pcs",
    "consistency.n",
    "size.before_bytes",
    "latency",
    "checks",
    "decision.passed",
    "signature",
)
MODEL_CARD_FIELDS = (
    "certificate_id",
    "carbon.before.g_per_1000_inferences",
    "carbon.after.g_per_1000_inferences",
    "carbon.reduction_pct",
    "carbon.annual.after_kg",
    "deployment.hardware.name",
    "deployment.grid.country",
    "deployment.grid.iso2",
    "consistency.pcs",
)


def missing_field(report: Mapping[str, Any], fields: Iterable[str]) -> str | None:
    """The first dotted field of `fields` that `report` lacks (or holds as null)."""
    for dotted in fields:
        value: Any = report
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return dotted
    return None


def require_fields(report: Mapping[str, Any], fields: Iterable[str], source: str) -> None:
    """InputError naming the first missing field, with the fix."""
    missing = missing_field(report, fields)
    if missing is not None:
        raise InputError(
            f"{source} has the certificate schema but no {missing}: it is incomplete or was not "
            "written by `quantzero gate`. Pass the certificate.json the gate wrote."
        )
