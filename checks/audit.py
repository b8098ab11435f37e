"""The audit log: one JSON line per fix attempt, appended, flushed and fsynced.

Every way a fix can end leaves a record: refused (read-only), declined (the operator said no,
or typed the wrong host name), aborted (the pinned target changed), failed, or finished with
its verification. A fix that starts writes a `started` record before its first command runs,
so a console killed half way through still leaves a trace, which `read_audit` reports as
interrupted.

A record is written with one `write` on a file opened `O_APPEND`, under an exclusive lock,
and fsynced before the caller goes on. If an earlier writer died mid-line, the next one ends
that line first, so the damage stays one unreadable line that readers skip and count.
Secrets are masked before anything is written.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from fleetdeck.checks.model import bytes_escaped
from fleetdeck.checks.secrets import redact

FORMAT_VERSION = 1
EXCERPT_LIMIT = 2000
"""Characters of command output kept per record: the head and the tail of longer output."""


def default_audit_path() -> Path:
    return Path(platformdirs.user_data_dir("fleetdeck")) / "audit.jsonl"


class AuditError(Exception):
    """The audit log cannot be written; the gate runs nothing it cannot record."""


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is at the console: the local user, and where their SSH session comes from."""

    user: str
    console_host: str
    ssh_origin: str | None = None
    sudo_user: str | None = None
    uid: int | None = None

    @classmethod
    def current(cls, environ: dict[str, str] | None = None) -> Operator:
        env = os.environ if environ is None else environ
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry and no LOGNAME: a bare uid
            user = f"uid {os.getuid()}"
        origin = None
        parts = env.get("SSH_CONNECTION", "").split()
        if len(parts) == 4:  # "client_ip client_port server_ip server_port"
            origin = f"{parts[0]} port {parts[1]}"
        # Fixes often need root: under sudo, the person is SUDO_USER, not root.
        sudo_user = env.get("SUDO_USER") or None
        return cls(user=user, console_host=socket.gethostname(), ssh_origin=origin,
                   sudo_user=sudo_user, uid=os.getuid())  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "console_host": self.console_host,
            "ssh_from": self.ssh_origin,
            "sudo_user": self.sudo_user,
            "uid": self.uid,
        }


ARGV_FIELDS = ("commands", "undo", "pin")
"""Fields that hold commands as they ran (or will put things back)."""


def _masked(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-able value with every string redacted, and the bytes that were not
    UTF-8 in a name a host gave (kept as surrogates) written as \\xff: a line holds UTF-8."""
    if isinstance(value, str):
        return redact(bytes_escaped(value), secrets)
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item, secrets) for item in value]
    return value


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """At most `limit` characters: the head and the tail, with what was cut said in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… {len(text) - 2 * half} characters cut …\n{text[-half:]}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:12]


class AuditLog:
    """Appends records to one JSON-lines file; `secrets` are masked wherever they appear."""

    def __init__(self, path: Path | None = None, *, secrets: Iterable[str] = ()) -> None:
        self.path = (path or default_audit_path()).expanduser()
        self._secrets = set(secrets)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one record and fsync it; raise `AuditError` naming the file if that fails."""
        record = {"v": FORMAT_VERSION, "time": utc_now(), **record}
        # Values are masked before encoding, never the JSON text: a pattern that ran over
        # an escaped quote would break the line and leave the secret in it.
        masked = _masked(record, self._secrets)
        touched = sorted(k for k in ARGV_FIELDS if k in record and masked[k] != record[k])
        if touched:  # a command kept for undo, changed by masking, must say so
            masked["masked_fields"] = touched
        try:
            line = json.dumps(masked, ensure_ascii=False)
        except (TypeError, ValueError) as error:
            raise AuditError(f"cannot encode an audit record: {error}") from None
        data = (line + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise AuditError(f"cannot open the audit log {self.path}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not _ends_with_newline(fd):
                data = b"\n" + data  # an earlier writer died mid-line: close its line first
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as error:
            raise AuditError(f"cannot write the audit log {self.path}: {error.strerror}") from None
        finally:
            os.close(fd)
        if created:
            _fsync_directory(self.path.parent)
        return masked


def _ends_with_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One fix attempt as read back: its final record, or its `started` record alone."""

    id: str
    time: dt.datetime
    event: str
    data: dict[str, Any]
    interrupted: bool = False

    @property
    def operator(self) -> str:
        """Who acted, for people: "alice from 192.0.2.7 port 50312"."""
        operator = self.data.get("operator") or {}
        who = str(operator.get("user", "?"))
        if operator.get("sudo_user"):
            who = f"{operator['sudo_user']} (sudo as {who})"
        if operator.get("ssh_from"):
            who += f" from {operator['ssh_from']}"
        return who

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        return str(self.data.get("outcome") or self.event)


