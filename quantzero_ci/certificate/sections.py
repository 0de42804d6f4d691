"""The face of the certificate: which sections it shows, in which order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantzero_ci.certificate import method, results
from quantzero_ci.certificate.chart import plan_chart
from quantzero_ci.certificate.layout import Styles
from quantzero_ci.certificate.text import TITLE, get, safe


def story(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    """The whole face of the certificate: title line, then every section in order."""
    from reportlab.platypus import Paragraph

    model = get(report, "model", {})
    flowables: list[Any] = [
        Paragraph(TITLE, styles.title),
        Paragraph(
            f"Model <b>{safe(model.get('label', 'unknown'))}</b> · certificate "
            f"{safe(get(report, 'certificate_id', ''))} · issued {safe(get(report, 'created_at', ''))}"
            f" · quantzero-ci {safe(get(report, 'tool.version', ''))}",
            styles.subtitle,
        ),
    ]
    for section in (
        results.verdict,
        results.carbon,
        results.annual,
        results.quality,
        results.size_latency,
        method.coefficients,
        plan_chart,
        method.plan,
        method.compression,
        method.provenance,
        method.integrity,
    ):
        flowables += section(report, styles, width)
    return flowables
