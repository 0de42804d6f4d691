"""Read-only git plumbing on the runner's checkout (no second clone, no global config changes).

Every call passes ``-c safe.directory=<repo>``: inside a Docker action the mounted checkout is
owned by another user and git refuses it as "dubious ownership" otherwise.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from quantzero_ci.errors import InputError

FETCH_DEPTH_FIX = (
    "Check out the full history so the base branch's version can be read: in the workflow, use "
    "actions/checkout with `fetch-depth: 0`."
)
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


class GitError(InputError):
    """git could not answer; the message says how to fix the checkout."""


def run_git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run ``git -c safe.directory=<repo> -C <repo> <args>`` and capture its output as bytes."""
    safe = str(repo.resolve())
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-c", f"safe.directory={safe}", "-C", safe, *args],
            capture_output=True,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed; the base-branch comparison needs it.") from None
    if check and done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed: {stderr[-1] if stderr else done.returncode}")
    return done


def git_text(repo: Path, *args: str) -> str:
    """stdout of a git command, stripped."""
    return run_git(repo, *args).stdout.decode("utf-8", "replace").strip()


def toplevel(path: Path) -> Path:
    """The root of the repository containing ``path``."""
    done = run_git(path, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise GitError(
            f"{path} is not a git checkout. Run actions/checkout (with `fetch-depth: 0`) before "
            "this step, or set `baseline: none`."
        )
    return Path(done.stdout.decode("utf-8").strip())


def has_commit(repo: Path, rev: str) -> bool:
    """True when ``rev`` names a commit present in the local object store."""
    return run_git(repo, "cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode == 0


def is_shallow(repo: Path) -> bool:
    """True for a shallow clone (actions/checkout's default ``fetch-depth: 1``)."""
    return git_text(repo, "rev-parse", "--is-shallow-repository") == "true"


def merge_base(repo: Path, base: str, head: str = "HEAD") -> str:
    """The merge-base of ``head`` and ``base``; a clear error when history is missing."""
    shallow = is_shallow(repo)
    if not has_commit(repo, base):
        raise GitError(
            f"The base commit {base[:12]} is not in the checkout"
            + (" (it is a shallow clone)" if shallow else "")
            + f". {FETCH_DEPTH_FIX}"
        )
    done = run_git(repo, "merge-base", head, base, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise GitError(
            f"No common history between {head} and {base[:12]}"
            + (" (the checkout is shallow)" if shallow else "")
            + f". {FETCH_DEPTH_FIX}"
        )
    return done.stdout.decode("utf-8").strip()


def file_at(repo: Path, rev: str, relpath: str) -> bytes | None:
    """The bytes of ``relpath`` (relative to the repository root) at ``rev``; None if absent."""
    spec = f"{rev}:{relpath}"
    if run_git(repo, "cat-file", "-e", spec, check=False).returncode != 0:
        return None
    return run_git(repo, "cat-file", "blob", spec).stdout


def is_lfs_pointer(content: bytes) -> bool:
    """True when the blob is a Git LFS pointer rather than the file itself."""
    return content.startswith(LFS_POINTER)


def relative_to_repo(repo: Path, path: Path) -> str | None:
    """``path`` as a repository-relative POSIX path, or None when it lies outside the repository."""
    try:
        return path.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return None
