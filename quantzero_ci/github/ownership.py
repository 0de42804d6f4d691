"""Hand what the action wrote back to the workspace's owner.

A Docker action runs as root, so every file it creates in the mounted workspace is root's; on a
self-hosted runner the next ``actions/checkout`` (running as the runner user) then cannot delete
them (actions/runner#434, actions/checkout#211). After the run, each folder and file the action
wrote is given the uid/gid of ``GITHUB_WORKSPACE`` and the permission bits its owner needs to
read and delete it. Links are never followed (neither a linked entry nor a path through a linked
folder); nothing whose real path is outside the workspace is touched.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DIR_BITS = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH  # 0o755
FILE_BITS = stat.S_IRUSR | stat.S_IWUSR  # at least rw for the owner; read bits are kept


@dataclass(frozen=True)
class Owner:
    """The uid/gid that should own what the action writes."""

    uid: int
    gid: int


def workspace_owner(workspace: Path) -> Owner:
    """The owner of the workspace folder itself (the runner user on a GitHub runner)."""
    info = os.stat(workspace)
    return Owner(info.st_uid, info.st_gid)


def hand_over(written: Iterable[Path], workspace: Path, owner: Owner | None = None) -> int:
    """Give every path under ``written`` (and the folders above it, up to the workspace) to
    ``owner`` (default: the workspace's owner). Returns how many entries were changed.

    Only entries the current user owns are changed, and only inside ``workspace``; chown is
    attempted only when running as root (otherwise the files are already the runner user's).
    """
    root = Path(os.path.abspath(workspace))
    owner = owner or workspace_owner(root)
    me = os.geteuid()
    changed = 0
    for path in _entries(written, root):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if info.st_uid != me or stat.S_ISLNK(info.st_mode):
            continue
        if me == 0 and (info.st_uid, info.st_gid) != (owner.uid, owner.gid):
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
            changed += 1
        bits = DIR_BITS if stat.S_ISDIR(info.st_mode) else FILE_BITS
        if stat.S_IMODE(info.st_mode) & bits != bits:
            os.chmod(path, stat.S_IMODE(info.st_mode) | bits)
    return changed


def _inside(path: Path, root: Path, real_root: str) -> bool:
    """`path`'s folder is, component by component, the same folder inside the real workspace:
    no link between the workspace and `path` (the entry itself is lstat'ed by the caller)."""
    relative = os.path.relpath(path.parent, root)
    expected = os.path.normpath(os.path.join(real_root, relative))
    return os.path.realpath(path.parent) == expected and not relative.startswith("..")


def _entries(written: Iterable[Path], root: Path) -> Iterator[Path]:
    real_root = os.path.realpath(root)
    for path in _candidates(written, root):
        if _inside(path, root, real_root):
            yield path


def _candidates(written: Iterable[Path], root: Path) -> Iterator[Path]:
    seen: set[Path] = set()
    for given in written:
        path = Path(os.path.abspath(given))
        if root not in path.parents:
            continue
        for parent in reversed(path.relative_to(root).parents[:-1]):
            if root / parent not in seen:
                seen.add(root / parent)
                yield root / parent
        if path in seen:
            continue
        seen.add(path)
        yield path
        if path.is_dir() and not path.is_symlink():
            for folder, dirs, files in os.walk(path, followlinks=False):
                for name in (*dirs, *files):
                    yield Path(folder) / name
