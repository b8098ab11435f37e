"""Bounds on what an inventory or settings file can make fleetdeck do.

Inventories and settings come from operators, but also from generators, copies and mistakes:
one line such as `web[01:99999999]` or a YAML "billion laughs" must not take the machine's
memory. Every reader checks these limits before it builds anything, and a file past one is
refused with a `LimitError` naming the line (when it is known), never a hang or a traceback.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 16 * 1024 * 1024
"""The largest inventory or settings file read; a bigger one is refused unread."""
MAX_HOSTS_PER_RANGE = 10_000
"""Hosts one pattern such as `web[0001:9999]` may expand to (all its ranges together)."""
MAX_HOSTS = 100_000
"""Hosts all inventory files together may list."""
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


YamlLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(slots=True)
class _Open:
    """A YAML collection being read: where it sits, and what it stands for so far."""

    anchor: str | None
    path: tuple[str, ...]
    mapping: bool
    size: int = 1
    expect_key: bool = True
    key: str = ""


def scan_yaml(text: str) -> dict[tuple[str, ...], int]:
    """Check a YAML document against the limits, from its event stream, before anything is
    built; return the line of every mapping key by its path (`("all", "hosts", "web-1")`).

    Aliases are followed by size, not by value: each anchored value's size is known when it
    ends, an alias adds that size, and an alias to a value still open (itself, or an
    enclosing one) is refused, since it repeats without end. Raises LimitError or
    yaml.YAMLError.
    """
    sizes: dict[str, int] = {}
    stack: list[_Open] = []
    lines: dict[tuple[str, ...], int] = {}
    total = 0

    def count(size: int, line: int) -> None:
        nonlocal total
        total += size
        if total > MAX_YAML_NODES:
            raise LimitError(line, f"YAML stands for more than {MAX_YAML_NODES:,} values")

    for event in yaml.parse(text, Loader=YamlLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            done = stack.pop()
            if done.anchor:
                sizes[done.anchor] = done.size
            if stack:
                stack[-1].size += done.size
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        top = stack[-1] if stack else None
        path: tuple[str, ...] = ()
        if top is not None and top.mapping:
            if top.expect_key:
                top.key = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
                lines.setdefault((*top.path, top.key), line)
            path = (*top.path, top.key)
            top.expect_key = not top.expect_key
        elif top is not None:
            path = (*top.path, "-")
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_NESTING:
                raise LimitError(line, f"YAML nested more than {MAX_NESTING} deep")
            count(1, line)
            stack.append(_Open(event.anchor, path, isinstance(event, yaml.MappingStartEvent)))
            continue
        if isinstance(event, yaml.AliasEvent) and any(o.anchor == event.anchor for o in stack):
            raise LimitError(line, f"YAML alias *{event.anchor} refers to itself")
        size = sizes.get(str(event.anchor), 1) if isinstance(event, yaml.AliasEvent) else 1
        count(size, line)
        if top is not None:
            top.size += size
        if isinstance(event, yaml.ScalarEvent) and event.anchor:
            sizes[event.anchor] = 1
    return lines
