"""The package's shape: modules talk to each other through public names only.

A name that starts with one underscore is private to the module that defines it; importing it
from another module (``from quantzero_ci.x import _diff``) couples the two behind the API's back.
This test parses the package with `ast` (nothing is imported) and names every such import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "quantzero_ci"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """`line: from X import _name` for each private quantzero_ci name that ``source`` imports.

    ``module`` is the dotted name of the module ``source`` belongs to (relative imports resolve
    against it).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "quantzero_ci":
                continue
            names = [alias.name for alias in node.names if _private(alias.name)]
            names += [origin] if any(_private(part) for part in origin.split(".")) else []
            found += [f"{node.lineno}: from {origin} import {name}" for name in names]
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] == "quantzero_ci"
                and any(_private(part) for part in alias.name.split("."))
            ]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(PACKAGE.parent)
        found += [
            f"{where}:{line}" for line in private_imports(source, module, is_package=is_package)
        ]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_the_detector_sees_absolute_relative_and_module_private_imports() -> None:
    source = (
        "from quantzero_ci.render import _environment, comment\n"
        "from ..decide import _check\n"
        "from . import _helpers\n"
        "import quantzero_ci._internal\n"
        "from os import _exit\n"
        "from quantzero_ci import __version__\n"
    )
    assert private_imports(source, "quantzero_ci.fleet.render") == [
        "1: from quantzero_ci.render import _environment",
        "2: from quantzero_ci.decide import _check",
        "3: from quantzero_ci.fleet import _helpers",
        "4: import quantzero_ci._internal",
    ]


def _imported_modules(path: Path) -> set[str]:
    """Every quantzero_ci module ``path`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("quantzero_ci")}


def test_the_certificate_checks_do_not_import_the_fleet() -> None:
    """Single-certificate checking sits below the fleet: fleet.verify builds on it, never the
    reverse (the command line chooses between the two)."""
    for name in ("certify/certchecks.py", "certify/certificate_check.py"):
        fleet = sorted(
            m for m in _imported_modules(PACKAGE / name) if m.startswith("quantzero_ci.fleet")
        )
        assert not fleet, f"{name} imports {fleet}"
