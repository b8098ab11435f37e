"""The settings file's `[[sources.prometheus]]` and `[[sources.alertmanager]]` tables.

```toml
[[sources.prometheus]]
url = "https://prometheus.example:9090"
token_file = "/etc/fleetdeck/prom.token"   # or token_env = "PROM_TOKEN"
job = "node"                                # node_exporter's scrape job (the fleet)

[[sources.alertmanager]]
url = "http://alertmanager:9093"
username = "fleetdeck"
password_file = "/etc/fleetdeck/am.password"   # or password_env = "AM_PASSWORD"
```

Secrets are never in the file: it names a file or an environment variable, read at each
request. A URL with a password in it is refused for the same reason.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdeck.checks.settings import Fail, finite
from fleetdeck.hosts.prometheus.http import DEFAULT_TIMEOUT, Auth, HttpSource

KINDS = ("prometheus", "alertmanager")
_COMMON = {"url", "token_file", "token_env", "username", "password_file", "password_env", "timeout"}
_KEYS = {"prometheus": _COMMON | {"job"}, "alertmanager": _COMMON}


@dataclass(frozen=True, slots=True)
class PromSource:
    """A Prometheus server: where it is, and node_exporter's job in it."""

    http: HttpSource
    job: str = "node"


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    """Every external source in the settings file."""

    prometheus: tuple[PromSource, ...] = ()
    alertmanager: tuple[HttpSource, ...] = field(default=())


def parse_sources(value: object, fail: Fail) -> SourcesConfig:
    """`[sources]`: lists of tables per kind of source; raises through `fail` (file, line,
    key) at the first problem."""
    if not isinstance(value, dict):
        raise fail("sources", "expected tables such as [[sources.prometheus]]")
    found: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for kind, entries in value.items():
        if kind not in KINDS:
            raise fail(f"sources.{kind}", f"unknown source (known: {', '.join(KINDS)})")
        if not isinstance(entries, list):
            raise fail(f"sources.{kind}", f"expected [[sources.{kind}]] tables")
        for index, entry in enumerate(entries):
            found[kind].append(_entry(kind, index, entry, fail))
    prometheus = tuple(PromSource(http, job) for http, job in found["prometheus"])
    return SourcesConfig(prometheus, tuple(http for http, _ in found["alertmanager"]))


def _entry(kind: str, index: int, entry: object, fail: Fail) -> tuple[HttpSource, str]:
    where = f"sources.{kind}[{index}]"
    if not isinstance(entry, dict):
        raise fail(where, "expected a table")
    for key, item in entry.items():
        if key not in _KEYS[kind]:
            known = ", ".join(sorted(_KEYS[kind]))
            raise fail(f"{where}.{key}", f"unknown key in source {index + 1} (known: {known})")
        if key != "timeout" and not isinstance(item, str):
            raise fail(f"{where}.{key}", f"expected a string, got {item!r}")
    if "url" not in entry:
        raise fail(where, f"source {index + 1} has no url")
    url = str(entry["url"])
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise fail(f"{where}.url", f"expected an http:// or https:// URL, got {url!r}")
    if parts.password is not None:
        raise fail(f"{where}.url", "no password in the URL: use password_file or password_env")
    for pair in (("token_file", "token_env"), ("password_file", "password_env")):
        if all(key in entry for key in pair):
            raise fail(f"{where}.{pair[1]}", f"give {pair[0]} or {pair[1]}, not both")
    if "token_file" in entry or "token_env" in entry:
        if "username" in entry:
            raise fail(f"{where}.username", "a bearer token or a username, not both")
    elif ("password_file" in entry or "password_env" in entry) and "username" not in entry:
        raise fail(where, f"source {index + 1} has a password but no username")
    timeout = entry.get("timeout", DEFAULT_TIMEOUT)
    if not finite(timeout) or not 0 < timeout <= 300:
        raise fail(f"{where}.timeout", f"expected seconds in (0, 300], got {timeout!r}")

    def path(key: str) -> Path | None:
        return Path(entry[key]).expanduser() if key in entry else None

    auth = Auth(
        token_file=path("token_file"),
        token_env=entry.get("token_env"),
        username=entry.get("username"),
        password_file=path("password_file"),
        password_env=entry.get("password_env"),
    )
    return HttpSource(url.rstrip("/"), auth, float(timeout)), str(entry.get("job", "node"))


def pick_prometheus(sources: SourcesConfig, url: str | None) -> PromSource | None:
    """The Prometheus `--prometheus` names: a settings source with that URL (its credentials
    and job), a bare URL without credentials, or with no URL the settings' first source."""
    if url is None:
        return sources.prometheus[0] if sources.prometheus else None
    for source in sources.prometheus:
        if source.http.url == url.rstrip("/"):
            return source
    return PromSource(HttpSource(url.rstrip("/")))
