"""Hosts from an OpenSSH client config (`~/.ssh/config`), read the way `ssh` reads it.

Every alias named without wildcards in a `Host` line is a host. Its settings are gathered
from every block whose patterns match it, in file order, the first value of each keyword
winning (IdentityFile adds up), so `Host *` blocks supply defaults without being hosts.
`Include` is followed where it stands, relative paths from ~/.ssh as ssh does. `Match`
blocks need a live connection to evaluate; they are skipped with a warning.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from hosts.inventory import HostSpec, InventoryProblem, Origin, Parsed, parse_port

KNOWN = {"hostname", "user", "port", "proxyjump", "identityfile"}
MAX_INCLUDE_DEPTH = 16  # ssh's own limit


@dataclass(frozen=True, slots=True)
class Line:
    origin: Origin
    keyword: str
    args: tuple[str, ...]


def parse(path: Path, text: str) -> Parsed:
    found = Parsed()
    lines = list(_lines(path, text, found, depth=0))
    # Blocks: (patterns or None for Match, lines). Lines before any Host apply to all.
    blocks: list[tuple[tuple[str, ...] | None, Origin | None, list[Line]]] = [(("*",), None, [])]
    for line in lines:
        if line.keyword == "host":
            blocks.append((line.args, line.origin, []))
        elif line.keyword == "match":
            found.warnings.append(
                InventoryProblem(line.origin, None, "Match blocks are not evaluated; skipped")
            )
            blocks.append((None, line.origin, []))
        else:
            blocks[-1][2].append(line)
    aliases: dict[str, Origin] = {}
    for patterns, origin, _ in blocks:
        for pattern in patterns or ():
            if origin and not any(c in pattern for c in "*?!") and pattern not in aliases:
                aliases[pattern] = origin
    for alias, origin in aliases.items():
        found.hosts.append(_resolve(alias, origin, blocks, found))
    return found


def _lines(path: Path, text: str, found: Parsed, depth: int) -> list[Line]:
    out: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"(\S+?)(?:\s*=\s*|\s+|$)(.*)$", stripped)
        keyword, rest = (match[1], match[2]) if match else (stripped, "")
        origin = Origin(path, number)
        try:
            args = tuple(shlex.split(rest, comments=True))
        except ValueError as error:
            found.errors.append(InventoryProblem(origin, None, f"cannot read this line: {error}"))
            continue
        if keyword.lower() != "include":
            out.append(Line(origin, keyword.lower(), args))
            continue
        if depth >= MAX_INCLUDE_DEPTH:
            found.errors.append(InventoryProblem(origin, None, "Include nested too deeply"))
            continue
        for pattern in args:
            full = os.path.expanduser(pattern)
            if not os.path.isabs(full):
                full = os.path.join(os.path.expanduser("~/.ssh"), full)
            for included in sorted(glob.glob(full)):
                try:
                    content = Path(included).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    found.errors.append(
                        InventoryProblem(origin, None, f"cannot read Include {included}: {error}")
                    )
                    continue
                out += _lines(Path(included), content, found, depth + 1)
    return out


def _matches(alias: str, patterns: tuple[str, ...]) -> bool:
    positive = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(alias, pattern[1:]):
                return False
        elif fnmatch.fnmatchcase(alias, pattern):
            positive = True
    return positive


def _resolve(
    alias: str,
    origin: Origin,
    blocks: list[tuple[tuple[str, ...] | None, Origin | None, list[Line]]],
    found: Parsed,
) -> HostSpec:
    values: dict[str, str] = {}
    identities: list[str] = []
    for patterns, _, lines in blocks:
        if patterns is None or not _matches(alias, patterns):
            continue
        for line in lines:
            if not line.args:
                continue
            if line.keyword == "identityfile":
                identities.append(line.args[0])
            elif line.keyword in KNOWN:
                values.setdefault(line.keyword, line.args[0])
    port = parse_port(values["port"], origin, alias, found) if "port" in values else 22
    return HostSpec(
        name=alias,
        address=values.get("hostname", alias).replace("%h", alias),
        port=port,
        user=values.get("user"),
        jump=values.get("proxyjump"),
        identity_files=tuple(i.replace("%h", alias) for i in identities),
        origin=origin,
    )
