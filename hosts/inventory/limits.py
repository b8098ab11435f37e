"""Bounds on what an inventory or settings file can make fleetdeck do.

Inventories and settings come from operators, but also from generators, copies and mistakes:
one line such as `web[01:99999999]` or a YAML "billion laughs" must not take the machine's
memory. Every reader checks these limits before it builds anything, and a file past one is
refused with a `LimitError` naming the line (when it is known), never a hang or a traceback.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest inventory or settings file read; a bigger one is refused unread."""
MAX_HOSTS_PER_RANGE = 10_000
"""Hosts one pattern such as `web[0001:9999]` may expand to (all its ranges together)."""
MAX_HOSTS = 100_000
"""Hosts all inventory files together may list."""
MAX_NAMES_EXPANDED = 1_000_000
"""Host names the patterns of one file may expand to, a name listed again counted again:
the same `web[00001:10000]` on a million lines names few hosts but is work all the same."""
MAX_NESTING = 100
"""Depth of nested TOML arrays and tables, YAML collections, and Ansible child groups."""
MAX_YAML_NODES = 500_000
"""Values a YAML document may stand for, each alias counted as all it repeats: a
self-referencing alias or a "billion laughs" passes this within a few lines."""


class LimitError(ValueError):
    """A file past one of the limits; `line` is where it went past (None when not known)."""

    def __init__(self, line: int | None, problem: str) -> None:
        self.line, self.problem = line, problem
        super().__init__(problem)


def read_bounded(path: Path) -> str:
    """The file's text, reading at most MAX_FILE_BYTES + 1 bytes of it.

    Raises OSError, UnicodeDecodeError, or LimitError for a file over the limit.
    """
    with path.open("rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise LimitError(None, f"file is over {MAX_FILE_BYTES // 2**20} MiB: refused unread")
    return data.decode("utf-8")


_TOML_TOKENS = re.compile(r"\"\"\"|'''|[\"'#\[\]{}\n]")
_TOML_ENDS = {
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""+', re.DOTALL),
    "'''": re.compile(r"(?:[^']|'(?!''))*'''+"),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
    "#": re.compile(r"[^\n]*"),
}


def toml_too_deep(text: str, limit: int = MAX_NESTING) -> int | None:
    """The line where TOML arrays and inline tables nest deeper than `limit`, else None.

    tomllib parses nesting by recursion, so a few thousand `[` end in RecursionError; this
    scan skips strings and comments and counts brackets, in one pass over the text.
    """
    depth, line, pos = 0, 1, 0
    while token := _TOML_TOKENS.search(text, pos):
        found = token.group()
        pos = token.end()
        if found == "\n":
            line += 1
        elif found in _TOML_ENDS:
            end = _TOML_ENDS[found].match(text, pos)
            stop = end.end() if end else len(text)
            line += text.count("\n", pos, stop)
            pos = stop
        elif found in "[{":
            depth += 1
            if depth > limit:
                return line
        else:
            depth = max(depth - 1, 0)
    return None


def load_toml(text: str) -> dict[str, Any]:
    """TOML text as data, within MAX_NESTING; raises tomllib.TOMLDecodeError or LimitError."""
    if (line := toml_too_deep(text)) is not None:
        raise LimitError(line, f"nested more than {MAX_NESTING} deep")
    try:
        return tomllib.loads(text)
    except RecursionError:  # the scan above should have caught it; never a traceback
        raise LimitError(None, f"nested more than {MAX_NESTING} deep") from None
