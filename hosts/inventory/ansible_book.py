"""An Ansible inventory as its file states it (a `Book`), and its hosts resolved with
Ansible's precedence, as `ansible-inventory --list` resolves them.

The INI and YAML readers (`hosts.inventory.ansible`) fill one `Book`: groups with their
variables and children, hosts with their own variables (a host named twice keeps the later value, as
Ansible's `set_variable` does). `resolve` then gives each host its variables: its groups
sorted by depth below `all` (parents first), then `ansible_group_priority`, then name, each
overriding the ones before, and the host's own variables over all of them. Of those,
fleetdeck uses the connection variables; each other variable is reported once as a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fleetdeck.hosts.inventory.ansible_ranges import expand, split_port
from fleetdeck.hosts.inventory.limits import MAX_HOSTS, MAX_NAMES_EXPANDED, MAX_NESTING, LimitError
from fleetdeck.hosts.inventory.records import (
    HostSpec,
    InventoryProblem,
    Origin,
    Parsed,
    missing_identity,
    parse_port,
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
PARSED_VARS = {*CONNECTION_VARS, "ansible_group_priority"}


@dataclass(frozen=True, slots=True)
class Var:
    """A variable's value and where it was set, so a warning about it can name the line."""

    value: Any
    origin: Origin


@dataclass
class Group:
    vars: dict[str, Var] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    origin: Origin | None = None


@dataclass
class Book:
    """Groups and hosts as the file states them, before any precedence is applied."""

    path: Path
    found: Parsed = field(default_factory=Parsed)
    groups: dict[str, Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Var]] = field(default_factory=dict)
    host_groups: dict[str, list[str]] = field(default_factory=dict)
    host_origin: dict[str, Origin] = field(default_factory=dict)
    names_expanded: int = 0

    def group(self, name: str, origin: Origin | None = None) -> Group:
        group = self.groups.setdefault(name, Group())
        group.origin = group.origin or origin
        return group

    def error(self, origin: Origin, problem: str) -> None:
        self.found.errors.append(InventoryProblem(origin, None, problem))

    def add_hosts(self, pattern: str, group: str, variables: dict[str, Var], at: Origin) -> None:
        """Put the hosts a pattern names in a group, with the variables given beside them."""
        name_pattern, port = split_port(pattern)
        names = expand(name_pattern)
        self.names_expanded += len(names)
        if self.names_expanded > MAX_NAMES_EXPANDED:
            problem = f"host patterns name more than {MAX_NAMES_EXPANDED:,} hosts, repeats counted"
            raise LimitError(at.line, problem)
        if len(self.host_vars) + len(names) > MAX_HOSTS:
            raise LimitError(at.line, f"more than {MAX_HOSTS:,} hosts in one file")
        self.group(group, at)
        for name in names:
            own = self.host_vars.setdefault(name, {})
            if port is not None:
                own["ansible_port"] = Var(port, at)
            own.update(variables)
            self.host_groups.setdefault(name, []).append(group)
            self.host_origin.setdefault(name, at)


def resolve(book: Book) -> Parsed:
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
        variables: dict[str, Var] = {}
        for gname in sorted(reached, key=lambda g: (depth[g], _priority(book.groups[g]), g)):
            variables.update(book.groups[gname].vars)
        variables.update(own)
        groups = list(dict.fromkeys([*direct, *_nearest_first(direct, ancestors)]))
        spec = _spec(book, host, variables, warned)
        book.found.hosts.append(replace(spec, groups=tuple(g for g in groups if g != "all")))
    return book.found


def _nearest_first(direct: list[str], ancestors: dict[str, list[str]]) -> Iterator[str]:
    for group in direct:
        yield from ancestors[group]


def _priority(group: Group) -> int:
    var = group.vars.get("ansible_group_priority")
    try:
        return int(var.value) if var is not None else 1
    except (TypeError, ValueError):
        return 1  # Ansible ignores a priority that is not a number


def _group_order(book: Book) -> tuple[dict[str, int], dict[str, list[str]]] | None:
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


def _spec(book: Book, host: str, variables: dict[str, Var], warned: set[str]) -> HostSpec:
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
