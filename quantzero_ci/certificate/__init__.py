"""The EcoInfer Certificate PDF, rendered from the report dict alone.

ReportLab platypus lays out the face; every page carries the methodology disclaimer and its page
number in the footer. The exact certificate.json bytes are then attached to the PDF (pypdf) so
one file can be checked with `quantzero verify certificate.pdf`.

Modules: `text` (report look-ups and text for Helvetica/Paragraph markup), `layout` (styles,
tables, footer, document build, attachment), `sections` (the order of the face) with the section
builders in `results` and `provenance`. ReportLab and pypdf are imported only when rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.certificate.layout import EMBEDDED_NAME, build_document, save_with_attachment
from quantzero_ci.certificate.text import NOT_MEASURED, TITLE

__all__ = ["EMBEDDED_NAME", "NOT_MEASURED", "TITLE", "render_pdf"]


def render_pdf(report: Mapping[str, Any], path: Path, *, json_bytes: bytes | None = None) -> None:
    """Write the certificate PDF for report to path, with certificate.json attached.

    json_bytes are the exact bytes of certificate.json to embed; by default the same bytes the
    gate writes (``signing.certificate_json_bytes(report)``).
    """
    from quantzero_ci.certificate.sections import story
    from quantzero_ci.certify.signing import certificate_json_bytes

    if json_bytes is None:
        json_bytes = certificate_json_bytes(report)
    save_with_attachment(build_document(report, story), report, json_bytes, path)
