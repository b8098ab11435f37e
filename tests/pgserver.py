"""Real PostgreSQL servers for tests: `initdb` in a temporary directory, `pg_ctl` on a free port.

What is here:

- `PgServer`: one running cluster. It listens on 127.0.0.1 (TCP, scram-sha-256 passwords)
  and on a unix socket in its own directory (trust, for the tests' own superuser SQL), with
  `pg_stat_statements` preloaded and created in the test database `fleetdeck`. It has three
  login roles: the superuser `postgres`, `fd_monitor` (a member of pg_monitor, as operators
  set up a monitoring user) and `fd_limited` (no statistics rights at all: the "user without
  rights" case). Each server gets fresh random passwords, so a test can look for them in
  output. It can be frozen with SIGSTOP (accepts connections, never answers), made to
  require SSL (`ssl=True`: a self-signed certificate and `hostssl`-only pg_hba lines), run
  inside a network namespace (`netns=`), and it always stops: `pg_ctl stop -m fast`, then
  `-m immediate`, then SIGKILL. `pg_stat_statements=False` makes a fresh server without it
  (not preloaded, not created), as a new install is.
- A streaming standby of a running server: `PgFactory.standby(primary)` clones it with
  `pg_basebackup` through a physical replication slot of its own, then starts it in
  recovery (standby.signal, primary_conninfo over the primary's unix socket) on a loopback
  port of its own; it has the primary's roles and passwords.
- `Session`: an extra client session (psycopg, over the socket) for the faults a test sets
  up: saturation, lock chains, idle in transaction, long queries. `start()` runs a
  statement that blocks in a thread of its own.
- `PgFactory`: makes servers with settings of a test's choosing and stops them all.

And the fixtures: `pg_server` (one default server for the whole session) and `make_pg`
(a factory whose servers stop at the end of the test), and `pg`: the session's server for one
test, with the sessions it opened closed after it. Import them into a test module as
`from pgserver import make_pg as make_pg, pg as pg, pg_server as pg_server`.

Data directories live under /tmp (`/tmp/fdpg-<pid>-*`, short enough for a socket path and
reachable by the postgres user, unlike pytest's 0700 tmp dirs); a run removes what a
crashed run left behind.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fleetdeck.hosts.postgres.targets import PgTarget

SUPERUSER = "postgres"
MONITOR = "fd_monitor"
LIMITED = "fd_limited"
DBNAME = "fleetdeck"
WORK_PREFIX = "fdpg-"
START_TIMEOUT = 30


class PgServerError(RuntimeError):
    """A server could not be set up or stopped; the message says why, with its log."""


def bindir() -> Path:
    """Where initdb and pg_ctl live: $PG_BINDIR, the newest /usr/lib/postgresql/N/bin, or
    PATH. Fails (never skips) saying how to install them."""
    candidates = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    pytest.fail(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed: run ./scripts/test "
        "(it installs postgresql) or apt-get install postgresql; or set PG_BINDIR"
    )


def _require_postgres_user() -> None:
    if os.geteuid() != 0:
        return  # a non-root developer runs the server as themselves
    result = subprocess.run(["id", "-u", SUPERUSER], capture_output=True, check=False)
    if result.returncode != 0:
        pytest.fail("the postgres OS user is missing: apt-get install postgresql creates it")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """This process's environment without PG* variables (a test may set PGPORT, PGSSLMODE,
    PGPASSFILE for the code under test; the fixtures' own commands must not see them)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _children(pid: int) -> list[int]:
    """Every descendant of a process (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name)
                )
    found, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += parents.get(child, [])
    return found


class Session:
    """One extra client session held open by the test (psycopg, sync, autocommit)."""

    def __init__(self, connection: psycopg.Connection[tuple[Any, ...]]) -> None:
        self.connection = connection
        row = connection.execute(
            "SELECT pg_backend_pid(), backend_start FROM pg_stat_activity "
            "WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row is not None
        self.pid: int = row[0]
        self.backend_start = row[1]
        self._pool = concurrent.futures.ThreadPoolExecutor(1, f"pg-session-{self.pid}")
        self._running: concurrent.futures.Future[list[tuple[Any, ...]]] | None = None

    def __repr__(self) -> str:
        return f"<Session pid {self.pid}>"

    def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement that returns at once (BEGIN, LOCK, UPDATE ...); its rows if any."""
        if self._running is not None and not self._running.done():
            raise RuntimeError(f"session {self.pid} is still running {self._running}")
        cursor = self.connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    def start(
        self, query: str, params: Sequence[Any] = ()
    ) -> concurrent.futures.Future[list[tuple[Any, ...]]]:
        """Run a statement that blocks (waits on a lock, pg_sleep) in a thread; its future."""
        self._running = self._pool.submit(self._run, query, params)
        return self._running

    def _run(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []

    @property
    def busy(self) -> bool:
        return self._running is not None and not self._running.done()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for a started statement to end, however it ends."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                self._running.result(timeout=timeout)

    def close(self) -> None:
        if self.busy:
            raise RuntimeError(f"session {self.pid} is busy: terminate its backend first")
        self._pool.shutdown(wait=False)
        with contextlib.suppress(psycopg.Error):
            self.connection.close()


class PgServer:
    """One running PostgreSQL cluster (see the module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        max_connections: int = 100,
        ssl: bool = False,
        netns: str | None = None,
        settings: Mapping[str, object] | None = None,
        pg_stat_statements: bool = True,
        standby_of: PgServer | None = None,
    ) -> None:
        self.bindir = bindir()
        _require_postgres_user()
        self.workdir = workdir
        self.data = workdir / "data"
        self.socket_dir = workdir
        self.log_path = workdir / "postgres.log"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.netns = netns
        self.ssl = ssl
        self.dbname = DBNAME
        self.passwords = {
            SUPERUSER: f"pw-super-{secrets.token_hex(8)}",
            MONITOR: f"pw-monitor-{secrets.token_hex(8)}",
            LIMITED: f"pw-limited-{secrets.token_hex(8)}",
        }
        self.statements = pg_stat_statements
        self.primary = standby_of
        self.slot = f"fd_standby_{self.port}" if standby_of else ""
        if standby_of is not None:
            self.passwords = dict(standby_of.passwords)  # the roles are the primary's
        self.settings: dict[str, object] = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": str(self.socket_dir),
            "shared_preload_libraries": "pg_stat_statements" if pg_stat_statements else "",
            "max_connections": max_connections,
            "shared_buffers": "32MB",
            "fsync": False,
            "synchronous_commit": False,
            "full_page_writes": False,
            "log_line_prefix": "%m [%p] %q%u@%d ",
            **(settings or {}),
        }
        self.sessions: list[Session] = []
        self.frozen: list[int] = []
        self._running = False

    def __repr__(self) -> str:
        where = f" in netns {self.netns}" if self.netns else ""
        return f"<PgServer {self.host}:{self.port}{where} {self.data}>"

    # -- lifecycle

    def start(self) -> PgServer:
        """initdb, configure, start and set up roles, the test database and extension; a
        standby is cloned from its primary instead."""
        os.chown(self.workdir, *self._owner())
        if self.primary is not None:
            return self._start_standby(self.primary)
        password_file = self.workdir / "pwfile"
        password_file.write_text(self.passwords[SUPERUSER] + "\n")
        password_file.chmod(0o600)
        os.chown(password_file, *self._owner())
        self._run_as_postgres(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
            f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()
        if self.ssl:
            self._make_certificate()
        self._write_config()
        self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT), "-l", str(self.log_path))
        self._running = True
        self._setup()
        return self

    def _start_standby(self, primary: PgServer) -> PgServer:
        """pg_basebackup of `primary` through a new physical slot, then start in recovery."""
        primary.sql("SELECT pg_create_physical_replication_slot(%s)", [self.slot])
        self._run_as_postgres(
            str(self.bindir / "pg_basebackup"), "-D", str(self.data), "-h",
            str(primary.socket_dir), "-p", str(primary.port), "-U", SUPERUSER,
            "-X", "stream", "-S", self.slot, "--no-sync", "-c", "fast",
        )  # fmt: skip
        conninfo = (
            f"host={primary.socket_dir} port={primary.port} user={SUPERUSER} "
            f"application_name={self.slot}"
        )
        self.settings.update(primary_conninfo=conninfo, primary_slot_name=self.slot)
        self.settings.update(hot_standby_feedback=True, wal_receiver_status_interval=1)
        (self.data / "standby.signal").touch()
        os.chown(self.data / "standby.signal", *self._owner())
        self._write_config()
        self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT), "-l", str(self.log_path))
        self._running = True
        return self

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until this standby has replayed everything its primary has written."""
        assert self.primary is not None, "not a standby"
        # The insert position: with synchronous_commit off, pg_current_wal_lsn (written)
        # may not include the last commit yet.
        (target,) = self.primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0]
        self.wait_for("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target], timeout=timeout)

    def stop(self) -> None:
        """Stop for sure: thaw, drop the test's sessions, fast, then immediate, then kill."""
        if not self._running:
            return
        self.thaw()
        self.close_sessions()
        pid = self.postmaster_pid
        for mode, wait in (("fast", 10), ("immediate", 5)):
            result = self._pg_ctl("stop", "-m", mode, "-w", "-t", str(wait), check=False)
            if result.returncode == 0:
                break
        if pid is not None and Path(f"/proc/{pid}").exists():
            for victim in [pid, *_children(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
        self._running = False

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- connecting

    def conninfo(self, user: str = SUPERUSER, *, tcp: bool = True, **extra: Any) -> dict[str, Any]:
        """psycopg.connect keyword arguments for a role, over TCP (password) or the socket."""
        params: dict[str, Any] = {
            "host": self.host if tcp else str(self.socket_dir),
            "port": self.port,
            "user": user,
            "dbname": self.dbname,
            "connect_timeout": 10,
            "sslmode": "prefer" if tcp else "disable",
        }
        if tcp:
            params["password"] = self.passwords[user]
        return {**params, **extra}

    def sql(
        self,
        query: str | sql.SQL | sql.Composed,
        params: Sequence[Any] = (),
        *,
        dbname: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser over the socket; its rows (none: [])."""
        with psycopg.connect(
            **self.conninfo(tcp=False, dbname=dbname or self.dbname),
            autocommit=True,
            application_name="fd-test-admin",
        ) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def session(
        self, user: str = SUPERUSER, *, dbname: str | None = None, name: str = "fd-test"
    ) -> Session:
        """An extra session as `user` (over TCP with its password, so pg_hba applies)."""
        extra: dict[str, Any] = {"dbname": dbname} if dbname else {}
        connection = psycopg.connect(
            **self.conninfo(user, **extra), autocommit=True, application_name=name
        )
        session = Session(connection)
        self.sessions.append(session)
        return session

    def open_sessions(self, count: int, user: str = SUPERUSER, **kwargs: Any) -> list[Session]:
        return [self.session(user, **kwargs) for _ in range(count)]

    def close_sessions(self) -> None:
        """End every session a test opened; a blocked one has its backend terminated first."""
        busy = [s.pid for s in self.sessions if s.busy]
        if busy and not self.frozen:
            self.sql("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [busy])
        for session in self.sessions:
            session.settle()
            session.close()
        self.sessions.clear()

    def wait_for(self, query: str, params: Sequence[Any] = (), timeout: float = 10.0) -> Any:
        """Poll a superuser query until its first value is truthy (a session is waiting on
        a lock, a backend is idle in transaction ...); that value, or fail."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sql(query, params)
            if rows and rows[0][0]:
                return rows[0][0]
            if time.monotonic() > deadline:
                raise PgServerError(f"not true within {timeout:g} s: {query}")
            time.sleep(0.02)

    # -- faults

    def freeze(self, *, everything: bool = False) -> None:
        """SIGSTOP the postmaster (new connections are accepted by the kernel and never
        answered); with `everything`, its backends and workers too (open sessions hang)."""
        pid = self.postmaster_pid
        assert pid is not None, "the server is not running"
        victims = [pid, *(_children(pid) if everything else [])]
        for victim in victims:
            os.kill(victim, signal.SIGSTOP)
            self.frozen.append(victim)

    def thaw(self) -> None:
        while self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.frozen.pop(), signal.SIGCONT)

    @contextlib.contextmanager
    def frozen_server(self, *, everything: bool = False) -> Iterator[PgServer]:
        self.freeze(everything=everything)
        try:
            yield self
        finally:
            self.thaw()

    # -- internals

    def _owner(self) -> tuple[int, int]:
        if os.geteuid() != 0:
            return os.geteuid(), os.getegid()
        import pwd

        entry = pwd.getpwnam(SUPERUSER)
        return entry.pw_uid, entry.pw_gid

    def _run_as_postgres(
        self, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        netns = ["ip", "netns", "exec", self.netns] if self.netns else []
        result = subprocess.run(
            [*netns, *prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        if check and result.returncode != 0:
            raise PgServerError(
                f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()}\n"
                f"server log:\n{self.log()[-3000:]}"
            )
        return result

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # pg_ctl start waits for the server but never for its own stdout: the log goes to -l.
        return self._run_as_postgres(
            str(self.bindir / "pg_ctl"), *args, "-D", str(self.data), check=check
        )

    def _make_certificate(self) -> None:
        if shutil.which("openssl") is None:
            pytest.fail("openssl is not installed: apt-get install openssl (for SSL servers)")
        crt, key = self.data / "server.crt", self.data / "server.key"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(crt), "-days", "2",
                "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        for path in (crt, key):
            path.chmod(0o600)
            os.chown(path, *self._owner())
        self.settings.update(ssl=True, ssl_cert_file=str(crt), ssl_key_file=str(key))

    def _write_config(self) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# fleetdeck test fixture\n")
            for name, value in self.settings.items():
                conf.write(f"{name} = {_conf_value(value)}\n")
        tcp = "hostssl" if self.ssl else "host"
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "local replication all trust\n"
            f"{tcp} all all 127.0.0.1/32 scram-sha-256\n"
            f"{tcp} all all ::1/128 scram-sha-256\n"
        )

    def _setup(self) -> None:
        def role(name: str, extra: str = "") -> sql.Composed:
            return sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}" + extra).format(
                sql.Identifier(name), sql.Literal(self.passwords[name])
            )

        self.sql(role(MONITOR, " IN ROLE pg_monitor"), dbname="postgres")
        self.sql(role(LIMITED), dbname="postgres")
        self.sql(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DBNAME)), dbname="postgres")
        if self.statements:
            self.sql("CREATE EXTENSION pg_stat_statements")


