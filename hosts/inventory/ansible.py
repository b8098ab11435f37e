"""Hosts from Ansible inventories, INI and YAML, read as Ansible's `ini` and `yaml`
inventory plugins read them, into a `hosts.inventory.ansible_book.Book` resolved with Ansible's
precedence. fleetdeck uses `ansible_host`, `ansible_user`, `ansible_port`,
`ansible_ssh_private_key_file` (and their `ansible_ssh_*` spellings); other variables are
warnings. Ranges expand as `hosts.inventory.ansible_ranges` says, within `hosts.inventory.limits`.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from fleetdeck.hosts.inventory.ansible_book import PARSED_VARS, Book, Var, resolve
from fleetdeck.hosts.inventory.limits import LimitError
from fleetdeck.hosts.inventory.records import InventoryProblem, Origin, Parsed
from fleetdeck.hosts.inventory.yaml_scan import YamlLoader, scan_yaml

_LITERAL_MAX = 1024  # longer values stay text: literal_eval of megabytes costs gigabytes


def ini_value(key: str, text: str) -> Any:
    """A variable's value as Ansible's INI reader takes it: a Python literal where it is one
    (`2222`, `'ops'`), else the text. Only the variables fleetdeck reads are evaluated."""
    if key not in PARSED_VARS or len(text) > _LITERAL_MAX:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_ini(path: Path, text: str) -> Parsed:
    book = Book(path)
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
                book.group(section).vars[key] = Var(ini_value(key, value), at)
            elif kind == "hosts":
                _ini_hosts(book, section, line, at)
        except LimitError as error:
            book.error(Origin(path, error.line or number), error.problem)
            return book.found
        except ValueError as error:
            book.error(at, f"cannot read: {error}")
    return resolve(book)


def _ini_hosts(book: Book, group: str, line: str, at: Origin) -> None:
    """One host line: a name or pattern, then key=value words."""
    words = shlex.split(line, comments=True)
    variables: dict[str, Var] = {}
    for word in words[1:]:
        key, equals, value = word.partition("=")
        if not equals:
            raise ValueError(f"expected key=value host variable, got {word!r}")
        variables[key] = Var(ini_value(key, value), at)
    if words:
        book.add_hosts(words[0], group, variables, at)


def parse_yaml(path: Path, text: str) -> Parsed:
    book = Book(path)
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
    return resolve(book)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error on one line: what went wrong and the column (the line is the Origin's)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    text = f"{context}: {problem}" if context else problem
    where = f" (column {mark.column + 1})" if mark is not None else ""
    return "YAML: " + " ".join(text.split()) + where


Lines = dict[tuple[str, ...], int]


def _yaml_group(book: Book, lines: Lines, path: tuple[str, ...], body: Any) -> None:
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
    book: Book, lines: Lines, path: tuple[str, ...], values: dict[Any, Any]
) -> dict[str, Var]:
    """Variables with the line each is set on (a merged `<<: *anchor` one: its mapping's)."""
    fallback = lines.get(path)
    return {
        str(key): Var(value, Origin(book.path, lines.get((*path, str(key)), fallback)))
        for key, value in values.items()
    }


def _yaml_hosts(
    book: Book, lines: Lines, path: tuple[str, ...], group: str, hosts: dict[Any, Any]
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
