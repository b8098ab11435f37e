"""Runbook C6, the service recovery wizard: `fleetdeck wizard service --unit NAME`.

1. The unit: its state and its last log lines (stops the wizard when there is no such unit).
2. What systemd starts it with: the units it requires (Requires=, Requisite=, BindsTo=) that
   are not active.
3. What it needs from elsewhere, as the settings' `[[services.recovery]]` entry for the unit
   names it: the ports it must reach and the mounts it uses. These steps are the network and
   storage wizards' own checks (`net.connect`, `disk.mounts`), handed in by the assembly
   (`checks.catalog` calls `service_wizard(NETWORK_WIZARD, STORAGE_WIZARD)`), since a domain
   imports no other domain; each runs once per port, with the entry's values as the
   parameters that check takes.
4. The clean-state commands of the entry: each one's `check` is run, and a state that is not
   clean offers its `run` as a gate fix. Offered only while the unit is not running (a lock
   file removed under a running service is a new fault), and pinned on the unit's state and
   invocation as shown.
5. Start and verify: start (or restart, for a failed unit) through the gate, verified by the
   unit staying active and, when the settings give it health endpoints (`[[services.http]]`
   entries with `unit = NAME`, the `health` parameter), each of them answering as configured;
   the finding shows each endpoint's answer (status and milliseconds). A unit that runs while
   its endpoint does not answer is offered a restart.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, evidence, host_time, run, why
from fleetdeck.checks.model import Check, CheckContext, Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.services.config import Recovery, parse_recovery, recoveries
from fleetdeck.checks.services.health_config import HEALTH, endpoints_by_unit, parse_health
from fleetdeck.checks.services.units import (
    DOMAIN,
    LIST_TIMEOUT,
    Limits,
    fixes_for,
    grade,
    restart,
    settled,
    settled_answering,
    show,
    status_evidence,
)
from fleetdeck.checks.wizards import Param, Step, Wizard
from fleetdeck.hosts.linux.systemd import UnitState, parse_blocks, parse_unit_name
from fleetdeck.hosts.shell import Shell

UNIT_ID = "services.unit"
REQUIRES_ID = "services.requires"
CLEAN_ID = "services.clean"
START_ID = "services.start"
LOG_LINES = 20
REQUIRES = ("Requires", "Requisite", "BindsTo")
BORROWED: Mapping[str, str] = {"net.connect": "target", "disk.mounts": "mounts"}
"""Other domains' checks this wizard runs, and the parameter each takes: `target` one
HOST:PORT at a time (from the entry's ports), `mounts` a list (from its disks)."""

PARAMS = (
    Param("unit", "the systemd unit to bring back (nginx, postgresql@15-main)", parse_unit_name),
    Param(
        "recovery",
        "the unit's dependencies and clean-state commands: [[services.recovery]] in the settings",
        parse_recovery,
    ),
    Param(
        HEALTH,
        "the unit's health endpoints: [[services.http]] entries with unit = ... in the settings",
        parse_health,
    ),
)


def _unit(ctx: CheckContext) -> str:
    try:
        return parse_unit_name(ctx.params.get("unit", ""))
    except ValueError as error:
        raise StepFailed(f"--unit: {error}") from None


def _recovery(ctx: CheckContext, unit: str) -> Recovery:
    return recoveries(ctx.params.get("recovery", "")).get(unit, Recovery(unit))


async def _state(shell: Shell, unit: str) -> UnitState:
    (state,) = await show(shell, [unit])
    return state


# -- 1. the unit ----------------------------------------------------------------------------


async def _check_unit(ctx: CheckContext, shell: Shell) -> list[Finding]:
    unit = _unit(ctx)
    state, now = await _state(shell, unit), await host_time(shell)
    if state.missing:
        return [Finding(UNIT_ID, Status.CRIT, unit, f"no such unit ({state.load})")]
    graded = grade(state, now, Limits.from_params(ctx.params)) or settled(state, now)
    journal = await run(
        shell, ("journalctl", "--no-pager", "-q", "-u", unit, "-n", str(LOG_LINES)), LIST_TIMEOUT
    )
    proof = (await status_evidence(shell, unit), evidence(journal))
    return [Finding(UNIT_ID, graded[0], unit, graded[1], proof)]


def _no_unit(findings: Sequence[Finding]) -> str | None:
    return "there is no such unit" if any("no such unit" in f.summary for f in findings) else None


# -- 2. what systemd starts it with ---------------------------------------------------------


async def _check_requires(ctx: CheckContext, shell: Shell) -> list[Finding]:
    unit = _unit(ctx)
    result = await run(shell, ("systemctl", "show", "-p", ",".join(REQUIRES), unit))
    if not result.ok:
        raise StepFailed(f"{result.command}: {why(result)}")
    (block,) = parse_blocks(result.stdout) or [{}]
    needed = list(dict.fromkeys(n for key in REQUIRES for n in block.get(key, "").split()))
    if not needed:
        return [Finding(REQUIRES_ID, Status.OK, unit, "requires no other unit")]
    findings = []
    for state in await show(shell, needed):
        if state.active in ("active", "reloading"):
            continue
        why_not = f"required by {unit} but {state.active} ({state.sub})"
        proof = (await status_evidence(shell, state.id),)
        findings.append(Finding(REQUIRES_ID, Status.CRIT, state.id, why_not, proof))
    ok = f"the {len(needed)} units it requires are active: {', '.join(needed)}"
    return findings or [Finding(REQUIRES_ID, Status.OK, unit, ok, (evidence(result),))]


# -- 3. other domains' checks, with the entry's values ---------------------------------------


@dataclass(frozen=True, slots=True)
class Borrowed:
    """Another domain's check, given this wizard's recovery entry as its parameters."""

    check: Check

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def domain(self) -> str:
        return self.check.domain

    @property
    def title(self) -> str:
        return f"Dependency: {self.check.title}"

    async def run(self, ctx: CheckContext) -> list[Finding]:
        unit = _unit(ctx)
        entry = _recovery(ctx, unit)
        param = BORROWED[self.check.id]
        values = entry.ports if param == "target" else ("".join(f"{d}\n" for d in entry.disks),)
        values = tuple(v for v in values if v)
        if not values:
            said = f"the settings name no {'ports' if param == 'target' else 'mounts'} for {unit}"
            return [Finding(self.id, Status.OK, unit, said)]
        findings = []
        for value in values:
            params = {**ctx.params, param: value}
            findings += await self.check.run(replace(ctx, params=params))
        return findings


# -- 4. clean state -------------------------------------------------------------------------


def _clean_pin(state: UnitState) -> Pin:
    """The unit as shown: still not running, and the same invocation."""
    return Pin(
        f"unit {state.id}'s state and invocation",
        ("systemctl", "show", "-p", "ActiveState,InvocationID", state.id),
        f"ActiveState={state.active}\nInvocationID={state.invocation}",
    )


async def _check_clean(ctx: CheckContext, shell: Shell) -> list[Finding]:
    unit = _unit(ctx)
    entry = _recovery(ctx, unit)
    if not entry.clean:
        return [
            Finding(
                CLEAN_ID, Status.OK, unit, f"the settings give no clean-state command for {unit}"
            )
        ]
    state = await _state(shell, unit)
    running = state.active in ("active", "reloading", "activating") and state.sub != "auto-restart"
    findings = []
    for clean in entry.clean:
        target = shlex.join(clean.run)
        result = await run(shell, clean.check)
        if result.ok:
            said = f"clean: {shlex.join(clean.check)} passes"
            findings.append(Finding(CLEAN_ID, Status.OK, target, said, (evidence(result),)))
            continue
        fixes: tuple[Fix, ...] = ()
        said = f"not clean: {shlex.join(clean.check)} exits {result.exit_status}"
        if running:
            said += f"; {unit} is {state.active}, so nothing is cleaned under it"
        else:
            fixes = (
                Fix(
                    id="service.clean",
                    title=f"Clean state for {unit}: {target}",
                    risk=Risk.DISRUPTIVE,
                    commands=(clean.run,),
                    target=target,
                    pin=_clean_pin(state),
                    verify=CLEAN_ID,
                    impact=f"runs a clean-state command from the settings while {unit} is "
                    f"{state.active}; verified by {shlex.join(clean.check)} passing",
                ),
            )
        findings.append(Finding(CLEAN_ID, Status.WARN, target, said, (evidence(result),), fixes))
    return findings


# -- 5. start and verify ---------------------------------------------------------------------


async def _check_start(ctx: CheckContext, shell: Shell) -> list[Finding]:
    unit = _unit(ctx)
    state, now = await _state(shell, unit), await host_time(shell)
    if state.missing:
        return [Finding(START_ID, Status.CRIT, unit, f"no such unit ({state.load})")]
    limits = Limits.from_params(ctx.params)
    endpoints = endpoints_by_unit(ctx.params).get(unit, ())
    graded, asked = grade(state, now, limits), None
    if graded is None:
        graded, asked = await settled_answering(shell, state, now, endpoints)
    status, summary = graded
    offered = (
        () if status is Status.OK else fixes_for(state, Status.CRIT, limits, START_ID, endpoints)
    )
    fixes = tuple(
        fix
        for fix in offered
        if fix.id != "service.reset_failed"  # the wizard brings the unit back, not forgets it
    )
    if asked is not None and asked.failing:  # it runs, but what it serves does not answer
        fixes = (restart(state, START_ID, health=endpoints),)
    elif state.active == "active" and status is Status.WARN and "flapping" not in summary:
        fixes = ()  # just started: it is being watched, not restarted again
    proof = (await status_evidence(shell, unit), *(asked.evidence if asked else ()))
    return [Finding(START_ID, status, unit, summary, proof, fixes)]


UNIT = ShellCheck(UNIT_ID, "The unit: state and last log lines", _check_unit, DOMAIN)
REQUIRES_CHECK = ShellCheck(REQUIRES_ID, "Units it requires", _check_requires, DOMAIN)
CLEAN = ShellCheck(CLEAN_ID, "Clean state (commands from the settings)", _check_clean, DOMAIN)
START = ShellCheck(START_ID, "Start and verify", _check_start, DOMAIN)


def service_wizard(*others: Wizard) -> Wizard:
    """The service wizard, with the dependency checks (BORROWED) found in `others`' steps."""
    borrowed = [
        Step(
            Borrowed(step.check),
            f"A service that cannot reach what it needs ({BORROWED[step.id]}) fails again "
            "after a restart: fix this first.",
            requires=("unit",),
        )
        for wizard in others
        for step in wizard.steps
        if step.id in BORROWED
    ]
    return Wizard(
        "service",
        "Service recovery",
        (
            Step(
                UNIT,
                "Read the last log lines before anything else: they usually say why it stopped.",
                requires=("unit",),
                stop_if=_no_unit,
            ),
            Step(
                REQUIRES_CHECK,
                "A unit it requires that is down takes it down too: bring that one back first.",
                requires=("unit",),
            ),
            *borrowed,
            Step(
                CLEAN,
                "Stale lock or pid files and half-written state keep a service from starting: "
                "the commands are the settings' own, run only while it is stopped.",
                requires=("unit",),
            ),
            Step(
                START,
                "Start it and watch it stay up; if it fails again, its log lines say why.",
                requires=("unit",),
            ),
        ),
        PARAMS,
    )
