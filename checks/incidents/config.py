"""The incident settings under `[alerts]`: rules, response targets, flap damping, the state file.

```toml
[alerts]
for = 30                       # read by checks/config.py: the default pending time
state = "/var/lib/fleetdeck/state.db"
flap_window = "10m"            # an alert back within this long of resolving is one episode
flap_count = 3                 # ... and after this many returns it is shown as flapping

[alerts.targets]               # runbook I1's response targets, per severity
P1 = { acknowledge = "15m", resolve = "4h" }

[[alerts.rules]]
name = "disk full"
check = "disk.*"               # check id, glob
target = "/srv/*"              # finding target, glob (optional)
hosts = ["web*"]               # host names, globs (optional)
groups = ["prod"]              # inventory tags (optional)
severity = "critical"          # critical, warning or info
for = "2m"
labels = { team = "storage" }
runbook = "S5"                 # opens the storage wizard
```

Each problem raises `fail(dotted_key, why)`, which names the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetdeck.checks.settings import Fail, finite

SEVERITIES = ("P1", "P2", "P3", "P4")
RULE_SEVERITIES = ("critical", "warning", "info")
RUNBOOK_WIZARDS = {"N": "network", "S": "storage", "D": "database", "C": "containers"}
"""Runbook id prefixes (RUNBOOKS.md) and the wizard each opens."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhd]))+?")


@dataclass(frozen=True, slots=True)
class Target:
    """How soon an incident of one severity must be acknowledged and resolved (seconds)."""

    acknowledge: float
    resolve: float


DEFAULT_TARGETS = {
    "P1": Target(15 * 60, 4 * 3600),
    "P2": Target(3600, 8 * 3600),
    "P3": Target(4 * 3600, 3 * 86400),
    "P4": Target(86400, 7 * 86400),
}
"""Acknowledge: runbook I1 (critical 15 min, high 1 h, medium 4 h, low 24 h, seed 002).
Resolve: fleetdeck's defaults, since the manuals give none; set them in [alerts.targets]."""


@dataclass(frozen=True, slots=True)
class Rule:
    """Which alerts a rule covers, and what it says about them."""

    name: str
    check: str = "*"
    target: str = "*"
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    severity: str | None = None
    for_seconds: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook: str | None = None

    @property
    def wizard(self) -> str | None:
        """The wizard the runbook opens (S5 -> storage), if any."""
        return RUNBOOK_WIZARDS.get(self.runbook[0]) if self.runbook else None


@dataclass(frozen=True, slots=True)
class IncidentSettings:
    rules: tuple[Rule, ...] = ()
    targets: Mapping[str, Target] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    flap_window: float = 600.0
    flap_count: int = 3
    state: Path | None = None


KEYS = {"rules", "targets", "flap_window", "flap_count", "state"}
"""The keys of [alerts] this module reads (checks/config.py reads `for`)."""
_RULE_KEYS = {"name", "check", "target", "hosts", "groups", "severity", "for", "labels", "runbook"}


def parse_duration(value: object, dotted: str, fail: Fail) -> float:
    """Seconds from a number or "90s", "15m", "4h", "1d", "1h30m"."""
    if finite(value) and isinstance(value, int | float) and value >= 0:
        return float(value)
    if isinstance(value, str) and value and _DURATION.fullmatch(value.strip()):
        return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(value.strip()))
    raise fail(dotted, f'expected a duration such as 90, "15m", "4h" or "1d", got {value!r}')


