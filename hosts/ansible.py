"""Hosts from Ansible inventories, INI and YAML: groups, children, and the connection
variables `ansible_host`, `ansible_user`, `ansible_port`, `ansible_ssh_private_key_file`.

Other variables mean nothing to fleetdeck; each distinct one is reported once as a warning.
Host patterns with ranges (`web[01:03]`, `db-[a:c]`) are expanded as Ansible does.
"""

from __future__ import annotations

import re
import shlex
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hosts.inventory import HostSpec, InventoryProblem, Origin, Parsed, parse_port

CONNECTION_VARS = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_ssh_private_key_file": "identity",
}
# Understood and harmless: nothing for fleetdeck to do with them, nothing to warn about.
QUIET_VARS = {"ansible_connection", "ansible_python_interpreter", "ansible_become"}


@dataclass
class _Group:
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    origin: Origin | None = None


@dataclass
class _Book:
    """Hosts with their own variables and origin, and groups, as the file states them."""

    path: Path
    found: Parsed
    groups: dict[str, _Group] = field(default_factory=dict)
    host_origin: dict[str, Origin] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group())


def expand(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03; `x[a:c]` -> xa, xb, xc; others unchanged."""
    match = re.search(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]", pattern)
    if not match:
        return [pattern]
    start, end, step = match[1], match[2], int(match[3] or 1)
    head, tail = pattern[: match.start()], pattern[match.end() :]
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        items = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif start in string.ascii_letters and end in string.ascii_letters:
        items = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        return [pattern]
    return [name for item in items for name in expand(head + item + tail)]


def parse_ini(path: Path, text: str) -> Parsed:
    book = _Book(path, Parsed())
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        origin = Origin(path, number)
        if header := re.fullmatch(r"\[([^\]:]+)(?::(\w+))?\]", line):
            section, kind = header[1], header[2] or "hosts"
            if kind not in {"hosts", "children", "vars"}:
                book.found.errors.append(
                    InventoryProblem(origin, None, f"unknown section kind ':{kind}'")
                )
            book.group(section).origin = book.group(section).origin or origin
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as error:
            book.found.errors.append(InventoryProblem(origin, None, f"cannot read: {error}"))
            continue
        if kind == "children":
            book.group(section).children.append(words[0])
        elif kind == "vars":
            key, _, value = line.partition("=")
            book.group(section).vars[key.strip()] = value.strip().strip("'\"")
        elif words:
            variables = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            for name in expand(words[0]):
                book.group(section).hosts[name] = variables
                book.host_origin.setdefault(name, origin)
    return _resolve(book)


def parse_yaml(path: Path, text: str) -> Parsed:
    book = _Book(path, Parsed())
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        book.found.errors.append(InventoryProblem(Origin(path, line), None, f"YAML: {error}"))
        return book.found
    lines = _key_lines(root)
    if not isinstance(data, dict):
        book.found.errors.append(InventoryProblem(Origin(path, 1), None, "expected groups"))
        return book.found

    def walk(name: str, body: Any) -> None:
        group = book.group(name)
        group.origin = Origin(path, lines.get(name))
        body = body if isinstance(body, dict) else {}
        for host, variables in (body.get("hosts") or {}).items():
            for expanded in expand(str(host)):
                group.hosts[expanded] = variables if isinstance(variables, dict) else {}
                book.host_origin.setdefault(expanded, Origin(path, lines.get(str(host))))
        group.vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            group.children.append(str(child))
            walk(str(child), child_body)

    for name, body in data.items():
        walk(str(name), body)
    return _resolve(book)


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    """First line of every mapping key in a YAML document (host and group names)."""
    lines: dict[str, int] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                lines.setdefault(str(key.value), key.start_mark.line + 1)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return lines


def _resolve(book: _Book) -> Parsed:
    """Hosts with their variables: the host's own, then its groups', nearest group first."""
    parents: dict[str, list[str]] = {}
    for name, group in book.groups.items():
        for child in group.children:
            parents.setdefault(child, []).append(name)
            if child not in book.groups:
                book.found.errors.append(
                    InventoryProblem(
                        group.origin or Origin(book.path),
                        None,
                        f"child group {child!r} is not defined",
                    )
                )

    def ancestry(group: str, seen: tuple[str, ...] = ()) -> list[str]:
        if group in seen:
            return []
        out = [group]
        for parent in parents.get(group, []):
            out += ancestry(parent, (*seen, group))
        return out

    warned: set[str] = set()
    membership: dict[str, list[str]] = {}
    for name, group in book.groups.items():
        for host in group.hosts:
            membership.setdefault(host, []).append(name)
    for host, direct in membership.items():
        groups = list(dict.fromkeys(g for d in direct for g in ancestry(d)))
        variables: dict[str, Any] = {}
        for gname in groups:  # nearest first, so setdefault keeps the most specific value
            for key, value in book.groups[gname].hosts.get(host, {}).items():
                variables.setdefault(key, value)
        for gname in groups:
            for key, value in book.groups[gname].vars.items():
                variables.setdefault(key, value)
        origin = book.host_origin[host]
        spec = HostSpec(name=host, address=host, groups=tuple(g for g in groups if g != "all"))
        for key, value in variables.items():
            field_name = CONNECTION_VARS.get(key)
            if field_name == "address":
                spec = replace(spec, address=str(value))
            elif field_name == "user":
                spec = replace(spec, user=str(value))
            elif field_name == "port":
                spec = replace(spec, port=parse_port(value, origin, host, book.found))
            elif field_name == "identity":
                spec = replace(spec, identity_files=(str(value),))
            elif key not in QUIET_VARS and key not in warned:
                warned.add(key)
                book.found.warnings.append(
                    InventoryProblem(origin, host, f"variable {key!r} means nothing to fleetdeck")
                )
        book.found.hosts.append(replace(spec, origin=origin))
    return book.found
