"""Runbook R02: systemd units. Failed units, important units (the settings' `units`) that are
not active, and units that flap (restarted `restarts` times or more, the last start within
`flap_minutes`), each with `systemctl status`'s last lines as evidence.

One `systemctl list-units` for the failed units, one for every service (their restart counts
are read, since flapping is seen there and nowhere else), and one `systemctl show` for all of
them: three commands whatever the number of units. Times come as Unix seconds
(`--timestamp=unix`, systemd 248 and later) and are measured against the host's clock; an
older systemctl refuses the option and is asked again without it, and then a restart count
alone cannot say "recently", so flapping is only seen while the unit waits to restart.

A host without systemd (no /run/systemd/system, as sd_booted(3) tells) says so and is OK.

A finding is about one unit (the target is its full name); with nothing wrong, one OK
finding for the host says how many units were looked at. The important units and the one
being verified (`focus`, `unit`) always get a finding of their own, so a fix's verification
finds one: a unit counts as back once it has stayed active STABLE seconds and each of its
health endpoints (`[[services.http]]` entries with `unit`, in the `health` parameter:
`health_config.py`, asked by `unit_health.py`) answers as configured. Those endpoints are
asked for that unit only: the sweep's `http.health` asks every endpoint anyway.

Fixes, through the gate: restart (failed, flapping), start (an important unit that is not
running), reset-failed (a failed unit nobody named important: the failure is forgotten and
the unit stays stopped). Each is pinned on the unit's InvocationID: a unit that someone else
restarted since it was shown (a new invocation) aborts the fix. A flapping unit gets a new
invocation at every turn of its loop, so its restart is pinned on its unit file instead.
A unit that runs while its endpoint does not answer is offered a restart, pinned on its
invocation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, evidence, host_time, run, why
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.services.config import (
    DEFAULT_FLAP_MINUTES,
    DEFAULT_RESTARTS,
)
from fleetdeck.checks.services.health_config import endpoints_by_unit
from fleetdeck.checks.services.probe_config import HttpEndpoint
from fleetdeck.checks.services.unit_health import Health, answering
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.linux.systemd import (
    SHOW_PROPERTIES,
    ListedUnit,
    UnitState,
    parse_list_units,
    parse_show,
    parse_unit_name,
)
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.units import human_duration

DOMAIN = "services"
UNITS_ID = "services.units"
NO_SYSTEMD = "no systemd on this host"
"""How the summary starts on a host whose PID 1 is not systemd."""
STABLE = 5.0
"""Seconds a unit must have been active to count as back after a fix."""
SETTLE = STABLE + 20.0
"""How long the gate keeps verifying a restart or start (the unit's own start, then STABLE,
while its health endpoints are asked again each second until they answer)."""
STATUS_LINES = 10
"""Journal lines `systemctl status` adds to the evidence."""
EVIDENCE_UNITS = 12
"""Units whose `systemctl status` is read per run; more problems are listed without it."""
LIST = ("systemctl", "list-units", "--plain", "--no-legend", "--full", "--no-pager")
LIST_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class Reading:
    """What one look at a host's units found."""

    now: float
    failed: tuple[ListedUnit, ...]
    states: Mapping[str, UnitState]
    listed: int
    """Units listed (services, failed units of any kind, and the named ones)."""
    evidence: tuple[Evidence, ...]


async def has_systemd(shell: Shell) -> bool:
    """Whether the host was booted by systemd (sd_booted(3): /run/systemd/system exists)."""
    return (await run(shell, ("test", "-d", "/run/systemd/system"))).ok


async def read_units(shell: Shell, named: Sequence[str]) -> Reading:
    """The failed units, every service and the named units, as `systemctl show` tells them."""
    failed_result = await run(shell, (*LIST, "--failed", "--all"), LIST_TIMEOUT)
    services_result = await run(shell, (*LIST, "--all", "--type=service"), LIST_TIMEOUT)
    for result in (failed_result, services_result):
        if not result.ok:
            raise StepFailed(f"{result.command}: {why(result)}")
    failed = parse_list_units(failed_result.stdout)
    services = parse_list_units(services_result.stdout)
    names = list(dict.fromkeys([*(u.name for u in failed), *named, *(u.name for u in services)]))
    now = await host_time(shell)
    states = await show(shell, names)
    return Reading(
        now,
        tuple(failed),
        {s.id: s for s in states},
        len(names),
        (evidence(failed_result),),
    )


