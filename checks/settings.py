"""What every settings table is built from: threshold pairs and the checks of their values.

The settings file's tables (`checks/config.py` for resources and alerts, `config.py` in each
domain package for its own table) read their `{ warn, crit }` pairs and numbers with these,
and raise `fail(dotted_key, problem)` so the error names the file, the line and the key. Only
the vocabulary of statuses is imported: a settings module never needs a check to be read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, TypeVar

from fleetdeck.checks.model import Status


@dataclass(frozen=True, slots=True)
class Limit:
    """A warning and a critical threshold on one figure, the one threshold type of every
    settings table. Higher is worse (a percentage used, seconds waited), so warn is at most
    crit; `falling=True` marks a figure where fewer is worse (hours left until a disk or a
    memory limit is full), so warn is at least crit."""

    warn: float
    crit: float
    falling: bool = False

    def grade(self, value: float | None) -> Status:
        """OK, WARN or CRIT for a figure; None (nothing to judge) is OK."""
        if value is None:
            return Status.OK
        if self.falling:
            crit, warn = value <= self.crit, value <= self.warn
        else:
            crit, warn = value >= self.crit, value >= self.warn
        if crit:
            return Status.CRIT
        return Status.WARN if warn else Status.OK


@dataclass(frozen=True, slots=True)
class ResourceThresholds:
    """The numbers the resource checks compare against (defaults from runbook R04): what
    every check finds in `CheckContext.thresholds`. The settings file's `[thresholds]`
    (`checks.config.Thresholds`) is one of these with the container checks' table beside
    them; the core reads only these, so it never imports the assembly that knows every
    domain."""

    cpu: Limit = Limit(70, 90)
    cpu_window: float = 60.0
    memory: Limit = Limit(80, 90)
    swap: Limit = Limit(10, 50)
    load: Limit = Limit(1.0, 2.0)
    disk: Limit = Limit(80, 90)
    inodes: Limit = Limit(80, 90)
    time_to_full: Limit = Limit(24, 4, falling=True)
    """Hours until a filesystem fills, at its recent rate: fewer is worse (warn > crit)."""


Fail = Callable[[str, str], Exception]


def value_error(dotted: str, problem: str) -> Exception:
    """The plain `fail` for a table read outside the settings file (no file or line)."""
    return ValueError(f"{dotted}: {problem}")


def parse_pair(default: Limit, value: object, dotted: str, fail: Fail, *, percent: bool) -> Limit:
    """The Limit a `{ warn = N, crit = N }` table sets over `default`: warn must not be
    above crit, or, for a `falling` default (fewer is worse: hours left), not below it."""
    if not isinstance(value, Mapping):
        raise fail(dotted, f"expected {{ warn = N, crit = N }}, got {value!r}")
    numbers: dict[str, float] = {"warn": default.warn, "crit": default.crit}
    for name, number in value.items():
        if name not in numbers:
            raise fail(f"{dotted}.{name}", "unknown key (known: warn, crit)")
        if not finite(number) or number < 0:
            raise fail(f"{dotted}.{name}", f"expected a number >= 0, got {number!r}")
        if percent and number > 100:
            raise fail(f"{dotted}.{name}", f"a percentage cannot be over 100, got {number!r}")
        numbers[name] = float(number)
    warn, crit = numbers["warn"], numbers["crit"]
    falling = default.falling
    if falling and warn < crit:
        raise fail(f"{dotted}.warn", f"warn ({warn:g}) is below crit ({crit:g}): fewer is worse")
    if not falling and warn > crit:
        raise fail(f"{dotted}.warn", f"warn ({warn:g}) is above crit ({crit:g})")
    return Limit(warn, crit, falling)


def finite(value: Any) -> bool:
    """An int or a finite float (TOML allows nan and inf, which no threshold can mean)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class SettingsTable:
    """A domain's table in the settings file: where it sits (`("storage",)` for `[storage]`,
    `("thresholds", "database")` for `[thresholds.database]`) and the parser that turns it
    into the domain's settings object, raising `fail(dotted_key, problem)` at the first key
    it cannot use. An absent table is parsed as an empty one: the defaults. `checks/config.py`
    reads every domain's table through this, so reading the settings file loads no check."""

    domain: str
    path: tuple[str, ...]
    parse: Callable[[object, Fail], object]
    params: Callable[[object, str, Sequence[str]], Mapping[str, str]] | None = None
    """The domain's wizard parameters its parsed settings give one host (by name and
    labels), for the wizard and for periodic checks that need `params`; None: none."""

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


S = TypeVar("S")
T = TypeVar("T")


def first(value: T | None, fallback: T | None) -> T | None:
    """The more specific table's value where it gives one, else the one it is laid over."""
    return value if value is not None else fallback


def parse_per_host(
    table: object,
    section: str,
    fail: Fail,
    parse: Callable[[dict[str, Any], str], S],
    leave: Collection[str] = (),
) -> tuple[S, dict[str, S], dict[str, S]]:
    """A table such as `[storage]` with its `[storage.groups.NAME]` and `[storage.hosts.NAME]`
    tables: each parsed by `parse(table, dotted_name)`, leaving out the keys in `leave` (read
    by another settings module). Returns everyone's settings, the groups' and the hosts'."""
    if not isinstance(table, dict):
        raise fail(section, f"expected a table such as [{section}]")
    skip = {"groups", "hosts", *leave}
    everyone = parse({k: v for k, v in table.items() if k not in skip}, section)
    nested: dict[str, dict[str, S]] = {"groups": {}, "hosts": {}}
    for kind, found in nested.items():
        entries = table.get(kind, {})
        if not isinstance(entries, dict):
            raise fail(f"{section}.{kind}", f"expected tables such as [{section}.{kind}.NAME]")
        for name, entry in entries.items():
            dotted = f"{section}.{kind}.{name}"
            if not isinstance(entry, dict):
                raise fail(dotted, f"expected a table such as [{dotted}]")
            found[name] = parse({k: v for k, v in entry.items() if k not in leave}, dotted)
    return everyone, nested["groups"], nested["hosts"]


def for_host(
    everyone: S,
    groups: Mapping[str, S],
    hosts: Mapping[str, S],
    merge: Callable[[S, S], S],
    name: str,
    labels: Sequence[str] = (),
) -> S:
    """One host's settings: everyone's, then its groups' (and tags') in order, then its own
    table, each laid over the last with `merge(under, over)`."""
    layers = [groups[label] for label in labels if label in groups]
    if name in hosts:
        layers.append(hosts[name])
    return reduce(merge, layers, everyone)
