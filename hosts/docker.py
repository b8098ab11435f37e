"""`DockerLink`: one host's Docker engine, read and driven without ever blocking the loop.

The docker SDK is synchronous, so every call runs in the link's own small thread pool with
the SDK's socket timeout *and* an outer `asyncio.wait_for`: a hung daemon ends a call with a
TIMEOUT failure in bounded time, holds at most the pool's few threads, and never stalls the
event loop or another host. A remote host's engine is reached through its SSH connection
(`hosts.docker_endpoint.forward`); the SDK never sees `ssh://`, so there is no second login.

`containers()` is one list call plus an inspect of each container whose list entry changed
(restart count, OOM flag, health and limits are only in the inspect), so a steady host costs
one call per refresh. `stats()` reads every running container's cgroup files on the engine's
host in ONE shell command and takes CPU % from the previous reading; a container whose files
that shell cannot see (an engine elsewhere, a sandboxed /sys) falls back to the engine's
one-shot stats, concurrently (each waits for the engine's ~1 s collection tick). `logs()` reads a
container's log in a thread of its own, bounded, and stops by shutting its socket down.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import grp
import os
import pwd
import re
import shutil
import stat
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import docker
import docker.errors
import requests

from hosts.docker_endpoint import (
    DockerEndpoint,
    DockerError,
    DockerFailure,
    EndpointKind,
    Route,
    resolve,
)
from hosts.shell import LocalShell, Shell, ShellError

if TYPE_CHECKING:
    import asyncssh

__all__ = [
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
    "Health",
    "LogStream",
    "State",
]

SshOpener = Callable[[], Awaitable["asyncssh.SSHClientConnection"]]
"""The host's SSH connection, (re)connected on demand: `HostLink.connection`."""
T = TypeVar("T")
GRACE = 1.0
"""Seconds past the SDK's own timeout before the outer limit gives up on a call."""
CGROUP_RETRY = 60.0
"""After the shell found no cgroup files, seconds before it is asked again."""


# -- records: what the engine says, as plain frozen data, and the pure parsers behind them


class State(enum.StrEnum):
    """A container's state, in the engine's words."""

    CREATED = "created"
    RUNNING = "running"
    RESTARTING = "restarting"
    PAUSED = "paused"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"
    UNKNOWN = "unknown"


