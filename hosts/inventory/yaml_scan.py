"""YAML read within `hosts.inventory.limits`: the checks made on the event stream, before any value
is built, so that an alias bomb or a deep nesting costs a scan and not the machine.

Kept apart from `hosts.inventory.limits` so that what does not read YAML (the settings file, the
local console) never loads PyYAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from fleetdeck.hosts.inventory.limits import MAX_NESTING, MAX_YAML_NODES, LimitError

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
