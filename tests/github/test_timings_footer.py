"""The comment ends with where the time went and what ran it (tool, image, torch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantzero_ci import render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_REPORT = ROOT / "docs" / "example" / "certificate.json"


@pytest.fixture(autouse=True)
def this_checkouts_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render this checkout's templates even when the venv's editable install is another's."""
    monkeypatch.setattr(
        render, "_load", lambda name: (ROOT / "templates" / name).read_text("utf-8")
    )
    render.environment.cache_clear()
    yield
    render.environment.cache_clear()


def report(**tool: str) -> dict:
    data = json.loads(EXAMPLE_REPORT.read_text(encoding="utf-8"))
    data["tool"] = {**data["tool"], **tool}
    data["timings"] = {
        "stages_s": {"load": 0.2, "profile": 2.8, "quantize": 2.7, "verify": 12.6},
        "total_s": 18.3,
        "excludes": "certify",
    }
    return data


def test_footer_lists_the_slowest_stage_first_and_the_image() -> None:
    text = render.render_comment(report(image="ghcr.io/quantzero/quantzero-ci:v0.1.0"))
    line = next(line for line in text.splitlines() if line.startswith("<sub>⏱"))
    assert "18.3 s in the gate" in line
    assert line.index("verify 12.6 s") < line.index("profile 2.8 s") < line.index("load 0.2 s")
    assert "image `ghcr.io/quantzero/quantzero-ci:v0.1.0`" in line
    assert "torch " in line


def test_footer_without_image_or_timings() -> None:
    data = report()
    assert "image `" not in render.render_comment(data)
    del data["timings"]
    assert "⏱" not in render.render_comment(data)
