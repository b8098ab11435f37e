"""fleetdeck's own inventory format (TOML): `[defaults]`, `[[host]]` entries, `[groups]`.

[defaults]
user = "ops"
tier = "staging"

[[host]]
name = "web-01"
address = "10.0.0.11"
tags = ["web"]
tier = "prod"
docker = "ssh"              # the host's Docker engine: "ssh" (its /var/run/docker.sock
                            # through its SSH connection, the default for remote hosts),
                            # "unix:///path", "tcp://addr:port", "context:NAME" or "none"

[[host.postgres]]           # PostgreSQL databases on the host (any number)
dbname = "orders"
user = "monitor"
port = 5432                 # as the host sees it: reached through its SSH connection
password_env = "FLEETDECK_PG_ORDERS"

[groups]
frontend = ["web-01"]

A `password` in the inventory is an error: passwords come from ~/.pgpass, PGPASSFILE, a
pg_service file or the variable `password_env` names.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleetdeck.hosts.docker.endpoint import DockerEndpoint
from fleetdeck.hosts.inventory.limits import MAX_HOSTS, LimitError, load_toml
from fleetdeck.hosts.inventory.records import (
    HostSpec,
    InventoryProblem,
    Origin,
    Parsed,
    missing_identity,
    parse_port,
    with_defaults,
)
from fleetdeck.hosts.postgres.targets import SSLMODES, PgTarget

HOST_KEYS = {
    *("name", "address", "port", "user", "jump", "identity_file", "tags", "tier", "groups"),
    "postgres",
    "docker",
}
DEFAULT_KEYS = HOST_KEYS - {"name", "address", "tags", "groups", "postgres"}
PG_KEYS = {"name", "host", "port", "dbname", "user", "password_env", "service", "sslmode"}
NO_PASSWORDS = (
    "a password in the inventory is not allowed: passwords come from ~/.pgpass, PGPASSFILE, "
    "a pg_service file or password_env, never the inventory"
)


def parse(path: Path, text: str) -> Parsed:
    found = Parsed()
    try:
        data = load_toml(text)
    except LimitError as error:
        found.errors.append(InventoryProblem(Origin(path, error.line), None, error.problem))
        return found
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        found.errors.append(
            InventoryProblem(Origin(path, int(line[1]) if line else None), None, f"TOML: {error}")
        )
        return found
    entries = data.get("host", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problem = "hosts must be [[host]] tables"
        found.errors.append(InventoryProblem(Origin(path, _key_line(text, "host")), None, problem))
        entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    if len(entries) > MAX_HOSTS:
        problem = f"more than {MAX_HOSTS:,} hosts in one file"
        found.errors.append(InventoryProblem(Origin(path, None), None, problem))
        return found
    lines = _host_lines(text)
    _unknown(set(data) - {"defaults", "host", "groups"}, "table", path, text, found)
    defaults = _table(data, "defaults", path, text, found)
    _unknown(set(defaults) - DEFAULT_KEYS, "default", path, text, found)
    at_defaults = Origin(path, _key_line(text, "defaults"))
    default_user = _text(defaults, "user", at_defaults, None, found)
    default_jump = _text(defaults, "jump", at_defaults, None, found)
    default_tier = _text(defaults, "tier", at_defaults, None, found)
    default_keys = _identities(defaults, at_defaults, None, found)
    members: dict[str, list[str]] = {}
    for group, names in _table(data, "groups", path, text, found).items():
        at = Origin(path, _key_line(text, "groups"))
        for name in _string_list(names, f"group {group!r}", at, None, found):
            members.setdefault(name, []).append(group)
    pg_lines = _postgres_lines(text)
    docker_lines = _section_key_lines(text, "[[host]]", "docker")
    default_line = next(iter(_section_key_lines(text, "[defaults]", "docker")), None)
    default_docker = _docker(defaults, Origin(path, default_line), None, found)
    for index, entry in enumerate(entries):
        origin = Origin(path, lines[index] if index < len(lines) else None)
        host = _host(entry, origin, found, members)
        if host is not None and "docker" in entry:
            docker_line = docker_lines[index] if index < len(docker_lines) else None
            at = Origin(path, docker_line or origin.line)
            host = replace(host, docker=_docker(entry, at, host.name, found))
        if host is not None and "postgres" in entry:
            where = pg_lines[index] if index < len(pg_lines) else []
            host = replace(
                host, postgres=_pg_targets(entry["postgres"], origin, where, host, found)
            )
        if host is not None:
            found.hosts.append(
                with_defaults(
                    host,
                    user=default_user,
                    jump=default_jump,
                    tier=default_tier,
                    identity_files=default_keys,
                    docker=default_docker,
                )
            )
            if "port" in defaults and "port" not in entry:
                port = parse_port(defaults["port"], origin, host.name, found)
                found.hosts[-1] = replace(found.hosts[-1], port=port)
            for identity in found.hosts[-1].identity_files:
                missing_identity(identity, origin, host.name, found)
    return found


def _host(
    entry: dict[str, Any], origin: Origin, found: Parsed, members: dict[str, list[str]]
) -> HostSpec | None:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        found.errors.append(InventoryProblem(origin, None, "a [[host]] needs a name"))
        return None
    for key in sorted(set(entry) - HOST_KEYS):
        found.errors.append(InventoryProblem(origin, name, f"unknown key {key!r}"))
    tags = _string_list(entry.get("tags", []), "tags", origin, name, found)
    groups = _string_list(entry.get("groups", []), "groups", origin, name, found)
    return HostSpec(
        name=name,
        address=_text(entry, "address", origin, name, found) or name,
        port=parse_port(entry["port"], origin, name, found) if "port" in entry else 22,
        user=_text(entry, "user", origin, name, found),
        jump=_text(entry, "jump", origin, name, found),
        identity_files=_identities(entry, origin, name, found),
        tags=tuple(tags),
        groups=tuple(dict.fromkeys([*groups, *members.get(name, [])])),
        tier=_text(entry, "tier", origin, name, found),
        origin=origin,
    )


def _text(
    table: dict[str, Any], key: str, origin: Origin, host: str | None, found: Parsed
) -> str | None:
    """A string setting, None when absent; any other type is an error naming the key."""
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    found.errors.append(InventoryProblem(origin, host, f"{key} must be a string"))
    return None


def _string_list(
    value: object, what: str, origin: Origin, host: str | None, found: Parsed
) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    found.errors.append(InventoryProblem(origin, host, f"{what} must be a list of strings"))
    return []


def _identities(
    table: dict[str, Any], origin: Origin, host: str | None, found: Parsed
) -> tuple[str, ...]:
    """`identity_file`: one path or a list of them."""
    value = table.get("identity_file")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(_string_list(value, "identity_file", origin, host, found))


def _table(data: dict[str, Any], key: str, path: Path, text: str, found: Parsed) -> dict[str, Any]:
    value = data.get(key, {})
    if isinstance(value, dict):
        return value
    problem = f"{key} must be a table such as [{key}]"
    found.errors.append(InventoryProblem(Origin(path, _key_line(text, key)), None, problem))
    return {}


_UNKNOWN_SHOWN = 10


def _unknown(keys: set[str], what: str, path: Path, text: str, found: Parsed) -> None:
    """Unknown tables or defaults, each at its line: the first few, then a count (finding
    each line reads the file once, so a file of a million mistakes is not read a million
    times)."""
    ordered = sorted(keys)
    for key in ordered[:_UNKNOWN_SHOWN]:
        origin = Origin(path, _key_line(text, key))
        found.errors.append(InventoryProblem(origin, None, f"unknown {what} {key!r}"))
    if len(ordered) > _UNKNOWN_SHOWN:
        problem = f"and {len(ordered) - _UNKNOWN_SHOWN:,} more unknown {what}s"
        found.errors.append(InventoryProblem(Origin(path), None, problem))


def _docker(
    table: dict[str, Any], origin: Origin, host: str | None, found: Parsed
) -> DockerEndpoint | None:
    """A table's `docker` value as an endpoint; a bad one is an error at its own line."""
    if "docker" not in table:
        return None
    value = table["docker"]
    try:
        if not isinstance(value, str):
            raise ValueError(f"docker must be a string, not {type(value).__name__}")
        return DockerEndpoint.parse(value)
    except ValueError as error:
        found.errors.append(InventoryProblem(origin, host, f"docker: {error}"))
        return None


