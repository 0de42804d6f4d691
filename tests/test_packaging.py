"""The wheel builds without setuptools' "package would be ignored" warning and ships its data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_builds_without_ignored_package_warning_and_ships_the_grid_data(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    # "templates" inside the package is a developer's local link, never part of the source tree
    shutil.copytree(
        ROOT / "quantzero_ci",
        source / "quantzero_ci",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "templates"),
    )
    shutil.copytree(ROOT / "templates", source / "templates")
    out = tmp_path / "wheel"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "absent from the `packages` configuration" not in log, log[-4000:]
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "quantzero_ci/carbon/data/grid_intensity.csv" in names
    assert "quantzero_ci/carbon/data/README.md" in names
    assert "quantzero_ci/templates/comment.md.j2" in names
