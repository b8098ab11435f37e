"""The wizard engine: an ordered list of steps, each a check and a sentence of guidance.

A step may need a parameter (no `--target`, no TCP connect) and is skipped, saying so, when
it is missing. A step may stop the wizard: with no link up, DNS and routing cannot be told
apart from the link fault, so the later steps are skipped with that reason instead of piling
up failures that all mean the same thing. Re-running a step that stopped the wizard (after a
fix, say) picks the skipped steps up again.

The same `WizardRun` drives the TUI's Wizard screen and `fleetdeck wizard`.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from fleetdeck.checks.actions import Verifier
from fleetdeck.checks.model import (
    Check,
    CheckContext,
    Finding,
    Fix,
    Status,
    run_checks,
    worst_exit_code,
)

STEP_TIMEOUT = 30.0

step_clock = time.monotonic
"""What a step's duration is measured with (a screenshot test stops it, so that a slow
machine's 0.3 s does not differ from the recorded 0.0 s)."""


class StepState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Param:
    """A wizard parameter: `--name VALUE` on the command line, a field in the TUI form.
    `parse` returns the value normalised, or raises ValueError with a message for people."""

    name: str
    help: str
    parse: Callable[[str], str] = str
    many: bool = False
    """Several values, each parsed, kept one per line. A value holding a line break is a
    list already (the settings file's lists, ending each item with one; `--name` repeated
    on the command line): it is split at line breaks only, so a comma stays part of a path
    such as `/srv/data,old`. A value on one line is typed text (the TUI form's field, a
    single `--name`): commas separate values there as well."""


@dataclass(frozen=True, slots=True)
class Step:
    check: Check
    guidance: str
    requires: tuple[str, ...] = ()
    """Parameters the step needs (any one of them is enough); skipped without them."""
    stop_if: Callable[[Sequence[Finding]], str | None] | None = None
    """Given the step's findings, a reason to stop the wizard here, or None to go on."""
    timeout: float | None = None
    """Seconds this step may take, when its commands have longer bounds of their own than
    the wizard's STEP_TIMEOUT (walking a cold log tree); None: the wizard's."""
    gone_is_ok: bool = False
    """The check lists only what is wrong (the database checks): a target it ran and no
    longer lists, with nothing left UNKNOWN, is resolved when a fix is verified."""

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def title(self) -> str:
        return self.check.title


@dataclass(frozen=True, slots=True)
class Wizard:
    domain: str
    title: str
    steps: tuple[Step, ...]
    params: tuple[Param, ...] = ()

    def parse_params(self, given: Mapping[str, str | None]) -> dict[str, str]:
        """The given parameters, checked; ValueError names the one that is wrong."""
        return parse_params(self.domain, self.params, given)


def parse_params(
    wizard: str, params: Sequence[Param], given: Mapping[str, str | None]
) -> dict[str, str]:
    """The given parameters of wizard `wizard`, whose parameters are `params`, checked;
    ValueError names the one that is wrong. Apart from `Wizard` so that the settings file's
    parameters can be checked without building the wizard (`WizardRef.parse_params`)."""
    known = {p.name: p for p in params}
    parsed: dict[str, str] = {}
    for name, value in given.items():
        if value is None or value == "":
            continue
        if name not in known:
            raise ValueError(f"the {wizard} wizard takes no {name!r}")
        param = known[name]
        items = [value]
        if param.many:
            typed = "\n" not in value and "\r" not in value
            items = [v.strip() for v in (value.replace(",", "\n") if typed else value).splitlines()]
        try:
            values = [param.parse(item) for item in items if item]
        except ValueError as error:
            raise ValueError(f"--{name} {value!r}: {error}") from None
        if values:
            parsed[name] = "\n".join(dict.fromkeys(values))
    return parsed


@dataclass(frozen=True, slots=True)
class StepResult:
    step: Step
    state: StepState = StepState.PENDING
    findings: tuple[Finding, ...] = ()
    reason: str = ""
    duration: float = 0.0

    @property
    def status(self) -> Status | None:
        """The worst finding's status; None until the step has run (or when skipped)."""
        if self.state is not StepState.DONE or not self.findings:
            return None
        return max((f.status for f in self.findings), key=lambda s: s.rank)

    @property
    def fixes(self) -> list[tuple[Finding, Fix]]:
        return [(f, fix) for f in self.findings if f.status is not Status.OK for fix in f.fixes]


