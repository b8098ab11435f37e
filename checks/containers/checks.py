"""The container checks' footing and the first two (runbook C1): does the host's Docker engine
answer, and is every container in the state it should be in.

Each check asks through the `DockerLink` in the context (`CheckContext.docker`) and keeps what
it read in the link's `ContainerHistory`, so the restart and memory checks see readings from
before. A finding is about one container (its name is the target); a check that finds
nothing wrong gives one OK finding saying what it looked at. What an operator meant by a
container that is not running (stopped by hand, a job) is read by `checks.containers.intent`:
a stop by hand is OK whatever the restart policy; a failed exit that nothing restarts is a
warning with its last log lines, unless the container is labelled or named a one-shot job.

When the engine cannot be asked, the engine step says why in the link's own sentence, and
the wizard stops there. How bad that is depends on why: no Docker on the host at all (no
endpoint in the inventory, or no socket where the default one would be) is a plain OK, so a
host without Docker stays healthy in `fleetdeck check`; a socket the inventory names that is
missing, a socket nobody listens on, or an engine that does not answer is CRIT (its
containers cannot be watched or managed, and usually are in trouble too); a socket this user
may not open, a forward SSH refused and the like are UNKNOWN (nothing is known either way).
"""

from __future__ import annotations

import asyncio
import fnmatch
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from fleetdeck.checks.containers.config import ContainerThresholds
from fleetdeck.checks.containers.fixes import STABLE, NoFix, docker_argv
from fleetdeck.checks.containers.fixes import restart as restart_fix
from fleetdeck.checks.containers.fixes import start as start_fix
from fleetdeck.checks.containers.history import ContainerHistory, history_for
from fleetdeck.checks.containers.intent import ONESHOT_LABEL, hand_stop, job, log_tail
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Status, printable
from fleetdeck.hosts.docker.link import (
    KILLED,
    TERMINATED,
    Container,
    DockerError,
    DockerFailure,
    DockerLink,
    HandStop,
    Health,
    State,
)
from fleetdeck.hosts.units import human_bytes, human_duration

DOMAIN = "containers"
ENGINE = "docker"
"""The engine step's target."""
ABSENT = "no Docker"
"""How the engine step's summary starts when the host has no Docker to check."""
CRIT_FAILURES = frozenset({DockerFailure.REFUSED, DockerFailure.TIMEOUT})
ENGINE_ID = "container.engine"
STATE_ID = "container.state"


@dataclass(slots=True)
class Scan:
    """What one run of one check works with: the link, its history, the thresholds, the
    containers the wizard was asked about (`container` patterns) and the one a fix's
    verification asks about (`focus`)."""

    link: DockerLink
    history: ContainerHistory
    limits: ContainerThresholds
    patterns: tuple[str, ...] = ()
    focus: str = ""
    _timeouts: dict[str, int | None] = field(default_factory=dict)

    def wanted(self, container: Container) -> bool:
        if not self.patterns:
            return True
        return any(fnmatch.fnmatchcase(container.name, p) for p in self.patterns)

    async def listing(self) -> list[Container]:
        """Every container (kept in the history), then those the wizard was asked about."""
        found = await self.link.containers()
        self.history.add(found)
        return [c for c in found if self.wanted(c)]

    async def fresh(self, container: Container) -> Container | None:
        """The container as the engine describes it now (the listing may be served from the
        link's inspect cache); None when it is gone."""
        now = await self.link.inspect(container.id)
        if now is not None:
            self.history.add([now], complete=False)
        return now

    async def stop_timeout(self, container: Container) -> int | None:
        """The container's own stop timeout (`--stop-timeout`, compose stop_grace_period)."""
        if container.id not in self._timeouts:

            def read(api: Any) -> object:
                return (api.inspect_container(container.id).get("Config") or {}).get("StopTimeout")

            try:
                value = await self.link.call(read)
            except DockerError:
                value = None
            self._timeouts[container.id] = value if isinstance(value, int) else None
        return self._timeouts[container.id]

    def argv(self) -> tuple[str, ...]:
        return docker_argv(self.link)


Body = Callable[[Scan], Awaitable[list[Finding]]]