@dataclass(slots=True)
class AuditReading:
    records: list[AuditRecord] = field(default_factory=list)
    damaged: list[tuple[int, str]] = field(default_factory=list)
    """(line number, why) for each line skipped: not JSON, or JSON of the wrong shape."""

    @property
    def damaged_lines(self) -> list[int]:
        return [number for number, _why in self.damaged]

    def warnings(self, limit: int = 10) -> list[str]:
        """One sentence per skipped line, for the CLI and the Audit screen."""
        said = [f"line {number} skipped: {why}" for number, why in self.damaged[:limit]]
        if len(self.damaged) > limit:
            said.append(f"and {len(self.damaged) - limit} more line(s) skipped")
        return said


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_TEXT = (str,)
_SCALAR = (str, int, float, bool, type(None))
_SHAPE: dict[str, tuple[type, ...]] = {
    "time": _TEXT,
    "event": _TEXT,
    "id": _TEXT,
    "host": _TEXT,
    "fix": _TEXT,
    "title": _TEXT,
    "target": _TEXT,
    "message": _TEXT,
    "outcome": _TEXT,
    "operator": (dict,),
    "pin": (dict,),
    "verification": (dict, type(None)),
    "commands": (list,),
    "undo": (list,),
    "runs": (list,),
}
"""The type of each field the readers use; other fields are kept as they are."""
_ITEMS: dict[str, tuple[type, ...]] = {
    "operator": _SCALAR,
    "pin": _SCALAR,
    "verification": (dict, str, type(None)),
    "commands": _TEXT,
    "undo": _TEXT,
    "runs": (dict,),
}
"""The type of each value inside those fields that hold several."""


def shape_problem(record: object) -> str | None:
    """Why a decoded line is not an audit record the readers can show, or None. Each field
    is checked before any reader touches it: one odd line (`"operator": "x"`) must cost that
    line, never the whole log."""
    if not isinstance(record, dict):
        return f"a {_kind(record)}, not a JSON object"
    for name in ("time", "event"):
        if name not in record:
            return f"no {name!r} field"
    for name, kinds in _SHAPE.items():
        if name in record and not isinstance(record[name], kinds):
            return f"{name!r} is a {_kind(record[name])}"
        inner = record.get(name)
        values = list(inner.values()) if isinstance(inner, dict) else inner
        if isinstance(values, list) and any(not isinstance(v, _ITEMS[name]) for v in values):
            return f"{name!r} holds a value of the wrong kind"
    verification: dict[str, object] = record.get("verification") or {}
    for name in ("before", "after"):
        if not isinstance(verification.get(name), dict | type(None)):
            return f"'verification' {name!r} is a {_kind(verification[name])}"
    try:
        parse_time(record["time"])
    except ValueError:
        return f"'time' is not a time: {record['time'][:40]!r}"
    return None


def _kind(value: object) -> str:
    names: dict[type, str] = {dict: "JSON object", list: "JSON list", str: "string"}
    names |= {int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) for each non-empty line; in place of a record that cannot be
    read, why (not JSON, a line cut short, the wrong shape)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                cut = "" if raw.endswith(b"\n") else " (the line is cut short)"
                yield number, f"not JSON{cut}"
                continue
            except RecursionError:  # [[[[... thousands deep: the decoder recurses per level
                yield number, "not an audit record (JSON nested too deep to read)"
                continue
            problem = shape_problem(record)
            yield number, record if problem is None else problem


def read_audit(path: Path, since: dt.datetime | None = None) -> AuditReading:
    """Every attempt in the log, oldest first, one entry each: a `started` record whose
    attempt has no later record is reported as interrupted."""
    reading = AuditReading()
    by_id: dict[str, AuditRecord] = {}
    order: list[str] = []
    for number, record in iter_lines(path):
        if isinstance(record, str):
            reading.damaged.append((number, record))
            continue
        when = parse_time(record["time"])
        attempt = str(record.get("id") or f"line-{number}")
        event = str(record["event"])
        if attempt not in by_id:
            order.append(attempt)
            when_started = when
        else:
            when_started = by_id[attempt].time
        by_id[attempt] = AuditRecord(
            id=attempt,
            time=when_started,
            event=event,
            data={**(by_id[attempt].data if attempt in by_id else {}), **record},
            interrupted=event == "started",
        )
    for attempt in order:
        entry = by_id[attempt]
        if since is None or entry.time >= since:
            reading.records.append(entry)
    return reading
