"""fleetdeck's own settings file: thresholds and alert timing, validated line by line.

The file is TOML, by default `config.toml` in the user's config directory. Every error names
the file, the line and the key, and a file with any error is refused whole: the console never
starts on half a configuration. It is read within `hosts.inventory.limits` (size, nesting depth).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from fleetdeck.checks.containers.config import TABLE as CONTAINERS_TABLE
from fleetdeck.checks.containers.config import ContainerThresholds
from fleetdeck.checks.database.config import TABLE as DATABASE_TABLE
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.incidents import config as incidents_config
from fleetdeck.checks.services.config import TABLE as SERVICES_TABLE
from fleetdeck.checks.settings import (
    Limit,
    ResourceThresholds,
    SettingsTable,
    finite,
    value_error,
)
from fleetdeck.checks.sources.config import SourcesConfig, parse_sources
from fleetdeck.checks.storage.config import TABLE as STORAGE_TABLE
from fleetdeck.checks.storage.config import StorageConfig
from fleetdeck.hosts.inventory.limits import LimitError, load_toml, read_bounded

DOMAIN_TABLES: tuple[SettingsTable, ...] = (
    STORAGE_TABLE,
    DATABASE_TABLE,
    CONTAINERS_TABLE,
    SERVICES_TABLE,
)
"""Every domain's settings table, in the order the settings file is checked. This is the
settings half of the registration (`checks/catalog.py` holds the other, which loads the
checks); a test holds the two lists to the same domains."""


def _defaults() -> dict[str, object]:
    return {table.domain: table.parse({}, value_error) for table in DOMAIN_TABLES}


@dataclass(frozen=True, slots=True)
class Thresholds(ResourceThresholds):
    """The settings file's `[thresholds]`: the resource checks' numbers
    (`checks.settings.ResourceThresholds`) and the container checks' table."""

    containers: ContainerThresholds = field(default_factory=ContainerThresholds)
    """The container checks' thresholds, from `[thresholds.containers]` (also
    `Config.domains["containers"]`): here too, because the checks read them from
    `CheckContext.thresholds` wherever they run (the command line, the wizard screen)."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything read from the settings file."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    alert_for: float = 30.0
    domains: Mapping[str, object] = field(default_factory=_defaults)
    """Each domain's settings by domain name, as its `SettingsTable` parsed them."""
    incidents: incidents_config.IncidentSettings = field(
        default_factory=incidents_config.IncidentSettings
    )
    """Alert rules, response targets, flap damping and the state file, from `[alerts]`."""
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    """Prometheus and Alertmanager, from `[[sources.*]]`."""
    source: Path | None = None

    def with_domain(self, name: str, settings: object) -> Config:
        """A copy with one domain's settings replaced (a test's lowered thresholds)."""
        return replace(self, domains={**self.domains, name: settings})

    @property
    def storage(self) -> StorageConfig:
        """The storage checks' settings, from `[storage]`."""
        found = self.domains[STORAGE_TABLE.domain]
        assert isinstance(found, StorageConfig)
        return found

    @property
    def database(self) -> DbThresholds:
        """The PostgreSQL checks' thresholds, from `[thresholds.database]`."""
        found = self.domains[DATABASE_TABLE.domain]
        assert isinstance(found, DbThresholds)
        return found


class ConfigError(Exception):
    """A settings file that cannot be used; the message names file, line and key."""

    def __init__(self, path: Path, line: int | None, key: str | None, problem: str) -> None:
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("fleetdeck")) / "config.toml"


# [thresholds.NAME] tables and what each may hold.
_LEVEL_TABLES = ("cpu", "memory", "swap", "load", "disk", "inodes", "time_to_full")
_PERCENT_TABLES = {"cpu", "memory", "swap", "disk", "inodes"}
_EXTRA_KEYS = {"cpu": {"window"}}
_TOP_KEYS = {"thresholds", "alerts", "sources", *(t.path[0] for t in DOMAIN_TABLES)}
# Domain tables under [thresholds] ([thresholds.database]) and at the top ([storage]).
_UNDER_THRESHOLDS = {t.path[1]: t for t in DOMAIN_TABLES if t.path[0] == "thresholds"}
_AT_TOP = tuple(t for t in DOMAIN_TABLES if len(t.path) == 1)
_ALERT_KEYS = {"for"}


