"""The `[services]` part of the settings file: units, logs, and how to recover a unit.

    [services]                          # every host
    units = ["nginx", "postgresql@15-main"]   # important: CRIT when not active (services.units)
    restarts = 3                        # NRestarts from which a recently started unit flaps
    flap_minutes = 10                   # "recently": its last start within this many minutes
    log_minutes = 15                    # services.logs reads error lines of the last N minutes
    log_warn = 1                        # error lines from which services.logs is WARN
    log_crit = 200                      # ... and CRIT
    log_files = ["/var/log/app/error.log"]  # read instead of the journal on hosts without one

    [[services.recovery]]               # the service wizard, for one unit
    unit = "app"
    ports = ["db.internal:5432"]        # what it must reach (the network wizard's connect step)
    disks = ["/var/lib/app"]            # mounts it uses (the storage wizard's mounts step)
    clean = [                           # clean-state commands, each run through the gate
      { run = ["rm", "-f", "/var/lib/app/stale.lock"], check = [
          "test", "!", "-e", "/var/lib/app/stale.lock"] },
    ]                                   # (TOML: an inline table breaks only inside a value)

    [services.groups.web]               # hosts in the group (or with the tag) "web"
    units = ["nginx"]

    [services.hosts.web-01]             # one host
    units = ["php8.2-fpm"]

Lists add up from `[services]` through the host's groups to the host; a single value comes
from the most specific table; a recovery entry for a unit replaces one made for it further
up. Clean-state commands are argv lists, never shell text: they reach the host as separate
arguments. Each has a `check`, a command that exits 0 once the state is clean, which shows
whether the command is needed and verifies it after it ran.

Keys of `[services]` that other settings modules read (the endpoint probes': `PROBE_KEYS`,
`checks/services/probe_config.py`) are passed in `leave`, so this module neither reads nor
refuses them; `TABLE` reads both halves into one `ServicesConfig`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from fleetdeck.checks.services.health_config import HEALTH, health_param
from fleetdeck.checks.services.probe_config import PROBE_KEYS, ProbeConfig, parse_probes
from fleetdeck.checks.settings import Fail, SettingsTable, for_host, parse_per_host
from fleetdeck.hosts.linux.systemd import parse_unit_name

DEFAULT_RESTARTS = 3
DEFAULT_FLAP_MINUTES = 10.0
DEFAULT_LOG_MINUTES = 15.0
DEFAULT_LOG_WARN = 1
DEFAULT_LOG_CRIT = 200
MAX_ARGV = 64
"""Arguments in one clean-state command; a longer one is a mistake in the file."""


def parse_endpoint(text: str) -> str:
    """HOST:PORT (or [v6]:PORT), as the network wizard's `--target` takes it."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdecimal() or not 1 <= int(port) <= 65535:
        raise ValueError("give HOST:PORT, such as db.internal:5432")
    if any(c.isspace() for c in host) or host.startswith("-"):
        raise ValueError("a host name or address without spaces")
    return f"{host}:{int(port)}"


def parse_mount(text: str) -> str:
    path = text.strip()
    if not path.startswith("/") or any(c in path for c in "\n\r\0"):
        raise ValueError("give an absolute path")
    return path.rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class Clean:
    """One clean-state command and the command that tells whether it is needed."""

    run: tuple[str, ...]
    check: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the service wizard needs to know about one unit."""

    unit: str
    ports: tuple[str, ...] = ()
    disks: tuple[str, ...] = ()
    clean: tuple[Clean, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "ports": list(self.ports),
            "disks": list(self.disks),
            "clean": [{"run": list(c.run), "check": list(c.check)} for c in self.clean],
        }


def parse_recovery(text: str) -> str:
    """The service wizard's `recovery` parameter: the host's recovery entries as a JSON list
    (the settings file gives it; `--recovery` takes the same), checked and normalised."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("recovery entries as a JSON list") from None
    if not isinstance(data, list):
        raise ValueError("recovery entries as a JSON list")
    entries = [_recovery(v, f"recovery[{i}]", _value_error) for i, v in enumerate(data)]
    return json.dumps([entry.to_dict() for entry in entries])


