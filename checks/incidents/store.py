"""The state database: one SQLite file shared by every console and command on a jump host.

Acks, silences, incidents and alert transitions must survive a restart and be seen by a second
console at once, so they live in SQLite in WAL mode (readers never wait for the writer) with a
busy timeout (a second writer waits its turn instead of failing). Every write is one
`BEGIN IMMEDIATE` transaction committed with `synchronous=FULL`: once a call returns, what it
wrote survives the process being killed, and a write cut short leaves nothing half done.
The schema's version is `PRAGMA user_version`; `open_store` brings an older file up to date.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

STATE_ENV = "FLEETDECK_STATE_DB"
"""An environment variable naming the state database, over the settings and the default."""
BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another one before giving up with a clear error."""

SCHEMA_VERSION = 2
SCHEMA: dict[int, str] = {
    1: """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL, check_id TEXT NOT NULL, target TEXT NOT NULL,
        severity TEXT NOT NULL, state TEXT NOT NULL, summary TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}', runbook TEXT,
        active_since REAL NOT NULL, fired_at REAL, resolved_at REAL,
        updated_at REAL NOT NULL, flaps INTEGER NOT NULL DEFAULT 0,
        acked_at REAL, acked_by TEXT, ack_note TEXT,
        UNIQUE (host, check_id, target)
    );
    CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        at REAL NOT NULL, state TEXT NOT NULL, previous TEXT,
        severity TEXT NOT NULL, summary TEXT NOT NULL
    );
    CREATE INDEX transitions_by_alert ON transitions (alert_id, at);
    CREATE TABLE acks (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        at REAL NOT NULL, who TEXT NOT NULL, note TEXT NOT NULL
    );
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL, matcher TEXT NOT NULL,
        starts_at REAL NOT NULL, ends_at REAL NOT NULL,
        created_at REAL NOT NULL, who TEXT NOT NULL, comment TEXT NOT NULL
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL, severity TEXT NOT NULL, status TEXT NOT NULL,
        owner TEXT, opened_at REAL NOT NULL, opened_by TEXT NOT NULL,
        acknowledged_at REAL, resolved_at REAL, reviewed_at REAL,
        impact TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE incident_hosts (
        incident_id INTEGER NOT NULL REFERENCES incidents(id), host TEXT NOT NULL,
        PRIMARY KEY (incident_id, host)
    );
    CREATE TABLE incident_alerts (
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        PRIMARY KEY (incident_id, alert_id)
    );
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        at REAL NOT NULL, who TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL
    );
    CREATE INDEX events_by_incident ON incident_events (incident_id, at);
    """,
    2: """
    CREATE TABLE evaluations (host TEXT PRIMARY KEY, at REAL NOT NULL);
    """,
}
"""Each version's statements, run in order from the file's `user_version` up, in one
transaction: version 2 adds when each host's alerts were last evaluated (stale alerts)."""


class StoreError(Exception):
    """The state database cannot be opened or written; the message names the file."""


def default_state_path() -> Path:
    return Path(platformdirs.user_data_dir("fleetdeck")) / "state.db"


def state_path(configured: Path | None = None) -> Path:
    """Where the state lives: $FLEETDECK_STATE_DB, else the settings' `[alerts] state`, else
    fleetdeck's data directory."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser()
    return (configured or default_state_path()).expanduser()


class Store:
    """One connection to the state database. Reads run at any time; `write()` is a
    transaction that holds the database's one writer lock until it commits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one connection, used from the loop and from threads
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot use WAL mode here (got {mode!r})")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except OSError as error:  # its directory cannot be made
            raise StoreError(f"cannot open the state database {path}: {error.strerror}") from None
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the state database {path}: {error}") from None

    def _migrate(self) -> None:
        with self.write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer fleetdeck (schema {version}, this one "
                    f"knows {SCHEMA_VERSION})"
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in SCHEMA[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version != SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed whole when the block ends, rolled back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError(f"cannot write the state database {self.path}: {error}") from None
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write the state database {self.path}: {error}") from None

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Rows of one query, read from the last committed state."""
        with self._lock:
            try:
                return list(self._db.execute(sql, params))
            except sqlite3.Error as error:
                raise StoreError(f"cannot read the state database {self.path}: {error}") from None

    def integrity(self) -> str:
        """SQLite's own check of the file: "ok", or what is wrong."""
        return "; ".join(str(row[0]) for row in self.read("PRAGMA integrity_check"))

    def close(self) -> None:
        with self._lock:
            self._db.close()


_shared: weakref.WeakValueDictionary[Path, Store] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared_store(path: Path) -> Store:
    """One `Store` per file in this process, so a fleet of watches shares one connection;
    held weakly, so it is closed when the last watch using it is gone."""
    key = path.expanduser().resolve()
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = Store(key)
        return store