def parse_incident_settings(alerts: Mapping[str, Any], fail: Fail) -> IncidentSettings:
    """The incident keys of the [alerts] table (others are the caller's)."""
    settings = IncidentSettings()
    rules = alerts.get("rules", [])
    if not isinstance(rules, list):
        raise fail("alerts.rules", "expected [[alerts.rules]] tables")
    parsed = tuple(_rule(rule, n, fail) for n, rule in enumerate(rules))
    names = [r.name for r in parsed]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise fail(f"alerts.rules[{index}].name", f"a rule before it is named {name!r} too")
    targets = dict(settings.targets)
    given = alerts.get("targets", {})
    if not isinstance(given, Mapping):
        raise fail("alerts.targets", "expected a table such as [alerts.targets]")
    for severity, target in given.items():
        dotted = f"alerts.targets.{severity}"
        if severity not in SEVERITIES:
            raise fail(dotted, f"unknown severity (known: {', '.join(SEVERITIES)})")
        if not isinstance(target, Mapping):
            raise fail(dotted, 'expected { acknowledge = "15m", resolve = "4h" }')
        for key in target:
            if key not in ("acknowledge", "resolve"):
                raise fail(f"{dotted}.{key}", "unknown key (known: acknowledge, resolve)")
        old = targets[severity]
        ack = parse_duration(target.get("acknowledge", old.acknowledge), dotted, fail)
        resolve = parse_duration(target.get("resolve", old.resolve), dotted, fail)
        if resolve < ack:
            raise fail(f"{dotted}.resolve", "is shorter than the time to acknowledge")
        targets[severity] = Target(ack, resolve)
    window = parse_duration(
        alerts.get("flap_window", settings.flap_window), "alerts.flap_window", fail
    )
    count = alerts.get("flap_count", settings.flap_count)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise fail("alerts.flap_count", f"expected a whole number >= 1, got {count!r}")
    state = alerts.get("state")
    if state is not None and (not isinstance(state, str) or not state.strip()):
        raise fail("alerts.state", f"expected the path of the state database, got {state!r}")
    return IncidentSettings(
        rules=parsed,
        targets=targets,
        flap_window=window,
        flap_count=count,
        state=Path(state).expanduser() if state else None,
    )


def _rule(rule: object, index: int, fail: Fail) -> Rule:
    dotted = f"alerts.rules[{index}]"
    if not isinstance(rule, Mapping):
        raise fail(dotted, "expected [[alerts.rules]] tables")
    for key in rule:
        if key not in _RULE_KEYS:
            raise fail(f"{dotted}.{key}", f"unknown key (known: {', '.join(sorted(_RULE_KEYS))})")

    def text(key: str, default: str | None) -> str | None:
        value = rule.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise fail(f"{dotted}.{key}", f"expected text, got {value!r}")
        return value

    def texts(key: str) -> tuple[str, ...]:
        value = rule.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail(f"{dotted}.{key}", "expected a list of names")
        return tuple(value)

    name = text("name", None)
    if name is None:
        raise fail(dotted, "the rule has no name")
    severity = text("severity", None)
    if severity is not None and severity not in RULE_SEVERITIES:
        raise fail(
            f"{dotted}.severity",
            f"in rule {name!r}: {severity!r} (known: {', '.join(RULE_SEVERITIES)})",
        )
    labels = rule.get("labels", {})
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise fail(f"{dotted}.labels", f'in rule {name!r}: expected {{ team = "web" }}')
    runbook = text("runbook", None)
    if runbook is not None and not re.fullmatch(r"[A-Z]\d{1,2}", runbook):
        raise fail(f"{dotted}.runbook", f"in rule {name!r}: not a runbook id: {runbook!r}")
    if runbook is not None and runbook[0] not in RUNBOOK_WIZARDS:
        known = ", ".join(f"{p}* ({w})" for p, w in RUNBOOK_WIZARDS.items())
        raise fail(
            f"{dotted}.runbook", f"in rule {name!r}: {runbook} opens no wizard (known: {known})"
        )
    for_seconds = None
    if "for" in rule:
        for_seconds = parse_duration(rule["for"], f"{dotted}.for", fail)
    return Rule(
        name=name,
        check=text("check", "*") or "*",
        target=text("target", "*") or "*",
        hosts=texts("hosts"),
        groups=texts("groups"),
        severity=severity,
        for_seconds=for_seconds,
        labels=dict(labels),
        runbook=runbook,
    )
