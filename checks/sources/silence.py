"""Alertmanager silences made and expired from fleetdeck, through the action gate.

A silence is not an argv on a host: like a database fix's SQL, it is a `Fix` whose steps
(`DbStep`s carrying a `CreateSilence` or `ExpireSilence`) the gate hands to the fix host's
step runner, here `SilenceSteps` on one Alertmanager, in place of a database session. So
the gate does for a silence what it does for every fix: read-only refuses it, the operator
confirms it (the matchers, the expiry, the Alertmanager), the pin is read again (the alert
still firing since the same moment; the silence still there), the attempt is audited, and
the result is verified by reading the silence back from the API: a new silence is found by
the token fleetdeck wrote in its comment, active; an expired one reads as expired.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from fleetdeck.checks.actions import CommandRun, DatabaseError, FixHost, Verifier
from fleetdeck.checks.model import DbStep, Finding, Fix, Pin, Risk, Status, printable
from fleetdeck.checks.sources.alerts import SourceAlert
from fleetdeck.hosts.prometheus.api import Alertmanager, Matcher, Silence
from fleetdeck.hosts.prometheus.http import SourceError
from fleetdeck.hosts.shell import LocalShell

SILENCE_CHECK = "am.silence"
SILENCE_TIMEOUT = 15.0
API_PROMPT = "api>"
"""The prompt a silence's step is shown at: a call to the Alertmanager's API, not psql."""


@dataclass(frozen=True, slots=True)
class CreateSilence:
    """Post a silence with these matchers, from now for `seconds`."""

    matchers: tuple[Matcher, ...]
    seconds: float
    created_by: str
    comment: str


@dataclass(frozen=True, slots=True)
class ExpireSilence:
    silence_id: str


@dataclass(frozen=True, slots=True)
class AlertPin:
    """The alert a new silence is for: still there, and the same (fingerprint, start)."""

    fingerprint: str


@dataclass(frozen=True, slots=True)
class SilencePin:
    silence_id: str


def silence_fix(alert: SourceAlert, seconds: float, operator: str, note: str = "") -> Fix:
    """Silence exactly this alert (every one of its labels) for `seconds`."""
    matchers = tuple(Matcher(k, v) for k, v in sorted(alert.labels.items()))
    token = uuid.uuid4().hex[:12]
    comment = f"fleetdeck {token}: {note or 'silenced from the console'}"
    shown = f"silence {' '.join(map(str, matchers))} for {seconds:g} s on {alert.source}"
    return Fix(
        id="am.silence.create",
        title=f"Silence {alert.name}",
        risk=Risk.SAFE,
        commands=(),
        target=_alert_target(alert),
        pin=Pin(
            what="alert fingerprint and start",
            argv=(),
            value=f"{alert.fingerprint} {alert.starts_at}",
            timeout=SILENCE_TIMEOUT,
            query=DbStep(f"alert {alert.fingerprint}", AlertPin(alert.fingerprint)),
        ),
        verify=SILENCE_CHECK,
        impact=f"Alertmanager stops notifying for {alert.name} until the silence ends",
        timeout=SILENCE_TIMEOUT,
        statements=(
            DbStep(
                printable(shown),
                CreateSilence(matchers, seconds, operator, comment),
                prompt=API_PROMPT,
            ),
        ),
        settle=5.0,
    )


def expire_fix(silence: Silence, source: str) -> Fix:
    """End a silence now."""
    return Fix(
        id="am.silence.expire",
        title=f"Expire silence {silence.id}",
        risk=Risk.SAFE,
        commands=(),
        target=silence.id,
        pin=Pin(
            what="silence state",
            argv=(),
            value=f"{silence.id} {silence.state}",
            timeout=SILENCE_TIMEOUT,
            query=DbStep(f"silence {silence.id}", SilencePin(silence.id)),
        ),
        verify=SILENCE_CHECK,
        impact="the alerts it muted notify again",
        timeout=SILENCE_TIMEOUT,
        statements=(
            DbStep(
                printable(f"expire silence {silence.id} on {source}"),
                ExpireSilence(silence.id),
                prompt=API_PROMPT,
            ),
        ),
        settle=5.0,
    )


class SilenceSteps:
    """Runs silence steps and reads their pins on one Alertmanager: the gate's `Database`
    for a silence fix."""

    def __init__(self, am: Alertmanager) -> None:
        self.am = am

    @property
    def where(self) -> str:
        return f"Alertmanager {self.am.url}"

    async def read(self, step: DbStep, timeout: float) -> str | None:
        try:
            if isinstance(step.query, AlertPin):
                alerts = await self.am.alerts()
                found = [a for a in alerts if a.fingerprint == step.query.fingerprint]
                return f"{found[0].fingerprint} {found[0].starts_at}" if found else None
            if isinstance(step.query, SilencePin):
                silences = await self.am.silences()
                match = [s for s in silences if s.id == step.query.silence_id]
                return f"{match[0].id} {match[0].state}" if match else None
        except SourceError as error:
            raise DatabaseError(str(error)) from None
        raise DatabaseError(f"not an Alertmanager pin: {step.shown}")

    async def execute(self, step: DbStep, timeout: float) -> CommandRun:
        started = time.monotonic()
        try:
            if isinstance(step.query, CreateSilence):
                now = dt.datetime.now(dt.UTC)
                ends = now + dt.timedelta(seconds=step.query.seconds)
                new = await self.am.create_silence(
                    step.query.matchers, now, ends, step.query.created_by, step.query.comment
                )
                output = f"silence {new} created"
            elif isinstance(step.query, ExpireSilence):
                await self.am.expire_silence(step.query.silence_id)
                output = f"silence {step.query.silence_id} expired"
            else:
                return CommandRun(step.shown, None, 0.0, "", "not an Alertmanager step")
        except SourceError as error:
            return CommandRun(step.shown, None, time.monotonic() - started, "", str(error))
        return CommandRun(step.shown, 0, time.monotonic() - started, output)


def silence_host(am: Alertmanager) -> FixHost:
    """Where a silence fix runs: the Alertmanager, with no host shell (none is used: the
    fix has no commands and its pin is read through the steps)."""
    return FixHost(f"alertmanager {am.url}", LocalShell(), database=SilenceSteps(am))


def silence_verifier(am: Alertmanager, fix: Fix) -> Verifier:
    """Reads the silence back: created (found by the token in its comment) and active, or
    expired."""

    async def verify() -> Finding | None:
        silences = await am.silences()
        step = fix.statements[0].query if fix.statements else None
        if isinstance(step, CreateSilence):  # ours: the comment carries the fix's own token
            ours = [s for s in silences if s.comment == step.comment]
            active = [s for s in ours if s.state == "active"]
            if active:
                summary = f"silence {active[0].id} active until {active[0].ends_at}"
                return Finding(SILENCE_CHECK, Status.OK, fix.target, summary)
            state = ours[0].state if ours else "not found"
            return Finding(SILENCE_CHECK, Status.WARN, fix.target, f"silence {state}")
        match = [s for s in silences if s.id == fix.target]
        state = match[0].state if match else "not found"
        status = Status.OK if state == "expired" else Status.WARN
        return Finding(SILENCE_CHECK, status, fix.target, f"silence {fix.target} {state}")

    return verify


def alert_finding(alert: SourceAlert, seconds: float, operator: str, note: str = "") -> Finding:
    """An Alertmanager alert as the finding the gate is handed, with its silence fix."""
    fix = silence_fix(alert, seconds, operator, note)
    return Finding(SILENCE_CHECK, alert.severity, fix.target, alert.summary, fixes=(fix,))


def _alert_target(alert: SourceAlert) -> str:
    return printable(f"{alert.name} {alert.instance}".strip(), one_line=True)
