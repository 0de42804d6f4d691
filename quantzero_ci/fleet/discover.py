"""Which models make the fleet: every `.quantzero.yml` under the workspace, or a fleet file.

``quantzero-fleet.yml`` (at the workspace root, or named explicitly)::

    version: 1
    members:
      - config: models/a/.quantzero.yml
        label: classifier        # optional; default: the config's folder
    output_dir: quantzero-fleet  # optional
    thresholds:                  # optional, fleet-level
      min_total_reduction_pct: 10
      max_total_increase_pct: 5

Paths in the file resolve against its folder and must stay inside the workspace. Without a fleet
file the workspace is walked (no symbolic links followed) for files named `.quantzero.yml`,
skipping hidden folders, virtual environments, ``node_modules`` and output folders. Torch-free.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from quantzero_ci.config import DEFAULT_CONFIG_NAME
from quantzero_ci.errors import ConfigError
from quantzero_ci.fleet import DEFAULT_OUTPUT_DIR, FLEET_FILE
from quantzero_ci.safeload import DuplicateKeyError, load_yaml

SKIPPED_DIRS = frozenset(
    {
        "node_modules",
        "__pycache__",
        "venv",
        "env",
        "site-packages",
        "quantzero-out",
        DEFAULT_OUTPUT_DIR,
    }
)
OUTPUT_MANIFEST = ".quantzero-outputs.json"
ROOT_LABEL = "root"
_FLEET_KEYS = {"version", "members", "output_dir", "thresholds"}
_MEMBER_KEYS = {"config", "label"}
_THRESHOLD_KEYS = {"min_total_reduction_pct", "max_total_increase_pct"}
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FleetMember:
    """One model of the fleet: its label and its config file."""

    label: str
    config: Path

    @property
    def folder(self) -> str:
        """The member's output folder name inside the fleet's output directory."""
        return label_folder(self.label)

    def to_dict(self, workspace: Path) -> dict[str, str]:
        return {"label": self.label, "config": relative(self.config, workspace)}


@dataclass(frozen=True)
class FleetThresholds:
    """Fleet-level thresholds (None: not checked)."""

    min_total_reduction_pct: float | None = None
    max_total_increase_pct: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "min_total_reduction_pct": self.min_total_reduction_pct,
            "max_total_increase_pct": self.max_total_increase_pct,
        }


@dataclass(frozen=True)
class Fleet:
    """The members (sorted by label), the fleet thresholds and where the fleet outputs go."""

    members: tuple[FleetMember, ...]
    thresholds: FleetThresholds
    output_dir: Path
    source: str  # the fleet file, or "workspace search" / "command line"

    def matrix(self, workspace: Path) -> list[dict[str, str]]:
        """One ``{"label", "config"}`` per member: a workflow's ``strategy.matrix.include``."""
        return [member.to_dict(workspace) for member in self.members]


def label_folder(label: str) -> str:
    """A folder name for a label: runs of anything but letters, digits, ``._-`` become ``-``."""
    slug = _SLUG.sub("-", label).strip("-.") or "member"
    return slug


