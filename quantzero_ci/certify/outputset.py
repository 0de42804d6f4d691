"""The gate's outputs as one set, written atomically and never through a symbolic link.

Every output is written into a staging folder beside the output directory (same file system);
`OutputSet.commit` moves the complete set into place with `os.replace`, which replaces a name and
never follows a link. A manifest (`.quantzero-outputs.json`, names and SHA-256) records what the
gate wrote, so a later run can tell its own previous output from a user's files (a folder from
before manifests counts when its certificate.json vouches for the model beside it): an output
directory that holds anything else is refused. `OutputSet.abandon` (a failed run) removes the
staging folder and the previous run's outputs, so nothing left there looks like a current result.
A lock file beside the folder is held for the run: a second run on the same folder is refused
("another run is writing here") and can remove nothing of the first one's.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from quantzero_ci.certify.report import SCHEMA as CERTIFICATE_SCHEMA
from quantzero_ci.errors import ConfigError, OutputError
from quantzero_ci.safeload import load_json
from quantzero_ci.stats import file_sha256

MANIFEST = ".quantzero-outputs.json"
MANIFEST_SCHEMA = "quantzero-ci/outputs/v1"
FIELD = "output_dir"
LEGACY_NAMES = (
    "certificate.json",
    "certificate.pdf",
    "comment.md",
    "model.compressed.pt",
    "model.compressed.pte",
    "pull-request.json",
)


@dataclass
class OutputSet:
    """A staging folder for `names`, and the output directory they move into."""

    target: Path
    staging: Path
    names: tuple[str, ...]
    previous: dict[str, str]
    committed: bool = False
    lock: _Lock | None = None

    def staged(self, name: str) -> Path:
        """Where to write output `name` during the run."""
        if name not in self.names:
            raise ValueError(f"{name} is not one of the gate's outputs")
        return self.staging / name

    def final(self, name: str) -> Path:
        """Where output `name` lies after `commit`."""
        return self.target / name

    def commit(self) -> None:
        """Move the complete set into place (all outputs must have been written)."""
        missing = [name for name in self.names if not self.staged(name).is_file()]
        if missing:
            raise RuntimeError(f"outputs not written before commit: {missing}")
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "files": {name: file_sha256(self.staged(name)) for name in self.names},
        }
        (self.staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        try:
            if not self.target.exists():
                os.rename(self.staging, self.target)
            else:
                _remove(self.target / MANIFEST)
                for name in self.names:
                    os.replace(self.staged(name), self.final(name))
                for name in set(self.previous) - set(self.names):
                    _remove(self.final(name))
                os.replace(self.staging / MANIFEST, self.target / MANIFEST)
                shutil.rmtree(self.staging, ignore_errors=True)
        except OSError as error:
            raise _unwritable(self.target, error) from None
        self.committed = True
        self._unlock()

    def abandon(self) -> str:
        """Remove the staging folder and the previous run's outputs; say what is left."""
        shutil.rmtree(self.staging, ignore_errors=True)
        removed = []
        for name in (*self.previous, MANIFEST):
            try:
                _remove(self.final(name))
                removed.append(name)
            except OSError:
                continue
        self._unlock()
        note = f"No outputs were written to {self.target}"
        if [name for name in removed if name != MANIFEST]:
            note += "; the previous run's outputs there were removed, so none looks current"
        return note + "."

    def write_failure(self, error: BaseException) -> OutputError | None:
        """An OutputError for a write that failed for lack of room (a full disk, a quota, a file
        size limit), whether it surfaced as OSError or as torch's RuntimeError; else None."""
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            reason = error.strerror or errno.errorcode.get(error.errno or 0, "")
        elif isinstance(error, RuntimeError) and _is_write_failure(str(error)):
            reason = str(error).strip().splitlines()[0][:200]
        else:
            return None
        return OutputError(
            f"{FIELD}: writing the outputs to {self.target} failed ({reason}): the disk may be "
            "full. Free some space (or choose another output_dir) and run again."
        )

    def _unlock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def open_output_set(
    output_dir: Path,
    names: Iterable[str],
    *,
    inputs: Iterable[Path] = (),
    workspace: Path | None = None,
    nested_sets: bool = False,
    link_root: Path | None = None,
) -> OutputSet:
    """Check `output_dir` and create the staging folder beside it (before any work is done).

    Links are refused from `workspace` (else `link_root`, the config's root) down, wherever the
    process stands. With `nested_sets` (a fleet's folder), real subfolders that are themselves output sets (the
    members' folders, each with its own manifest) may lie in `output_dir` and are left alone.
    """
    names = tuple(names)
    target = Path(os.path.abspath(output_dir))
    if workspace is not None:
        _inside_workspace(target, Path(os.path.abspath(workspace)))
    _no_links(target, Path(os.path.abspath(workspace or link_root or Path.cwd())))
    _previous_outputs(target, nested_sets)  # refuses a user's file or a link there, first
    _no_input_clash(target, names, inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(target, error) from None
    lock = _Lock.acquire(target)
    try:
        previous = _previous_outputs(target, nested_sets)  # again, now that no run can commit
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        staging.chmod(0o755)  # ordinary permissions: later steps (upload-artifact) read it
    except OSError as error:
        lock.release()
        raise _unwritable(target, error) from None
    except BaseException:
        lock.release()
        raise
    return OutputSet(target=target, staging=staging, names=names, previous=previous, lock=lock)


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _is_write_failure(text: str) -> bool:
    lowered = text.lower()
    return any(
        mark in lowered
        for mark in ("no space left", "pytorchstreamwriter", "file write failed", "file too large")
    )


@dataclass
class _Lock:
    """An exclusive lock on ``.{name}.lock`` beside the output folder, held for the run: a second
    run on the same folder is refused instead of deleting what the first one writes. The kernel
    drops the lock when a process dies, so a killed run never blocks the next."""

    path: Path
    fd: int

    @classmethod
    def acquire(cls, target: Path) -> _Lock:
        path = target.parent / f".{target.name}.lock"
        for _ in range(3):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as error:
                raise _unwritable(target, error) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputError(
                    f"{FIELD}: another run is writing to {target} (it holds {path.name}); "
                    "wait for it to finish, or give this run its own output_dir."
                ) from None
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return cls(path, fd)
            os.close(fd)  # the holder removed the file as we opened it: try the new one
        raise OutputError(f"{FIELD}: could not lock {target}; run again.")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)


