"""Which `[[alerts.rules]]` rule covers an alert: the first that matches wins.

A rule names a check id and a target (globs), and optionally hosts (globs) and groups (the
inventory's tags for the host). The rule gives the alert its severity label, its `for`
duration, its labels and the runbook whose wizard it opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from fleetdeck.checks.incidents.config import Rule
from fleetdeck.checks.model import Status

_FROM_STATUS = {Status.CRIT: "critical", Status.WARN: "warning", Status.UNKNOWN: "warning"}


def rule_for(
    rules: Sequence[Rule], host: str, groups: Sequence[str], check: str, target: str
) -> Rule | None:
    """The first rule covering this host's alert, or None."""
    for rule in rules:
        if not fnmatchcase(check, rule.check) or not fnmatchcase(target, rule.target):
            continue
        if rule.hosts and not any(fnmatchcase(host, pattern) for pattern in rule.hosts):
            continue
        if rule.groups and not set(rule.groups) & set(groups):
            continue
        return rule
    return None


def severity_label(rule: Rule | None, status: Status) -> str:
    """critical, warning or info: the rule's word, else the finding's status in words."""
    if rule is not None and rule.severity is not None:
        return rule.severity
    return _FROM_STATUS.get(status, "info")


def labels_of(
    rule: Rule | None, host: str, groups: Sequence[str], check: str, target: str, status: Status
) -> dict[str, str]:
    """The labels a silence's matcher is matched against."""
    labels = dict(rule.labels) if rule else {}
    labels.update(host=host, check=check, target=target, severity=severity_label(rule, status))
    if groups:
        labels["group"] = ",".join(groups)
    if rule is not None:
        labels["rule"] = rule.name
    return labels
