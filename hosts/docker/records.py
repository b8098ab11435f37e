"""What a Docker engine says, as plain frozen data, and the pure parsers that make it.

Containers (`Container`, `ContainerPin`, `State`, `Health`) from the inspect JSON, the engine's
version (`EngineInfo`), and CPU and memory (`Reading`, `ContainerStats`) from a container's
cgroup files (`CGROUP_SCRIPT`, read in one shell command on the engine's host) or from the
engine's one-shot stats. Nothing here does I/O: the link (`hosts.docker.link.DockerLink`) fetches
the text and JSON, these functions turn them into records, so they are fuzzable and the
remote path is the local one. Import them from `hosts.docker.link`, which re-exports them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = [
    "CGROUP_SCRIPT",
    "UNLIMITED",
    "Container",
    "ContainerPin",
    "ContainerStats",
    "EngineInfo",
    "Health",
    "Reading",
    "State",
    "api_reading",
    "cgroup_args",
    "format_ports",
    "parse_cgroup_read",
    "parse_container",
    "parse_time",
    "to_stats",
]


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
    created_at: datetime | None = None
    """When the container was created (its restart count cannot be older than that)."""
    error: str = ""
    """State.Error: why the engine could not start it (a failed restart leaves it exited)."""

    @property
    def pin(self) -> ContainerPin:
        return ContainerPin(self.id, self.started_raw)

    def age(self, now: datetime | None = None) -> float | None:
        """Seconds since it was created; None when the engine did not say."""
        if self.created_at is None:
            return None
        return max(((now or datetime.now(UTC)) - self.created_at).total_seconds(), 0.0)

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
        created_at=parse_time(data.get("Created")),
        error=str(state.get("Error") or ""),
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
    return (int(number) if number.isdecimal() else 0, protocol)


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
