"""Markdown renderings of a report (PR comment, job summary): pure functions from dict to string.

Templates live in the top-level `templates/` folder, shipped in the wheel as the package
`quantzero_ci.templates` and read with `importlib.resources` (never relative to the cwd).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2

from quantzero_ci.carbon.evidence import interval_text
from quantzero_ci.carbon.section import memory_bound_text
from quantzero_ci.certify.decide import decided_on_text
from quantzero_ci.formatting import (
    human_bytes,
    milliseconds,
    percent,
    significant,
    speed_change,
)
from quantzero_ci.mdsafe import escape_markdown
from quantzero_ci.precisions import NAMES

__all__ = ["escape_markdown", "render_comment", "render_summary", "significant"]

COMMENT_TEMPLATE = "comment.md.j2"
SUMMARY_TEMPLATE = "summary.md.j2"


def _load(name: str) -> str:
    return resources.files("quantzero_ci.templates").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment the markdown templates render in (the fleet comment too)."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=escape_markdown,  # every value is inert text: a fork's report cannot inject markup
    )
    env.filters.update(
        sig=significant,
        pct=percent,
        size=human_bytes,
        ms=milliseconds,
        md=escape_markdown,
        speed=speed_change,
    )
    return env


def _context(report: Mapping[str, Any]) -> dict[str, Any]:
    layers = report["compression"]["layers"]
    counts = Counter(layer["applied"] for layer in layers)
    flops = {layer["name"]: layer["flops"] for layer in report["profile"]["layers"]}
    total = report["profile"]["total_flops"] or 1
    shares = Counter()
    for layer in layers:
        shares[layer["applied"]] += flops.get(layer["name"], 0) / total
    return {
        "r": report,
        "memory_bound": memory_bound_text(report),
        "decided_on": decided_on_text(report),
        "interval_note": interval_text(report["carbon"], report["deployment"]["hardware"]["name"]),
        "pcs_decided_on": next(
            (c.get("decided_on") for c in report.get("checks") or [] if c.get("name") == "pcs"),
            None,
        ),
        "precision_rows": [
            {"precision": p, "layers": counts.get(p, 0), "flop_share": shares.get(p, 0.0) * 100}
            for p in NAMES
        ],
        "changed_layers": [layer for layer in layers if layer["applied"] != layer["planned"]],
        "layer_carbon": {row["name"]: row for row in report.get("carbon", {}).get("layers") or []},
        "base_layers": (report.get("baseline") or {}).get("layers") or {},
    }


def render_comment(report: Mapping[str, Any]) -> str:
    """The pull-request comment for `report`."""
    return environment().get_template(COMMENT_TEMPLATE).render(_context(report))


def render_summary(report: Mapping[str, Any]) -> str:
    """The job summary: the comment plus the per-layer plan."""
    return environment().get_template(SUMMARY_TEMPLATE).render(_context(report))
