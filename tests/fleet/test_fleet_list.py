"""`fleet list`: the workspace search, the fleet file's labels, and the matrix JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from quantzero_ci.fleet.discover import find_configs, load_fleet
from tests.support import quantzero


def _config(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / ".quantzero.yml").write_text("version: 1\n")
    return path / ".quantzero.yml"


def test_search_finds_configs_and_skips_ignored_folders(tmp_path):
    ws = tmp_path / "ws"
    _config(ws)
    _config(ws / "models" / "a")
    _config(ws / "b")
    for ignored in (".git/x", ".venv", "node_modules/pkg", "quantzero-out", "quantzero-fleet/a"):
        _config(ws / ignored)
    venv = ws / "env2"
    _config(venv)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    outputs = ws / "my-out"
    _config(outputs)
    (outputs / ".quantzero-outputs.json").write_text("{}")
    outside = tmp_path / "outside"
    _config(outside)
    os.symlink(outside, ws / "linked")
    found = [p.relative_to(ws).as_posix() for p in find_configs(ws)]
    assert sorted(found) == [".quantzero.yml", "b/.quantzero.yml", "models/a/.quantzero.yml"]
    fleet = load_fleet(ws)
    assert [m.label for m in fleet.members] == ["b", "models/a", "root"]


def test_json_is_a_matrix_list(tmp_path):
    ws = tmp_path / "ws"
    _config(ws / "models" / "a")
    _config(ws / "models" / "b")
    done = quantzero("fleet", "list", "--json", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"label": "models/a", "config": "models/a/.quantzero.yml"},
        {"label": "models/b", "config": "models/b/.quantzero.yml"},
    ]


def test_fleet_file_labels_and_thresholds(tmp_path):
    ws = tmp_path / "ws"
    _config(ws / "models" / "a")
    _config(ws / "models" / "b")
    _config(ws / "models" / "not-listed")
    (ws / "quantzero-fleet.yml").write_text(
        "version: 1\nmembers:\n  - config: models/b/.quantzero.yml\n    label: beta\n"
        "  - config: models/a/.quantzero.yml\nthresholds:\n  min_total_reduction_pct: 10\n"
        "output_dir: fleet-out\n"
    )
    fleet = load_fleet(ws)
    assert [(m.label, m.config.parent.name) for m in fleet.members] == [
        ("beta", "b"),
        ("models/a", "a"),
    ]
    assert fleet.thresholds.min_total_reduction_pct == 10.0
    assert fleet.output_dir == ws.resolve() / "fleet-out"
    done = quantzero("fleet", "list", "--json", cwd=ws)
    assert [row["label"] for row in json.loads(done.stdout)] == ["beta", "models/a"]


def test_nothing_found_is_a_usage_error(tmp_path):
    done = quantzero("fleet", "list", cwd=tmp_path)
    assert done.returncode == 2 and "no .quantzero.yml was found" in done.stderr
