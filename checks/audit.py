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
import re
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

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


_SECRET_WORDS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)"
_SECRET_PATTERNS = (
    # scheme://user:password@host
    re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?P<tail>@)", re.I),
    # password=..., PGPASSWORD=..., "token": "..."
    re.compile(
        rf"(?P<head>[\w.-]*{_SECRET_WORDS}[\w.-]*[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&]+(?P<tail>)",
        re.I,
    ),
    # --password X, -p X style flags of well-known tools are not guessed at: the gate never
    # puts secrets on a command line in the first place.
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secrets: known values verbatim, then anything that looks like one."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\g<head>***\g<tail>", text)
    return text


ARGV_FIELDS = ("commands", "undo", "pin")
"""Fields that hold commands as they ran (or will put things back)."""


def _masked(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-able value with every string redacted."""
    if isinstance(value, str):
        return redact(value, secrets)
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

    def add_secret(self, value: str) -> None:
        self._secrets.add(value)

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
    damaged_lines: list[int] = field(default_factory=list)


def parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line number, record) for each non-empty line; None where a line cannot be read."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                yield number, None
                continue
            ok = isinstance(record, dict) and "time" in record and "event" in record
            yield number, record if ok else None


def read_audit(path: Path, since: dt.datetime | None = None) -> AuditReading:
    """Every attempt in the log, oldest first, one entry each: a `started` record whose
    attempt has no later record is reported as interrupted."""
    reading = AuditReading()
    by_id: dict[str, AuditRecord] = {}
    order: list[str] = []
    for number, record in iter_lines(path):
        if record is None:
            reading.damaged_lines.append(number)
            continue
        try:
            when = parse_time(str(record["time"]))
        except ValueError:
            reading.damaged_lines.append(number)
            continue
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