def relative(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace (POSIX), else absolute."""
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def default_label(config: Path, workspace: Path) -> str:
    """The config's folder relative to the workspace (``root`` for the workspace itself)."""
    folder = relative(config.parent, workspace)
    return ROOT_LABEL if folder in (".", "") else folder


def load_fleet(workspace: Path, paths: Sequence[Path] = ()) -> Fleet:
    """The fleet of ``paths`` (configs, or one fleet file), else the workspace's fleet file, else
    every `.quantzero.yml` found under the workspace."""
    workspace = workspace.resolve()
    if len(paths) == 1 and _is_fleet_file(paths[0]):
        return read_fleet_file(_absolute(paths[0], workspace), workspace)
    if paths:
        configs = []
        for path in paths:
            if _is_fleet_file(path):
                raise ConfigError(
                    str(path),
                    "is a fleet file given together with other files",
                    "Pass either one quantzero-fleet.yml or any number of .quantzero.yml files.",
                )
            full = _absolute(path, workspace)
            if not full.is_file():
                raise ConfigError(
                    "CONFIG",
                    f"{path} does not exist",
                    "Pass the paths of members' .quantzero.yml files (see `quantzero fleet list`).",
                )
            configs.append(full)
        members = _members_from_configs(configs, workspace)
        return Fleet(members, FleetThresholds(), workspace / DEFAULT_OUTPUT_DIR, "command line")
    fleet_file = workspace / FLEET_FILE
    if fleet_file.is_file():
        return read_fleet_file(fleet_file, workspace)
    members = _members_from_configs(find_configs(workspace), workspace)
    if not members:
        raise ConfigError(
            "fleet",
            f"no {DEFAULT_CONFIG_NAME} was found under {workspace}",
            f"Add a {DEFAULT_CONFIG_NAME} beside each model, or list them in {FLEET_FILE}.",
        )
    return Fleet(members, FleetThresholds(), workspace / DEFAULT_OUTPUT_DIR, "workspace search")


def find_configs(workspace: Path) -> list[Path]:
    """Every `.quantzero.yml` under ``workspace`` (no links followed, ignored folders pruned)."""
    workspace = workspace.resolve()
    found = []
    for folder, dirs, files in os.walk(workspace, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _skipped(here / d))
        if DEFAULT_CONFIG_NAME in files:
            path = here / DEFAULT_CONFIG_NAME
            if path.is_symlink() and workspace not in path.resolve().parents:
                continue  # a link out of the workspace is never a member
            found.append(path)
    return found


def _skipped(folder: Path) -> bool:
    name = folder.name
    return (
        name.startswith(".")
        or name in SKIPPED_DIRS
        or folder.is_symlink()
        or (folder / "pyvenv.cfg").exists()
        or (folder / OUTPUT_MANIFEST).exists()
    )


def _members_from_configs(configs: Iterable[Path], workspace: Path) -> tuple[FleetMember, ...]:
    members = [FleetMember(default_label(c, workspace), c) for c in configs]
    _unique(members, lambda i: f"CONFIG {relative(members[i].config, workspace)}")
    return tuple(sorted(members, key=lambda m: m.label))


def _is_fleet_file(path: Path) -> bool:
    return path.name.endswith(FLEET_FILE) or path.name.endswith("quantzero-fleet.yaml")


def _absolute(path: Path, workspace: Path) -> Path:
    return path if path.is_absolute() else workspace / path


def read_fleet_file(path: Path, workspace: Path) -> Fleet:
    """Read and validate a `quantzero-fleet.yml`; every problem names the field and the file."""
    if not path.is_file():
        raise ConfigError(
            "fleet file", f"{path} does not exist", f"Pass the path of your {FLEET_FILE}."
        )
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as error:
        raise ConfigError(
            f"{error.key} in {path}",
            "is given twice"
            + (f" (line {error.lines[0]} and line {error.lines[1]})" if error.lines else ""),
            "Keep one of them: a YAML mapping takes each key once.",
        ) from None
    except (yaml.YAMLError, ValueError) as error:
        raise ConfigError(
            str(path), f"is not valid YAML ({error})", "Fix the YAML syntax."
        ) from None
    where = f" in {path}"
    if not isinstance(raw, Mapping):
        raise ConfigError(str(path), "must be a YAML mapping", "Start from the README's example.")
    unknown = sorted(set(raw) - _FLEET_KEYS, key=str)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}{where}",
            "is not a known setting",
            f"Use only: {', '.join(sorted(_FLEET_KEYS))}.",
        )
    if raw.get("version", 1) != 1:
        raise ConfigError(
            f"version{where}", f"{raw['version']!r} is not supported", "Set version: 1."
        )
    entries = raw.get("members")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"members{where}",
            "must be a non-empty list",
            "List each model as `- config: path/to/.quantzero.yml` (optionally with `label:`).",
        )
    base = path.parent
    members = [_member(entry, i, base, workspace, where) for i, entry in enumerate(entries)]
    _unique(members, lambda i: f"members[{i}].label{where}")
    output = raw.get("output_dir") or DEFAULT_OUTPUT_DIR
    if not isinstance(output, str):
        raise ConfigError(
            f"output_dir{where}", f"{output!r} is not a path", "e.g. output_dir: quantzero-fleet."
        )
    return Fleet(
        tuple(sorted(members, key=lambda m: m.label)),
        _thresholds(raw.get("thresholds"), where),
        base / output,
        str(path),
    )


