"""What many test folders share: the tiny-workspace builder and the CLI subprocess helper.

- `write_workspace` writes a repository-like folder (factory source, weights, data, a
  `.quantzero.yml`); every test workspace — the bad-input CNN, the fleet members, the text model,
  the certificate tests' files — is written through it.
- `quantzero` runs the real `quantzero` command in a subprocess (a fresh interpreter, as a user
  runs it); in-process runs go through click's runner in `tests/bad_inputs/conftest.py`.

Import it as `from tests.support import ...` (the repository root is on sys.path under
`python -m pytest`, which `scripts/test.sh` uses).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits"
CONFIG_NAME = ".quantzero.yml"


def write_workspace(
    root: Path,
    files: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    *,
    config_name: str = CONFIG_NAME,
) -> Path:
    """Write ``files`` under ``root`` and, when given, ``config`` as YAML; returns ``root``.

    A ``str`` value is Python or text source (dedented), ``bytes`` are written as they are, and
    anything else (a tensor, a state_dict, a dict of tensors) is written with ``torch.save``.
    Parents are created; ``config`` keeps its key order.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, str):
            path.write_text(textwrap.dedent(value), encoding="utf-8")
        elif isinstance(value, bytes):
            path.write_bytes(value)
        else:
            import torch

            torch.save(value, path)
    if config is not None:
        write_config(root / config_name, config)
    return root


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    """``config`` as YAML at ``path`` (key order kept)."""
    import yaml

    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def quantzero(
    *args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The real CLI, ``python -m quantzero_ci.cli ARGS``, in a subprocess (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "quantzero_ci.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=600,
    )
