"""The fixes the container checks offer (runbook C2): restart, start and stop, run by the gate.

They run as the docker CLI on the host's own shell: `docker -H unix:///var/run/docker.sock
restart -t 10 <id>`. The gate already runs argv lists there, shows them exactly and audits
them, and an operator can type the same line; a fix needs no engine connection of its own,
so it also runs where the console's link is busy or broken. `-H` (or `--context`) names the
engine the checks read through the link, so the CLI never falls back on a DOCKER_HOST or a
context of its own. The one engine the host's shell cannot address is a docker context of
*this* machine named for a remote host: no fix is offered then, and the finding says why.

Each fix is pinned on the container's id and its State.StartedAt, read with `docker inspect`
right before it runs: a container removed (the inspect fails) or restarted since it was
shown (another start time) aborts the fix. Stop is pinned on the id alone: it is offered for
a container in a restart loop, whose start time changes with every attempt (that is the
loop, not another container), so an id pin still catches a removed or re-created one without
aborting every stop an operator takes ten seconds to confirm. The stop timeout is the
container's own (`--stop-timeout`, compose's `stop_grace_period`), else Docker's 10 s,
written into the command so the operator sees how long its processes get.

Restart and stop end the container's processes: disruptive. Stop leaves nothing deleted (the
container, its files, logs and volumes stay, and `docker start` brings it back) and is only
offered for a restart loop, so for a container with a restart policy, which Docker never
lets be an auto-removed (`--rm`) one: it is not destructive. Start runs what was stopped and
interrupts nothing: safe, with its impact stated.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fleetdeck.checks.model import Fix, Pin, Risk
from fleetdeck.hosts.docker.link import Container, DockerError, DockerLink
from fleetdeck.hosts.units import human_duration

DEFAULT_STOP_TIMEOUT = 10
"""Docker's own, when the container sets none."""
STABLE = 5.0
"""A container without a healthcheck counts as back once it has run this long after a fix."""
MEMORY_SETTLE = 15.0
"""A memory fix's verification: the figure is read at once; a few retries are enough."""
PIN_FORMAT = "{{.Id}} {{.State.StartedAt}}"


class NoFix(Exception):
    """Why no fix can be offered for a container on this host (the message says)."""


def docker_argv(link: DockerLink) -> tuple[str, ...]:
    """`docker` with the options that address the link's engine from the host's shell;
    NoFix when that shell cannot reach it."""
    try:
        route = link.route
    except DockerError as error:  # no endpoint at all: nothing was listed either
        raise NoFix(str(error)) from None
    context = route.source.removeprefix("context ") if route.source.startswith("context ") else ""
    if link.ssh is not None and not route.via_ssh:
        raise NoFix(
            f"{link.host}'s engine is the docker context {context or route.source!r} of this "
            f"machine, which {link.host}'s shell cannot address: run docker --context "
            f"{context or '...'} here"
        )
    if context and context != "default":
        return ("docker", "--context", context)
    return ("docker", "-H", route.url)


def pin(argv: tuple[str, ...], container: Container) -> Pin:
    return Pin(
        f"container {container.name}'s id and start time",
        (*argv, "inspect", "--type", "container", "--format", PIN_FORMAT, container.id),
        f"{container.id} {container.started_raw}",
    )


def id_pin(argv: tuple[str, ...], container: Container) -> Pin:
    """A looping container's identity: its id (its start time changes with each attempt)."""
    return Pin(
        f"container {container.name}'s id",
        (*argv, "inspect", "--type", "container", "--format", "{{.Id}}", container.id),
        container.id,
    )


