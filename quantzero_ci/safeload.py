"""One guarded reader for every YAML and JSON document a pull request can shape (configs, fleet
files, certificates, the event payload).

Refused with a `DocumentError` (a ValueError, so a caller's "not valid JSON/YAML" handling
applies) before anything large is built: documents over a size cap, nesting deeper than
`MAX_DEPTH`, YAML alias expansion beyond `MAX_NODES` nodes (an alias bomb), and duplicate keys
(named with both lines). Integers longer than `MAX_DIGITS` digits load as `OversizedNumber`, so
the setting that holds one is named by its own validation instead of overflowing.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Callable
from typing import Any

import yaml

MAX_DEPTH = 64  # nesting levels of mappings and lists
MAX_NODES = 200_000  # YAML nodes after alias expansion
MAX_ALIASES = 1_000
MAX_DIGITS = 64  # longer integers are OversizedNumber
MAX_YAML_BYTES = 1 << 20  # a config or fleet file
MAX_JSON_BYTES = 64 << 20  # a certificate or event payload
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class DocumentError(ValueError):
    """A document refused by a guard; the message says which guard and where."""


class DuplicateKeyError(DocumentError):
    """A mapping gives one key twice: `key` (dotted from the root) at `lines`."""

    def __init__(self, key: str, lines: tuple[int, int] | None) -> None:
        self.key, self.lines = key, lines
        where = f", at line {lines[0]} and line {lines[1]}" if lines else ""
        super().__init__(f"duplicate key {shorten(repr(key))} (given twice{where})")


class OversizedNumber(str):
    """The text of an integer too long to be a setting (kept as text, never converted)."""


def shorten(text: object, limit: int = 120) -> str:
    """`text` cut to `limit` characters with …, for quoting a user's value in a message."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 3, 80, 80, 40
_QUOTE.maxlist = _QUOTE.maxdict = _QUOTE.maxtuple = 6


def quote(value: object) -> str:
    """A short repr of a user's value for a message: bounded in size and depth (an alias bomb
    or a list nested 50,000 deep is quoted in a line, never expanded)."""
    return shorten(_QUOTE.repr(value), 120)


def load_yaml(text: str, *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Parse one YAML document with every guard; raises DocumentError."""
    _check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes)
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(node)
        return loader.construct_document(node)
    except RecursionError:
        raise DocumentError(f"is nested too deeply (more than {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()


def load_json(
    text: str | bytes,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """Parse JSON with every guard (size, depth, duplicate keys, long integers)."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    _check_size(size, max_bytes)
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    _check_json_depth(text)
    extra = {"parse_constant": parse_constant} if parse_constant else {}
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_int=_int, **extra)
    except RecursionError:
        raise DocumentError(f"is nested too deeply (more than {MAX_DEPTH} levels)") from None


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise DocumentError(f"is {size:,} bytes, more than the {limit:,} bytes allowed")


def _check_json_depth(text: str) -> None:
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                raise DocumentError(f"is nested more than {MAX_DEPTH} levels deep (line {line})")
        elif token in "]}":
            depth -= 1


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key, None)
        out[key] = value
    return out


def _int(text: str) -> int | OversizedNumber:
    digits = text.lstrip("+-")
    return OversizedNumber(text) if len(digits) > MAX_DIGITS else int(text)


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting and aliases while composing, before anything is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise DocumentError(f"uses more than {MAX_ALIASES} aliases (line {mark.line + 1})")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise DocumentError(
                    f"is nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int | OversizedNumber:
        text = str(node.value).replace("_", "")
        if len(text.lstrip("+-")) > MAX_DIGITS:
            return OversizedNumber(text)
        return super().construct_yaml_int(node)


_GuardedLoader.add_constructor("tag:yaml.org,2002:int", _GuardedLoader.construct_yaml_int)


def _check_tree(root: yaml.Node) -> None:
    """Count nodes as if aliases were expanded (memoised per node) and find duplicate keys."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, path: str) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name != "<<":
                    line = key.start_mark.line + 1
                    if name in seen:
                        dotted = f"{path}.{name}" if path else str(name)
                        raise DuplicateKeyError(dotted, (seen[name], line))
                    seen[name] = line
                total += size(key, path) + size(value, f"{path}.{name}" if path else str(name))
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, path) for item in node.value)
        if total > MAX_NODES:
            raise DocumentError(
                f"expands to more than {MAX_NODES:,} values (YAML aliases repeat their anchor)"
            )
        sizes[id(node)] = total
        return total

    size(root, "")