@dataclass(frozen=True, slots=True)
class ContainerCheck:
    """A check that asks the host's Docker engine; an engine that cannot be asked is one
    finding saying why (see the module's docstring for how bad)."""

    id: str
    title: str
    body: Body
    domain: str = DOMAIN

    async def run(self, ctx: CheckContext) -> list[Finding]:
        link = cast("DockerLink | None", ctx.docker)
        if link is None:
            said = "no Docker link to check through (the wizard was given none)"
            return [Finding(self.id, Status.UNKNOWN, ENGINE, said)]
        limits = container_thresholds(ctx)
        patterns = tuple(p for p in ctx.params.get("container", "").splitlines() if p)
        scan = Scan(link, history_for(link), limits, patterns, ctx.params.get("focus", ""))
        try:
            return await self.body(scan)
        except DockerError as error:
            return [engine_trouble(self.id, error, link, stopped_here=self.id == ENGINE_ID)]


def engine_trouble(check: str, error: DockerError, link: DockerLink, stopped_here: bool) -> Finding:
    """The engine could not be asked: OK when the host has no Docker, CRIT when its engine
    is down or hung, UNKNOWN when it cannot be looked at; the link's sentence says which."""
    explicit = link.endpoint is not None
    if error.failure is DockerFailure.NO_ENDPOINT or (
        error.failure is DockerFailure.NOT_FOUND and not explicit
    ):
        status, summary = Status.OK, f"{ABSENT} on this host: {error.failure.value}: {error.detail}"
    elif error.failure in CRIT_FAILURES or error.failure is DockerFailure.NOT_FOUND:
        status, summary = Status.CRIT, f"{error.failure.value}: {error.detail}"
    else:
        status, summary = Status.UNKNOWN, f"{error.failure.value}: {error.detail}"
    if not stopped_here and status is Status.OK:
        status = Status.UNKNOWN  # it answered the engine step and is gone now
    return Finding(check, status, ENGINE, summary, (Evidence(error.where, str(error)),))


def no_engine(findings: Sequence[Finding]) -> str | None:
    """The engine step's stop: nothing later can be asked."""
    for finding in findings:
        if finding.summary.startswith(ABSENT):
            return "no Docker on this host: nothing to check"
        if finding.status is not Status.OK:
            return "the engine cannot be asked; the later steps would only say so again"
    return None


async def _engine(scan: Scan) -> list[Finding]:
    info = await scan.link.engine()
    found = await scan.listing()
    running = sum(c.state is State.RUNNING for c in found)
    picked = f" matching {', '.join(scan.patterns)}" if scan.patterns else ""
    summary = (
        f"Docker {info.version} (API {info.api_version}, {info.os}/{info.arch}) answers: "
        f"{len(found)} container(s){picked}, {running} running"
    )
    evidence = (Evidence(scan.link.where, table(found)),)
    return [Finding(ENGINE_ID, Status.OK, ENGINE, summary, evidence)]


def table(containers: Sequence[Container], limit: int = 60) -> str:
    """The containers as `docker ps -a` would list them, briefly."""
    rows = [("NAME", "STATE", "HEALTH", "RESTARTS", "UP", "IMAGE")]
    for c in containers[:limit]:
        up = c.uptime()
        rows.append(
            (c.name, c.state.value, c.health.value if c.health else "-", str(c.restart_count),
             human_duration(up) if up is not None else "-", c.image)
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[5] for r in rows
    ]
    if len(containers) > limit:
        lines.append(f"… {len(containers) - limit} more")
    return printable("\n".join(lines))


def describe(c: Container) -> Evidence:
    """One container's inspect, the parts the checks judge by."""
    lines = [
        f"id {c.id}",
        f"image {c.image}",
        f"state {c.state.value}" + (f", health {c.health.value}" if c.health else ""),
        f"started {c.started_raw or '-'}; finished "
        + (c.finished_at.isoformat() if c.finished_at else "-"),
        f"exit code {c.exit_code}; OOM-killed {'yes' if c.oom_killed else 'no'}",
        f"restart policy {c.restart_policy}; restart count {c.restart_count}",
        f"memory limit {human_bytes(c.memory_limit) if c.memory_limit else 'none'}",
    ]
    if c.project:
        lines.append(f"compose {c.project}/{c.service or '?'}")
    if c.has_healthcheck:
        lines.append(f"healthcheck: failing streak {c.failing_streak}; last output:")
        lines += [f"  {line}" for line in c.health_output.splitlines()[-8:]]
    return Evidence(f"docker inspect {c.name}", printable("\n".join(lines)))