def _value_error(key: str, problem: str) -> Exception:
    return ValueError(f"{key}: {problem}")


def recoveries(text: str) -> dict[str, Recovery]:
    """The `recovery` parameter (as `parse_recovery` gave it back) by unit."""
    found = {}
    for data in json.loads(text) if text else []:
        clean = tuple(Clean(tuple(c["run"]), tuple(c["check"])) for c in data["clean"])
        entry = Recovery(data["unit"], tuple(data["ports"]), tuple(data["disks"]), clean)
        found[entry.unit] = entry
    return found


@dataclass(frozen=True, slots=True)
class ServicesSettings:
    """One host's services settings, all tables merged; None: the default."""

    units: tuple[str, ...] = ()
    restarts: int | None = None
    flap_minutes: float | None = None
    log_minutes: float | None = None
    log_warn: int | None = None
    log_crit: int | None = None
    log_files: tuple[str, ...] = ()
    recovery: Mapping[str, Recovery] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """As the checks' and the service wizard's parameters (strings, lists one per line)."""
        found = {
            "units": "".join(f"{u}\n" for u in self.units),
            "restarts": str(self.restarts or DEFAULT_RESTARTS),
            "flap_minutes": f"{self.flap_minutes or DEFAULT_FLAP_MINUTES:g}",
            "log_minutes": f"{self.log_minutes or DEFAULT_LOG_MINUTES:g}",
            "log_warn": str(self.log_warn or DEFAULT_LOG_WARN),
            "log_crit": str(self.log_crit or DEFAULT_LOG_CRIT),
            "log_files": "".join(f"{p}\n" for p in self.log_files),
        }
        if self.recovery:
            found["recovery"] = json.dumps([r.to_dict() for r in self.recovery.values()])
        return {key: value for key, value in found.items() if value}


@dataclass(frozen=True, slots=True)
class ServicesConfig:
    """`[services]` with its per-group and per-host tables."""

    everyone: ServicesSettings = field(default_factory=ServicesSettings)
    groups: Mapping[str, ServicesSettings] = field(default_factory=dict)
    hosts: Mapping[str, ServicesSettings] = field(default_factory=dict)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    """The probes' keys (`http`, `tls`, `security`, `limits`), per group and host too."""

    def for_host(self, name: str, labels: Sequence[str] = ()) -> ServicesSettings:
        """The settings of one host: its groups (and tags) in order, then its own table."""
        return for_host(self.everyone, self.groups, self.hosts, _merge, name, labels)


def _merge(merged: ServicesSettings, layer: ServicesSettings) -> ServicesSettings:
    return ServicesSettings(
        units=tuple(dict.fromkeys((*merged.units, *layer.units))),
        restarts=layer.restarts or merged.restarts,
        flap_minutes=layer.flap_minutes or merged.flap_minutes,
        log_minutes=layer.log_minutes or merged.log_minutes,
        log_warn=layer.log_warn or merged.log_warn,
        log_crit=layer.log_crit or merged.log_crit,
        log_files=tuple(dict.fromkeys((*merged.log_files, *layer.log_files))),
        recovery={**merged.recovery, **layer.recovery},
    )


_NUMBERS: dict[str, tuple[type, float, float]] = {
    "restarts": (int, 1, 1_000_000),
    "flap_minutes": (float, 0.1, 10_080),
    "log_minutes": (float, 0.1, 10_080),
    "log_warn": (int, 1, 10_000_000),
    "log_crit": (int, 1, 10_000_000),
}
_KEYS = ("units", "log_files", "recovery", *_NUMBERS)


def parse_services(table: object, fail: Fail, leave: Collection[str] = ()) -> ServicesConfig:
    """Validate `[services]`; `fail(dotted_key, problem)` builds the error to raise; keys in
    `leave` belong to another settings module (see the module's docstring)."""
    parse = partial(_settings, fail=fail)
    return ServicesConfig(*parse_per_host(table, "services", fail, parse, leave))


