"""What the Host screen's containers pane and the Fleet screen's containers column show: one
`ContainerSnapshot` of a host's Docker engine per refresh.

A reading is the link's container list (one list call, plus an inspect of the containers that
changed) and, for the pane, every running container's CPU and memory from ONE `stats()` call
(the cgroup files over the host's shell, else the engine's one-shot stats): never an API
call per container per refresh. Containers are grouped by compose project and service, from
their labels; those without a project come last.

Nothing here raises for what the engine does: a snapshot's `error` is the link's sentence
(host, endpoint, cause), and `absent` tells "no Docker here" (nothing to fix) from an engine
that hangs, refuses this user or is stopped. Stats that cannot be read leave the list and a
note. Text from the engine (names, labels, images) is made printable here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleetdeck.checks.model import printable
from fleetdeck.hosts.docker.endpoint import DockerError, DockerFailure

if TYPE_CHECKING:
    from fleetdeck.hosts.docker.link import Container, ContainerStats, DockerLink

ABSENT = frozenset({DockerFailure.NO_ENDPOINT, DockerFailure.NOT_FOUND})
"""Failures that mean "this host has no Docker": said plainly, not shown as an error."""
SLACK = 2.0
"""Seconds past the link's own limits before a whole reading gives up."""


@dataclass(frozen=True, slots=True)
class ContainerLine:
    """One container as a line of the pane (text already printable)."""

    id: str
    name: str
    image: str
    state: str
    """The engine's state: running, restarting, exited, paused, created, dead..."""
    state_text: str
    """What the State column says: `running`, `exited (3)`, `restarting`."""
    health: str
    """healthy, unhealthy, starting, or "" (no healthcheck, or none has run yet)."""
    failing_streak: int
    restart_count: int
    uptime: float | None
    """Seconds since it started, while it runs."""
    stopped_for: float | None
    """Seconds since it stopped, when it has (exited, dead)."""
    cpu_percent: float | None
    """100 = one CPU; None when not running or on the first reading."""
    memory_used: int | None
    memory_limit: int | None
    """None: no limit (or not running and none configured)."""
    oom_killed: bool
    ports: tuple[str, ...]
    project: str | None
    service: str | None
    trouble: tuple[str, ...] = ()
    """Why it needs a look, in words: unhealthy, restarting, exited 3, OOM-killed, dead."""

    @property
    def memory_percent(self) -> float | None:
        if self.memory_used is None or not self.memory_limit:
            return None
        return 100.0 * self.memory_used / self.memory_limit


@dataclass(frozen=True, slots=True)
class ContainerGroup:
    """The containers of one compose service (project and service None: not compose)."""

    project: str | None
    service: str | None
    lines: tuple[ContainerLine, ...]


@dataclass(frozen=True, slots=True)
class ContainerSnapshot:
    """One reading of a host's engine, or why there is none (`error`, `failure`)."""

    host: str
    where: str
    at: float
    """time.monotonic() of the reading (ages)."""
    taken: float
    """time.time() of the reading (shown)."""
    error: str | None = None
    failure: DockerFailure | None = None
    engine: str = ""
    """The engine's version."""
    groups: tuple[ContainerGroup, ...] = ()
    stats_read: bool = False
    """CPU and memory were asked for and read (not for the Fleet column)."""
    stats_note: str = ""
    """Why CPU and memory are missing, when they are."""

    @property
    def absent(self) -> bool:
        """No Docker on this host (none configured, no socket): a plain fact, not an error."""
        return self.failure in ABSENT

    @property
    def lines(self) -> tuple[ContainerLine, ...]:
        return tuple(line for group in self.groups for line in group.lines)

    @property
    def total(self) -> int:
        return sum(len(group.lines) for group in self.groups)

    @property
    def running(self) -> int:
        return sum(line.state == "running" for line in self.lines)

    @property
    def troubled(self) -> tuple[ContainerLine, ...]:
        return tuple(line for line in self.lines if line.trouble)

    def find(self, container_id: str) -> ContainerLine | None:
        return next((line for line in self.lines if line.id == container_id), None)


