"""GITHUB_OUTPUT formatting (random heredoc delimiters) and the report → outputs mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantzero_ci.errors import InputError
from quantzero_ci.github.outputs import (
    action_outputs,
    append_file_commands,
    display_path,
    format_file_commands,
    format_number,
    parse_file_commands,
)


def test_single_and_multi_line_values_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "github_output"
    target.write_text("earlier=1\n", encoding="utf-8")
    values = {"passed": "true", "markdown": "## Title\n\n| a | b |\nlast line", "empty": ""}
    append_file_commands(target, values)
    text = target.read_text(encoding="utf-8")
    assert "passed=true\n" in text
    assert "markdown<<ghadelimiter_" in text
    assert parse_file_commands(text) == {"earlier": "1", **values}


def test_delimiters_are_random_per_value() -> None:
    text = format_file_commands({"a": "x\ny", "b": "x\ny"})
    headers = [line for line in text.splitlines() if "<<" in line]
    assert len(headers) == 2
    assert headers[0].split("<<")[1] != headers[1].split("<<")[1]


def test_delimiter_that_occurs_in_the_value_is_replaced() -> None:
    tokens = iter(["EOF", "EOF", "SAFE"])
    text = format_file_commands({"body": "line\nEOF\nmore"}, delimiter=lambda: next(tokens))
    assert text == "body<<SAFE\nline\nEOF\nmore\nSAFE\n"
    assert parse_file_commands(text) == {"body": "line\nEOF\nmore"}


def test_injected_lines_cannot_forge_another_output() -> None:
    text = format_file_commands({"comment": "hello\npassed=true"})
    assert parse_file_commands(text) == {"comment": "hello\npassed=true"}


def test_bad_output_name_is_rejected() -> None:
    with pytest.raises(InputError, match="Output name"):
        format_file_commands({"a=b": "x"})


def test_numbers_are_plain_json_numbers() -> None:
    assert format_number(12.3456789) == "12.3457"
    assert format_number(1.2345678e-7) == "1.23457e-07"
    assert format_number(3) == "3"
    assert format_number(None) == ""


def test_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    inside = tmp_path / "out" / "certificate.json"
    assert display_path(inside, tmp_path) == "out/certificate.json"
    outside = Path("/elsewhere/file.pdf")
    assert display_path(outside, tmp_path) == "/elsewhere/file.pdf"


def test_action_outputs_read_the_report(tmp_path: Path) -> None:
    report = {
        "carbon": {
            "before": {"g_per_1000_inferences": 0.5},
            "after": {"g_per_1000_inferences": 0.2},
            "reduction_pct": 60.0,
        },
        "consistency": {"pcs": 0.99},
        "decision": {"passed": False, "failed": ["pcs", "carbon_increase"]},
        "baseline": {"status": "found", "change_pct": 12.5},
    }
    out = tmp_path / "quantzero-out"
    values = action_outputs(
        report,
        certificate_json=out / "certificate.json",
        certificate_pdf=out / "certificate.pdf",
        compressed_model=out / "model.compressed.pt",
        comment_markdown="## x\ny",
        workspace=tmp_path,
        comment_url="https://github.example/c/1",
    )
    assert values["passed"] == "false"
    assert values["failed-checks"] == "pcs,carbon_increase"
    assert (values["carbon-before"], values["carbon-after"]) == ("0.5", "0.2")
    assert values["carbon-reduction"] == "60.0"
    assert values["pcs"] == "0.99"
    assert values["carbon-change"] == "12.5"
    assert values["baseline-status"] == "found"
    assert values["certificate-pdf"] == "quantzero-out/certificate.pdf"
    assert values["comment-url"] == "https://github.example/c/1"