@dataclass(slots=True)
class WizardRun:
    """One wizard on one host: the steps' results, kept current as steps run and re-run."""

    wizard: Wizard
    ctx: CheckContext
    timeout: float = STEP_TIMEOUT
    results: list[StepResult] = field(init=False)
    listeners: list[Callable[[int, StepResult], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [StepResult(step) for step in self.wizard.steps]

    @property
    def host(self) -> str:
        return self.ctx.host

    @property
    def exit_code(self) -> int:
        """Nagios code of the worst step that ran; skipped steps count for nothing."""
        return worst_exit_code([r.status for r in self.results if r.status is not None])

    @property
    def running(self) -> bool:
        return any(r.state is StepState.RUNNING for r in self.results)

    def index_of(self, step_id: str) -> int:
        return next(i for i, r in enumerate(self.results) if r.step.id == step_id)

    async def run(self, start: int = 0) -> None:
        """Run the steps from `start` to the end, honouring skips and stops."""
        stop = self._stop_before(start)
        for index in range(start, len(self.results)):
            step = self.results[index].step
            if stop:
                self._set(index, StepResult(step, StepState.SKIPPED, reason=stop))
                continue
            await self._run_step(index)
            stop = self._stop_reason(index)

    async def rerun(self, index: int) -> None:
        """Run one step again. If that changes whether it stops the wizard, the steps after
        it are run (it no longer stops) or skipped (it now does)."""
        stopped_before = self._stop_reason(index)
        await self._run_step(index)
        stops_now = self._stop_reason(index)
        if stops_now != stopped_before:
            await self.run(index + 1)

    def verifier(self, index: int, finding: Finding) -> Verifier:
        """For the gate: re-run step `index` and return its finding on `finding`'s target."""

        async def verify() -> Finding | None:
            # Only this step: the steps after it are the caller's to run again afterwards,
            # so verification never waits on the rest of the wizard.
            await self._run_step(index, focus=finding.target)
            findings = self.results[index].findings
            same = next((f for f in findings if f.key == finding.key), None)
            if same is None:  # the check could not run: its UNKNOWN says why
                same = next((f for f in findings if f.status is Status.UNKNOWN), None)
            ran = self.results[index].state is StepState.DONE and findings
            if same is None and ran and self.results[index].step.gone_is_ok:
                said = f"{finding.target} is no longer listed"
                return Finding(finding.check, Status.OK, finding.target, said)
            return same

        return verify

    def _stop_before(self, start: int) -> str:
        for index in range(start):
            reason = self._stop_reason(index)
            if reason:
                return reason
        return ""

    def _stop_reason(self, index: int) -> str:
        result = self.results[index]
        if result.state is not StepState.DONE or result.step.stop_if is None:
            return ""
        reason = result.step.stop_if(result.findings)
        return f"{result.step.title}: {reason}" if reason else ""

    async def _run_step(self, index: int, focus: str = "") -> None:
        """Run one step; `focus`: the target a verification asks about, in the params the
        step sees as `focus` (a check listing only its worst few reads that one anyway)."""
        step = self.results[index].step
        if step.requires and not any(self.ctx.params.get(p) for p in step.requires):
            wanted = " or ".join(f"--{p}" for p in step.requires)
            self._set(index, StepResult(step, StepState.SKIPPED, reason=f"needs {wanted}"))
            return
        previous = self.results[index]
        self._set(index, replace(previous, state=StepState.RUNNING))
        started = step_clock()
        try:
            limit = step.timeout if step.timeout is not None else self.timeout
            ctx = (
                replace(self.ctx, params={**self.ctx.params, "focus": focus}) if focus else self.ctx
            )
            findings = await run_checks(ctx, (step.check,), limit)
        except asyncio.CancelledError:
            self._set(index, previous)  # never left "running" for ever
            raise
        self._set(
            index,
            StepResult(step, StepState.DONE, tuple(findings), duration=step_clock() - started),
        )

    def _set(self, index: int, result: StepResult) -> None:
        self.results[index] = result
        for listener in list(self.listeners):
            listener(index, result)


STATE_ICONS = {
    Status.OK: "✔",
    Status.WARN: "▲",
    Status.CRIT: "✖",
    Status.UNKNOWN: "?",
}


def step_icon(result: StepResult) -> str:
    """One character for a step's state: a status icon, or running, skipped or pending."""
    if result.state is StepState.RUNNING:
        return "…"
    if result.state is StepState.SKIPPED:
        return "–"
    if result.status is None:
        return "·"
    return STATE_ICONS[result.status]


def to_json(run: WizardRun) -> dict[str, object]:
    return {
        "host": run.host,
        "wizard": run.wizard.domain,
        "params": dict(run.ctx.params),
        "exit_code": run.exit_code,
        "steps": [
            {
                "id": r.step.id,
                "title": r.step.title,
                "state": r.state.value,
                "status": r.status.value if r.status else None,
                "reason": r.reason or None,
                "duration": round(r.duration, 3),
                "guidance": r.step.guidance,
                "findings": [
                    {
                        "status": f.status.value,
                        "target": f.target,
                        "summary": f.summary,
                        "evidence": [{"source": e.source, "output": e.output} for e in f.evidence],
                        "fixes": [
                            {
                                "id": x.id,
                                "title": x.title,
                                "risk": x.risk.value,
                                "commands": list(x.command_lines),
                                "impact": x.impact,
                            }
                            for x in f.fixes
                        ],
                    }
                    for f in r.findings
                ],
            }
            for r in run.results
        ],
    }