def restart(
    container: Container,
    check: str,
    argv: tuple[str, ...],
    *,
    stop_timeout: int | None,
    settle: float,
    why: str = "",
) -> Fix:
    """C2: stop the container (its own stop timeout) and start it again."""
    wait = _wait(stop_timeout)
    comes_back = (
        f"verified once its healthcheck passes (up to {settle:g} s)"
        if container.has_healthcheck
        else f"verified once it has run {STABLE:g} s"
    )
    impact = (
        f"stops {container.name} (SIGTERM, then SIGKILL after {wait} s) and starts it again: "
        f"its processes and what they hold in memory end, and it serves nothing meanwhile; "
        f"{_uptime(container)}"
        + (
            f"; the engine's restart count ({container.restart_count}) goes back to 0"
            if container.restart_count
            else ""
        )
        + f"{_compose(container)}; {comes_back}"
    )
    return Fix(
        id="container.restart",
        title=f"Restart container {container.name}",
        risk=Risk.DISRUPTIVE,
        commands=((*argv, "restart", "-t", str(wait), container.id),),
        target=container.name,
        pin=pin(argv, container),
        verify=check,
        impact=impact + (f"; {why}" if why else ""),
        timeout=wait + 30.0,
        settle=settle,
    )


def start(container: Container, check: str, argv: tuple[str, ...], *, settle: float) -> Fix:
    """C2: start a container that stopped when it should run."""
    ended = _ended(container)
    policy = container.restart_policy
    again = (
        "it was killed for memory: unless its limit or its use changed it will be again"
        if container.oom_killed
        else "if what made it stop is still there it stops again"
    )
    impact = (
        f"starts {container.name} again with its own command and settings ({ended}); nothing "
        f"running is interrupted; {again}; its restart policy ({policy}) applies again"
        f"{_compose(container)}; verified once it "
        + (f"passes its healthcheck (up to {settle:g} s)" if container.has_healthcheck else "")
        + ("" if container.has_healthcheck else f"has run {STABLE:g} s")
    )
    return Fix(
        id="container.start",
        title=f"Start container {container.name}",
        risk=Risk.SAFE,
        commands=((*argv, "start", container.id),),
        target=container.name,
        pin=pin(argv, container),
        verify=check,
        impact=impact,
        timeout=60.0,
        settle=settle,
    )


def stop(
    container: Container, check: str, argv: tuple[str, ...], *, stop_timeout: int | None
) -> Fix:
    """C2: stop a container that keeps restarting, so it stops churning (and its logs stay
    readable) until its cause is fixed."""
    wait = _wait(stop_timeout)
    policy = container.restart_policy
    later = " (policy always: until the engine itself restarts)" if policy == "always" else ""
    compose = (
        f"; `docker compose up` for {container.project}/{container.service} starts it again"
        if container.project
        else ""
    )
    impact = (
        f"stops {container.name} (SIGTERM, then SIGKILL after {wait} s) and leaves it stopped: "
        f"the engine restarts no container stopped by hand{later}, so what it serves stays "
        f"down; it has restarted {container.restart_count} time(s); the container, its files, "
        f"logs and volumes stay, and `docker start` brings it back{compose}"
    )
    return Fix(
        id="container.stop",
        title=f"Stop container {container.name}",
        risk=Risk.DISRUPTIVE,
        commands=((*argv, "stop", "-t", str(wait), container.id),),
        target=container.name,
        pin=id_pin(argv, container),
        verify=check,
        impact=impact,
        timeout=wait + 30.0,
        settle=MEMORY_SETTLE,
    )


def _wait(stop_timeout: int | None) -> int:
    return stop_timeout if stop_timeout is not None and stop_timeout >= 0 else DEFAULT_STOP_TIMEOUT


def _uptime(container: Container) -> str:
    up = container.uptime()
    return f"it has been up {human_duration(up)}" if up is not None else "it is not up now"


def _ended(container: Container) -> str:
    code = f"exit code {container.exit_code}" + (", OOM-killed" if container.oom_killed else "")
    if container.finished_at is None:
        return code
    ago = (datetime.now(UTC) - container.finished_at).total_seconds()
    return f"{code}, {human_duration(ago)} ago"


def _compose(container: Container) -> str:
    if not container.project:
        return ""
    return (
        f"; compose service {container.project}/{container.service or '?'}: only this "
        "container, not the service's others"
    )