def _pg_targets(
    value: object,
    origin: Origin,
    lines: list[tuple[int, int | None]],
    host: HostSpec,
    found: Parsed,
) -> tuple[PgTarget, ...]:
    """A host's `[[host.postgres]]` tables as targets; each mistake names its own line (the
    `password` key's line for a password), and never a password's value."""
    entries = [value] if isinstance(value, dict) else value if isinstance(value, list) else None
    if entries is None or not all(isinstance(e, dict) for e in entries):
        found.errors.append(InventoryProblem(origin, host.name, "postgres: use [[host.postgres]]"))
        return ()
    targets = []
    for index, entry in enumerate(entries):
        start, password_line = lines[index] if index < len(lines) else (origin.line, None)
        here = Origin(origin.path, start)

        def problem(text: str, at: Origin = here) -> None:
            found.errors.append(InventoryProblem(at, host.name, f"postgres target: {text}"))

        if "password" in entry:
            problem(NO_PASSWORDS, Origin(origin.path, password_line or start))
        for key in sorted(set(entry) - PG_KEYS - {"password"}):
            problem(f"unknown key {key!r}")
        texts = {k: entry[k] for k in PG_KEYS - {"port"} if k in entry}
        for key, text in texts.items():
            if not isinstance(text, str) or not text:
                problem(f"{key} must be a non-empty string")
        env_name = texts.get("password_env")
        if isinstance(env_name, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_name):
            problem("password_env must be the NAME of an environment variable holding the password")
        if texts.get("sslmode") not in (None, *SSLMODES):
            problem(f"sslmode must be one of {', '.join(SSLMODES)}")
        port = parse_port(entry["port"], here, host.name, found) if "port" in entry else None
        strings = {k: v for k, v in texts.items() if isinstance(v, str) and v}
        targets.append(PgTarget(port=port, **strings))
    return tuple(targets)


