"""Hosts from Ansible inventories, INI and YAML, resolved as `ansible-inventory --list` does.

Both formats fill one `_Book`: groups with their variables and children, hosts with their
own variables (a host named twice keeps the later value, as Ansible's `set_variable` does).
`_resolve` then gives each host its variables with Ansible's precedence: its groups sorted by
depth below `all` (parents first), then `ansible_group_priority`, then name, each overriding
the ones before, and the host's own variables over all of them. Of those, fleetdeck uses the
connection variables (`ansible_host`, `ansible_user`, `ansible_port`,
`ansible_ssh_private_key_file` and their `ansible_ssh_*` spellings); each other variable is
reported once as a warning. Ranges (`web[01:03]`, `db-[a:c]`, `[1:9:2]`) expand as Ansible's
`expand_hostname_range` does, within `hosts.limits`.
"""

from __future__ import annotations

import ast
import re
import shlex
import string
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hosts.inventory import (
    HostSpec,
    InventoryProblem,
    Origin,
    Parsed,
    missing_identity,
    parse_port,
)
from hosts.limits import (
    MAX_HOSTS,
    MAX_HOSTS_PER_RANGE,
    MAX_NESTING,
    LimitError,
    YamlLoader,
    scan_yaml,
)

# fleetdeck's field for each connection variable, the preferred spelling first.
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
QUIET_VARS = {
    "ansible_connection",
    "ansible_python_interpreter",
    "ansible_become",
    "ansible_group_priority",
}
_PARSED_VARS = {*CONNECTION_VARS, "ansible_group_priority"}
_LITERAL_MAX = 1024  # longer values stay text: literal_eval of megabytes costs gigabytes


@dataclass(frozen=True, slots=True)
class _Var:
    """A variable's value and where it was set, so a warning about it can name the line."""

    value: Any
    origin: Origin


@dataclass
class _Group:
    vars: dict[str, _Var] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    origin: Origin | None = None


@dataclass
class _Book:
    """Groups and hosts as the file states them, before any precedence is applied."""

    path: Path
    found: Parsed = field(default_factory=Parsed)
    groups: dict[str, _Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, _Var]] = field(default_factory=dict)
    host_groups: dict[str, list[str]] = field(default_factory=dict)
    host_origin: dict[str, Origin] = field(default_factory=dict)

    def group(self, name: str, origin: Origin | None = None) -> _Group:
        group = self.groups.setdefault(name, _Group())
        group.origin = group.origin or origin
        return group

    def error(self, origin: Origin, problem: str) -> None:
        self.found.errors.append(InventoryProblem(origin, None, problem))

    def add_hosts(self, pattern: str, group: str, variables: dict[str, _Var], at: Origin) -> None:
        """Put the hosts a pattern names in a group, with the variables given beside them."""
        name_pattern, port = split_port(pattern)
        names = expand(name_pattern)
        if len(self.host_vars) + len(names) > MAX_HOSTS:
            raise LimitError(at.line, f"more than {MAX_HOSTS:,} hosts in one file")
        self.group(group, at)
        for name in names:
            own = self.host_vars.setdefault(name, {})
            if port is not None:
                own["ansible_port"] = _Var(port, at)
            own.update(variables)
            self.host_groups.setdefault(name, []).append(group)
            self.host_origin.setdefault(name, at)


