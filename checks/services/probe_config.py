"""The probes' part of the `[services]` settings table: HTTP health endpoints, TLS
certificates, the security review's thresholds and logs, and the limits' thresholds.

    [[services.http]]                          # every host
    url = "http://127.0.0.1:8080/health"       # asked from the host itself
    expect = 200                               # the status that is healthy (default 200)
    body = "ok"                                # text the body must hold (optional)
    warn_ms = 500                              # slower than this is WARN (default 500)
    crit_ms = 2000                             # slower than this is CRIT (default 2000)
    unit = "app"                               # the systemd unit it belongs to (optional):
                                               # a restart or start of it is verified by
                                               # this endpoint answering too

    [[services.tls]]                           # a TLS endpoint, asked from the host
    endpoint = "127.0.0.1:8443"                # HOST:PORT
    name = "api.example.com"                   # SNI and the name the certificate must cover
    ca_file = "/etc/ssl/private-ca.pem"        # trust this CA too (optional)
    warn_days = 30                             # default 30
    crit_days = 7                              # default 7

    [[services.tls]]                           # certificate files on the host
    files = ["/etc/nginx/tls/*.pem"]           # absolute paths; the last part may be a glob

    [services.security]
    failed_logins = { warn = 20, crit = 100 }  # failed SSH logins in the last hour
    auth_logs = ["/var/log/auth.log"]          # read when the host has no journal
    access_logs = ["/var/log/nginx/access.log"]
    denied = { warn = 100, crit = 500 }        # 401 and 403 answers in the last hour

    [services.limits]                          # percent used of each limit
    fds = { warn = 80, crit = 95 }             # a process's open files vs its soft limit
    file_nr = { warn = 80, crit = 95 }         # fs.file-nr vs fs.file-max
    conntrack = { warn = 80, crit = 95 }       # nf_conntrack_count vs nf_conntrack_max

    [services.groups.web]                      # hosts in the group (or with the tag) "web"
    [[services.groups.web.http]]
    url = "https://127.0.0.1/health"

    [services.hosts.web-01.limits]             # one host
    fds = { warn = 60, crit = 90 }

Endpoints and files add up from `[services]` through each group to the host; a threshold
comes from the most specific table that sets it. The `[services]` table's other keys (units,
logs, ...) are `checks/services/config.py`'s: `parse_probes` reads only `PROBE_KEYS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from fleetdeck.checks.settings import (
    Fail,
    Limit,
    finite,
    first,
    for_host,
    parse_pair,
    parse_per_host,
)
from fleetdeck.hosts.linux.systemd import parse_unit_name

PROBE_KEYS = ("http", "tls", "security", "limits")
HTTP_KEYS = ("url", "expect", "body", "warn_ms", "crit_ms", "unit")
TLS_KEYS = ("endpoint", "name", "ca_file", "files", "warn_days", "crit_days")
SECURITY_KEYS = ("failed_logins", "denied", "auth_logs", "access_logs")
LIMITS_KEYS = ("fds", "file_nr", "conntrack")

FAILED_LOGINS = Limit(20, 100)
DENIED = Limit(100, 500)
AUTH_LOGS = ("/var/log/auth.log", "/var/log/secure")
PERCENT_USED = Limit(80, 95)


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """One health endpoint and what a healthy answer is."""

    url: str
    expect: int = 200
    body: str = ""
    warn_ms: float = 500.0
    crit_ms: float = 2000.0
    unit: str = ""
    """The systemd unit that serves it (its full name), or "": its fixes are verified by it."""


@dataclass(frozen=True, slots=True)
class TlsTarget:
    """A TLS endpoint (`endpoint` HOST:PORT, SNI `name`) or certificate files (`files`)."""

    endpoint: str = ""
    name: str = ""
    ca_file: str = ""
    files: tuple[str, ...] = ()
    warn_days: float = 30.0
    crit_days: float = 7.0


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """The security review's thresholds and logs; None: not set at this level."""

    failed_logins: Limit | None = None
    denied: Limit | None = None
    auth_logs: tuple[str, ...] | None = None
    access_logs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Percent-used thresholds of each limit; None: not set at this level."""

    fds: Limit | None = None
    file_nr: Limit | None = None
    conntrack: Limit | None = None


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """What one host's probes look at, all tables merged."""

    http: tuple[HttpEndpoint, ...] = ()
    tls: tuple[TlsTarget, ...] = ()
    security: SecuritySettings = field(default_factory=SecuritySettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """The probes' keys of `[services]`, with its per-group and per-host tables."""

    everyone: ProbeSettings = field(default_factory=ProbeSettings)
    groups: Mapping[str, ProbeSettings] = field(default_factory=dict)
    hosts: Mapping[str, ProbeSettings] = field(default_factory=dict)

    def for_host(self, name: str, labels: Sequence[str] = ()) -> ProbeSettings:
        """The settings of one host: its groups (and tags) in order, then its own table."""
        return for_host(self.everyone, self.groups, self.hosts, _merge, name, labels)


def _merge(merged: ProbeSettings, layer: ProbeSettings) -> ProbeSettings:
    s, m = layer.security, merged.security
    lim, mlim = layer.limits, merged.limits
    return ProbeSettings(
        http=tuple(dict.fromkeys((*merged.http, *layer.http))),
        tls=tuple(dict.fromkeys((*merged.tls, *layer.tls))),
        security=SecuritySettings(
            first(s.failed_logins, m.failed_logins),
            first(s.denied, m.denied),
            first(s.auth_logs, m.auth_logs),
            tuple(dict.fromkeys((*m.access_logs, *s.access_logs))),
        ),
        limits=LimitsSettings(
            first(lim.fds, mlim.fds),
            first(lim.file_nr, mlim.file_nr),
            first(lim.conntrack, mlim.conntrack),
        ),
    )


def parse_probes(table: object, fail: Fail) -> ProbeConfig:
    """The probes' keys of the `[services]` table (others are left to its other reader);
    `fail(dotted_key, problem)` builds the error to raise."""
    return ProbeConfig(*parse_per_host(table, "services", fail, partial(_settings, fail=fail)))


def _settings(table: dict[str, Any], where: str, fail: Fail) -> ProbeSettings:
    http = _array(table.get("http", []), f"{where}.http", fail)
    tls = _array(table.get("tls", []), f"{where}.tls", fail)
    return ProbeSettings(
        http=tuple(parse_http(e, f"{where}.http[{i}]", fail) for i, e in enumerate(http)),
        tls=tuple(_tls(e, f"{where}.tls[{i}]", fail) for i, e in enumerate(tls)),
        security=_security(table.get("security", {}), f"{where}.security", fail),
        limits=_limits(table.get("limits", {}), f"{where}.limits", fail),
    )


def _array(value: object, dotted: str, fail: Fail) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise fail(dotted, f"expected tables such as [[{dotted}]], got {value!r}")
    return value


def _known(table: object, keys: Sequence[str], dotted: str, fail: Fail) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise fail(dotted, f"expected a table such as [{dotted}]")
    for key in table:
        if key not in keys:
            raise fail(f"{dotted}.{key}", f"unknown key (known: {', '.join(keys)})")
    return table


def parse_url(text: str) -> str:
    """An http:// or https:// URL with a host, on one line."""
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c in text for c in "\n\r\0 ")
    ):
        raise ValueError("expected an http:// or https:// URL with a host, without spaces")
    return text


