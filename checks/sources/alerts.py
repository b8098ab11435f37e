"""Alerts and target health from Prometheus and Alertmanager, beside fleetdeck's own.

Alertmanager's alerts become `SourceAlert`s: headless records that keep what the operator
needs from the v2 API (labels, annotations, state, the silences that mute it, when it
started, the URL of the rule that raised it) and the source they came from. A silenced alert
is kept and counted ("3 silenced"), never dropped. Prometheus's firing `ALERTS` and its
targets' health become findings (`prom.alert`, `prom.target`), so a down target reads as
CRIT with Prometheus's own error. A source that cannot be read is one UNKNOWN finding naming
its URL and the cause: an unreachable Alertmanager is not a quiet one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetdeck.checks.model import Evidence, Finding, Status, printable
from fleetdeck.hosts.prometheus.api import Alertmanager, AmAlert, Prometheus, RuleAlert, Target
from fleetdeck.hosts.prometheus.http import SourceError

SOURCE_CHECK = "source.read"
ALERT_CHECK = "prom.alert"
TARGET_CHECK = "prom.target"
SEVERITIES = {
    "critical": Status.CRIT,
    "crit": Status.CRIT,
    "page": Status.CRIT,
    "error": Status.CRIT,
    "warning": Status.WARN,
    "warn": Status.WARN,
}


def severity_of(labels: Mapping[str, str]) -> Status:
    """The `severity` label as a status: critical is CRIT, anything else (warning, info, none)
    WARN, since an alert that fires is never OK."""
    return SEVERITIES.get(labels.get("severity", "").lower(), Status.WARN)


@dataclass(frozen=True, slots=True)
class SourceAlert:
    """One Alertmanager alert, from the source named by `source` (its URL)."""

    source: str
    fingerprint: str
    name: str
    instance: str
    severity: Status
    state: str  # active, suppressed, unprocessed
    silenced_by: tuple[str, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    generator_url: str

    @property
    def silenced(self) -> bool:
        return bool(self.silenced_by)

    @property
    def summary(self) -> str:
        text = self.annotations.get("summary") or self.annotations.get("description") or ""
        return printable(text or self.name, one_line=True)


def from_alertmanager(url: str, alerts: Iterable[AmAlert]) -> list[SourceAlert]:
    """Alertmanager's alerts as `SourceAlert`s, worst and oldest first."""
    found = [
        SourceAlert(
            source=url,
            fingerprint=a.fingerprint,
            name=a.labels.get("alertname", ""),
            instance=a.labels.get("instance", ""),
            severity=severity_of(a.labels),
            state=a.state,
            silenced_by=a.silenced_by,
            labels=a.labels,
            annotations=a.annotations,
            starts_at=a.starts_at,
            generator_url=a.generator_url,
        )
        for a in alerts
    ]
    return sorted(found, key=lambda a: (a.silenced, -a.severity.rank, a.starts_at, a.name))


def counts(alerts: Sequence[SourceAlert]) -> str:
    """ "2 firing, 3 silenced": what the alert list says, silenced alerts counted, not hidden."""
    silenced = sum(1 for a in alerts if a.silenced)
    return f"{len(alerts) - silenced} firing, {silenced} silenced"


def unreadable(url: str, error: SourceError) -> Finding:
    return Finding(
        SOURCE_CHECK,
        Status.UNKNOWN,
        url,
        printable(f"cannot read {error}", one_line=True),
        (Evidence(error.url, error.cause),),
    )


async def read_alertmanager(am: Alertmanager) -> tuple[list[SourceAlert], list[Finding]]:
    """An Alertmanager's alerts; or none and the UNKNOWN finding saying why."""
    try:
        return from_alertmanager(am.url, await am.alerts()), []
    except SourceError as error:
        return [], [unreadable(am.url, error)]


def rule_findings(url: str, alerts: Iterable[RuleAlert]) -> list[Finding]:
    """Prometheus's firing alerts (its `ALERTS`), one finding each; pending ones wait."""
    return [
        Finding(
            ALERT_CHECK,
            severity_of(a.labels),
            printable(f"{a.labels.get('alertname', '?')} {a.labels.get('instance', '')}").strip(),
            printable(a.annotations.get("summary") or a.labels.get("alertname", ""), one_line=True),
            (Evidence(url, printable(", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())))),),
        )
        for a in alerts
        if a.state == "firing"
    ]


def target_findings(url: str, targets: Iterable[Target]) -> list[Finding]:
    """Each scrape target's health (`up`): OK, CRIT with Prometheus's error, or UNKNOWN."""
    findings = []
    for t in targets:
        name = printable(f"{t.labels.get('job', t.pool)} {t.labels.get('instance', t.scrape_url)}")
        if t.health == "up":
            status, summary = Status.OK, "up"
        elif t.health == "down":
            status, summary = Status.CRIT, f"down: {t.last_error or 'no error given'}"
        else:
            status, summary = Status.UNKNOWN, f"not scraped yet ({t.health or 'no health'})"
        findings.append(
            Finding(
                TARGET_CHECK,
                status,
                name,
                printable(summary, one_line=True),
                (Evidence(url, t.scrape_url),),
            )
        )
    return findings


async def read_prometheus(prometheus: Prometheus) -> list[Finding]:
    """A Prometheus server's firing alerts and target health; UNKNOWN if it cannot be read."""
    try:
        alerts, targets = await prometheus.alerts(), await prometheus.targets()
    except SourceError as error:
        return [unreadable(prometheus.url, error)]
    return rule_findings(prometheus.url, alerts) + target_findings(prometheus.url, targets)
