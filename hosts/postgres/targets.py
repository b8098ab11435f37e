"""PostgreSQL targets, and where libpq finds their settings and passwords.

A `PgTarget` is one database an inventory host lists: host, port, dbname, user, sslmode, a
libpq service name, and `password_env`, the *name* of an environment variable holding the
password. Passwords are never part of the inventory: libpq finds them in PGPASSFILE or
~/.pgpass, or in the service file (PGSERVICEFILE, ~/.pg_service.conf, then the system one).

libpq does all that by itself for a direct connection. A connection through an SSH forward
reaches libpq as 127.0.0.1 on a random local port, which no pgpass line names, so for that
path fleetdeck looks the password up itself, the way libpq does, under the target's real
host and port (`pgpass_password`). The same readers say, when no password is found, where
fleetdeck looked and why each place did not give one (`password_places`).

Pure functions over text, plus small readers of the files; nothing here connects. The
failures `hosts.postgres.session` raises are named here too (`PgFailure`, `PgError`), so that a
target that cannot even be tried fails the same way as one the server refuses.
"""

from __future__ import annotations

import enum
import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_PORT = 5432
REMOTE_HOST = "localhost"
"""Where a remote host's database is when the target names no host: its loopback."""
DEFAULT_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")
"""Socket directories libpq matches as "localhost" in a pgpass file."""


@dataclass(frozen=True, slots=True)
class PgTarget:
    """One PostgreSQL database on a host, as the inventory names it (no password, ever).

    `host` is as seen from the inventory host: for a remote host, the SSH forward's
    destination (default its loopback); a path is a unix socket directory there.
    """

    dbname: str | None = None
    user: str | None = None
    host: str | None = None
    port: int | None = None
    password_env: str | None = None
    service: str | None = None
    sslmode: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        """What the operator calls it: its name, else its database, else its service."""
        return self.name or self.dbname or self.service or "postgres"


class PgFailure(enum.StrEnum):
    """Why a session could not be opened or a query did not run, in an operator's words."""

    DOWN = "server down"
    TIMEOUT = "no answer"
    NAME_NOT_RESOLVED = "name not resolved"
    AUTH_FAILED = "authentication failed"
    NO_PASSWORD = "no password"
    NO_DATABASE = "database does not exist"
    SSL_MISMATCH = "SSL mismatch"
    REJECTED = "rejected by pg_hba.conf"
    PERMISSION_DENIED = "permission denied"
    FULL = "no free connection slots"
    STARTING = "not accepting connections"
    LOST = "connection lost"
    LOCK_TIMEOUT = "lock wait given up"
    STATEMENT_TIMEOUT = "statement timeout"
    CONFIG = "configuration"
    SSH = "SSH forward failed"
    ERROR = "error"


class PgError(Exception):
    """A PostgreSQL failure: `where` names the host and target, `failure` the cause."""

    def __init__(self, where: str, failure: PgFailure, detail: str) -> None:
        self.where = where
        self.failure = failure
        self.detail = detail
        super().__init__(f"{where}: {failure.value}: {detail}")


class PgConnectError(PgError):
    """A session could not be opened."""


class PgQueryError(PgError):
    """An open session's query failed or timed out."""


@dataclass(frozen=True, slots=True)
class PgpassLine:
    """One line of a pgpass file; `*` in a field matches anything."""

    host: str
    port: str
    dbname: str
    user: str
    password: str = field(repr=False)

    def matches(self, host: str, port: str, dbname: str, user: str) -> bool:
        return all(
            mine in ("*", theirs)
            for mine, theirs in zip(
                (self.host, self.port, self.dbname, self.user),
                (host, port, dbname, user),
                strict=True,
            )
        )


def parse_pgpass(text: str) -> list[PgpassLine]:
    """A pgpass file's lines, as libpq reads them: `host:port:db:user:password`, `\\`
    escaping `:` and `\\`, `#` starting a comment line; a short line is skipped."""
    entries = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields: list[str] = []
        current: list[str] = []
        chars = iter(line)
        for char in chars:
            if char == "\\":
                current.append(next(chars, ""))
            elif char == ":" and len(fields) < 4:
                fields.append("".join(current))
                current = []
            elif char == ":":
                break  # libpq ends the password at an unescaped colon
            else:
                current.append(char)
        if len(fields) == 4:
            host, port, dbname, user = fields
            entries.append(PgpassLine(host, port, dbname, user, "".join(current)))
    return entries


def pgpass_password(
    entries: list[PgpassLine], host: str, port: int, dbname: str, user: str
) -> str | None:
    """The first matching line's password, with libpq's rule that a default socket
    directory is written as `localhost`."""
    if not host or host in DEFAULT_SOCKET_DIRS:
        host = "localhost"
    for entry in entries:
        if entry.matches(host, str(port), dbname, user):
            return entry.password
    return None


def home(env: Mapping[str, str]) -> Path:
    """The home directory libpq uses: $HOME, else the password database's."""
    return Path(env.get("HOME") or pwd.getpwuid(os.geteuid()).pw_dir)


def pgpass_path(env: Mapping[str, str]) -> Path:
    return Path(env["PGPASSFILE"]) if env.get("PGPASSFILE") else home(env) / ".pgpass"


