"""The post-incident report (runbook I4): summary, impact, time to acknowledge and to resolve
against the severity's targets, the timeline, the actions with their outcomes and undo
commands, and the follow-ups. One dict (`--format json`) rendered as Markdown that reads well
pasted into a ticket: short tables, times in UTC, commands in code spans.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleetdeck.checks.incidents.alertlog import stored_alerts
from fleetdeck.checks.incidents.config import Target
from fleetdeck.checks.incidents.incidents import get_incident
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.incidents.timeline import build_timeline
from fleetdeck.checks.model import printable
from fleetdeck.hosts.units import human_duration

REPORT_VERSION = 1


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return (
        dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _against(taken: float | None, target: float, waited: float) -> dict[str, Any]:
    """How long a step took against its target: met, missed, or not yet (and late or not)."""
    if taken is None:
        return {
            "seconds": None,
            "target_seconds": target,
            "verdict": "overdue" if waited > target else "not yet",
        }
    return {
        "seconds": round(taken, 1),
        "target_seconds": target,
        "verdict": "met" if taken <= target else "missed",
    }


def build_report(
    store: Store,
    number: int,
    audit_path: Path,
    targets: Mapping[str, Target],
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the report says, JSON-able."""
    now = time.time() if now is None else now
    incident = get_incident(store, number)
    timeline = build_timeline(store, incident, audit_path, now)
    target = targets[incident.severity]
    covered = stored_alerts(store, include_resolved=True, ids=incident.alert_ids, now=now)
    end = incident.resolved_at if incident.resolved_at is not None else now
    ack = (
        None if incident.acknowledged_at is None else incident.acknowledged_at - incident.opened_at
    )
    resolve = None if incident.resolved_at is None else incident.resolved_at - incident.opened_at
    followups = [e.text for e in timeline.entries if e.kind == "followup"]
    for action in timeline.actions:
        if action.outcome not in ("verified", "declined", "refused"):
            followups.append(
                f"Action {action.id} on {action.host} ({action.title}) ended "
                f"{action.outcome}: see what it left behind"
            )
    for alert in covered:
        if alert.state != "resolved":
            followups.append(
                f"Alert {alert.id} ({alert.host} {alert.check} {alert.target}) is "
                f"still {alert.shown}"
            )
    if incident.resolved_at is None:
        followups.append("The incident is not resolved yet")
    return {
        "version": REPORT_VERSION,
        "generated_at": _iso(now),
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "severity": incident.severity,
            "status": incident.status.value,
            "owner": incident.owner,
            "opened_at": _iso(incident.opened_at),
            "opened_by": incident.opened_by,
            "acknowledged_at": _iso(incident.acknowledged_at),
            "resolved_at": _iso(incident.resolved_at),
            "reviewed_at": _iso(incident.reviewed_at),
            "duration_seconds": round(end - incident.opened_at, 1),
            "hosts": list(incident.hosts),
        },
        "impact": {
            "said": incident.impact,
            "alerts": [a.to_json() for a in covered],
        },
        "response": {
            "acknowledge": _against(ack, target.acknowledge, now - incident.opened_at),
            "resolve": _against(resolve, target.resolve, now - incident.opened_at),
        },
        "timeline": [e.to_json() for e in timeline.entries],
        "actions": [a.to_json() for a in timeline.actions],
        "followups": followups,
        "warnings": timeline.warnings,
    }


def _md(text: object) -> str:
    """Host text in a Markdown table cell: one line, no pipe or markup breaking the table."""
    said = printable(str(text), one_line=True)
    return re.sub(r"([|\\`*_\[\]<])", r"\\\1", said)


def _code(text: str) -> str:
    said = printable(text, one_line=True)
    fence = "``" if "`" in said else "`"
    return f"{fence} {said} {fence}" if fence == "``" else f"`{said}`"


def _short(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ").replace("Z", " UTC")


def _took(step: Mapping[str, Any]) -> str:
    target = human_duration(step["target_seconds"])
    if step["seconds"] is None:
        return f"{step['verdict']} (target {target})"
    return f"{human_duration(step['seconds'])}, target {target}: **{step['verdict']}**"


def render_markdown(report: Mapping[str, Any]) -> str:
    i = report["incident"]
    lines = [
        f"# Incident {i['id']}: {_md(i['title'])}",
        "",
        f"**{i['severity']}**, {i['status']}. Owner: {_md(i['owner'] or 'nobody')}. "
        f"Hosts: {', '.join(_md(h) for h in i['hosts']) or 'none named'}.",
        "",
        "## Summary",
        "",
        f"- Opened {_short(i['opened_at'])} by {_md(i['opened_by'])}",
        f"- Acknowledged {_short(i['acknowledged_at'])}",
        f"- Resolved {_short(i['resolved_at'])}",
        f"- Lasted {human_duration(i['duration_seconds'])}",
        "",
        "## Impact",
        "",
        _md(report["impact"]["said"]) or "Not recorded.",
        "",
    ]
    alerts = report["impact"]["alerts"]
    if alerts:
        lines += [
            "| Alert | Host | Check | Target | Severity | State | Summary |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {a['id']} | {_md(a['host'])} | {_md(a['check'])} | {_md(a['target'])} | "
            f"{a['severity']} | {a['state']} | {_md(a['summary'])} |"
            for a in alerts
        ]
        lines.append("")
    response = report["response"]
    lines += [
        "## Response against targets",
        "",
        f"- Time to acknowledge: {_took(response['acknowledge'])}",
        f"- Time to resolve: {_took(response['resolve'])}",
        "",
        "## Timeline",
        "",
        "| Time (UTC) | What | Who | Detail |",
        "|---|---|---|---|",
    ]
    for entry in report["timeline"]:
        at = entry["at"][11:19]
        lines.append(f"| {at} | {entry['kind']} | {_md(entry['who'])} | {_md(entry['text'])} |")
    lines += ["", "## Actions", ""]
    if not report["actions"]:
        lines.append("No fix was attempted on these hosts.")
    for action in report["actions"]:
        lines.append(
            f"- {_short(action['at'])}, {_md(action['who'])} on {_md(action['host'])}: "
            f"{_md(action['title'])}: **{action['outcome']}**. "
            + _md(action["message"].removeprefix(f"{action['outcome']}: "))
        )
        lines += [f"  - ran {_code(c)}" for c in action["commands"]]
        lines += [f"  - undo: {_code(u)}" for u in action["undo"]] or ["  - no undo command"]
    lines += ["", "## Follow-ups", ""]
    lines += [f"- [ ] {_md(f)}" for f in report["followups"]] or ["None."]
    if report["warnings"]:
        lines += ["", "## Could not be read", ""]
        lines += [f"- {_md(w)}" for w in report["warnings"]]
    lines += ["", f"_Report generated {_short(report['generated_at'])} by fleetdeck._", ""]
    return "\n".join(lines)
