"""`DockerLink`: one host's Docker engine, read and driven without ever blocking the loop.

The docker SDK is synchronous, so every call runs in the link's own small thread pool with
the SDK's socket timeout *and* an outer `asyncio.wait_for`: a hung daemon ends a call with a
TIMEOUT failure in bounded time, holds at most the pool's few threads, and never stalls the
event loop or another host. A remote host's engine is reached through its SSH connection
(`hosts.docker.endpoint.forward`); the SDK never sees `ssh://`, so there is no second login.

`containers()` is one list call plus an inspect of each container whose list entry changed
(restart count, OOM flag, health and limits are only in the inspect), so a steady host costs
one call per refresh. `stats()` reads every running container's cgroup files on the engine's
host in ONE shell command and takes CPU % from the previous reading; a container whose files
that shell cannot see (an engine elsewhere, a sandboxed /sys) falls back to the engine's
one-shot stats, concurrently (each waits for the engine's ~1 s collection tick). `logs()` reads a
container's log in a thread of its own, bounded, and stops by shutting its socket down.

This module holds the link itself (its state: the client, the forward, the caches). What it
leans on lives beside it, each an idea of its own: `hosts.docker.records` (the records and the
pure parsers of inspect JSON and cgroup files), `hosts.docker.dial` (making the client, and
failures in an operator's words), `hosts.docker.logs` (`LogStream`) and `hosts.docker.events`
(a stop by hand, read from the engine's events). This module re-exports their names, so
`from fleetdeck.hosts.docker.link import ...` stays the one place to import Docker from.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import shutil
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from fleetdeck.hosts.docker.dial import GRACE, classify, open_client, quiet
from fleetdeck.hosts.docker.endpoint import (
    DockerEndpoint,
    DockerError,
    DockerFailure,
    EndpointKind,
    Route,
    resolve,
)
from fleetdeck.hosts.docker.events import (
    HandStop,
    event_filters,
    exit_recorded,
    hand_stop_from_events,
)
from fleetdeck.hosts.docker.logs import MAX_LINE, QUEUED_LINES, LogStream
from fleetdeck.hosts.docker.records import (
    CGROUP_SCRIPT,
    UNLIMITED,
    Container,
    ContainerPin,
    ContainerStats,
    EngineInfo,
    Health,
    Reading,
    State,
    api_reading,
    cgroup_args,
    format_ports,
    parse_cgroup_read,
    parse_container,
    parse_time,
    to_stats,
)
from fleetdeck.hosts.docker.settings import DockerSettings
from fleetdeck.hosts.shell import LocalShell, Shell, ShellError

if TYPE_CHECKING:
    import asyncssh

__all__ = [
    "CGROUP_SCRIPT",
    "GRACE",
    "MAX_LINE",
    "QUEUED_LINES",
    "UNLIMITED",
    "Container",
    "ContainerPin",
    "ContainerStats",
    "DockerEndpoint",
    "DockerError",
    "DockerFailure",
    "DockerLink",
    "DockerSettings",
    "EndpointKind",
    "EngineInfo",
    "HandStop",
    "Health",
    "LogStream",
    "Reading",
    "State",
    "api_reading",
    "cgroup_args",
    "classify",
    "exit_recorded",
    "format_ports",
    "hand_stop_from_events",
    "parse_cgroup_read",
    "parse_container",
    "parse_time",
    "quiet",
    "to_stats",
]

SshOpener = Callable[[], Awaitable["asyncssh.SSHClientConnection"]]
"""The host's SSH connection, (re)connected on demand: `HostLink.connection`."""
T = TypeVar("T")
EVENTS_READ = 200
"""Events of one container read at most: a stop is a handful, a restart loop a few each."""
TAIL_LINE = 4096
"""Bytes a log tail keeps per line asked for."""
CGROUP_RETRY = 60.0
"""After the shell found no cgroup files, seconds before it is asked again."""
KILLED = 128 + 9
"""A container's exit code when its main process died of SIGKILL (the OOM killer's signal)."""
TERMINATED = 128 + 15
"""A container's exit code when its main process died of SIGTERM (`docker stop`'s signal)."""


@dataclass(slots=True)
class _Inspected:
    """The newest inspect of a container the link has had, cached between list refreshes."""

    container: Container
    sent: int
    """The order its request was sent in: an answer to an earlier request never replaces it."""
    key: tuple[str, str] | None = None
    """The list entry it stands for (state, settled status); None when read on its own."""
    at: float = 0.0
    """When that list was read (monotonic seconds)."""
    since: float = 0.0
    """When the list first showed that entry (monotonic seconds)."""


