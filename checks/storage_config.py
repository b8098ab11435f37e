"""The `[storage]` part of the settings file: what each host's storage checks look at.

    [storage]                      # every host
    mounts = ["/", "/var"]         # mounts that must be there (disk.mounts)
    backups = ["/srv/backup/*.gz"] # backup directories or directory/pattern (backup.files)
    backup_max_age = 24            # hours before the newest backup is stale
    logs = "/var/log/app"          # where old logs may be removed or compressed
    log_days = 7                   # how long a log is kept
    usage = "/var"                 # where disk.usage looks first (else the fullest mount)

    [storage.groups.db]            # hosts in the inventory group (or with the tag) "db"
    mounts = ["/var/lib/postgresql"]

    [storage.hosts.web-01]         # one host
    backups = ["/srv/www-backup"]

Lists add up, from `[storage]` through each group the host is in to the host itself; a
single value comes from the most specific table that sets it. Paths must be absolute; they
only ever reach a host as separate command arguments, never inside a shell string.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

LIST_KEYS = ("mounts", "backups")
TEXT_KEYS = ("logs", "usage")
NUMBER_KEYS = {"backup_max_age": (0.01, 24 * 3650), "log_days": (1, 3650)}
KEYS = (*LIST_KEYS, *TEXT_KEYS, *NUMBER_KEYS)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """What one host's storage checks look at, all tables merged."""

    mounts: tuple[str, ...] = ()
    backups: tuple[str, ...] = ()
    backup_max_age: float | None = None
    logs: str | None = None
    log_days: int | None = None
    usage: str | None = None

    def params(self) -> dict[str, str]:
        """As the storage wizard's parameters (lists one item per line)."""
        found = {
            "mounts": "\n".join(self.mounts),
            "backups": "\n".join(self.backups),
            "backup_age": f"{self.backup_max_age:g}" if self.backup_max_age is not None else "",
            "logs": self.logs or "",
            "older": str(self.log_days) if self.log_days is not None else "",
            "usage": self.usage or "",
        }
        return {key: value for key, value in found.items() if value}


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """`[storage]` with its per-group and per-host tables."""

    everyone: StorageSettings = field(default_factory=StorageSettings)
    groups: Mapping[str, StorageSettings] = field(default_factory=dict)
    hosts: Mapping[str, StorageSettings] = field(default_factory=dict)

    def for_host(self, name: str, labels: Sequence[str] = ()) -> StorageSettings:
        """The settings of one host: its groups (and tags) in order, then its own table."""
        merged = self.everyone
        layers = [self.groups[label] for label in labels if label in self.groups]
        if name in self.hosts:
            layers.append(self.hosts[name])
        for layer in layers:
            merged = StorageSettings(
                mounts=tuple(dict.fromkeys((*merged.mounts, *layer.mounts))),
                backups=tuple(dict.fromkeys((*merged.backups, *layer.backups))),
                backup_max_age=_first(layer.backup_max_age, merged.backup_max_age),
                logs=_first(layer.logs, merged.logs),
                log_days=_first(layer.log_days, merged.log_days),
                usage=_first(layer.usage, merged.usage),
            )
        return merged


T = TypeVar("T")


def _first(value: T | None, fallback: T | None) -> T | None:
    return value if value is not None else fallback


Fail = Callable[[str, str], Exception]


def parse_storage(table: object, fail: Fail) -> StorageConfig:
    """Validate the `[storage]` table; `fail(dotted_key, problem)` builds the error to raise."""
    if not isinstance(table, dict):
        raise fail("storage", "expected a table such as [storage]")
    everyone = _settings(
        {k: v for k, v in table.items() if k not in ("groups", "hosts")}, "storage", fail
    )
    nested: dict[str, dict[str, StorageSettings]] = {"groups": {}, "hosts": {}}
    for kind, found in nested.items():
        entries = table.get(kind, {})
        if not isinstance(entries, dict):
            raise fail(f"storage.{kind}", f"expected tables such as [storage.{kind}.NAME]")
        for name, entry in entries.items():
            dotted = f"storage.{kind}.{name}"
            if not isinstance(entry, dict):
                raise fail(dotted, f"expected a table such as [{dotted}]")
            found[name] = _settings(entry, dotted, fail)
    return StorageConfig(everyone, nested["groups"], nested["hosts"])


def _settings(table: dict[str, Any], where: str, fail: Fail) -> StorageSettings:
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key not in KEYS:
            raise fail(dotted, f"unknown key (known: {', '.join(KEYS)})")
        if key in LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(dotted, f"expected a list of absolute paths, got {value!r}")
            values[key] = tuple(_path(v, dotted, fail) for v in value)
        elif key in TEXT_KEYS:
            if not isinstance(value, str):
                raise fail(dotted, f"expected an absolute path, got {value!r}")
            values[key] = _path(value, dotted, fail)
        else:
            low, high = NUMBER_KEYS[key]
            if not _number_between(value, low, high):
                raise fail(dotted, f"expected a number from {low:g} to {high:g}, got {value!r}")
            values[key] = int(value) if key == "log_days" else float(value)
    return StorageSettings(**values)


def _number_between(value: object, low: float, high: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and low <= value <= high


def _path(value: str, dotted: str, fail: Fail) -> str:
    path = value.strip()
    if not path.startswith("/") or any(c in path for c in "\n\r\0"):
        raise fail(dotted, f"expected an absolute path on one line, got {value!r}")
    return path.rstrip("/") or "/"
