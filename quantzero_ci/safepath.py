"""One resolver for every configured path (model, data, signing key, output folder).

A path is text a pull request controls: it must be printable (no NUL or control characters), and
below the workspace root (the checkout: ``GITHUB_WORKSPACE``, else the enclosing git repository)
no component may be a symbolic link, whatever the process's working directory. Where a file is
expected, anything else (a folder, a device, a named pipe, a socket) is named as what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from quantzero_ci.errors import ConfigError
from quantzero_ci.safeload import quote

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def check_text(value: str, field: str) -> None:
    """ConfigError when `value` holds a NUL byte or another control character."""
    bad = next((char for char in value if ord(char) < 32 or ord(char) == 127), None)
    if bad is not None:
        raise ConfigError(
            field,
            f"{quote(value)} contains the control character U+{ord(bad):04X}",
            "Give a path of printable characters.",
        )


def find_root(start: Path) -> Path | None:
    """The enclosing git repository's top folder (a folder holding ``.git``), if any."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def resolve(value: str | Path, field: str, base: Path, root: Path | None) -> Path:
    """`value` against `base`, absolute and normalised, with no link below `root`."""
    text = str(value)
    check_text(text, field)
    path = Path(os.path.abspath(base / Path(text).expanduser()))
    if root is not None:
        no_links_below(path, Path(os.path.abspath(root)), field)
    return path


def no_links_below(path: Path, root: Path, field: str) -> None:
    """ConfigError when a component of `path` below `root` (or `path` itself) is a link."""
    if root == path or root in path.parents:
        parts = path.relative_to(root).parts
        chain = [root.joinpath(*parts[: i + 1]) for i in range(len(parts))]
    else:
        chain = [path]
    for component in chain:
        if component.is_symlink():
            raise ConfigError(
                field,
                f"{component} is a symbolic link; configured paths never go through links "
                "inside the repository",
                "Point the setting at the real file or folder, or replace the link.",
            )


def kind_of(path: Path) -> str | None:
    """What `path` is when it is not a regular file ("a folder", "a named pipe"…); None for a
    regular file or a path that does not exist (the caller says "does not exist")."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((name for test, name in _KINDS if test(mode)), None)


def require_regular_file(path: Path, field: str) -> None:
    """ConfigError when `path` exists but is not a regular file (names what it is)."""
    kind = kind_of(path)
    if kind is not None:
        raise ConfigError(
            field,
            f"{path} is {kind}; a regular file is expected",
            "Point the setting at the file itself.",
        )
