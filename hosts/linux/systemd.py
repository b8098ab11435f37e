"""Readers of what `systemctl` prints: `list-units --plain --no-legend` rows and the
`KEY=VALUE` blocks of `systemctl show`.

Pure functions of text, so they are tested on recorded output; the services checks run the
commands. `systemctl show` prints one block per unit, blocks apart by an empty line, in the
order the units were named; a property whose value holds a newline is never asked for here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "InvocationID",
    "FragmentPath",
    "ActiveEnterTimestamp",
    "InactiveEnterTimestamp",
    "ExecMainStartTimestamp",
    "Description",
)
"""What the checks ask `systemctl show --timestamp=unix` for, in one call for all units."""

SUFFIXES = (
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
)
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+")


def parse_unit_name(text: str) -> str:
    """A unit name as systemctl lists it: `nginx` becomes `nginx.service`; ValueError for
    anything that is not a unit name (so it never reaches a host as an option or a glob)."""
    name = text.strip()
    if not name or len(name) > 256 or name.startswith("-") or not _UNIT.fullmatch(name):
        raise ValueError("a unit name such as nginx or postgresql@15-main.service")
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    return name if suffix in SUFFIXES else f"{name}.service"


@dataclass(frozen=True, slots=True)
class ListedUnit:
    """One row of `systemctl list-units --plain --no-legend --full`."""

    name: str
    load: str
    active: str
    sub: str
    description: str


def parse_list_units(text: str) -> list[ListedUnit]:
    """Rows of `systemctl list-units --plain --no-legend --full --no-pager`. A row with
    fewer than four columns is not a unit row (ParseError names it)."""
    units = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split(None, 4)
        if fields[0] in ("●", "*"):  # the failed-unit bullet, when --plain was not honoured
            fields = line.split(None, 5)[1:]
        if len(fields) < 4:
            raise ParseError(f"not a unit row: {line[:120]!r}")
        name, load, active, sub = fields[:4]
        units.append(ListedUnit(name, load, active, sub, fields[4] if len(fields) > 4 else ""))
    return units


@dataclass(frozen=True, slots=True)
class UnitState:
    """One unit as `systemctl show` tells it. Times are Unix seconds (`--timestamp=unix`),
    None when unset (never entered that state) or when the host's systemctl is too old to
    print them that way."""

    id: str
    load: str
    active: str
    sub: str
    result: str
    restarts: int | None
    invocation: str
    fragment: str
    description: str
    active_since: float | None
    inactive_since: float | None
    main_started: float | None

    @property
    def missing(self) -> bool:
        return self.load in ("not-found", "masked", "error", "bad-setting")


def parse_blocks(text: str) -> list[dict[str, str]]:
    """`systemctl show` output as one dict of properties per unit, in order."""
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ParseError(f"not a property line: {line[:120]!r}")
        blocks[-1][key] = value
    return [block for block in blocks if block]


def parse_show(text: str) -> list[UnitState]:
    """The blocks of `systemctl show -p ...` for several units, in their order."""
    return [_state(block) for block in parse_blocks(text)]


def _state(block: dict[str, str]) -> UnitState:
    if not block.get("Id"):
        raise ParseError(f"a block without Id: {sorted(block)[:6]}")
    restarts = block.get("NRestarts", "")
    return UnitState(
        id=block["Id"],
        load=block.get("LoadState", ""),
        active=block.get("ActiveState", ""),
        sub=block.get("SubState", ""),
        result=block.get("Result", ""),
        restarts=int(restarts) if restarts.isdecimal() else None,
        invocation=block.get("InvocationID", ""),
        fragment=block.get("FragmentPath", ""),
        description=block.get("Description", ""),
        active_since=_unix(block.get("ActiveEnterTimestamp", "")),
        inactive_since=_unix(block.get("InactiveEnterTimestamp", "")),
        main_started=_unix(block.get("ExecMainStartTimestamp", "")),
    )


def _unix(value: str) -> float | None:
    """`@1765143795` (with `--timestamp=unix`); empty, `n/a` or another form reads as None."""
    if value.startswith("@") and value[1:].isdecimal() and int(value[1:]) > 0:
        return float(value[1:])
    return None
