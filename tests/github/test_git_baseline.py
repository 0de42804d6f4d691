"""Git plumbing and base-branch resolution on real temporary repositories."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from quantzero_ci.config import Config, load_config
from quantzero_ci.github import git as qgit
from quantzero_ci.github.baseline import from_certificate, from_git, resolve_baseline
from quantzero_ci.github.event import parse_event
from quantzero_ci.github.inputs import BaselineSpec

from .gitrepo import commit, git, init

CONFIG = "version: 1\nmodel: {path: models/net.pt, factory: 'net:build', input_shape: [1, 4]}\n"


class Recorder:
    """A measure function that records what it was given (the git plumbing is under test)."""

    def __init__(self, value: float = 2.0) -> None:
        self.value = value
        self.calls: list[tuple[bytes, str | None]] = []

    def __call__(self, config: Config, model_file: Path) -> float:
        factory = model_file.parent / "net.py"
        source = factory.read_text(encoding="utf-8") if factory.is_file() else None
        self.calls.append((model_file.read_bytes(), source))
        return self.value


def pr_event(base_sha: str):
    return parse_event(
        "pull_request",
        {
            "pull_request": {
                "number": 3,
                "base": {"sha": base_sha, "ref": "main"},
                "head": {"sha": "0" * 40},
            }
        },
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """main: weights v1 + factory v1; feature branch: weights v2 + factory v2."""
    path = init(tmp_path / "repo")
    base = commit(
        path,
        {
            ".quantzero.yml": CONFIG,
            "models/net.pt": b"weights-v1",
            "models/net.py": "# factory v1\n",
        },
        "base",
    )
    git(path, "checkout", "-q", "-b", "feature")
    head = commit(path, {"models/net.pt": b"weights-v2", "models/net.py": "# factory v2\n"}, "pr")
    return path, base, head


def config_of(repo: Path) -> Config:
    return load_config(repo / ".quantzero.yml", base_dir=repo)


def test_git_plumbing(repo: tuple[Path, str, str]) -> None:
    path, base, head = repo
    assert qgit.toplevel(path / "models") == path.resolve()
    assert qgit.merge_base(path, base) == base
    assert qgit.file_at(path, base, "models/net.pt") == b"weights-v1"
    assert qgit.file_at(path, head, "models/net.pt") == b"weights-v2"
    assert qgit.file_at(path, base, "models/absent.pt") is None
    assert qgit.is_shallow(path) is False


def test_safe_directory_is_passed_on_every_call(repo: tuple[Path, str, str]) -> None:
    path, base, _ = repo
    if os.geteuid() == 0:  # make the checkout "dubious": owned by another user, as in a container
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), 4321, 4321)
        os.lchown(path, 4321, 4321)
        plain = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        assert plain.returncode != 0 and "dubious ownership" in plain.stderr
    assert qgit.merge_base(path, base) == base


def test_base_version_of_model_and_factory_is_measured(repo: tuple[Path, str, str]) -> None:
    path, base, _ = repo
    measure = Recorder(2.5)
    result = from_git(config_of(path), path, base, measure=measure)
    assert measure.calls == [(b"weights-v1", "# factory v1\n")]
    assert result.section is not None
    assert result.section["status"] == "found"
    assert result.section["ref"] == base
    assert result.section["g_per_1000_inferences"] == 2.5
    assert result.warnings == ()


def test_model_without_base_version_is_new(tmp_path: Path) -> None:
    path = init(tmp_path / "repo")
    base = commit(path, {"README.md": "hello\n"}, "base")
    git(path, "checkout", "-q", "-b", "feature")
    commit(
        path, {".quantzero.yml": CONFIG, "models/net.pt": b"w", "models/net.py": "#\n"}, "add model"
    )
    measure = Recorder()
    result = from_git(config_of(path), path, base, measure=measure)
    assert result.section is not None and result.section["status"] == "new"
    assert "does not exist at the base branch" in result.section["note"]
    assert measure.calls == []


def test_shallow_checkout_explains_fetch_depth(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    path, base, _ = repo
    shallow = tmp_path / "shallow"
    subprocess.run(
        [
            "git",
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            "feature",
            f"file://{path}",
            str(shallow),
        ],
        check=True,
        capture_output=True,
    )
    config = config_of(shallow)
    event = pr_event(base)
    result = resolve_baseline(BaselineSpec("auto"), config, event, shallow, measure=Recorder())
    assert result.section is not None and result.section["status"] == "unavailable"
    assert "fetch-depth: 0" in result.warnings[0]
    with pytest.raises(qgit.GitError, match="fetch-depth: 0"):
        resolve_baseline(BaselineSpec("git"), config, event, shallow, measure=Recorder())


def test_no_pull_request_means_no_comparison(repo: tuple[Path, str, str]) -> None:
    path, _, _ = repo
    push = parse_event("push", {})
    result = resolve_baseline(BaselineSpec("auto"), config_of(path), push, path, measure=Recorder())
    assert result.section is None
    with pytest.raises(Exception, match="needs a pull_request event"):
        resolve_baseline(BaselineSpec("git"), config_of(path), push, path, measure=Recorder())


def test_base_certificate_supplies_the_figure(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    path, _, _ = repo
    cert = tmp_path / "base.json"
    cert.write_text(
        json.dumps(
            {
                "schema": "quantzero-ci/certificate/v1",
                "certificate_id": "abc123",
                "model": {"label": "models/net.pt"},
                "carbon": {"before": {"g_per_1000_inferences": 0.75}},
                "deployment": {"hardware": {"key": "datacenter-gpu"}, "grid": {"iso2": "FR"}},
            }
        ),
        encoding="utf-8",
    )
    result = from_certificate(cert, config_of(path))
    assert result.section is not None
    assert result.section["g_per_1000_inferences"] == 0.75
    assert result.section["ref"] == "abc123"
    assert "mixes settings" in result.warnings[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(Exception, match="not a QuantZero certificate"):
        from_certificate(bad, config_of(path))
