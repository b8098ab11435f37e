"""fleetdeck's own inventory format (TOML): `[defaults]`, `[[host]]` entries, `[groups]`.

[defaults]
user = "ops"
tier = "staging"

[[host]]
name = "web-01"
address = "10.0.0.11"
tags = ["web"]
tier = "prod"

[groups]
frontend = ["web-01"]
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from hosts.inventory import HostSpec, InventoryProblem, Origin, Parsed, parse_port, with_defaults

HOST_KEYS = {"name", "address", "port", "user", "jump", "identity_file", "tags", "tier", "groups"}
DEFAULT_KEYS = HOST_KEYS - {"name", "address", "tags", "groups"}


def parse(path: Path, text: str) -> Parsed:
    found = Parsed()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        found.errors.append(
            InventoryProblem(Origin(path, int(line[1]) if line else None), None, f"TOML: {error}")
        )
        return found
    lines = _host_lines(text)
    for key in set(data) - {"defaults", "host", "groups"}:
        found.errors.append(
            InventoryProblem(Origin(path, _key_line(text, key)), None, f"unknown table {key!r}")
        )
    defaults = data.get("defaults", {})
    for key in set(defaults) - DEFAULT_KEYS:
        found.errors.append(
            InventoryProblem(Origin(path, _key_line(text, key)), None, f"unknown default {key!r}")
        )
    members: dict[str, list[str]] = {}
    for group, names in data.get("groups", {}).items():
        for name in names if isinstance(names, list) else []:
            members.setdefault(str(name), []).append(group)
    for index, entry in enumerate(data.get("host", [])):
        origin = Origin(path, lines[index] if index < len(lines) else None)
        host = _host(entry, origin, found, members)
        if host is not None:
            found.hosts.append(
                with_defaults(
                    host,
                    user=defaults.get("user"),
                    jump=defaults.get("jump"),
                    tier=defaults.get("tier"),
                    identity_files=_identities(defaults.get("identity_file")),
                )
            )
            if "port" in defaults and "port" not in entry:
                port = parse_port(defaults["port"], origin, host.name, found)
                found.hosts[-1] = _replace_port(found.hosts[-1], port)
    return found


def _host(
    entry: dict[str, Any], origin: Origin, found: Parsed, members: dict[str, list[str]]
) -> HostSpec | None:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        found.errors.append(InventoryProblem(origin, None, "a [[host]] needs a name"))
        return None
    for key in set(entry) - HOST_KEYS:
        found.errors.append(InventoryProblem(origin, name, f"unknown key {key!r}"))
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        found.errors.append(InventoryProblem(origin, name, "tags must be a list of strings"))
        tags = []
    return HostSpec(
        name=name,
        address=str(entry.get("address") or name),
        port=parse_port(entry["port"], origin, name, found) if "port" in entry else 22,
        user=entry.get("user"),
        jump=entry.get("jump"),
        identity_files=_identities(entry.get("identity_file")),
        tags=tuple(tags),
        groups=tuple(dict.fromkeys([*entry.get("groups", []), *members.get(name, [])])),
        tier=entry.get("tier"),
        origin=origin,
    )


def _identities(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _replace_port(host: HostSpec, port: int) -> HostSpec:
    from dataclasses import replace

    return replace(host, port=port)


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


def _key_line(text: str, key: str) -> int | None:
    for number, raw in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*(\[\s*{re.escape(key)}\s*\]|{re.escape(key)}\s*=)", raw):
            return number
    return None
