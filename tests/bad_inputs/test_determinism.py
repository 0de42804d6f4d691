"""Determinism: the same inputs and versions give a byte-identical compressed model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gate_in_fresh_process(workspace, out: str, hash_seed: str) -> Path:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "quantzero_ci.cli",
            "gate",
            "--config",
            ".quantzero.yml",
            "--output-dir",
            out,
        ],
        cwd=workspace.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return workspace.root / out


@pytest.mark.slow
def test_two_runs_with_different_hash_seeds_give_the_same_compressed_model(workspace):
    before = workspace.snapshot()
    first = _gate_in_fresh_process(workspace, "out-a", "1")
    second = _gate_in_fresh_process(workspace, "out-b", "2")
    digests = [
        hashlib.sha256((out / "model.compressed.pte").read_bytes()).hexdigest()
        for out in (first, second)
    ]
    assert digests[0] == digests[1]
    recorded = json.loads((first / "certificate.json").read_text())["compressed_model"]["sha256"]
    assert recorded == digests[0]
    assert {k: v for k, v in workspace.snapshot().items() if not k.startswith("out-")} == before
