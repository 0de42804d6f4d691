"""Output sets that a concurrent, cancelled or starved run cannot damage."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import quantzero_ci
from quantzero_ci.certify.outputset import open_output_set

from .conftest import cli

OUT = "quantzero-out"
SIGTERM_EXIT = 143  # 128 + SIGTERM, as shells report a job cancelled by SIGTERM


def _gate(workspace):
    return cli(workspace, "gate", "--config", ".quantzero.yml")


def _leftovers(workspace) -> list[str]:
    return sorted(p.name for p in workspace.root.iterdir() if ".staging-" in p.name)


@pytest.mark.slow
def test_a_second_run_on_a_folder_being_written_is_refused_and_removes_nothing(workspace):
    assert _gate(workspace).exit_code == 0
    out = workspace.root / OUT
    committed = {p.name: p.read_bytes() for p in out.iterdir()}
    other = open_output_set(out, ("certificate.json",))  # another gate, mid-run
    try:
        outcome = _gate(workspace)
        assert outcome.exit_code == 2, outcome.text
        assert "another run is writing" in outcome.text and OUT in outcome.text
        assert "Traceback" not in outcome.text
        assert {p.name: p.read_bytes() for p in out.iterdir()} == committed
        assert other.staging.is_dir()
    finally:
        other.abandon()
    assert _gate(workspace).exit_code == 0  # the lock went with the run that held it


def _spawn(workspace, *, limit_bytes: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(quantzero_ci.__file__).parents[1])}

    def limits() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen(
        [sys.executable, "-m", "quantzero_ci.cli", "gate", "--config", ".quantzero.yml"],
        cwd=workspace.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limits,
    )


@pytest.mark.slow
def test_sigterm_mid_run_ends_with_a_message_and_no_staging(workspace):
    assert _gate(workspace).exit_code == 0
    before = workspace.snapshot()
    process = _spawn(workspace)
    assert process.stderr is not None
    seen = ""
    while "· profile" not in seen:
        line = process.stderr.readline()
        assert line, f"the gate ended before its profile stage: {seen}"
        seen += line
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    text = seen + stdout + stderr
    assert process.returncode == SIGTERM_EXIT, text
    assert "Traceback" not in text and "cancelled" in text
    assert "previous run's outputs there were removed" in text
    assert not (workspace.root / OUT / "certificate.json").exists()
    assert _leftovers(workspace) == []
    assert workspace.snapshot() == before
    time.sleep(0)  # nothing else to wait for: the lock died with the process
    assert _gate(workspace).exit_code == 0


@pytest.mark.slow
def test_a_disk_that_fills_up_ends_with_a_message_and_no_staging(workspace):
    assert _gate(workspace).exit_code == 0
    before = workspace.snapshot()
    process = _spawn(workspace, limit_bytes=4096)
    stdout, stderr = process.communicate(timeout=300)
    text = stdout + stderr
    assert process.returncode == 2, text
    assert "Traceback" not in text and "output_dir" in text and "disk may be full" in text
    assert "previous run's outputs there were removed" in text
    assert _leftovers(workspace) == []
    assert workspace.snapshot() == before