def parse_endpoint(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [ADDR]:PORT) into its parts."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdecimal() or not 1 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT (IPv6 as [ADDR]:PORT)")
    if any(c.isspace() or c in "/\0" for c in host) or host.startswith("-"):
        raise ValueError("not a host name or address")
    return host, int(port)


def parse_pattern(text: str) -> str:
    """An absolute path whose last part may be a glob (`/etc/ssl/*.pem`)."""
    if not text.startswith("/") or any(c in text for c in "\n\r\0"):
        raise ValueError("expected an absolute path")
    if any(c in text.rsplit("/", 1)[0] for c in "*?["):
        raise ValueError("only the last part of the path may be a pattern")
    return text


def _checked(parse: Callable[[str], object], value: object, dotted: str, fail: Fail) -> None:
    if not isinstance(value, str):
        raise fail(dotted, f"expected text, got {value!r}")
    try:
        parse(value)
    except ValueError as error:
        raise fail(dotted, f"{error}, got {value!r}") from None


def _number(value: object, dotted: str, fail: Fail, low: float, high: float) -> float:
    if not finite(value) or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise fail(dotted, f"expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def parse_http(entry: dict[str, Any], dotted: str, fail: Fail) -> HttpEndpoint:
    """One `[[services.http]]` table, checked; also how the `health` parameter is read back."""
    _known(entry, HTTP_KEYS, dotted, fail)
    if "url" not in entry:
        raise fail(f"{dotted}.url", "missing: the endpoint's URL")
    _checked(parse_url, entry["url"], f"{dotted}.url", fail)
    found = HttpEndpoint(entry["url"])
    if "expect" in entry:
        expect = entry["expect"]
        if isinstance(expect, bool) or not isinstance(expect, int) or not 100 <= expect <= 599:
            raise fail(
                f"{dotted}.expect", f"expected an HTTP status from 100 to 599, got {expect!r}"
            )
        found = replace(found, expect=expect)
    if "body" in entry:
        if not isinstance(entry["body"], str) or "\0" in entry["body"]:
            raise fail(f"{dotted}.body", f"expected text, got {entry['body']!r}")
        found = replace(found, body=entry["body"])
    if "unit" in entry:
        _checked(parse_unit_name, entry["unit"], f"{dotted}.unit", fail)
        found = replace(found, unit=parse_unit_name(entry["unit"]))
    warn = _number(entry.get("warn_ms", found.warn_ms), f"{dotted}.warn_ms", fail, 1, 600000)
    crit = _number(entry.get("crit_ms", found.crit_ms), f"{dotted}.crit_ms", fail, 1, 600000)
    if warn > crit:
        raise fail(f"{dotted}.warn_ms", f"warn_ms ({warn:g}) is above crit_ms ({crit:g})")
    return replace(found, warn_ms=warn, crit_ms=crit)


def _tls(entry: dict[str, Any], dotted: str, fail: Fail) -> TlsTarget:
    _known(entry, TLS_KEYS, dotted, fail)
    if ("endpoint" in entry) == ("files" in entry):
        raise fail(dotted, 'give either endpoint = "HOST:PORT" or files = [...], not both')
    found = TlsTarget()
    if "endpoint" in entry:
        _checked(parse_endpoint, entry["endpoint"], f"{dotted}.endpoint", fail)
        found = replace(found, endpoint=entry["endpoint"])
        name = entry.get("name", parse_endpoint(entry["endpoint"])[0])
        _checked(lambda n: parse_endpoint(f"{n}:1"), name, f"{dotted}.name", fail)
        found = replace(found, name=name)
        if "ca_file" in entry:
            _checked(parse_pattern, entry["ca_file"], f"{dotted}.ca_file", fail)
            found = replace(found, ca_file=entry["ca_file"])
    else:
        files = entry["files"]
        if not isinstance(files, list) or not files:
            raise fail(f"{dotted}.files", f"expected a list of absolute paths, got {files!r}")
        for i, path in enumerate(files):
            _checked(parse_pattern, path, f"{dotted}.files[{i}]", fail)
        found = replace(found, files=tuple(files))
        for key in ("name", "ca_file"):
            if key in entry:
                raise fail(f"{dotted}.{key}", "only for an endpoint")
    warn = _number(entry.get("warn_days", 30), f"{dotted}.warn_days", fail, 0, 3650)
    crit = _number(entry.get("crit_days", 7), f"{dotted}.crit_days", fail, 0, 3650)
    if warn < crit:
        raise fail(f"{dotted}.warn_days", f"warn_days ({warn:g}) is below crit_days ({crit:g})")
    return replace(found, warn_days=warn, crit_days=crit)


def _limit(
    table: dict[str, Any], key: str, default: Limit, dotted: str, fail: Fail, *, percent: bool
) -> Limit | None:
    if key not in table:
        return None
    return parse_pair(default, table[key], f"{dotted}.{key}", fail, percent=percent)


def _paths(table: dict[str, Any], key: str, dotted: str, fail: Fail) -> tuple[str, ...] | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list):
        raise fail(f"{dotted}.{key}", f"expected a list of absolute paths, got {value!r}")
    for i, path in enumerate(value):
        _checked(parse_pattern, path, f"{dotted}.{key}[{i}]", fail)
    return tuple(value)


def _security(table: object, dotted: str, fail: Fail) -> SecuritySettings:
    found = _known(table, SECURITY_KEYS, dotted, fail)
    return SecuritySettings(
        failed_logins=_limit(found, "failed_logins", FAILED_LOGINS, dotted, fail, percent=False),
        denied=_limit(found, "denied", DENIED, dotted, fail, percent=False),
        auth_logs=_paths(found, "auth_logs", dotted, fail),
        access_logs=_paths(found, "access_logs", dotted, fail) or (),
    )


def _limits(table: object, dotted: str, fail: Fail) -> LimitsSettings:
    found = _known(table, LIMITS_KEYS, dotted, fail)
    return LimitsSettings(
        *(_limit(found, key, PERCENT_USED, dotted, fail, percent=True) for key in LIMITS_KEYS)
    )
