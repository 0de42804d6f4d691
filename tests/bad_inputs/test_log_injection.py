"""PR-controlled text (folder names, output_dir, labels) never becomes a workflow command."""

from __future__ import annotations

import shutil

import pytest

from .conftest import action, cli

FORGED = "\n::notice title=QuantZero CI::Gate passed\n::add-mask::x\n::stop-commands::tok\nend"


def _commands(text: str) -> list[str]:
    """The lines the runner would read as workflow commands (leading blanks are ignored)."""
    return [line.lstrip() for line in text.splitlines() if line.lstrip().startswith("::")]


def _member_in_hostile_folder(workspace) -> str:
    folder = workspace.root / ("models" + FORGED)
    folder.mkdir(parents=True)
    for name in ("model.pt", "calibration.pt", "evaluation.pt", "net.py"):
        shutil.copy(workspace.root / name, folder / name)
    shutil.move(workspace.config, folder / ".quantzero.yml")
    return folder.name


def test_fleet_list_of_a_member_folder_with_workflow_commands_prints_none(workspace):
    _member_in_hostile_folder(workspace)
    outcome = cli(workspace, "fleet", "list")
    assert outcome.exit_code == 0, outcome.text
    assert _commands(outcome.text) == [], outcome.text
    assert "Gate passed" in outcome.text  # shown, escaped


def test_the_action_escapes_a_member_folder_name(workspace):
    _member_in_hostile_folder(workspace)
    outcome, _outputs, _summary = action(workspace, {"fleet": "list"})
    assert outcome.exit_code == 0, outcome.text
    forged = [c for c in _commands(outcome.stdout) if "Gate passed" in c or "mask" in c]
    assert all(c.startswith("::group::") or "%0A" in c for c in forged), outcome.stdout
    assert not any(c.startswith(("::add-mask", "::stop-commands", "::notice")) for c in forged)


def test_an_output_dir_with_a_newline_reaches_the_log_escaped(workspace):
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml", "--output-dir", "out" + FORGED)
    assert "Traceback" not in outcome.text
    assert _commands(outcome.text) == [], outcome.text


@pytest.mark.slow
def test_a_label_with_a_carriage_return_is_refused_or_escaped(workspace):
    outcome = cli(
        workspace, "gate", "--config", ".quantzero.yml", "--label", "m\r::notice::Gate passed"
    )
    assert "Traceback" not in outcome.text
    assert "\r" not in outcome.text
    assert _commands(outcome.text.replace("\r", "\n")) == [], outcome.text


def test_an_error_quoting_a_hostile_value_is_one_escaped_line(workspace):
    workspace.write_config(**{"deployment.hardware": "pi" + FORGED})
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code == 2, outcome.text
    assert _commands(outcome.text) == [], outcome.text
    assert len([line for line in outcome.stderr.splitlines() if line.startswith("error:")]) == 1