def split_port(pattern: str) -> tuple[str, int | None]:
    """`web[1:3]:2222` -> (`web[1:3]`, 2222); a colon inside a range is not a port."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|(.+):(\d+)", pattern)
    if not match:
        return pattern, None
    if match[1] is not None:
        return match[1], int(match[2])
    if ":" in re.sub(r"\[[^\]]*\]", "", match[3]):
        return pattern, None  # an IPv6 address, whose last group only looks like a port
    return match[3], int(match[4])


def expand(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03; `x[a:c]` -> xa, xb, xc; `[1:9:4]` -> 1, 5, 9.

    Sized before it is built: past MAX_HOSTS_PER_RANGE it raises LimitError (line unknown
    here) and a range Ansible would refuse raises ValueError with Ansible's reason.
    """
    parts: list[str | list[str]] = []
    rest, total = pattern, 1
    while "[" in rest:
        head, _, tail = rest.partition("[")
        spec, closed, rest = tail.partition("]")
        if not closed:
            raise ValueError(f"host range {pattern!r} has no closing ']'")
        seq = _range(spec)
        total *= len(seq)
        if total > MAX_HOSTS_PER_RANGE:
            raise LimitError(None, f"{pattern} expands past {MAX_HOSTS_PER_RANGE:,} hosts")
        parts += [head, seq]
    names = [""]
    for part in [*parts, rest]:
        if isinstance(part, str):
            names = [name + part for name in names]
        else:
            names = [name + item for name in names for item in part]
    return names