def _settings(table: dict[str, Any], where: str, fail: Fail) -> ServicesSettings:
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key == "units":
            values[key] = _list(value, dotted, fail, parse_unit_name, "unit names")
        elif key == "log_files":
            values[key] = _list(value, dotted, fail, parse_mount, "absolute paths")
        elif key == "recovery":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise fail(dotted, "expected [[services.recovery]] tables")
            entries = [_recovery(v, f"{dotted}[{i}]", fail) for i, v in enumerate(value)]
            values[key] = {entry.unit: entry for entry in entries}
        elif key in _NUMBERS:
            kind, low, high = _NUMBERS[key]
            number_ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not number_ok or (kind is int and not isinstance(value, int)):
                raise fail(dotted, f"expected a number from {low:g} to {high:g}, got {value!r}")
            if not low <= value <= high:
                raise fail(dotted, f"expected a number from {low:g} to {high:g}, got {value!r}")
            values[key] = kind(value)
        else:
            raise fail(dotted, f"unknown key (known: {', '.join(_KEYS)}, groups, hosts)")
    return ServicesSettings(**values)


def _list(
    value: object, dotted: str, fail: Fail, parse: Callable[[str], str], what: str
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(dotted, f"expected a list of {what}, got {value!r}")
    parsed = []
    for item in value:
        try:
            parsed.append(parse(item))
        except ValueError as error:
            raise fail(dotted, f"{error}, got {item!r}") from None
    return tuple(dict.fromkeys(parsed))


def _recovery(value: object, dotted: str, fail: Fail) -> Recovery:
    if not isinstance(value, dict):
        raise fail(dotted, "expected a table with unit, ports, disks, clean")
    unknown = set(value) - {"unit", "ports", "disks", "clean"}
    if unknown:
        raise fail(
            f"{dotted}.{sorted(unknown)[0]}", "unknown key (known: unit, ports, disks, clean)"
        )
    unit = value.get("unit")
    if not isinstance(unit, str):
        raise fail(f"{dotted}.unit", "expected the unit's name")
    try:
        name = parse_unit_name(unit)
    except ValueError as error:
        raise fail(f"{dotted}.unit", f"{error}, got {unit!r}") from None
    clean = value.get("clean", [])
    if not isinstance(clean, list):
        raise fail(f"{dotted}.clean", "expected a list of { run = [...], check = [...] }")
    return Recovery(
        unit=name,
        ports=_list(value.get("ports", []), f"{dotted}.ports", fail, parse_endpoint, "HOST:PORT"),
        disks=_list(value.get("disks", []), f"{dotted}.disks", fail, parse_mount, "mounts"),
        clean=tuple(_clean(c, f"{dotted}.clean[{i}]", fail) for i, c in enumerate(clean)),
    )


def _clean(value: object, dotted: str, fail: Fail) -> Clean:
    if not isinstance(value, dict) or set(value) != {"run", "check"}:
        raise fail(dotted, "expected { run = [argv...], check = [argv...] }")
    argvs = []
    for key in ("run", "check"):
        argv = value[key]
        ok = isinstance(argv, list) and all(isinstance(a, str) and "\0" not in a for a in argv)
        if not ok or not 1 <= len(argv) <= MAX_ARGV or argv[0].startswith("-"):
            raise fail(
                f"{dotted}.{key}", f"expected a command as a list of arguments, got {argv!r}"
            )
        argvs.append(tuple(argv))
    return Clean(argvs[0], argvs[1])


def _parse(table: object, fail: Fail) -> ServicesConfig:
    """Both halves of `[services]`: the units' and logs' keys here, the probes' in
    `probe_config`."""
    return replace(parse_services(table, fail, PROBE_KEYS), probes=parse_probes(table, fail))


def _params(settings: object, host: str, labels: Sequence[str]) -> dict[str, str]:
    """The host's `[services]` parameters, with its endpoints that name a unit as `health`
    (what the units check and the service wizard verify a restart or start by)."""
    assert isinstance(settings, ServicesConfig)
    params = settings.for_host(host, labels).params()
    health = health_param(settings.probes.for_host(host, labels).http)
    return {**params, HEALTH: health} if health else params


TABLE = SettingsTable("services", ("services",), _parse, _params)
"""`[services]`: the services domain's settings (a `ServicesConfig`)."""
