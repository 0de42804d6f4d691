"""The certificate PDF: what its face says, its footer on every page, its attachment."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from quantzero_ci.certificate import render_pdf


def _pages(report: dict[str, Any], path: Path) -> list[str]:
    render_pdf(report, path)
    return [page.extract_text() for page in PdfReader(path).pages]


@pytest.fixture(scope="module")
def signed_pages(signed_report, tmp_path_factory) -> list[str]:
    return _pages(signed_report, tmp_path_factory.mktemp("pdf") / "certificate.pdf")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_face_shows_verdict_carbon_pcs_and_provenance(signed_pages, signed_report):
    text = _flat(" ".join(signed_pages))
    r = signed_report
    assert "EcoInfer Certificate" in text
    assert "PASSED" in text
    for check in r["checks"]:
        assert check["label"] in text
    assert "g CO2e per 1,000 inferences" in text.replace("CO 2e", "CO2e")
    assert "Before (FP32)" in text and "After (compressed)" in text and "Reduction" in text
    assert f"{r['carbon']['reduction_pct']:.1f}%" in text
    assert f"PCS {r['consistency']['pcs']:.4f}" in text
    assert _flat(r["consistency"]["definition"]) in text
    assert f"{100 * r['accuracy']['before']:.2f}%" in text
    assert "Measured on the machine that ran the gate" in text
    assert r["deployment"]["hardware"]["name"] in text
    assert r["deployment"]["grid"]["country"] in text
    assert "CC BY 4.0" in text
    assert f"torch {r['tool']['torch']}" in text
    assert r["model"]["sha256"] in text and r["compressed_model"]["sha256"] in text
    assert r["signature"]["fingerprint"] in text
    assert r["signature"]["payload_sha256"] in text
    assert "1 multiply-accumulate = 1 FLOP" in text
    assert r["created_at"] in text


def test_every_page_has_the_disclaimer_and_its_number(signed_pages):
    assert len(signed_pages) >= 2
    for number, page in enumerate(signed_pages, start=1):
        flat = _flat(page)
        assert "Methodology: carbon figures are analytical estimates" in flat
        assert "embodied (manufacturing) carbon" in flat
        assert f"Page {number} of {len(signed_pages)}" in flat


def test_long_plan_splits_across_pages_with_its_header(signed_report, tmp_path):
    report = copy.deepcopy(signed_report)
    template = report["compression"]["layers"][-1]
    report["compression"]["layers"] = [
        {**template, "name": f"blocks.{i}.conv", "reason": f"reason number {i}"} for i in range(150)
    ]
    pages = _pages(report, tmp_path / "long.pdf")
    with_rows = [_flat(page) for page in pages if "blocks." in page]
    assert len(with_rows) >= 2
    for page in with_rows:
        assert "Layer Kind FLOP share at start Planned Applied Reason" in page
    assert "reason number 149" in " ".join(pages)


def test_unsigned_and_failed_certificates_say_so(unsigned_report, tmp_path):
    report = copy.deepcopy(unsigned_report)
    report["decision"] = {"passed": False, "failed": ["pcs"], "summary": "Gate failed: PCS."}
    report["accuracy"] = None
    report["compression"]["notes"] = ["fc: INT8 kernel unavailable, fell back to FP32 (σ ≥ 1 → ok)"]
    text = _flat(" ".join(_pages(report, tmp_path / "u.pdf")))
    assert "FAILED — failed: pcs" in text
    assert "Unsigned" in text and "QUANTZERO_SIGNING_KEY" in text
    assert "Top-1 accuracy: not measured" in text
    assert "fell back to FP32 (sigma >= 1 -> ok)" in text  # symbols Helvetica lacks, spelled out
    assert report["signature"]["payload_sha256"] in text


def test_a_measured_slowdown_reads_as_slower(unsigned_report, tmp_path):
    report = copy.deepcopy(unsigned_report)
    latency = report["latency"]
    latency["after_ms"] = latency["before_ms"] * 1.03
    text = _flat(" ".join(_pages(report, tmp_path / "slow.pdf")))
    assert "3% slower" in text
    assert "faster" not in text.split("Measured latency")[1][:80]