class DockerLink:
    """One host's engine: dialled on first use, and again after its connection broke."""

    def __init__(
        self,
        host: str,
        endpoint: DockerEndpoint | None = None,
        *,
        ssh: SshOpener | None = None,
        settings: DockerSettings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = host
        self.endpoint = endpoint
        self.settings = settings or DockerSettings()
        self.ssh = ssh
        self._env = env
        self._route: Route | None = None
        self._api: Any = None
        self._engine: EngineInfo | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._listener: asyncssh.SSHListener | None = None
        self._tmpdir: str | None = None
        self._connecting = asyncio.Lock()
        self._attempts = 0
        self._dial_error: DockerError | None = None
        self._pool = ThreadPoolExecutor(self.settings.workers, f"docker-{host}")
        self._stats_pool: ThreadPoolExecutor | None = None
        self.streams: set[LogStream] = set()
        self._inspected: dict[str, _Inspected] = {}
        self._sent = 0
        self._cpu_before: dict[tuple[str, str], tuple[int, float]] = {}
        self._cgroups_retry_at = 0.0
        self._closed = False

    @property
    def route(self) -> Route:
        """Where the engine is (resolved on first use); `DockerError` if nowhere."""
        if self._route is None:
            remote = self.ssh is not None
            self._route = resolve(self.endpoint, host=self.host, remote=remote, env=self._env)
        return self._route

    @property
    def where(self) -> str:
        """How messages name the engine: `web-01: Docker at unix:///var/run/docker.sock`."""
        try:
            return self.route.where(self.host)
        except DockerError as error:
            return error.where

    @property
    def forward_socket(self) -> str | None:
        """The socket here that the SDK dials while the engine is reached through SSH (in a
        private 0700 directory, removed on close); None otherwise."""
        return f"{self._tmpdir}/docker.sock" if self._tmpdir else None

    async def engine(self) -> EngineInfo:
        """The engine's version, connecting if need be: the cheapest proof that it answers."""
        await self.client()
        assert self._engine is not None
        return self._engine

    async def containers(self) -> list[Container]:
        """Every container, running or not, by name: one list call, plus an inspect of each
        whose list entry (state, status text: see `_settled`) changed, that is restarting (a
        loop's entry reads "Restarting (1) seconds ago" at every turn, so only its inspect
        shows the count growing), or whose inspect is older than inspect_max_age. One
        removed in between is left out, not an error."""
        listed = await self.call(lambda api: api.containers(all=True))
        now = time.monotonic()
        keys = {c["Id"]: (str(c.get("State", "")), _settled(c.get("Status"))) for c in listed}
        for gone in set(self._inspected) - set(keys):
            del self._inspected[gone]
        stale = [
            cid
            for cid, key in keys.items()
            if (seen := self._inspected.get(cid)) is None
            or seen.key != key
            or key[0] == "restarting"  # each restart lists alike: only inspect counts them
            or now - seen.at > self.settings.inspect_max_age
            or _oom_may_follow(seen, now - self.settings.oom_settle)
        ]
        gate = asyncio.Semaphore(self.settings.workers)  # time counts from the send, not the queue

        async def inspect(cid: str) -> Container | None:
            async with gate:
                return await self.inspect(cid)

        await asyncio.gather(*map(inspect, stale))  # each keeps its answer in _inspected
        for cid in stale:
            if (held := self._inspected.get(cid)) is not None:
                if held.key != keys[cid]:
                    held.since = now
                held.key, held.at = keys[cid], now
        found = [self._inspected[cid].container for cid in keys if cid in self._inspected]
        return sorted(found, key=lambda c: c.name)

    async def inspect(self, container_id: str) -> Container | None:
        """A container as it is now (a pin compares its `pin`); None when it is gone. The
        answer is what `containers` serves until the list shows a change, so a listing
        never hands out an older reading than one already given (a restart count that went
        back, a pin on a start time that is over)."""
        self._sent += 1
        sent = self._sent
        try:
            data = await self.call(lambda api: api.inspect_container(container_id))
        except DockerError as error:
            if error.failure is DockerFailure.GONE:
                self._inspected.pop(container_id, None)
                return None
            raise
        container = parse_container(data)
        held = self._inspected.get(container.id)
        if held is not None and held.sent > sent:
            return held.container  # a request sent after this one has answered already
        key, at, since = (held.key, held.at, held.since) if held is not None else (None, 0, 0)
        self._inspected[container.id] = _Inspected(container, sent, key, at, since)
        return container

    async def events(
        self, container_id: str, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """The engine's kill, stop and die events of one container between two moments
        (`docker events --since --until`): what `hosts.docker.events` reads a stop by hand
        from. `until` should not be in the future: the engine holds the answer until then."""
        filters = event_filters(container_id)
        # Whole seconds: the SDK turns a datetime into one with a naive subtraction, which
        # an aware datetime fails.
        start, end = math.floor(since.timestamp()), math.ceil(until.timestamp())

        def read(api: Any) -> list[dict[str, Any]]:
            stream = api.events(since=start, until=end, filters=filters, decode=True)
            try:
                return [event for event, _ in zip(stream, range(EVENTS_READ), strict=False)]
            finally:
                stream.close()

        return await self.call(read)

    async def log_tail(self, container_id: str, lines: int) -> bytes:
        """The last `lines` lines of a container's log (stdout and stderr), at most
        `lines * TAIL_LINE` bytes: for a finding's evidence, not for following."""

        def read(api: Any) -> bytes:
            data = api.logs(container_id, stdout=True, stderr=True, tail=lines, stream=False)
            return bytes(data)[-lines * TAIL_LINE :]

        return await self.call(read)

    async def start(self, container_id: str) -> None:
        """Start a container (a running one stays as it is); GONE if it was removed."""
        await self.call(lambda api: api.start(container_id))

    async def stop(self, container_id: str, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` s; the call waits for that."""
        wait = max(0, round(timeout))
        await self.call(lambda api: api.stop(container_id, timeout=wait), extra=wait)

    async def restart(self, container_id: str, timeout: float = 10.0) -> None:
        """Stop as `stop` does, then start again."""
        wait = max(0, round(timeout))
        await self.call(lambda api: api.restart(container_id, timeout=wait), extra=wait)

    def logs(
        self,
        container_id: str,
        *,
        tail: int | None = 100,
        since: datetime | float | None = None,
        follow: bool = False,
        timestamps: bool = False,
    ) -> LogStream:
        """A container's log as raw byte lines: see `LogStream`."""
        when = since.timestamp() if isinstance(since, datetime) else since
        options: dict[str, Any] = {"tail": "all" if tail is None else tail, "follow": follow}
        options |= {"timestamps": timestamps} | ({"since": when} if when else {})
        return LogStream(self, container_id, options)

    async def stats(
        self, containers: Sequence[Container] | None = None
    ) -> dict[str, ContainerStats]:
        """CPU and memory of the running containers (all, or those given), by id. CPU %
        (100 = one CPU) comes from the previous reading, so it is None on the first."""
        if containers is None:
            containers = await self.containers()
        running = [c for c in containers if c.state in (State.RUNNING, State.PAUSED) and c.pid]
        readings: dict[str, tuple[Reading, str]] = {}
        mode = self.settings.stats_from
        tried = mode == "cgroup" or time.monotonic() >= self._cgroups_retry_at
        if running and mode != "api" and self.route.on_host and tried:
            found = await self._cgroup_readings(running)
            readings |= {cid: (reading, "cgroup") for cid, reading in found.items()}
            if not found:
                self._cgroups_retry_at = time.monotonic() + CGROUP_RETRY
        missing = [c for c in running if c.id not in readings]
        if missing and mode != "cgroup":
            readings |= {cid: (r, "api") for cid, r in (await self._api_readings(missing)).items()}
        limits = {c.id: c.memory_limit for c in running}
        result = {}
        for cid, (reading, source) in readings.items():
            before = self._cpu_before.get((cid, source))
            result[cid] = to_stats(cid, reading, before, source, limits.get(cid, 0))
            if reading.cpu_ns is not None and reading.clock is not None:
                self._cpu_before[(cid, source)] = (reading.cpu_ns, reading.clock)
        for key in [k for k in self._cpu_before if k[0] not in readings]:
            del self._cpu_before[key]
        return result

    async def __aenter__(self) -> DockerLink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop log streams, the forward and the threads; the link may not be used again."""
        for stream in list(self.streams):
            await stream.aclose()
        self._closed = True
        self._drop_client()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._stats_pool is not None:
            self._stats_pool.shutdown(wait=False, cancel_futures=True)

    # -- calls (public for LogStream and benchmarks; checks use the methods above)

    async def call(self, fn: Callable[[Any], T], *, extra: float = 0.0) -> T:
        """`fn(api)` (the SDK's low-level APIClient) in a pool thread, bounded in time."""
        api = await self.client()
        return await self._run(self._pool, functools.partial(fn, api), extra)

    async def client(self) -> Any:
        """The SDK's low-level client, dialled on first use or after a broken connection."""
        if self._closed:
            raise DockerError(self.where, DockerFailure.CONFIG, "the link is closed")
        if self._conn is not None and self._conn.is_closed():
            self._drop_client()  # the host reconnected: forward over its new connection
        if self._api is not None:
            return self._api
        attempt = self._attempts
        async with self._connecting:
            if self._api is not None:
                return self._api
            if self._attempts != attempt and self._dial_error is not None:
                raise self._dial_error  # it failed while we waited: no queue of retries
            self._attempts += 1
            try:
                url = await self._dial()
                opening = functools.partial(open_client, url, self.route, self.settings)
                self._api, self._engine = await self._run(self._pool, opening)
                self._dial_error = None
            except DockerError as error:
                self._dial_error = error
                self._drop_client()
                raise
        return self._api

    def failure(self, error: BaseException) -> DockerError:
        """An SDK exception as a DockerError naming this host and endpoint."""
        failure, detail = classify(error, self.route, self.settings.timeout)
        return DockerError(self.where, failure, detail)

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[], T], extra: float = 0.0) -> T:
        limit = self.settings.timeout + extra + GRACE
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(pool, fn), limit)
        except TimeoutError:
            raise DockerError(self.where, DockerFailure.TIMEOUT, quiet(limit)) from None
        except Exception as error:  # the SDK's, requests', urllib3's, the OS's
            failed = self.failure(error)
            if failed.failure in (DockerFailure.LOST, DockerFailure.REFUSED):
                self._drop_client()  # a broken forward or a restarted engine: dial afresh
            raise failed from None

    async def _dial(self) -> str:
        """The URL the SDK uses: the route's own, or a forward over the host's SSH."""
        route = self.route
        if not route.via_ssh:
            return route.url
        from fleetdeck.hosts.docker.forward import forward

        assert self.ssh is not None
        self._conn, self._listener, self._tmpdir = await forward(
            self.ssh, route, self.host, self.settings.timeout
        )
        # A link never closed still leaves no directory behind (at exit at the latest).
        weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        return f"unix://{self._tmpdir}/docker.sock"

    def _drop_client(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()
        if self._listener is not None:
            self._listener.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._conn = self._listener = self._tmpdir = None

    # -- stats

    async def _shell(self) -> Shell:
        """A shell where the engine runs: the host's over SSH, else this machine's."""
        if not self.route.via_ssh or self.ssh is None:
            return LocalShell(self.host)
        from fleetdeck.hosts.ssh import SSHShell

        return SSHShell(self.host, await self.ssh())

    async def _cgroup_readings(self, running: Sequence[Container]) -> dict[str, Reading]:
        """Every running container's cgroup files, in one command on the engine's host."""
        argv = ["sh", "-c", CGROUP_SCRIPT, "sh", *cgroup_args(running)]
        try:
            result = await (await self._shell()).run(argv, timeout=self.settings.timeout)
        except (ShellError, OSError):
            return {}
        except Exception:  # the SSH opener's own failure: the API may still do
            return {}
        return parse_cgroup_read(result.stdout, {c.id for c in running})

    async def _api_readings(self, missing: Sequence[Container]) -> dict[str, Reading]:
        """One-shot stats from the engine, concurrently (each waits for its ~1 s tick)."""
        api = await self.client()
        if self._stats_pool is None:
            self._stats_pool = ThreadPoolExecutor(self.settings.stats_concurrency, "docker-stats")
        import docker.utils  # loaded with the client (`hosts.docker.dial`)

        one_shot = True if docker.utils.version_gte(api.api_version, "1.41") else None
        pool = self._stats_pool

        gate = asyncio.Semaphore(self.settings.stats_concurrency)  # time from the send on

        async def one(cid: str) -> Reading | None:
            read = functools.partial(api.stats, cid, stream=False, one_shot=one_shot)
            try:
                async with gate:
                    return api_reading(await self._run(pool, read, extra=2.0))
            except DockerError as error:
                if error.failure is DockerFailure.GONE:
                    return None
                raise

        ids = [c.id for c in missing]
        found = await asyncio.gather(*map(one, ids))
        return {cid: reading for cid, reading in zip(ids, found, strict=True) if reading}


# -- the list refresh: what counts as a changed container


def _oom_may_follow(seen: _Inspected, settle_from: float) -> bool:
    """Whether an inspect that reads "exited 137, not OOM-killed" may still turn into "OOM
    killed" with no change in the list entry. The engine records the exit and the OOM kill
    from two events that containerd's shim sends on separate paths (its OOM watcher publishes
    directly, the exit goes through its event queue), so on a busy host the exit can land
    first and the OOM flag a moment later; cached until the entry changes, the first reading
    would show a plain kill for up to inspect_max_age. Only while the list has shown it so
    since `settle_from` (settings' oom_settle), so a container stopped with SIGKILL is not
    inspected at every refresh for good."""
    container = seen.container
    return (
        container.state is State.EXITED
        and container.exit_code == KILLED
        and not container.oom_killed
        and seen.since > settle_from
    )


_SECONDS = re.compile(r"\b(?:\d+ seconds|1 second|Less than a second)\b")


def _settled(status: object) -> str:
    """A list entry's Status ("Up 5 seconds (healthy)", "Exited (3) 2 hours ago") without the
    seconds that tick by on their own, so a young container is not inspected every refresh.
    A restart still shows as a change ("Up 2 hours" to "Up 1 second"), except within a
    container's first minute: then it waits for the minute or inspect_max_age."""
    return _SECONDS.sub("seconds", str(status or ""))