class Health(enum.StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class ContainerPin:
    """What a fix is pinned on: the container is the same one, and has not restarted since."""

    id: str
    started_raw: str

    def holds(self, now: Container | None) -> bool:
        """Whether `now` (from `inspect`, None: gone) is still the pinned container."""
        return now is not None and now.id == self.id and now.started_raw == self.started_raw


@dataclass(frozen=True, slots=True)
class Container:
    """One container as its inspect describes it."""

    id: str
    name: str
    image: str
    state: State
    health: Health | None
    """None: no healthcheck, or none has run yet."""
    has_healthcheck: bool
    restart_count: int
    started_at: datetime | None
    finished_at: datetime | None
    started_raw: str
    """State.StartedAt exactly as the engine wrote it (nanoseconds): the pin's half."""
    exit_code: int
    oom_killed: bool
    restart_policy: str
    """"no", "always", "unless-stopped", "on-failure" or "on-failure:N" (N retries at most)."""
    ports: tuple[str, ...]
    """Published ports as `docker ps` writes them: `0.0.0.0:8080->80/tcp`."""
    project: str | None
    """The compose project (label com.docker.compose.project)."""
    service: str | None
    """The compose service (label com.docker.compose.service)."""
    memory_limit: int
    """HostConfig.Memory in bytes; 0 means no limit."""
    pid: int
    """The main process on the engine's host; 0 when not running."""
    failing_streak: int = 0
    """Consecutive failed health probes."""
    health_output: str = ""
    """The last probe's output (cut at 300 characters), as the engine kept it."""
    labels: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Every label (compose's and the operator's own)."""

    @property
    def pin(self) -> ContainerPin:
        return ContainerPin(self.id, self.started_raw)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def uptime(self, now: datetime | None = None) -> float | None:
        """Seconds since it started, while it runs; None otherwise."""
        if self.state is not State.RUNNING or self.started_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.started_at).total_seconds()


def parse_container(data: Mapping[str, Any]) -> Container:
    """A container from the engine's inspect JSON (GET /containers/{id}/json)."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    host_config = data.get("HostConfig") or {}
    health = state.get("Health") or {}
    test = (config.get("Healthcheck") or {}).get("Test") or []
    policy = host_config.get("RestartPolicy") or {}
    policy_name = policy.get("Name") or "no"
    if policy_name == "on-failure" and policy.get("MaximumRetryCount"):
        policy_name = f"on-failure:{policy['MaximumRetryCount']}"
    probes = health.get("Log") or []
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    network = data.get("NetworkSettings") or {}
    return Container(
        id=str(data.get("Id", "")),
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image") or data.get("Image", "")),
        state=_enum(State, state.get("Status"), State.UNKNOWN),
        health=_enum(Health, health.get("Status"), None),
        has_healthcheck=bool(test) and test[0] != "NONE",
        restart_count=int(data.get("RestartCount") or 0),
        started_at=parse_time(state.get("StartedAt")),
        finished_at=parse_time(state.get("FinishedAt")),
        started_raw=str(state.get("StartedAt") or ""),
        exit_code=int(state.get("ExitCode") or 0),
        oom_killed=bool(state.get("OOMKilled")),
        restart_policy=policy_name,
        ports=format_ports(network.get("Ports") or {}),
        project=labels.get("com.docker.compose.project"),
        service=labels.get("com.docker.compose.service"),
        memory_limit=int(host_config.get("Memory") or 0),
        pid=int(state.get("Pid") or 0),
        failing_streak=int(health.get("FailingStreak") or 0),
        health_output=str(probes[-1].get("Output") or "")[:300] if probes else "",
        labels=labels,
    )


E = TypeVar("E", bound=enum.StrEnum)


def _enum(kind: type[E], value: object, default: Any) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        return default


def parse_time(text: object) -> datetime | None:
    """An engine timestamp (RFC 3339, nanoseconds, Z) as an aware datetime; the zero time
    ("0001-01-01T00:00:00Z": never) and anything unreadable as None."""
    if not isinstance(text, str) or not text or text.startswith("0001-"):
        return None
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        head = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(head.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_ports(ports: Mapping[str, Any]) -> tuple[str, ...]:
    """NetworkSettings.Ports as `docker ps` shows published ones: `0.0.0.0:8080->80/tcp`."""
    shown = []
    for inside, bindings in sorted(ports.items(), key=lambda kv: _port_key(kv[0])):
        for binding in bindings or ():
            address = binding.get("HostIp") or "0.0.0.0"
            address = f"[{address}]" if ":" in address else address
            shown.append(f"{address}:{binding.get('HostPort', '')}->{inside}")
    return tuple(shown)


def _port_key(text: str) -> tuple[int, str]:
    number, _, protocol = text.partition("/")
    return (int(number) if number.isdigit() else 0, protocol)


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """The engine a link talks to (GET /version) and the API version the link speaks."""

    version: str
    api_version: str
    os: str
    arch: str


@dataclass(frozen=True, slots=True)
class Reading:
    """A container's raw counters at one moment (cgroup files, or the engine's stats)."""

    usage: int
    """Memory charged to the container, page cache included."""
    limit: int | None
    inactive_file: int
    anon: int | None
    cpu_ns: int | None
    """CPU time used since the container started, nanoseconds."""
    clock: float | None
    """When, in seconds on the reading host's clock (only differences count)."""


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """One running container's CPU and memory, as `docker stats` computes them."""

    id: str
    cpu_percent: float | None
    """Since the previous reading; 100 = one whole CPU. None on the first reading."""
    memory_used: int
    """Usage minus inactive page cache: what `docker stats` shows, what the limit bites."""
    memory_limit: int | None
    """None: no limit."""
    memory_anon: int | None
    """Anonymous memory (heap, stacks, tmpfs): what a leak grows; None if not reported."""
    memory_usage: int
    """The cgroup's whole charge, page cache included."""
    source: str
    """"cgroup" (the files, over the host's shell) or "api" (the engine's one-shot stats)."""

    @property
    def memory_percent(self) -> float | None:
        return 100.0 * self.memory_used / self.memory_limit if self.memory_limit else None


UNLIMITED = 1 << 62
"""cgroup v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages)."""
CGROUP_SCRIPT = r"""read up idle < /proc/uptime && echo "@t $up"
cd /proc || exit 3
files=$(grep -s -H '' "$@" | awk -F: '
  { p = $4; for (i = 5; i <= NF; i++) p = p ":" $i
    c = "," $3 ","
    if ($3 == "") { d = "/sys/fs/cgroup" p; f = "memory.current memory.max memory.stat cpu.stat" }
    else if (c ~ /,memory,/) { d = "/sys/fs/cgroup/memory" p
      f = "memory.usage_in_bytes memory.limit_in_bytes memory.stat" }
    else if (c ~ /,cpuacct,/) { d = "/sys/fs/cgroup/" $3 p; f = "cpuacct.usage" }
    else next
    if (p != "/" && !(d in seen)) { seen[d] = 1; n = split(f, name, " ")
      for (i = 1; i <= n; i++) print d "/" name[i] } }')
[ -n "$files" ] || exit 0
IFS='
'
set -f
keep='^([0-9]+|max)$|^(total_inactive_file|total_rss|inactive_file|anon|usage_usec) '
exec grep -s -H -E "$keep" $files
"""
"""Reads the cgroup files of the processes given as `PID/cgroup` arguments with four
processes in all, whatever the count (sh, grep, awk, grep; a few ms per hundred
containers): each process's cgroups from /proc/PID/cgroup (any cgroup driver or parent),
then cgroup v2 (memory.current, memory.max, memory.stat, cpu.stat) or v1
(memory.usage_in_bytes, memory.limit_in_bytes, memory.stat, cpuacct.usage), only the lines
that count. `@t` is the host's uptime: the clock CPU % is measured on, so network delays do
not bend it. A file that is not there is skipped (grep -s; the exit status is then 2)."""
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


def cgroup_args(containers: Sequence[Container]) -> list[str]:
    return [f"{c.pid}/cgroup" for c in containers if c.pid > 0]


def parse_cgroup_read(text: str, ids: Collection[str]) -> dict[str, Reading]:
    """CGROUP_SCRIPT's output as readings by container id. A directory is a container's
    when its path holds that id (a pid reused by another process since is left out)."""
    clock: float | None = None
    owners: dict[str, str | None] = {}
    files: dict[str, dict[str, list[str]]] = {}
    for line in text.splitlines():
        if line.startswith("@t "):
            clock = _number(line[3:].split(" ", 1)[0], float)
            continue
        slash = line.rfind("/")
        colon = line.find(":", slash)
        if slash <= 0 or colon <= 0:
            continue
        directory = line[:slash]
        if directory not in owners:
            owners[directory] = next(
                (m for m in _CONTAINER_ID.findall(directory) if m in ids), None
            )
        if (cid := owners[directory]) is not None:
            name = line[slash + 1 : colon]
            files.setdefault(cid, {}).setdefault(name, []).append(line[colon + 1 :])
    found = {}
    for cid, got in files.items():
        if (reading := _cgroup_reading(got, clock)) is not None:
            found[cid] = reading
    return found


def _cgroup_reading(got: Mapping[str, list[str]], clock: float | None) -> Reading | None:
    def first(name: str) -> str:
        return got.get(name, [""])[0].strip()

    def table(name: str) -> dict[str, int]:
        pairs = (line.split() for line in got.get(name, ()))
        return {p[0]: v for p in pairs if len(p) == 2 and (v := _number(p[1], int)) is not None}

    if "memory.current" in got:  # cgroup v2
        memory, cpu = table("memory.stat"), table("cpu.stat")
        usage, limit = _number(first("memory.current"), int), _number(first("memory.max"), int)
        inactive, anon = memory.get("inactive_file", 0), memory.get("anon")
        cpu_ns = cpu["usage_usec"] * 1000 if "usage_usec" in cpu else None
    elif "memory.usage_in_bytes" in got:  # cgroup v1
        memory = table("memory.stat")
        usage = _number(first("memory.usage_in_bytes"), int)
        limit = _number(first("memory.limit_in_bytes"), int)
        inactive, anon = memory.get("total_inactive_file", 0), memory.get("total_rss")
        cpu_ns = _number(first("cpuacct.usage"), int)
    else:
        return None
    if usage is None:
        return None
    limit = limit if limit is not None and limit < UNLIMITED else None
    return Reading(usage, limit, inactive, anon, cpu_ns, clock)


N = TypeVar("N", int, float)


def _number(text: str, kind: Callable[[str], N]) -> N | None:
    try:
        return kind(text.strip())
    except ValueError:
        return None


def api_reading(data: Mapping[str, Any]) -> Reading | None:
    """The engine's stats JSON as a reading; None for a stopped container's stub."""
    memory = data.get("memory_stats") or {}
    if "usage" not in memory:
        return None
    table = memory.get("stats") or {}
    anon = table.get("total_rss", table.get("anon"))
    cpu = ((data.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    read = parse_time(data.get("read"))
    return Reading(
        usage=int(memory["usage"]),
        limit=None,  # the engine writes the host's memory when there is no limit
        inactive_file=int(table.get("total_inactive_file", table.get("inactive_file", 0))),
        anon=int(anon) if anon is not None else None,
        cpu_ns=int(cpu) if cpu is not None else None,
        clock=read.timestamp() if read is not None else None,
    )


def to_stats(
    cid: str, now: Reading, before: tuple[int, float] | None, source: str, configured: int
) -> ContainerStats:
    """Stats from a reading and the previous (cpu_ns, clock) of the same container and source;
    `configured` is HostConfig.Memory, the limit when the reading has none."""
    cpu = None
    if before is not None and now.cpu_ns is not None and now.clock is not None:
        elapsed, used = now.clock - before[1], now.cpu_ns - before[0]
        if elapsed > 0 and used >= 0:  # a restart resets the counter: skip that reading
            cpu = 100.0 * used / (elapsed * 1e9)
    return ContainerStats(
        id=cid,
        cpu_percent=cpu,
        memory_used=max(now.usage - now.inactive_file, 0),
        memory_limit=now.limit or configured or None,
        memory_anon=now.anon,
        memory_usage=now.usage,
        source=source,
    )


# -- the link


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """Limits of a link (seconds, counts)."""

    timeout: float = 5.0
    """Each API call: the SDK's socket timeout, and (plus GRACE) the outer limit."""
    workers: int = 4
    """Threads for API calls: all a dead daemon can ever hold."""
    log_streams: int = 4
    """Log streams open at once (each holds a thread of its own while it follows)."""
    stats_concurrency: int = 32
    """One-shot stats requests at once, for containers whose cgroup files are out of reach:
    each waits for the engine's next 1 s collection, so N containers take about N/32 s."""
    inspect_max_age: float = 60.0
    """Re-inspect an unchanged container after this long (health streaks, `docker update`)."""
    stats_from: Literal["auto", "cgroup", "api"] = "auto"
    """"auto" (cgroup files, else the engine), "cgroup" or "api": for tests and benchmarks."""


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
        self._inspected: dict[str, tuple[tuple[str, str], float, Container]] = {}
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
        whose list entry (state, status text: see `_settled`) changed or whose inspect is
        older than inspect_max_age. One removed in between is left out, not an error."""
        listed = await self.call(lambda api: api.containers(all=True))
        now = time.monotonic()
        keys = {c["Id"]: (str(c.get("State", "")), _settled(c.get("Status"))) for c in listed}
        for gone in set(self._inspected) - set(keys):
            del self._inspected[gone]
        stale = [
            cid
            for cid, key in keys.items()
            if (seen := self._inspected.get(cid)) is None
            or seen[0] != key
            or now - seen[1] > self.settings.inspect_max_age
        ]
        gate = asyncio.Semaphore(self.settings.workers)  # time counts from the send, not the queue

        async def inspect(cid: str) -> Container | None:
            async with gate:
                return await self.inspect(cid)

        for cid, container in zip(stale, await asyncio.gather(*map(inspect, stale)), strict=True):
            if container is not None:
                self._inspected[cid] = (keys[cid], now, container)
        found = [self._inspected[cid][2] for cid in keys if cid in self._inspected]
        return sorted(found, key=lambda c: c.name)

    async def inspect(self, container_id: str) -> Container | None:
        """A container as it is now (a pin compares its `pin`); None when it is gone."""
        try:
            data = await self.call(lambda api: api.inspect_container(container_id))
        except DockerError as error:
            if error.failure is DockerFailure.GONE:
                return None
            raise
        return parse_container(data)

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
                opening = functools.partial(_open_client, url, self.route, self.settings)
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
        from hosts.docker_endpoint import forward

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
        from hosts.ssh import SSHShell

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


# -- dialling, and failures in an operator's words

_SECONDS = re.compile(r"\b(?:\d+ seconds|1 second|Less than a second)\b")


def _settled(status: object) -> str:
    """A list entry's Status ("Up 5 seconds (healthy)", "Exited (3) 2 hours ago") without the
    seconds that tick by on their own, so a young container is not inspected every refresh.
    A restart still shows as a change ("Up 2 hours" to "Up 1 second"), except within a
    container's first minute: then it waits for the minute or inspect_max_age."""
    return _SECONDS.sub("seconds", str(status or ""))


def _open_client(url: str, route: Route, settings: DockerSettings) -> tuple[Any, EngineInfo]:
    """(In a pool thread.) A low-level client at the engine's API version (at most the
    SDK's), and the engine's version: the first request, so a dead engine fails here."""
    tls: Any = False
    if route.tls is not None and url.startswith("tcp://"):
        files = route.tls
        cert = (files.cert, files.key) if files.cert and files.key else None
        tls = docker.tls.TLSConfig(client_cert=cert, ca_cert=files.ca, verify=files.verify)
    size = settings.workers + settings.log_streams + settings.stats_concurrency
    common: dict[str, Any] = {"timeout": settings.timeout, "tls": tls, "max_pool_size": size}
    oldest = docker.constants.MINIMUM_DOCKER_API_VERSION
    probe = docker.APIClient(base_url=url, version=oldest, **common)
    try:
        version = probe.version(api_version=False)
    finally:
        probe.close()
    theirs = str(version.get("ApiVersion") or oldest)
    ours = docker.constants.DEFAULT_DOCKER_API_VERSION
    use = ours if docker.utils.version_lt(ours, theirs) else theirs
    api = docker.APIClient(base_url=url, version=use, **common)
    info = EngineInfo(
        str(version.get("Version", "?")),
        use,
        str(version.get("Os", "")),
        str(version.get("Arch", "")),
    )
    return api, info


def classify(error: BaseException, route: Route, timeout: float) -> tuple[DockerFailure, str]:
    """The cause of a failed SDK call, and a sentence saying it to an operator."""
    chain = list(_chain(error))
    place = route.path if route.is_unix else route.url
    for cause in chain:
        if isinstance(cause, docker.errors.NotFound):
            return DockerFailure.GONE, f"no such container ({cause.explanation})"
        if isinstance(cause, docker.errors.APIError):
            return DockerFailure.API, str(cause.explanation or cause)
    for cause in chain:
        if isinstance(cause, TimeoutError | requests.Timeout):
            return DockerFailure.TIMEOUT, quiet(timeout)
        if isinstance(cause, PermissionError):
            return DockerFailure.DENIED, _denied(route)
        if isinstance(cause, FileNotFoundError) and not route.via_ssh:
            why = "Docker is not installed or not running here"
            return DockerFailure.NOT_FOUND, f"no socket at {place}: {why}"
        if isinstance(cause, ConnectionRefusedError) and not route.via_ssh:
            return DockerFailure.REFUSED, f"nothing listens at {place} (connection refused)"
    for cause in chain:
        if isinstance(cause, requests.ConnectionError | ConnectionError):
            return DockerFailure.LOST, f"the engine closed the connection ({cause})"
        if isinstance(cause, docker.errors.DockerException):
            return DockerFailure.CONFIG, str(cause)
    return DockerFailure.API, f"{type(error).__name__}: {error}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """An exception and all it wraps: causes, contexts, urllib3's reasons, exception args."""
    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += list(current.args)


def quiet(seconds: float) -> str:
    """What a TIMEOUT says."""
    return (
        f"the engine took the connection but sent nothing within {seconds:g} s "
        "(hung, overloaded or stopped)"
    )


def _denied(route: Route) -> str:
    """Who is refused which socket, and the usual way in."""
    user = _name(lambda: pwd.getpwuid(os.geteuid()).pw_name, os.geteuid())
    if route.via_ssh or not route.is_unix:
        return f"the engine at {route.url} refused user {user}"
    try:
        info = os.stat(route.path)
    except OSError:
        return f"user {user} may not reach {route.path} (a directory on the way is closed)"
    owner = _name(lambda: pwd.getpwuid(info.st_uid).pw_name, info.st_uid)
    group = _name(lambda: grp.getgrgid(info.st_gid).gr_name, info.st_gid)
    return (
        f"user {user} may not use {route.path} ({owner}:{group}, mode "
        f"{stat.S_IMODE(info.st_mode):o}): add {user} to group {group}, or point "
        "DOCKER_HOST or a docker context at a socket it may use"
    )


def _name(lookup: Callable[[], str], number: int) -> str:
    try:
        return lookup()
    except KeyError:
        return str(number)


# -- logs: a follow stream read in a thread of its own, bounded, stopped by shutting its socket

MAX_LINE = 65536
"""The longest piece of a line handed over; a longer line comes in pieces, so a log without
newlines never grows a buffer without end."""
QUEUED_LINES = 1000
"""Lines read ahead of the consumer before the reading thread waits: the memory bound."""
_END = object()


class LogStream:
    """A container's log lines, raw bytes without the newline (stdout and stderr together;
    invalid UTF-8 and escape sequences as the container wrote them: render them safely).

        async with link.logs(container_id, tail=200, follow=True) as lines:
            async for line in lines:
                ...

    A thread of its own reads the engine's stream (it may wait for hours while following);
    leaving the block, `aclose()` or `link.close()` shuts the socket under that blocked read,
    so the thread ends at once. At most `log_streams` are open per link (else BUSY)."""

    def __init__(self, link: DockerLink, container_id: str, options: dict[str, Any]) -> None:
        self.link = link
        self.container_id = container_id
        self.options = options
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED_LINES)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._opened: asyncio.Future[None] | None = None
        self._holds_slot = False

    async def __aenter__(self) -> LogStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> LogStream:
        return self

    async def __anext__(self) -> bytes:
        if self._opened is None and self._stop.is_set():
            raise StopAsyncIteration  # closed before it was ever opened
        await self.open()
        item = await self._queue.get()
        if not isinstance(item, bytes):
            self._queue.put_nowait(_END)  # and again for any later call
            raise StopAsyncIteration
        self._room.release()
        return item

    async def open(self) -> None:
        """Ask the engine for the log (once); `DockerError` GONE, TIMEOUT, BUSY... if not."""
        if self._opened is not None:
            return await asyncio.shield(self._opened)
        link, loop = self.link, asyncio.get_running_loop()
        self._opened = opened = loop.create_future()
        opened.add_done_callback(lambda f: f.cancelled() or f.exception())  # always retrieved
        try:
            if sum(s._holds_slot for s in link.streams) >= link.settings.log_streams:
                open_now = link.settings.log_streams
                raise DockerError(link.where, DockerFailure.BUSY, f"{open_now} are open already")
            self._holds_slot = True
            link.streams.add(self)
            api = await link.client()
            name = f"docker-logs-{link.host}"
            thread = threading.Thread(target=self._pump, args=(api, loop), name=name, daemon=True)
            thread.start()
            limit = link.settings.timeout * 2 + GRACE  # the request, then the tty inspect
            try:
                await asyncio.wait_for(asyncio.shield(opened), limit)
            except TimeoutError:
                raise DockerError(link.where, DockerFailure.TIMEOUT, quiet(limit)) from None
        except BaseException as error:
            if not opened.done() and isinstance(error, Exception):
                opened.set_exception(error)
            opened.cancel()  # cancelled while opening: a later open() says so too
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop reading (idempotent); lines still queued are dropped."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()  # shuts the socket down: the blocked read returns
        self.link.streams.discard(self)
        self._holds_slot = False
        self._queue.put_nowait(_END)

    def _pump(self, api: Any, loop: asyncio.AbstractEventLoop) -> None:
        """(Its thread.) Open the stream, cut what comes into lines, hand them to the loop."""
        try:
            response = api.logs(self.container_id, stream=True, **self.options)
        except Exception as error:  # handed to the loop as a DockerError
            _soon(loop, self._settle, self.link.failure(error))
            return
        with self._lock:
            self._response = response
        _soon(loop, self._settle, None)
        try:
            if self._lines(response, loop):
                _soon(loop, self._queue.put_nowait, _END)
        finally:
            with contextlib.suppress(Exception):
                response.close()

    def _lines(self, response: Any, loop: asyncio.AbstractEventLoop) -> bool:
        """(Its thread.) Cut the stream into lines and hand them over; False once closed."""
        line = bytearray()
        with contextlib.suppress(Exception):  # a closed or broken stream simply ends
            for chunk in response if not self._stop.is_set() else ():
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    line += chunk[start:end]
                    if not self._hand(loop, line):
                        return False
                    start = end + 1
                line += chunk[start:]
                while len(line) >= MAX_LINE:
                    if not self._hand(loop, line[:MAX_LINE]):
                        return False
                    del line[:MAX_LINE]
        return not line or self._hand(loop, line)

    def _hand(self, loop: asyncio.AbstractEventLoop, line: bytearray) -> bool:
        """Give the loop one line (then empty `line`), waiting while QUEUED_LINES wait
        unread; False when the stream was closed meanwhile."""
        whole = bytes(line)
        line.clear()
        while not self._room.acquire(timeout=0.25):
            if self._stop.is_set() or loop.is_closed():
                return False
        return not self._stop.is_set() and _soon(loop, self._queue.put_nowait, whole)

    def _settle(self, error: DockerError | None) -> None:
        if self._opened is not None and not self._opened.done():
            if error is None:
                self._opened.set_result(None)
            else:
                self._opened.set_exception(error)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop has closed
        return False
    return True
