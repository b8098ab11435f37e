"""fleetdeck's own settings file: thresholds and alert timing, validated line by line.

The file is TOML, by default `config.toml` in the user's config directory. Every error names
the file, the line and the key, and a file with any error is refused whole: the console never
starts on half a configuration. It is read within `hosts.inventory.limits` (size, nesting depth).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from fleetdeck.checks.containers.config import ContainerThresholds, parse_container_thresholds
from fleetdeck.checks.database.config import DbThresholds, parse_db_thresholds
from fleetdeck.checks.services.config import ServicesConfig, parse_services
from fleetdeck.checks.settings import Level, finite
from fleetdeck.checks.storage.config import StorageConfig, parse_storage
from fleetdeck.hosts.inventory.limits import LimitError, load_toml, read_bounded


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The numbers the resource checks compare against (defaults from runbook R04)."""

    cpu: Level = Level(70, 90)
    cpu_window: float = 60.0
    memory: Level = Level(80, 90)
    swap: Level = Level(10, 50)
    load: Level = Level(1.0, 2.0)
    disk: Level = Level(80, 90)
    inodes: Level = Level(80, 90)
    time_to_full: Level = Level(24, 4)
    """Hours until a filesystem fills, at its recent rate: fewer is worse (warn > crit)."""
    containers: ContainerThresholds = field(default_factory=ContainerThresholds)
    """The container checks' thresholds, from `[thresholds.containers]`: here rather than
    beside `Config.database`, because the checks read them from `CheckContext.thresholds`
    wherever they run (the command line, the console's wizard screen)."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything read from the settings file."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    alert_for: float = 30.0
    storage: StorageConfig = field(default_factory=StorageConfig)
    services: ServicesConfig = field(default_factory=ServicesConfig)
    database: DbThresholds = field(default_factory=DbThresholds)
    """The PostgreSQL checks' thresholds, from `[thresholds.database]`."""
    source: Path | None = None


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
_FALLING_TABLES = {"time_to_full"}  # lower is worse: warn must be above crit
_DATABASE_TABLE = "database"  # [thresholds.database]: checks.database.config reads it
_CONTAINERS_TABLE = "containers"  # [thresholds.containers]: checks.containers.config reads it
_PERCENT_TABLES = {"cpu", "memory", "swap", "disk", "inodes"}
_EXTRA_KEYS = {"cpu": {"window"}}
_TOP_KEYS = {"thresholds", "alerts", "storage", "services"}
_SERVICES_PROBE_KEYS = {"http", "tls", "security", "limits"}
"""[services] keys the endpoint probes' settings module reads (not parse_services)."""
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
    database = DbThresholds()
    for name, table in _table(data, "thresholds", fail).items():
        if name == _DATABASE_TABLE:
            database = parse_db_thresholds(table, fail)
            continue
        if name == _CONTAINERS_TABLE:
            containers = parse_container_thresholds(table, fail)
            thresholds = replace(thresholds, containers=containers)
            continue
        if name not in _LEVEL_TABLES:
            known = ", ".join((*_LEVEL_TABLES, _DATABASE_TABLE, _CONTAINERS_TABLE))
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
        level: Level = getattr(thresholds, name)
        new = Level(float(table.get("warn", level.warn)), float(table.get("crit", level.crit)))
        if name in _FALLING_TABLES and new.warn < new.crit:
            raise fail(
                f"thresholds.{name}.warn",
                f"warn ({new.warn:g}) is below crit ({new.crit:g}): fewer hours is worse",
            )
        if name not in _FALLING_TABLES and new.warn > new.crit:
            raise fail(
                f"thresholds.{name}.warn", f"warn ({new.warn:g}) is above crit ({new.crit:g})"
            )
        changes: dict[str, Any] = {name: new}
        thresholds = replace(thresholds, **changes)
        if "window" in table:
            thresholds = replace(thresholds, cpu_window=float(table["window"]))
    alert_for = Config().alert_for
    for key, value in _table(data, "alerts", fail).items():
        if key not in _ALERT_KEYS:
            raise fail(f"alerts.{key}", "unknown key (known: for)")
        if not finite(value) or value < 0:
            raise fail(f"alerts.{key}", f"expected seconds as a number >= 0, got {value!r}")
        alert_for = float(value)
    storage = parse_storage(data.get("storage", {}), fail)
    services = parse_services(data.get("services", {}), fail, _SERVICES_PROBE_KEYS)
    return Config(
        thresholds=thresholds,
        alert_for=alert_for,
        storage=storage,
        services=services,
        database=database,
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
    key we find the line ourselves: under `[a.b]`, `c = ...` sets `a.b.c`.
    """
    table = ""
    best: int | None = None
    depth = 0  # how much of `dotted` the best line so far names: the longest match wins
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if header := re.fullmatch(r"\[+\s*([^\]]+?)\s*\]+", line):
            table = ".".join(p.strip().strip("\"'") for p in header[1].split("."))
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
