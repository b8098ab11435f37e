"""The `[storage]` part of the settings file: what each host's storage checks look at.

    [storage]                      # every host
    mounts = ["/", "/var"]         # mounts that must be there (disk.mounts)
    backups = ["/srv/backup/*.gz"] # backup directories or directory/pattern (backup.files)
    backup_max_age = 24            # hours before the newest backup is stale
    logs = "/var/log/app"          # where old logs may be removed or compressed
    log_days = 7                   # how long a log is kept
    journal_days = 14              # how much of the journal a vacuum keeps
    usage = "/var"                 # where disk.usage looks first (else the fullest mount)

    [storage.groups.db]            # hosts in the inventory group (or with the tag) "db"
    mounts = ["/var/lib/postgresql"]

    [storage.hosts.web-01]         # one host
    backups = ["/srv/www-backup"]

Lists add up, from `[storage]` through each group the host is in to the host itself; a
single value comes from the most specific table that sets it. Each value is checked when the
file is read, by the same parser the storage wizard gives its parameter (here or in
`checks.storage.cleanup`), so a value the wizard would refuse is an error naming file, line and key.
Paths must be absolute; they only ever reach a host as separate command arguments, never
inside a shell string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fleetdeck.checks.settings import Fail, SettingsTable, first, for_host, parse_per_host

# -- the wizard's parsers of paths, days and hours (its steps and the settings file use these) --


def parse_path(text: str) -> str:
    """An absolute path on one line; a trailing slash is dropped (`/srv/` is `/srv`)."""
    path = text.strip()
    if not path.startswith("/") or any(c in path for c in "\n\r\0"):
        raise ValueError("give an absolute path")
    return path.rstrip("/") or "/"


def parse_directory(text: str) -> str:
    """An absolute directory other than / (old files in it may be removed)."""
    path = text.strip().rstrip("/") or "/"
    if not path.startswith("/") or "\n" in path or path == "/":
        raise ValueError("give an absolute directory other than /")
    return path


def parse_days(text: str) -> str:
    if not text.isdecimal() or not 1 <= int(text) <= 3650:
        raise ValueError("a number of days from 1 to 3650")
    return str(int(text))


def parse_backup_path(text: str) -> str:
    """An absolute directory, or an absolute directory and a file pattern (`/srv/db/*.gz`)."""
    path = text.strip()
    if not path.startswith("/") or any(c in path for c in "\n\r\0"):
        raise ValueError("give an absolute path, optionally ending in a pattern like *.gz")
    if any(c in path.rsplit("/", 1)[0] for c in "*?["):
        raise ValueError("only the last part of the path may be a pattern")
    return path


def parse_hours(text: str) -> str:
    try:
        hours = float(text)
    except ValueError:
        raise ValueError("a number of hours, such as 24 or 1.5") from None
    if not 0.01 <= hours <= 24 * 3650:  # nan is never in range
        raise ValueError("a number of hours from 0.01 to 87600")
    return f"{hours:g}"


# -- the settings ---------------------------------------------------------------------------

LIST_KEYS: dict[str, Callable[[str], str]] = {"mounts": parse_path, "backups": parse_backup_path}
TEXT_KEYS: dict[str, Callable[[str], str]] = {"logs": parse_directory, "usage": parse_path}
NUMBER_KEYS = ("backup_max_age", "log_days", "journal_days")
KEYS = (*LIST_KEYS, *TEXT_KEYS, *NUMBER_KEYS)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """What one host's storage checks look at, all tables merged."""

    mounts: tuple[str, ...] = ()
    backups: tuple[str, ...] = ()
    backup_max_age: float | None = None
    logs: str | None = None
    log_days: int | None = None
    journal_days: int | None = None
    usage: str | None = None

    def params(self) -> dict[str, str]:
        """As the storage wizard's parameters. A list is one item per line, each line ending
        in a line break, even a list of one: `Wizard.parse_params` then splits it at line
        breaks only, so a comma in a path stays in it."""
        found = {
            "mounts": "".join(f"{path}\n" for path in self.mounts),
            "backups": "".join(f"{path}\n" for path in self.backups),
            "backup_age": f"{self.backup_max_age:g}" if self.backup_max_age is not None else "",
            "logs": self.logs or "",
            "older": str(self.log_days) if self.log_days is not None else "",
            "journal_days": str(self.journal_days) if self.journal_days is not None else "",
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
        return for_host(self.everyone, self.groups, self.hosts, _merge, name, labels)


def _merge(merged: StorageSettings, layer: StorageSettings) -> StorageSettings:
    return StorageSettings(
        mounts=tuple(dict.fromkeys((*merged.mounts, *layer.mounts))),
        backups=tuple(dict.fromkeys((*merged.backups, *layer.backups))),
        backup_max_age=first(layer.backup_max_age, merged.backup_max_age),
        logs=first(layer.logs, merged.logs),
        log_days=first(layer.log_days, merged.log_days),
        journal_days=first(layer.journal_days, merged.journal_days),
        usage=first(layer.usage, merged.usage),
    )


def parse_storage(table: object, fail: Fail) -> StorageConfig:
    """Validate the `[storage]` table; `fail(dotted_key, problem)` builds the error to raise."""
    return StorageConfig(*parse_per_host(table, "storage", fail, partial(_settings, fail=fail)))


def _settings(table: dict[str, Any], where: str, fail: Fail) -> StorageSettings:
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key not in KEYS:
            raise fail(dotted, f"unknown key (known: {', '.join(KEYS)})")
        if key in LIST_KEYS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(dotted, f"expected a list of absolute paths, got {value!r}")
            values[key] = tuple(_parsed(LIST_KEYS[key], v, dotted, fail) for v in value)
        elif key in TEXT_KEYS:
            if not isinstance(value, str):
                raise fail(dotted, f"expected an absolute path, got {value!r}")
            values[key] = _parsed(TEXT_KEYS[key], value, dotted, fail)
        elif key in ("log_days", "journal_days"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail(dotted, f"expected a whole number of days from 1 to 3650, got {value!r}")
            values[key] = int(_parsed(parse_days, value, dotted, fail))
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(dotted, f"expected a number of hours from 0.01 to 87600, got {value!r}")
            _parsed(parse_hours, value, dotted, fail)
            values[key] = float(value)
    return StorageSettings(**values)


def _parsed(parse: Callable[[str], str], value: object, dotted: str, fail: Fail) -> str:
    """The value as the wizard's parser gives it back, or its refusal as a settings error."""
    try:
        return parse(str(value))
    except ValueError as error:
        raise fail(dotted, f"{error}, got {value!r}") from None


def _params(settings: object, host: str, labels: Sequence[str]) -> dict[str, str]:
    assert isinstance(settings, StorageConfig)
    return settings.for_host(host, labels).params()


TABLE = SettingsTable("storage", ("storage",), parse_storage, _params)
"""`[storage]`: the storage domain's settings (a `StorageConfig`)."""
