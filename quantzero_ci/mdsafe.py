"""Text from a report as inert GitHub markdown: no markup, links, mentions or references.

A fork's pull request controls much of the report's text (model paths, layer names, notes). In
the PR comment and the job summary each value is escaped so it cannot add tables, HTML or links,
and a zero-width space (``&#8203;``) defuses what GitHub would otherwise turn live: ``@user`` and
``@org/team`` mentions (which notify people), ``#123`` references (which cross-link issues), and
bare URLs and ``www.`` hosts (which GitHub autolinks).
"""

from __future__ import annotations

import re

ZERO_WIDTH = "&#8203;"
_SPECIAL = str.maketrans(
    {c: f"\\{c}" for c in "\\`*_[]|~"}
    | {
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",  # so that report text cannot spell an entity such as &#64;
        "\n": " ",
        "\r": " ",
        "@": "@" + ZERO_WIDTH,
        "#": "\\#" + ZERO_WIDTH,
    }
)
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")


def escape_markdown(value: object) -> str:
    """`value` as text that renders literally: no links, HTML, tables, mentions or autolinks."""
    text = str(value).translate(_SPECIAL)
    return _AUTOLINK.sub(lambda m: m.group(0)[:-1] + ZERO_WIDTH + m.group(0)[-1], text)