def _inside_workspace(target: Path, workspace: Path) -> None:
    real_workspace = workspace.resolve()
    for candidate, root in ((target, workspace), (target.resolve(), real_workspace)):
        if candidate == root or root not in candidate.parents:
            raise ConfigError(
                FIELD,
                f"{target} is not a folder inside the repository ({workspace})",
                "Give a folder inside the repository, relative to its root, e.g. quantzero-out.",
            )


def _no_links(target: Path, anchor: Path) -> None:
    """Refuse a symbolic link anywhere from `anchor` down to `target` (or at `target` itself)."""
    chain = [target]
    if anchor in target.parents:
        chain = [anchor / Path(*target.relative_to(anchor).parts[: i + 1])
                 for i in range(len(target.relative_to(anchor).parts))]  # fmt: skip
    for path in chain:
        if path.is_symlink():
            raise ConfigError(
                FIELD,
                f"{path} is a symbolic link; the gate never writes through links",
                "Give a real folder, or delete the link.",
            )


def _no_input_clash(target: Path, names: tuple[str, ...], inputs: Iterable[Path]) -> None:
    given = set()
    for path in inputs:
        given |= {Path(os.path.abspath(path)), path.resolve()}
    for name in names:
        out = target / name
        if out in given or out.resolve() in given:
            raise ConfigError(
                FIELD,
                f"would overwrite your input file {out}",
                "Choose an output_dir that holds none of the model, data or config files.",
            )


def _previous_outputs(target: Path, nested_sets: bool = False) -> dict[str, str]:
    """The gate's own previous outputs in `target` (name → sha256); refuse anything else."""
    if not target.exists() and not target.is_symlink():
        return {}
    if not target.is_dir():
        raise ConfigError(
            FIELD, f"{target} exists and is not a folder", "Choose another output_dir."
        )
    entries = sorted(os.listdir(target))
    if not entries:
        return {}
    recorded = _read_manifest(target / MANIFEST) or _legacy_outputs(target, entries)
    foreign = []
    for name in entries:
        path = target / name
        if path.is_symlink():
            raise ConfigError(
                FIELD,
                f"{path} is a symbolic link; the gate never writes through links",
                f"Delete the link (the gate writes its own {name}), or choose another output_dir.",
            )
        if name == MANIFEST or (nested_sets and _is_output_set(path)):
            continue
        expected = recorded.get(name)
        if expected is None or not path.is_file() or file_sha256(path) != expected:
            foreign.append(name)
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise ConfigError(
            FIELD,
            f"{target} holds files the gate did not write ({shown})",
            "Give a new or empty folder such as quantzero-out (the gate replaces only its own "
            "previous output there), or move those files away.",
        )
    return {name: recorded[name] for name in entries if name in recorded}


def _is_output_set(path: Path) -> bool:
    """A real folder holding an output set's manifest (never a link)."""
    return path.is_dir() and not path.is_symlink() and (path / MANIFEST).is_file()


def _read_manifest(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = load_json(path.read_bytes())
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, Mapping) else None
    if data.get("schema") != MANIFEST_SCHEMA or not isinstance(files, Mapping):
        return {}
    return {str(k): str(v) for k, v in files.items() if "/" not in str(k)}


def _legacy_outputs(target: Path, entries: list[str]) -> dict[str, str]:
    """An output folder from before manifests: only the gate's names, and a certificate.json
    whose recorded compressed-model hash matches the model beside it."""
    if not set(entries) <= set(LEGACY_NAMES) or "certificate.json" not in entries:
        return {}
    if any((target / name).is_symlink() or not (target / name).is_file() for name in entries):
        return {}
    try:
        report = load_json((target / "certificate.json").read_bytes())
        recorded_model = report["compressed_model"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if report.get("schema") != CERTIFICATE_SCHEMA:
        return {}
    for model in (target / "model.compressed.pt", target / "model.compressed.pte"):
        if model.is_file() and file_sha256(model) != recorded_model:
            return {}
    return {name: file_sha256(target / name) for name in entries}


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()


def _unwritable(target: Path, error: OSError) -> OutputError:
    reason = error.strerror or type(error).__name__
    return OutputError(
        f"{FIELD}: cannot write the outputs to {target} ({reason}). Give a writable folder "
        "inside the repository, e.g. --output-dir quantzero-out."
    )