def _range(spec: str) -> list[str]:
    """One `[begin:end:step]` as Ansible reads it: numbers (zero-padded to the begin's width
    when it starts with 0) or single letters."""
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError("host range must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if not end:
        raise ValueError("host range must specify end value")
    if step == 0:
        raise ValueError("host range step cannot be zero")
    width = len(begin) if begin[0] == "0" and len(begin) > 1 else 0
    if width and width != len(end):
        raise ValueError("host range must specify equal-length begin and end formats")
    if begin in string.ascii_letters and end in string.ascii_letters:
        first, last = string.ascii_letters.index(begin), string.ascii_letters.index(end)
        if first > last:
            raise ValueError("host range must have begin <= end")
        return list(string.ascii_letters[first : last + 1 : step])
    numbers = range(int(begin), int(end) + 1, step)
    if len(numbers) > MAX_HOSTS_PER_RANGE:  # sized before it is built
        raise LimitError(None, f"[{spec}] expands past {MAX_HOSTS_PER_RANGE:,} hosts")
    return [str(n).zfill(width) for n in numbers]


def ini_value(key: str, text: str) -> Any:
    """A variable's value as Ansible's INI reader takes it: a Python literal where it is one
    (`2222`, `'ops'`), else the text. Only the variables fleetdeck reads are evaluated."""
    if key not in _PARSED_VARS or len(text) > _LITERAL_MAX:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_ini(path: Path, text: str) -> Parsed:
    book = _Book(path)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        at = Origin(path, number)
        try:
            if header := re.fullmatch(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?", line):
                section, kind = header[1], header[2] or "hosts"
                if kind not in {"hosts", "children", "vars"}:
                    book.error(at, f"unknown section kind ':{kind}'")
                book.group(section, at)
            elif line.startswith("[") and line.endswith("]"):
                book.error(at, f"invalid section {line!r} (no spaces or ':' in group names)")
            elif kind == "children":
                child = re.fullmatch(r"([^:\]\s]+)\s*(?:#.*)?", line)
                if not child:
                    raise ValueError(f"expected a group name, got {line!r}")
                book.group(section).children.append(child[1])
            elif kind == "vars":
                key, equals, value = (part.strip() for part in line.partition("="))
                if not equals:
                    raise ValueError(f"expected key=value, got {line!r}")
                book.group(section).vars[key] = _Var(ini_value(key, value), at)
            elif kind == "hosts":
                _ini_hosts(book, section, line, at)
        except LimitError as error:
            book.error(Origin(path, error.line or number), error.problem)
            return book.found
        except ValueError as error:
            book.error(at, f"cannot read: {error}")
    return _resolve(book)


def _ini_hosts(book: _Book, group: str, line: str, at: Origin) -> None:
    """One host line: a name or pattern, then key=value words."""
    words = shlex.split(line, comments=True)
    variables: dict[str, _Var] = {}
    for word in words[1:]:
        key, equals, value = word.partition("=")
        if not equals:
            raise ValueError(f"expected key=value host variable, got {word!r}")
        variables[key] = _Var(ini_value(key, value), at)
    if words:
        book.add_hosts(words[0], group, variables, at)


def parse_yaml(path: Path, text: str) -> Parsed:
    book = _Book(path)
    try:
        lines = scan_yaml(text)
        data = yaml.load(text, Loader=YamlLoader)
    except LimitError as error:
        book.error(Origin(path, error.line), error.problem)
        return book.found
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        book.error(Origin(path, mark.line + 1 if mark is not None else None), yaml_problem(error))
        return book.found
    if not isinstance(data, dict):
        book.error(Origin(path, 1), "expected groups")
        return book.found
    try:
        for name, body in data.items():
            _yaml_group(book, lines, (str(name),), body)
    except LimitError as error:
        book.error(Origin(path, error.line), error.problem)
        return book.found
    return _resolve(book)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error on one line: what went wrong and the column (the line is the Origin's)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else problem
    where = f" (column {mark.column + 1})" if mark is not None else ""
    return "YAML: " + " ".join(text.split()) + where


Lines = dict[tuple[str, ...], int]


def _yaml_group(book: _Book, lines: Lines, path: tuple[str, ...], body: Any) -> None:
    """One group of a YAML inventory at `path` (its key's path in the document), with its
    hosts, variables and child groups (recursively: scan_yaml has bounded the depth)."""
    name = path[-1]
    at = Origin(book.path, lines.get(path))
    book.group(name, at)
    if body is None:
        return
    if not isinstance(body, dict):
        book.found.warnings.append(InventoryProblem(at, None, f"group {name!r} is not a mapping"))
        return
    for section, value in body.items():
        here = (*path, str(section))
        if isinstance(value, str) and section in {"hosts", "children", "vars"}:
            value = {value: None}
        where = Origin(book.path, lines.get(here, at.line))
        if value is None:
            continue
        if not isinstance(value, dict):
            book.error(where, f"group {name!r}: {section} must be a mapping")
        elif section == "vars":
            book.group(name).vars.update(_yaml_vars(book, lines, here, value))
        elif section == "children":
            for child, child_body in value.items():
                _yaml_group(book, lines, (*here, str(child)), child_body)
                book.group(name).children.append(str(child))
        elif section == "hosts":
            _yaml_hosts(book, lines, here, name, value)
        else:
            book.found.warnings.append(
                InventoryProblem(where, None, f"group {name!r}: unexpected key {section!r}")
            )


def _yaml_vars(
    book: _Book, lines: Lines, path: tuple[str, ...], values: dict[Any, Any]
) -> dict[str, _Var]:
    """Variables with the line each is set on (a merged `<<: *anchor` one: its mapping's)."""
    fallback = lines.get(path)
    return {
        str(key): _Var(value, Origin(book.path, lines.get((*path, str(key)), fallback)))
        for key, value in values.items()
    }


def _yaml_hosts(
    book: _Book, lines: Lines, path: tuple[str, ...], group: str, hosts: dict[Any, Any]
) -> None:
    for pattern, variables in hosts.items():
        here = (*path, str(pattern))
        at = Origin(book.path, lines.get(here))
        if not isinstance(pattern, str):
            book.error(at, f"host pattern {pattern!r} must be a string (quote it)")
        elif variables is not None and not isinstance(variables, dict):
            book.error(at, f"host {pattern!r}: expected variables as a mapping")
        else:
            try:
                book.add_hosts(pattern, group, _yaml_vars(book, lines, here, variables or {}), at)
            except LimitError as error:
                raise LimitError(at.line, error.problem) from None
            except ValueError as error:
                book.error(at, f"cannot read: {error}")


def _resolve(book: _Book) -> Parsed:
    """Every host with its variables, by Ansible's precedence (see the module docstring)."""
    for name in ("all", "ungrouped"):
        book.group(name)
    order = _group_order(book)
    if order is None:
        return book.found
    depth, ancestors = order
    warned: set[str] = set()
    for host, own in book.host_vars.items():
        direct = book.host_groups[host]
        if len(direct) > 1:
            direct = [g for g in direct if g != "ungrouped"]
        reached = {a for g in direct for a in ancestors[g]}
        variables: dict[str, _Var] = {}
        for gname in sorted(reached, key=lambda g: (depth[g], _priority(book.groups[g]), g)):
            variables.update(book.groups[gname].vars)
        variables.update(own)
        groups = [g for g in dict.fromkeys([*direct, *_nearest_first(direct, ancestors)])]
        spec = _spec(book, host, variables, warned)
        book.found.hosts.append(replace(spec, groups=tuple(g for g in groups if g != "all")))
    return book.found


def _nearest_first(direct: list[str], ancestors: dict[str, list[str]]) -> Iterator[str]:
    for group in direct:
        yield from ancestors[group]


def _priority(group: _Group) -> int:
    var = group.vars.get("ansible_group_priority")
    try:
        return int(var.value) if var is not None else 1
    except (TypeError, ValueError):
        return 1  # Ansible ignores a priority that is not a number


def _group_order(book: _Book) -> tuple[dict[str, int], dict[str, list[str]]] | None:
    """Each group's depth below `all` (its longest path from it) and its ancestors, itself
    first and `all` last; None (with an error) when child groups loop or nest too deep."""
    parents: dict[str, list[str]] = {name: [] for name in book.groups}
    for name, group in book.groups.items():
        for child in dict.fromkeys(group.children):
            if child not in book.groups:
                at = group.origin or Origin(book.path)
                book.error(at, f"child group {child!r} is not defined")
                continue
            parents[child].append(name)
    for name, above in parents.items():
        if not above and name != "all":
            above.append("all")
    depth: dict[str, int] = {"all": 0}
    ancestors: dict[str, list[str]] = {"all": ["all"]}
    pending = {name: len(above) for name, above in parents.items()}
    children: dict[str, list[str]] = {}
    for name, above in parents.items():
        for parent in above:
            children.setdefault(parent, []).append(name)
    ready = ["all"]
    while ready:
        current = ready.pop()
        for child in children.get(current, []):
            pending[child] -= 1
            if pending[child]:
                continue
            depth[child] = 1 + max(depth[p] for p in parents[child])
            if depth[child] > MAX_NESTING:
                origin = book.groups[child].origin or Origin(book.path)
                book.error(origin, f"child groups nested more than {MAX_NESTING} deep")
                return None
            lineage = [a for p in parents[child] for a in ancestors[p]]
            ancestors[child] = [child, *dict.fromkeys(lineage)]
            ready.append(child)
    looped = sorted(name for name in book.groups if name not in depth)
    if looped:
        origin = book.groups[looped[0]].origin or Origin(book.path)
        book.error(origin, f"child groups form a loop: {', '.join(looped)}")
        return None
    return depth, ancestors


def _spec(book: _Book, host: str, variables: dict[str, _Var], warned: set[str]) -> HostSpec:
    """A host's HostSpec from its resolved variables; unknown variables warned about once."""
    origin = book.host_origin[host]
    spec = HostSpec(name=host, address=host, origin=origin)
    for key in sorted(CONNECTION_VARS, key=lambda k: "_ssh_" in k, reverse=True):
        var = variables.get(key)
        if var is None:
            continue
        field_name = CONNECTION_VARS[key]
        if field_name == "address":
            spec = replace(spec, address=str(var.value))
        elif field_name == "user":
            spec = replace(spec, user=str(var.value))
        elif field_name == "port":
            spec = replace(spec, port=parse_port(var.value, var.origin, host, book.found))
        else:
            spec = replace(spec, identity_files=(str(var.value),))
            missing_identity(str(var.value), var.origin, host, book.found)
    for key, var in variables.items():
        if key not in CONNECTION_VARS and key not in QUIET_VARS and key not in warned:
            warned.add(key)
            problem = f"variable {key!r} means nothing to fleetdeck"
            book.found.warnings.append(InventoryProblem(var.origin, host, problem))
    return spec