def _member(entry: Any, i: int, base: Path, workspace: Path, where: str) -> FleetMember:
    field = f"members[{i}]"
    if isinstance(entry, str):
        entry = {"config": entry}
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"{field}{where}", "must be a mapping", "Write `- config: path/to/.quantzero.yml`."
        )
    unknown = sorted(set(entry) - _MEMBER_KEYS, key=str)
    if unknown:
        raise ConfigError(
            f"{field}.{unknown[0]}{where}", "is not a known setting", "Use only: config, label."
        )
    config = entry.get("config")
    if not isinstance(config, str) or not config.strip():
        raise ConfigError(
            f"{field}.config{where}", "is missing", "Give the path of the member's .quantzero.yml."
        )
    path = (base / config).resolve()
    if workspace not in path.parents:
        raise ConfigError(
            f"{field}.config{where}",
            f"{config} lies outside the repository ({workspace})",
            "Name a config inside the repository.",
        )
    if not path.is_file():
        raise ConfigError(
            f"{field}.config{where}",
            f"{config} does not exist",
            "Fix the path (relative to the fleet file).",
        )
    label = entry.get("label")
    if label is None:
        label = default_label(path, workspace)
    if not isinstance(label, str) or not label.strip() or "\n" in label:
        raise ConfigError(
            f"{field}.label{where}",
            f"{label!r} is not a one-line name",
            "Give a short name, e.g. label: classifier.",
        )
    return FleetMember(label.strip(), path)


def _unique(members: Sequence[FleetMember], field: Any) -> None:
    seen: dict[str, int] = {}
    folders: dict[str, int] = {}
    for i, member in enumerate(members):
        if member.label in seen:
            raise ConfigError(
                field(i),
                f"label {member.label!r} is used twice",
                "Give each member its own label (labels name the members on the certificate).",
            )
        if member.folder in folders:
            raise ConfigError(
                field(i),
                f"label {member.label!r} and {members[folders[member.folder]].label!r} share the "
                f"output folder {member.folder!r}",
                "Give labels that differ in their letters or digits.",
            )
        seen[member.label], folders[member.folder] = i, i


def _thresholds(raw: Any, where: str) -> FleetThresholds:
    if raw is None:
        return FleetThresholds()
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"thresholds{where}",
            "must be a mapping",
            "e.g. thresholds: {min_total_reduction_pct: 10}.",
        )
    unknown = sorted(set(raw) - _THRESHOLD_KEYS, key=str)
    if unknown:
        raise ConfigError(
            f"thresholds.{unknown[0]}{where}",
            "is not a known setting",
            f"Use only: {', '.join(sorted(_THRESHOLD_KEYS))}.",
        )
    values: dict[str, float | None] = {}
    for key in _THRESHOLD_KEYS:
        value = raw.get(key)
        if value is None:
            values[key] = None
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not -1e6 <= value <= 100
        ):
            raise ConfigError(
                f"thresholds.{key}{where}",
                f"{value!r} is not a percentage",
                "Give a number up to 100, e.g. 10.",
            )
        values[key] = float(value)
    return FleetThresholds(**values)