async def read_containers(
    link: DockerLink,
    *,
    stats: bool = True,
    limit: float | None = None,
) -> ContainerSnapshot:
    """One reading of the engine behind `link`; never raises for what the engine does (see
    the module). `stats` adds CPU and memory; `limit` bounds the whole reading (default:
    the link's call timeout, three calls deep). Stats that fail leave the figures empty,
    with a note: old numbers never pass for new ones."""
    base = ContainerSnapshot(link.host, link.where, time.monotonic(), time.time())
    every = link.settings.timeout + SLACK
    limit = limit if limit is not None else 3 * every + SLACK
    try:
        async with asyncio.timeout(limit):
            containers = await link.containers()
            engine = await link.engine()
            figures: dict[str, ContainerStats] = {}
            note = ""
            if stats:
                try:
                    figures = await link.stats(containers)
                except DockerError as error:
                    note = f"CPU and memory not read: {error.failure.value}: {error.detail}"
    except DockerError as error:
        return replace(base, error=printable(str(error)), failure=error.failure)
    except TimeoutError:
        said = f"{link.where}: no answer: no complete reading within {limit:g} s"
        return replace(base, error=printable(said), failure=DockerFailure.TIMEOUT)
    except (KeyError, TypeError, ValueError, AttributeError) as error:  # an odd answer
        said = f"{link.where}: unexpected answer ({type(error).__name__}: {error})"
        return replace(base, error=printable(said), failure=DockerFailure.API)
    now = datetime.now(UTC)
    lines = [line_of(c, figures.get(c.id), now) for c in containers]
    return replace(
        base,
        engine=printable(engine.version),
        groups=group_lines(lines),
        stats_read=stats and not note,
        stats_note=printable(note),
    )


def line_of(container: Container, stats: ContainerStats | None, now: datetime) -> ContainerLine:
    """A container and its figures (None: not running, or not read) as a pane line."""
    state = str(container.state)
    health = str(container.health) if container.health is not None else ""
    limit = container.memory_limit or None
    if stats is not None and stats.memory_limit:
        limit = stats.memory_limit
    return ContainerLine(
        id=container.id,
        name=printable(container.name),
        image=printable(container.image),
        state=state,
        state_text=(f"exited ({container.exit_code})" if container.state == "exited" else state),
        health=health,
        failing_streak=container.failing_streak,
        restart_count=container.restart_count,
        uptime=container.uptime(now),
        stopped_for=_stopped_for(container, now),
        cpu_percent=stats.cpu_percent if stats is not None else None,
        memory_used=stats.memory_used if stats is not None else None,
        memory_limit=limit,
        oom_killed=container.oom_killed,
        ports=tuple(printable(p) for p in container.ports),
        project=printable(container.project) if container.project is not None else None,
        service=printable(container.service) if container.service is not None else None,
        trouble=trouble(container),
    )


def trouble(container: Container) -> tuple[str, ...]:
    """What marks a container in the pane and the Fleet column. A hint for the eye: whether
    an exited container should run is the C1 check's call (it knows the restart policy's
    story); here any non-zero exit is shown."""
    said = []
    if container.state == "restarting":
        said.append("restarting")
    if container.state == "dead":
        said.append("dead")
    if container.health == "unhealthy":
        said.append("unhealthy")
    if container.state == "exited" and container.exit_code != 0:
        said.append(f"exited {container.exit_code}")
    if container.oom_killed:
        said.append("OOM-killed")
    return tuple(said)


def _stopped_for(container: Container, now: datetime) -> float | None:
    if container.state not in ("exited", "dead") or container.finished_at is None:
        return None
    return max((now - container.finished_at).total_seconds(), 0.0)


def group_lines(lines: list[ContainerLine]) -> tuple[ContainerGroup, ...]:
    """Lines by compose project, then service, then name; containers of no project last."""

    def key(line: ContainerLine) -> tuple[bool, str, bool, str]:
        return (line.project is None, line.project or "", line.service is None, line.service or "")

    ordered = sorted(lines, key=lambda line: (*key(line), line.name))
    return tuple(
        ContainerGroup(members[0].project, members[0].service, tuple(members))
        for members in (list(g) for _, g in itertools.groupby(ordered, key=key))
    )
