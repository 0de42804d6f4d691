"""Configs and JSON documents shaped to crash or mislead the reader: each is one clear refusal."""

from __future__ import annotations

from .conftest import cli


def _gate(workspace):
    return cli(workspace, "gate", "--config", ".quantzero.yml")


def _set_raw(workspace, text: str) -> None:
    workspace.config.write_text(workspace.config.read_text() + text, encoding="utf-8")


def test_a_duplicate_key_names_the_key_and_both_lines(workspace, refused):
    text = workspace.config.read_text().replace(
        "  min_pcs: 0.0\n", "  min_pcs: 0.0\n  min_pcs: 0.5\n"
    )
    workspace.config.write_text(text, encoding="utf-8")
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if "min_pcs" in line]
    outcome = refused(lambda: _gate(workspace), 2, "gate.min_pcs", "twice")
    assert f"line {lines[0]}" in outcome.text and f"line {lines[1]}" in outcome.text


def test_a_400_digit_integer_names_its_field(workspace, refused):
    workspace.write_config(**{"deployment.inferences_per_day": int("9" * 400)})
    outcome = refused(lambda: _gate(workspace), 2, "deployment.inferences_per_day")
    assert "9" * 200 not in outcome.text


def test_a_5000_digit_integer_names_its_field(workspace, refused):
    _set_raw(workspace, "")
    text = workspace.config.read_text().replace(
        "country: KE", "country: KE\n  deployments: " + "7" * 5000
    )
    workspace.config.write_text(text, encoding="utf-8")
    outcome = refused(lambda: _gate(workspace), 2, "deployment.deployments")
    assert "7" * 200 not in outcome.text


def test_a_value_nested_50000_lists_deep_is_a_config_error(workspace, refused):
    deep = "[" * 50_000 + "1" + "]" * 50_000
    text = workspace.config.read_text().replace(
        "country: KE", f"country: KE\n  inferences_per_day: {deep}"
    )
    workspace.config.write_text(text, encoding="utf-8")
    outcome = refused(lambda: _gate(workspace), 2, ".quantzero.yml", "nested")
    assert len(outcome.text) < 2_000


def test_a_yaml_alias_bomb_is_refused_in_one_short_message(workspace, refused):
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdef", "bcdefg", strict=True):
        bomb.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = workspace.config.read_text().replace(
        "country: KE", "country: KE\n  inferences_per_day: {" + ", ".join(bomb) + "}"
    )
    workspace.config.write_text(text, encoding="utf-8")
    outcome = refused(lambda: _gate(workspace), 2, ".quantzero.yml")
    assert len(outcome.text) < 2_000, len(outcome.text)


def test_an_alias_bomb_one_level_short_of_the_node_cap_is_quoted_briefly(workspace, refused):
    bomb = "{a: &a [x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]}"
    text = workspace.config.read_text().replace(
        "country: KE", f"country: KE\n  deployments: {bomb}"
    )
    workspace.config.write_text(text, encoding="utf-8")
    outcome = refused(lambda: _gate(workspace), 2, "deployment.deployments")
    assert len(outcome.text) < 2_000, len(outcome.text)


def test_verify_of_json_nested_200000_deep_is_a_usage_error(workspace, refused):
    (workspace.root / "deep.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    outcome = refused(lambda: cli(workspace, "verify", "deep.json"), 2, "deep.json", "nested")
    assert len(outcome.text) < 2_000


def test_verify_of_json_with_a_5000_digit_number_is_a_usage_error(workspace, refused):
    (workspace.root / "long.json").write_text('{"schema": ' + "1" * 5000 + "}", encoding="utf-8")
    refused(lambda: cli(workspace, "verify", "long.json"), 2, "long.json")


def test_a_pull_request_event_nested_deep_is_an_input_error(workspace, refused):
    from .conftest import action

    event = workspace.root.parent / "event.json"
    event.write_text('{"pull_request": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    refused(
        lambda: action(
            workspace,
            {},
            extra_env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)},
        )[0],
        2,
        "GITHUB_EVENT_PATH",
        "nested",
    )


def test_a_duplicate_key_in_the_fleet_file_is_a_config_error(workspace, refused):
    fleet = workspace.root / "quantzero-fleet.yml"
    fleet.write_text(
        "members:\n  - config: .quantzero.yml\nthresholds:\n  min_total_reduction_pct: 9\n  min_total_reduction_pct: 1\n",
        encoding="utf-8",
    )
    refused(
        lambda: cli(workspace, "fleet", "list"),
        2,
        "min_total_reduction_pct",
        "twice",
        "line 4",
        "line 5",
    )


def test_a_yaml_tag_that_would_run_code_is_refused_and_runs_nothing(workspace, refused, tmp_path):
    marker = tmp_path / "ran"
    workspace.config.write_text(
        f'version: 1\nmodel: !!python/object/apply:os.system ["touch {marker}"]\n',
        encoding="utf-8",
    )
    refused(lambda: _gate(workspace), 2, "not valid YAML", "python/object")
    assert not marker.exists()