def _postgres_lines(text: str) -> list[list[tuple[int, int | None]]]:
    """For each `[[host]]`, its postgres tables' header lines and the line of a `password`
    key in each (None when it has none)."""
    hosts: list[list[tuple[int, int | None]]] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = line.replace(" ", "")
        if header.startswith("["):
            section = header
            if header == "[[host]]":
                hosts.append([])
            elif header == "[[host.postgres]]" and hosts:
                hosts[-1].append((number, None))
        elif hosts and re.match(r"postgres\s*=", line) and section == "[[host]]":
            hosts[-1].append((number, None))  # an inline table or array of them
        if hosts and hosts[-1] and re.search(r"(^|[\s{,])password\s*=", line):
            start, seen = hosts[-1][-1]
            hosts[-1][-1] = (start, seen or number)
    return hosts


def _host_lines(text: str) -> list[int]:
    """The line of each `[[host]]` entry's name (else its header), in order."""
    lines: list[int] = []
    inside = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            inside = line.replace(" ", "") == "[[host]]"
            if inside:
                lines.append(number)
        elif inside and re.match(r"name\s*=", line):
            lines[-1] = number
    return lines


def _section_key_lines(text: str, header: str, key: str) -> list[int | None]:
    """For each table `header` (`[[host]]`, `[defaults]`), in order, the line of its own
    `key = ...` (not a sub-table's), or None when it has none."""
    lines: list[int | None] = []
    inside = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            inside = line.replace(" ", "") == header
            if inside:
                lines.append(None)
        elif inside and lines[-1] is None and re.match(rf"{re.escape(key)}\s*=", line):
            lines[-1] = number
    return lines


def _key_line(text: str, key: str) -> int | None:
    for number, raw in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*(\[\s*{re.escape(key)}\s*\]|{re.escape(key)}\s*=)", raw):
            return number
    return None
