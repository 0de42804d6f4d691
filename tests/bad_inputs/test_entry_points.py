"""The same classes on the other entry points: scan, comment and the action."""

from __future__ import annotations

import json

import pytest

from .conftest import action, cli
from .raw_server import RawServer
from .test_crashes import _dict_model


def _scan(*extra: str) -> tuple[str, ...]:
    return ("scan", "--model", "dict.pt", "--factory", "dictnet:build", *extra)


def test_scan_profiles_a_dict_output_model(workspace):
    _dict_model(workspace, "logits")
    outcome = cli(workspace, *_scan("--input-shape", "1,1,8,8", "--json"))
    assert outcome.exit_code == 0, outcome.text
    assert json.loads(outcome.stdout)["flops"] > 0


def test_scan_with_an_input_shape_the_model_cannot_run_names_the_shape(workspace, refused):
    _dict_model(workspace, "logits")
    refused(lambda: cli(workspace, *_scan("--input-shape", "1,3,9,9")), 2, "model.input_shape")


@pytest.mark.slow
def test_comment_against_an_api_that_is_not_http_is_one_line_not_a_traceback(workspace, refused):
    assert cli(workspace, "gate", "--config", ".quantzero.yml").exit_code == 0
    report = "quantzero-out/certificate.json"
    with RawServer("garbage") as server:
        outcome = refused(
            lambda: cli(
                workspace,
                *("comment", "--report", report, "--pr", "3", "--repo", "octo/models"),
                *("--api-timeout", "5"),
                env={"GITHUB_TOKEN": "t", "GITHUB_API_URL": server.url},
            ),
            1,
            "no answer",
            server.url,
        )
    assert outcome.stderr.count("error:") == 1


def test_comment_on_a_report_that_is_not_utf8_is_a_usage_error(workspace, refused):
    (workspace.root / "latin.json").write_bytes(b'{"schema": "caf\xe9"}')
    refused(
        lambda: cli(
            workspace,
            *("comment", "--report", "latin.json", "--pr", "3", "--repo", "octo/models"),
            env={"GITHUB_TOKEN": "t"},
        ),
        2,
        "--report",
        "latin.json",
    )


def test_the_action_reports_a_config_that_is_not_utf8(workspace, refused):
    workspace.config.write_bytes(b"version: 1\noutput_dir: caf\xe9\n")
    outcome = refused(lambda: action(workspace, {})[0], 2, ".quantzero.yml", "UTF-8")
    assert "::error" in outcome.stdout


def test_the_action_reports_a_factory_that_raises(workspace, refused):
    (workspace.root / "net.py").write_text("raise SystemError('broken')\n", encoding="utf-8")
    refused(lambda: action(workspace, {})[0], 2, "model.factory", "SystemError")


@pytest.mark.slow
def test_a_certificate_with_a_wrongly_typed_field_is_a_usage_error_for_card_and_comment(
    workspace, refused
):
    assert cli(workspace, "gate", "--config", ".quantzero.yml").exit_code == 0
    report = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    report["carbon"]["annual"]["after_kg"] = "lots"
    report["consistency"]["pcs"] = "high"
    (workspace.root / "typed.json").write_text(json.dumps(report), encoding="utf-8")
    refused(lambda: cli(workspace, "model-card", "typed.json"), 2, "typed.json", "lots")
    refused(
        lambda: cli(
            workspace,
            *("comment", "--report", "typed.json", "--pr", "3", "--repo", "octo/models"),
            env={"GITHUB_TOKEN": "t", "GITHUB_API_URL": "http://127.0.0.1:9"},
        ),
        2,
        "--report",
        "typed.json",
    )