def _clean_stale(root: Path) -> None:
    """Stop and remove servers that crashed runs (a pid no longer alive) left in `root`."""
    for workdir in root.glob(f"{WORK_PREFIX}*"):
        match = re.match(rf"{WORK_PREFIX}(\d+)-", workdir.name)
        if not match or Path(f"/proc/{match[1]}").exists():
            continue
        with contextlib.suppress(OSError, ValueError):
            pid = int((workdir / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
            for victim in [pid, *_children(pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


class PgFactory:
    """Makes started servers (`factory(max_connections=5, ssl=True, ...)`); `close()` stops
    and removes every one of them, even after a failed start."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.gettempdir())
        self.servers: list[PgServer] = []
        _clean_stale(self.root)

    def __call__(self, **kwargs: Any) -> PgServer:
        workdir = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=self.root))
        server = PgServer(workdir, **kwargs)
        self.servers.append(server)
        return server.start()

    def standby(self, primary: PgServer, **kwargs: Any) -> PgServer:
        """A streaming standby of `primary` (see the module docstring), stopped with the rest."""
        return self(standby_of=primary, **kwargs)

    def close(self) -> None:
        errors = []
        for server in reversed(self.servers):  # standbys before their primaries
            try:
                server.stop()
            except Exception as error:  # stop the others all the same
                errors.append(f"{server!r}: {error}")
            shutil.rmtree(server.workdir, ignore_errors=True)
        self.servers.clear()
        if errors:
            raise PgServerError("stopping test servers: " + "; ".join(errors))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One default server for the whole session; a test that stops, freezes or reconfigures
    a server makes its own with `make_pg`. Sessions a test opened are closed after it."""
    factory = PgFactory()
    try:
        yield factory()
    finally:
        factory.close()


@pytest.fixture
def pg(pg_server: PgServer) -> Iterator[PgServer]:
    """The session's server for one test: the sessions the test opened are closed after it,
    and a freeze it forgot is undone."""
    try:
        yield pg_server
    finally:
        pg_server.thaw()
        pg_server.close_sessions()


@pytest.fixture
def make_pg() -> Iterator[PgFactory]:
    """`make_pg(max_connections=..., ssl=..., netns=..., settings={...})`: servers of this
    test's own, stopped when it ends."""
    factory = PgFactory()
    try:
        yield factory
    finally:
        factory.close()


# -- libpq's environment for a test: nothing of the developer's, or pointed at a test server


def clear_libpq_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No PG* variables and an empty home, so a developer's ~/.pgpass never helps a test."""
    for name in [n for n in os.environ if n.startswith("PG")]:
        monkeypatch.delenv(name)
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))


def password_target(
    server: PgServer, user: str, monkeypatch: pytest.MonkeyPatch, **fields: Any
) -> PgTarget:
    """A target for `user` over TCP, its password in a variable the target names."""
    variable = f"FD_PG_{user.upper()}"
    monkeypatch.setenv(variable, server.passwords[user])
    given = {"host": server.host, "port": server.port, "dbname": server.dbname, **fields}
    return PgTarget(user=user, password_env=variable, **given)


def point_libpq_at(
    server: PgServer, monkeypatch: pytest.MonkeyPatch, directory: Path, user: str = SUPERUSER
) -> None:
    """libpq's defaults aimed at `server` as `user`, the password in a PGPASSFILE: how the
    local console started with --postgres finds its database."""
    clear_libpq_env(directory / "home", monkeypatch)
    passfile = directory / "pgpass"
    passfile.write_text(
        f"{server.host}:{server.port}:{server.dbname}:{user}:{server.passwords[user]}\n"
    )
    passfile.chmod(0o600)
    values = {
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGUSER": user,
        "PGDATABASE": server.dbname,
        "PGPASSFILE": str(passfile),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