async def show(shell: Shell, names: Sequence[str]) -> list[UnitState]:
    """`systemctl show` for these units, with Unix times where this systemctl prints them."""
    if not names:
        return []
    properties = ("-p", ",".join(SHOW_PROPERTIES))
    argv = ("systemctl", "show", "--timestamp=unix", *properties, *names)
    result = await run(shell, argv, LIST_TIMEOUT)
    if not result.ok and "timestamp" in result.stderr:  # systemd before 248
        argv = ("systemctl", "show", *properties, *names)
        result = await run(shell, argv, LIST_TIMEOUT)
    if not result.ok:
        raise StepFailed(f"systemctl show: {why(result)}")
    states = parse_show(result.stdout)
    if len(states) != len(names):
        raise ParseError(f"systemctl show gave {len(states)} units for {len(names)} asked")
    return states


async def status_evidence(shell: Shell, unit: str) -> Evidence:
    """`systemctl status`'s head and last journal lines (it exits 3 for a stopped unit)."""
    argv = ("systemctl", "status", "--no-pager", "--full", "-n", str(STATUS_LINES), unit)
    result = await run(shell, argv)
    text = result.stdout.rstrip() or result.stderr.rstrip() or f"exit status {result.exit_status}"
    return Evidence(result.command, text)


@dataclass(frozen=True, slots=True)
class Limits:
    """The thresholds the check grades with, from its parameters."""

    important: frozenset[str]
    restarts: int
    flap_seconds: float

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Limits:
        important = frozenset(parse_unit_name(u) for u in params.get("units", "").split() if u)
        return cls(
            important,
            int(params.get("restarts") or DEFAULT_RESTARTS),
            float(params.get("flap_minutes") or DEFAULT_FLAP_MINUTES) * 60,
        )


def grade(state: UnitState, now: float, limits: Limits) -> tuple[Status, str] | None:
    """A unit's status and why; None when it is neither wrong nor one to report anyway."""
    important = state.id in limits.important
    if state.missing:
        if important:
            return Status.CRIT, f"is {state.load} (no unit file loaded)"
        return None
    if state.active == "failed":
        since = _since(state.inactive_since, now)
        return Status.CRIT, f"failed (result: {state.result or 'unknown'}){since}"
    if state.sub == "auto-restart" or _flapping(state, now, limits):
        last = _since(state.main_started, now, "last start")
        return Status.WARN, f"flapping: restarted {state.restarts or 0} times{last}"
    if important and state.active not in ("active", "reloading"):
        return Status.CRIT, f"is {state.active} ({state.sub}): an important unit should run"
    return None


def _flapping(state: UnitState, now: float, limits: Limits) -> bool:
    if state.restarts is None or state.restarts < limits.restarts:
        return False
    started = state.main_started or state.active_since
    return started is not None and now - started <= limits.flap_seconds


def settled(state: UnitState, now: float) -> tuple[Status, str]:
    """A unit that should run: OK once it has stayed active STABLE seconds."""
    if state.active not in ("active", "reloading"):
        return Status.CRIT, f"is {state.active} ({state.sub})"
    up = now - state.active_since if state.active_since is not None else None
    if up is not None and up < STABLE:
        return Status.WARN, f"active for {up:.0f} s only: not yet known to stay up"
    return Status.OK, f"active ({state.sub})" + (f" for {human_duration(up)}" if up else "")


async def settled_answering(
    shell: Shell, state: UnitState, now: float, endpoints: Sequence[HttpEndpoint]
) -> tuple[tuple[Status, str], Health | None]:
    """A unit that should run, with its endpoints' answers once it runs (`settled`, then
    `Health.joined`); the Health is None when there was nothing to ask."""
    graded = settled(state, now)
    if graded[0] is Status.CRIT or not endpoints:
        return graded, None
    health = await answering(shell, endpoints)
    return health.joined(graded), health


def _since(at: float | None, now: float, word: str = "") -> str:
    if at is None:
        return ""
    return f", {word + ' ' if word else ''}{human_duration(now - at)} ago"


# -- fixes ----------------------------------------------------------------------------------


def invocation_pin(state: UnitState) -> Pin:
    return Pin(
        f"unit {state.id}'s invocation",
        ("systemctl", "show", "-p", "InvocationID", "--value", state.id),
        state.invocation,
    )


def file_pin(state: UnitState) -> Pin:
    """A flapping unit's identity: its unit file (its invocation changes at each restart)."""
    return Pin(
        f"unit {state.id}'s unit file",
        ("systemctl", "show", "-p", "FragmentPath", "--value", state.id),
        state.fragment,
    )


def _verified_by(endpoints: Sequence[HttpEndpoint]) -> str:
    """How the fix is verified, for its impact line."""
    answered = "".join(f" and {e.url} answers {e.expect}" for e in endpoints)
    return f"verified once it has stayed active {STABLE:g} s{answered}"


def restart(
    state: UnitState,
    verify: str,
    *,
    flapping: bool = False,
    health: Sequence[HttpEndpoint] = (),
) -> Fix:
    return Fix(
        id="service.restart",
        title=f"Restart {state.id}",
        risk=Risk.DISRUPTIVE,
        commands=(("systemctl", "restart", state.id),),
        target=state.id,
        pin=file_pin(state) if flapping else invocation_pin(state),
        verify=verify,
        impact=f"stops {state.id} if it runs and starts it again: what it serves is down "
        f"meanwhile; {_verified_by(health)}",
        timeout=90.0,
        settle=SETTLE,
    )