def exit_words(code: int) -> str:
    """`exit code 137 (SIGKILL)`: the signal an exit code above 128 stands for."""
    if code > 128:
        try:
            return f"exit code {code} ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def should_run(c: Container) -> str:
    """Why a container that is not running should be, or "" when nothing says it should:
    a restart policy that restarts it (on-failure: after a failure), or a compose service
    that failed (one that ended well may be a one-shot job, such as a migration)."""
    policy = c.restart_policy
    if policy in ("always", "unless-stopped"):
        return f"its restart policy ({policy}) says it should run"
    if policy.startswith("on-failure") and c.exit_code != 0:
        _, _, most = policy.partition(":")
        gave_up = (
            f"; the engine gave up after {c.restart_count} restart(s)"
            if most.isdigit() and c.restart_count >= int(most)
            else ""
        )
        return f"its restart policy ({policy}) says it should run after a failure{gave_up}"
    if c.project and c.exit_code != 0:
        return f"compose service {c.project}/{c.service or '?'} failed"
    return ""


def one_line(text: str, width: int = 160) -> str:
    flat = " ".join(printable(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _ago(when: datetime | None) -> str:
    if when is None:
        return ""
    return f", {human_duration((datetime.now(UTC) - when).total_seconds())} ago"


def _when(c: Container) -> str:
    if c.finished_at is None:
        return ""
    return f" at {c.finished_at:%Y-%m-%d %H:%M:%S} UTC{_ago(c.finished_at)}"


def judge_state(
    c: Container, focus: bool, hand: HandStop | None = None, silenced: str = ""
) -> tuple[Status, str, str] | None:
    """(status, summary, fix: "restart", "start" or "") for a container worth a finding;
    None when there is nothing to say. With `focus` (a fix's verification) a running
    container counts as back only once healthy, or up STABLE seconds when it has no
    healthcheck. `hand`: how it was stopped by hand (then it is OK, whatever its restart
    policy); `silenced`: why a failed exit of it is no news (a job)."""
    up = c.uptime()
    if c.state is State.RUNNING:
        if c.health is Health.UNHEALTHY:
            last = one_line(c.health_output) or "(no output)"
            summary = f"unhealthy: {c.failing_streak} failed probe(s) in a row; last: {last}"
            return Status.CRIT, summary, "restart"
        if c.health is Health.STARTING or (c.has_healthcheck and c.health is None):
            return (
                Status.WARN,
                f"health: starting, no verdict yet (up {human_duration(up or 0)})",
                "",
            )
        if focus and not c.has_healthcheck and (up or 0) < STABLE:
            said = f"running for {up or 0:.0f} s: it counts as back once up {STABLE:g} s"
            return Status.WARN, said, ""
        return None
    ended = f"{exit_words(c.exit_code)}{_ago(c.finished_at)}"
    if c.state is State.RESTARTING:
        summary = (
            f"restarting: down between attempts (last {ended}; restart count {c.restart_count})"
        )
        return Status.CRIT, summary, ""
    if c.state is State.PAUSED:
        return Status.WARN, "paused: its processes are frozen (docker unpause resumes them)", ""
    if c.state is State.DEAD:
        return Status.CRIT, "dead: the engine could not stop or remove it cleanly", ""
    if c.state is State.EXITED and hand is not None:
        how = hand.words()
        said = f"stopped by hand ({how}; {exit_words(c.exit_code)}{_ago(c.finished_at)})"
        if c.restart_policy != "no":
            said += f": its restart policy ({c.restart_policy}) leaves it stopped"
        return Status.OK, f"{said}; docker start {c.name} runs it again", ""
    reason = should_run(c)
    if c.state is State.EXITED and c.oom_killed:
        # A job nothing restarts stays WARN: the kill is worth knowing, not an outage.
        limit = human_bytes(c.memory_limit) if c.memory_limit else "none: the host ran out"
        summary = f"OOM-killed ({ended}), memory limit {limit}"
        if reason:
            return Status.CRIT, f"{summary}; {reason}", "start"
        return Status.WARN, f"{summary}; nothing restarts it (restart policy no)", ""
    if c.state is State.EXITED and reason:
        # 0, SIGTERM, SIGKILL: stopped (by hand, or `docker stop`); any other code: crashed.
        crashed = c.exit_code not in (0, KILLED, TERMINATED)
        status = Status.CRIT if crashed else Status.WARN
        how = "exited" if crashed else "stopped"
        return status, f"{how} ({ended}): {reason}", "start"
    if c.state is State.EXITED and c.exit_code != 0 and not silenced:
        summary = (
            f"exited with {exit_words(c.exit_code)}{_when(c)}, and nothing restarts it "
            f"(restart policy {c.restart_policy}); a job? label it {ONESHOT_LABEL}=true"
        )
        return Status.WARN, summary, ""
    if c.state is State.CREATED and (reason or c.project):
        said = reason or f"compose service {c.project}/{c.service or '?'}"
        return Status.WARN, f"created but never started: {said}", "start"
    return None


async def _state(scan: Scan) -> list[Finding]:
    found = await scan.listing()
    flagged = [c for c in found if c.name == scan.focus or _doubtful(c, scan)]
    now = await asyncio.gather(*(scan.fresh(c) for c in flagged))
    findings: list[Finding] = []
    for listed, c in zip(flagged, now, strict=True):
        focused = listed.name == scan.focus
        if c is None:
            if focused:
                said = "gone: no such container any more (removed)"
                findings.append(Finding(STATE_ID, Status.UNKNOWN, listed.name, said))
            continue
        hand = await hand_stop(scan.link, c) if _ended_badly(c) else None
        verdict = judge_state(c, focused, hand, job(c, scan.limits))
        if verdict is None:
            if focused:
                health = f", {c.health.value}" if c.health else ""
                said = f"{c.state.value}{health}, up {human_duration(c.uptime() or 0)}"
                findings.append(Finding(STATE_ID, Status.OK, c.name, said, (describe(c),)))
            continue
        status, summary, fix = verdict
        fixes, summary = await _fixes(scan, c, fix, summary)
        evidence: tuple[Evidence, ...] = (describe(c),)
        if _crashed(c, hand):
            tail, last = await log_tail(scan.link, c)
            evidence += (tail,)
            summary += f"; last log line: {one_line(last)}" if last.strip() else ""
        findings.append(Finding(STATE_ID, status, c.name, summary, evidence, fixes))
    if scan.focus and not any(f.target == scan.focus for f in findings):
        said = "no container of that name now (removed, or renamed)"
        findings.append(Finding(STATE_ID, Status.UNKNOWN, scan.focus, said))
    if not findings:
        findings.append(Finding(STATE_ID, Status.OK, ENGINE, _all_well(found, scan)))
    return findings


def container_thresholds(ctx: CheckContext) -> ContainerThresholds:
    """The container checks' thresholds: the settings file's `[thresholds.containers]`,
    which the context's thresholds carry when they are the settings file's
    (`checks.config.Thresholds`, which the core does not know); the defaults when a caller
    gave the resource checks' numbers only."""
    found = getattr(ctx.thresholds, "containers", None)
    return found if isinstance(found, ContainerThresholds) else ContainerThresholds()


def _doubtful(c: Container, scan: Scan) -> bool:
    """Whether to read the container afresh: it may not be as it should be, or it was killed
    (exit 137) and the listing may predate the engine's OOM flag (Docker records the exit
    and the OOM event apart, and the link's cache keeps an exited container's inspect)."""
    killed = c.state is State.EXITED and c.exit_code == KILLED and not c.oom_killed
    return killed or judge_state(c, False, None, job(c, scan.limits)) is not None


def _ended_badly(c: Container) -> bool:
    """An exit worth asking the engine's events about: a failure, or one a policy minds."""
    return c.state is State.EXITED and (c.exit_code != 0 or bool(should_run(c)))


def _crashed(c: Container, hand: HandStop | None) -> bool:
    """Exited on its own with a failure: its last log lines say why."""
    return c.state is State.EXITED and c.exit_code != 0 and hand is None


async def _fixes(scan: Scan, c: Container, kind: str, summary: str) -> tuple[tuple[Fix, ...], str]:
    if not kind:
        return (), summary
    try:
        argv = scan.argv()
    except NoFix as why:
        return (), f"{summary}; no fix offered: {why}"
    wait = scan.limits.verify_wait
    if kind == "start":
        return (start_fix(c, STATE_ID, argv, settle=wait),), summary
    timeout = await scan.stop_timeout(c)
    return (restart_fix(c, STATE_ID, argv, stop_timeout=timeout, settle=wait),), summary


def _all_well(found: Sequence[Container], scan: Scan) -> str:
    running = [c for c in found if c.state is State.RUNNING]
    healthy = sum(c.health is Health.HEALTHY for c in running)
    said = f"{len(found)} container(s) as they should be: {len(running)} running"
    said += f" ({healthy} healthy)" if healthy else ""
    stopped = [c for c in found if c.state is not State.RUNNING]
    if stopped:
        jobs = sum(c.exit_code != 0 and bool(job(c, scan.limits)) for c in stopped)
        said += (
            f", {len(stopped)} stopped that nothing says should run (exit code 0: a job "
            "that ended well, or stopped by hand)"
        )
        said += f"; {jobs} of them jobs that failed, silenced (oneshot)" if jobs else ""
    return said


ENGINE_CHECK = ContainerCheck(ENGINE_ID, "Docker engine answers", _engine)
STATE_CHECK = ContainerCheck(STATE_ID, "Container state and health", _state)