def read_pgpass(path: Path) -> tuple[list[PgpassLine], str | None]:
    """The file's lines, or none and why libpq would not use it (missing, unreadable, or
    readable by group or others: libpq ignores it then)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return [], "is not a plain file"
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return [], "ignored: group or others can read it (chmod 0600 it)"
        return parse_pgpass(path.read_text(encoding="utf-8", errors="replace")), None
    except FileNotFoundError:
        return [], "does not exist"
    except OSError as error:
        return [], f"cannot be read ({error.strerror})"


def parse_service_file(text: str) -> dict[str, dict[str, str]]:
    """`[name]` sections of `key=value` lines (a libpq pg_service.conf)."""
    services: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = services.setdefault(line[1:-1].strip(), {})
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return services


def service_files(env: Mapping[str, str]) -> list[Path]:
    """Where libpq looks for service definitions, in order."""
    first = Path(env["PGSERVICEFILE"]) if env.get("PGSERVICEFILE") else None
    files = [first or home(env) / ".pg_service.conf"]
    sysconf = env.get("PGSYSCONFDIR")
    files += [Path(sysconf) / "pg_service.conf"] if sysconf else []
    files.append(Path("/etc/postgresql-common/pg_service.conf"))
    return files


def find_service(name: str, env: Mapping[str, str]) -> tuple[Path, dict[str, str]] | None:
    """The file defining service `name` and its settings, or None when none does."""
    for path in service_files(env):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        services = parse_service_file(text)
        if name in services:
            return path, services[name]
    return None


def effective(
    target: PgTarget, service: Mapping[str, str], env: Mapping[str, str], *, remote: bool
) -> tuple[str, int, str, str]:
    """Host, port, dbname and user a target means, libpq's way: the target, then its
    service, then PG* variables, then defaults. A remote target's host and port default to
    that host's loopback and 5432, never this machine's PGHOST and PGPORT."""
    local = {} if remote else env
    host = target.host or service.get("host") or local.get("PGHOST") or REMOTE_HOST
    port = int(target.port or service.get("port") or local.get("PGPORT") or DEFAULT_PORT)
    user = (
        target.user
        or service.get("user")
        or env.get("PGUSER")
        or pwd.getpwuid(os.geteuid()).pw_name
    )
    dbname = target.dbname or service.get("dbname") or env.get("PGDATABASE") or user
    return host, port, dbname, user


def password_places(
    target: PgTarget | None, env: Mapping[str, str], lookup: tuple[str, int, str, str] | None
) -> list[str]:
    """Where a password was looked for and why each place gave none, for the message that
    says so; `lookup` is the host, port, dbname and user that pgpass lines must match."""
    places = []
    if target is not None and target.password_env:
        state = "is empty" if target.password_env in env else "is not set"
        places.append(f"${target.password_env} (named by the inventory) {state}")
    path = pgpass_path(env)
    _, problem = read_pgpass(path)
    where = f"PGPASSFILE {path}" if env.get("PGPASSFILE") else f"{path}"
    if problem is None and lookup is not None:
        host, port, dbname, user = lookup
        problem = f"has no line for {host}:{port}:{dbname}:{user}"
    places.append(f"{where} {problem or 'has no matching line'}")
    if target is not None and target.service:
        found = find_service(target.service, env)
        if found is None:
            places.append(service_missing(target.service, env))
        else:
            places.append(f"service {target.service!r} in {found[0]} sets no password")
    return places


def describe(target: PgTarget | None, host: str, env: Mapping[str, str]) -> str:
    """How messages name a target: `db-01: PostgreSQL orders (monitor@localhost:5432)`."""
    if target is None:
        names = ("PGSERVICE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE")
        given = ", ".join(f"{name}={env[name]}" for name in names if env.get(name))
        return f"{host}: PostgreSQL (libpq defaults: {given or 'the default socket'})"
    place = (target.host or "") + (f":{target.port}" if target.port else "")
    detail = "@".join(part for part in (target.user, place) if part)
    detail = detail or (f"service {target.service}" if target.service else "")
    return f"{host}: PostgreSQL {target.label}" + (f" ({detail})" if detail else "")


def prepare(
    target: PgTarget | None, env: Mapping[str, str], where: str, *, remote: bool
) -> tuple[dict[str, Any], dict[str, str], str | None]:
    """libpq parameters for a target (the password only from the variable it names), its
    service's settings, and where the password came from (a name, never the value); a
    `PgConnectError` when the variable is unset, or when a remote target's service (whose
    host and port the forward needs) is defined nowhere. Locally libpq reads the service
    itself, from its own system directory too."""
    if target is None:
        return {}, {}, None
    params = libpq_params(target)
    found = find_service(target.service, env) if target.service else None
    if target.service and found is None and remote:
        raise PgConnectError(where, PgFailure.CONFIG, service_missing(target.service, env))
    service = found[1] if found else {}
    if not target.password_env:
        return params, service, None
    params["password"] = env.get(target.password_env)
    if not params["password"]:
        state = "is empty" if target.password_env in env else "is not set"
        detail = f"the inventory names ${target.password_env} for the password, and it {state}"
        raise PgConnectError(where, PgFailure.NO_PASSWORD, detail)
    return params, service, f"${target.password_env}"


def service_missing(name: str, env: Mapping[str, str]) -> str:
    searched = ", ".join(str(p) for p in service_files(env))
    return f"service {name!r} is in none of {searched}"


def libpq_params(target: PgTarget) -> dict[str, Any]:
    pairs = {
        "host": target.host,
        "port": target.port,
        "dbname": target.dbname,
        "user": target.user,
        "service": target.service,
        "sslmode": target.sslmode,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def through_forward(host: str, local_port: int) -> dict[str, Any]:
    """libpq dials the forward (hostaddr) but keeps the target's name as `host`, so
    sslmode=verify-full checks the certificate against the name the inventory gave."""
    named = "localhost" if host.startswith("/") else host
    return {"host": named, "hostaddr": "127.0.0.1", "port": local_port}