def load_config(path: Path | None = None, *, required: bool = False) -> Config:
    """Read the settings file; a missing default file means defaults, a missing given one is an
    error. Raises `ConfigError`."""
    target = path or default_config_path()
    try:
        text = read_bounded(target)
    except LimitError as error:
        raise ConfigError(target, None, None, error.problem) from None
    except FileNotFoundError:
        if required:
            raise ConfigError(target, None, None, "no such file") from None
        return Config()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(target, None, None, f"cannot read: {error}") from None
    return parse_config(text, target)


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML text into a `Config`; raises `ConfigError` at the first problem."""
    try:
        data = load_toml(text)
    except LimitError as error:
        raise ConfigError(path, error.line, None, error.problem) from None
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise ConfigError(
            path, int(match[1]) if match else None, None, f"TOML syntax: {problem}"
        ) from None

    def fail(dotted: str, problem: str) -> ConfigError:
        return ConfigError(path, _line_of(text, dotted), dotted, problem)

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown setting (known: {', '.join(sorted(_TOP_KEYS))})")
    thresholds = Thresholds()
    domains = _defaults()
    for name, table in _table(data, "thresholds", fail).items():
        if name in _UNDER_THRESHOLDS:
            domain = _UNDER_THRESHOLDS[name]
            domains[domain.domain] = domain.parse(table, fail)
            continue
        if name not in _LEVEL_TABLES:
            known = ", ".join((*_LEVEL_TABLES, *_UNDER_THRESHOLDS))
            raise fail(f"thresholds.{name}", f"unknown threshold (known: {known})")
        if not isinstance(table, dict):
            raise fail(f"thresholds.{name}", "expected a table such as [thresholds.cpu]")
        allowed = {"warn", "crit"} | _EXTRA_KEYS.get(name, set())
        for key, value in table.items():
            dotted = f"thresholds.{name}.{key}"
            if key not in allowed:
                raise fail(dotted, f"unknown key (known: {', '.join(sorted(allowed))})")
            if not finite(value) or value < 0:
                raise fail(dotted, f"expected a number >= 0, got {value!r}")
            if name in _PERCENT_TABLES and key != "window" and value > 100:
                raise fail(dotted, f"a percentage cannot be over 100, got {value!r}")
        level: Limit = getattr(thresholds, name)
        warn, crit = float(table.get("warn", level.warn)), float(table.get("crit", level.crit))
        new = replace(level, warn=warn, crit=crit)
        if new.falling and new.warn < new.crit:
            raise fail(
                f"thresholds.{name}.warn",
                f"warn ({new.warn:g}) is below crit ({new.crit:g}): fewer hours is worse",
            )
        if not new.falling and new.warn > new.crit:
            raise fail(
                f"thresholds.{name}.warn", f"warn ({new.warn:g}) is above crit ({new.crit:g})"
            )
        changes: dict[str, Any] = {name: new}
        thresholds = replace(thresholds, **changes)
        if "window" in table:
            thresholds = replace(thresholds, cpu_window=float(table["window"]))
    alert_for = Config().alert_for
    alerts = _table(data, "alerts", fail)
    for key, value in alerts.items():
        if key in incidents_config.KEYS:
            continue
        if key not in _ALERT_KEYS:
            known = ", ".join(sorted(_ALERT_KEYS | incidents_config.KEYS))
            raise fail(f"alerts.{key}", f"unknown key (known: {known})")
        if not finite(value) or value < 0:
            raise fail(f"alerts.{key}", f"expected seconds as a number >= 0, got {value!r}")
        alert_for = float(value)
    for domain in _AT_TOP:
        domains[domain.domain] = domain.parse(data.get(domain.path[0], {}), fail)
    containers = domains[CONTAINERS_TABLE.domain]
    assert isinstance(containers, ContainerThresholds)
    thresholds = replace(thresholds, containers=containers)
    return Config(
        thresholds=thresholds,
        alert_for=alert_for,
        domains=domains,
        incidents=incidents_config.parse_incident_settings(alerts, fail),
        sources=parse_sources(data.get("sources", {}), fail),
        source=path,
    )


def _table(data: dict[str, Any], name: str, fail: Any) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise fail(name, f"expected a table such as [{name}]")
    return value


def _line_of(text: str, dotted: str) -> int | None:
    """The line where a dotted key is set, found by following table headers.

    tomllib reports positions only for syntax errors, so for a well-formed file with a wrong
    key we find the line ourselves: under `[a.b]`, `c = ...` sets `a.b.c`; under the second
    `[[a.b]]`, it sets `a.b[1].c`.
    """
    table = ""
    best: int | None = None
    depth = 0  # how much of `dotted` the best line so far names: the longest match wins
    arrays: dict[str, int] = {}  # [[a.b]] headers seen: the Nth one is table `a.b[N]`
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if header := re.fullmatch(r"\[+\s*([^\]]+?)\s*\]+", line):
            table = ".".join(p.strip().strip("\"'") for p in header[1].split("."))
            if line.startswith("[["):
                arrays[table] = arrays.get(table, -1) + 1
                if table == dotted and best is None:  # the array itself: its first table
                    best, depth = number, len(table)
                table = f"{table}[{arrays[table]}]"
            named = table
        else:
            key, sep, _ = line.partition("=")
            if not sep:
                continue
            parts = [p.strip().strip("\"'") for p in key.split(".")]
            named = ".".join(([table] if table else []) + parts)
            if named == dotted:
                return number
        if (named == dotted or dotted.startswith(named + ".")) and len(named) > depth:
            best, depth = number, len(named)
    return best