def start(state: UnitState, verify: str, health: Sequence[HttpEndpoint] = ()) -> Fix:
    return Fix(
        id="service.start",
        title=f"Start {state.id}",
        risk=Risk.SAFE,
        commands=(("systemctl", "start", state.id),),
        target=state.id,
        pin=invocation_pin(state),
        verify=verify,
        impact=f"starts {state.id} (and the units it requires); nothing running is stopped; "
        f"{_verified_by(health)}",
        timeout=90.0,
        settle=SETTLE,
    )


def reset_failed(state: UnitState, verify: str) -> Fix:
    return Fix(
        id="service.reset_failed",
        title=f"Forget {state.id}'s failure",
        risk=Risk.SAFE,
        commands=(("systemctl", "reset-failed", state.id),),
        target=state.id,
        pin=invocation_pin(state),
        verify=verify,
        impact=f"{state.id} is no longer listed as failed and stays stopped; its log is kept",
    )


def fixes_for(
    state: UnitState,
    status: Status,
    limits: Limits,
    verify: str,
    health: Sequence[HttpEndpoint] = (),
) -> tuple[Fix, ...]:
    """The fixes a unit in trouble is offered; `health`: its endpoints, which verify them."""
    if status is Status.OK or state.missing:
        return ()
    if state.active == "failed":
        if state.id in limits.important:
            return (restart(state, verify, health=health),)
        return (restart(state, verify, health=health), reset_failed(state, verify))
    if state.sub == "auto-restart" or state.active == "active":
        return (restart(state, verify, flapping=True, health=health),)
    return (start(state, verify, health),)


# -- the check ------------------------------------------------------------------------------


async def _check_units(ctx: CheckContext, shell: Shell) -> list[Finding]:
    if not await has_systemd(shell):
        return [
            Finding(
                UNITS_ID,
                Status.OK,
                ctx.host,
                f"{NO_SYSTEMD} (no /run/systemd/system): no units to check",
            )
        ]
    try:
        limits = Limits.from_params(ctx.params)
        wanted = {parse_unit_name(ctx.params["unit"])} if ctx.params.get("unit") else set()
        focus = {parse_unit_name(ctx.params["focus"])} if ctx.params.get("focus") else set()
        health = endpoints_by_unit(ctx.params)
    except (ValueError, TypeError) as error:
        raise StepFailed(f"bad parameter: {error}") from None
    reading = await read_units(shell, sorted(limits.important | wanted | focus))
    findings: list[Finding] = []
    with_evidence = 0
    for state in reading.states.values():
        graded = grade(state, reading.now, limits)
        endpoints = health.get(state.id, ())
        fixes: tuple[Fix, ...] = ()
        answered: tuple[Evidence, ...] = ()
        if graded is not None:
            fixes = fixes_for(state, graded[0], limits, UNITS_ID, endpoints)
        elif state.id in wanted | focus:
            # The unit being verified or recovered: one that runs must have stayed up; one
            # stopped and not failed (after reset-failed, a oneshot that ran) is fine, unless
            # it is the one the wizard is to bring back.
            if state.active == "inactive" and state.id not in wanted | limits.important:
                graded = Status.OK, "stopped, not failed"
            else:
                graded, asked = await settled_answering(shell, state, reading.now, endpoints)
                if asked is not None:
                    answered = asked.evidence
                    if asked.failing:  # it runs, but what it serves does not answer
                        fixes = (restart(state, UNITS_ID, health=endpoints),)
                elif graded[0] is Status.CRIT:
                    fixes = fixes_for(state, Status.CRIT, limits, UNITS_ID, endpoints)
        elif state.id in limits.important:
            graded = Status.OK, f"active ({state.sub})"
        if graded is None:
            continue
        status, summary = graded
        proof: tuple[Evidence, ...] = ()
        if status is not Status.OK and with_evidence < EVIDENCE_UNITS:
            with_evidence += 1
            proof = (await status_evidence(shell, state.id),)
        proof += answered
        findings.append(Finding(UNITS_ID, status, state.id, summary, proof, fixes))
    if not any(f.status is not Status.OK for f in findings):
        important = f", {len(limits.important)} important" if limits.important else ""
        findings.append(
            Finding(
                UNITS_ID,
                Status.OK,
                ctx.host,
                f"{reading.listed} units{important}: none failed or flapping",
                reading.evidence,
            )
        )
    return findings


UNITS = ShellCheck(UNITS_ID, "systemd units: failed, important, flapping", _check_units, DOMAIN)
