"""Incidents, their report and the war-room's read API on a real state database and a real
audit log: response times against targets, I2's steps (reopening, review), host text that
must not break the Markdown or the terminal, and what a war-room screen reads."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path

import pytest

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.incidents.alertlog import AlertRecorder, stored_alerts
from fleetdeck.checks.incidents.config import DEFAULT_TARGETS, IncidentSettings
from fleetdeck.checks.incidents.incidents import (
    IncidentError,
    add_note,
    open_incident,
    set_status,
    update_incident,
)
from fleetdeck.checks.incidents.overview import overview
from fleetdeck.checks.incidents.report import build_report, render_markdown
from fleetdeck.checks.incidents.silences import add_silence
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.model import Finding, Status
from fleetdeck.tui.cli import main


def _alerts(store: Store, host: str, *findings: Finding) -> None:
    AlertTracker(host, 0.0, hook=AlertRecorder(store, host, IncidentSettings())).update(
        list(findings), time.time()
    )


def test_i2_steps_set_acknowledge_and_resolve_times(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    made = open_incident(store, "API down", "p1", "alice", hosts=["api-1"])
    assert made.severity == "P1" and made.acknowledged_at is None and made.is_open
    acked = set_status(store, made.id, "assessing", "bob")
    assert acked.acknowledged_at is not None
    done = set_status(store, made.id, "resolved", "bob")
    assert done.resolved_at is not None and not done.is_open
    again = set_status(store, made.id, "responding", "bob", "it came back")
    assert again.resolved_at is None and again.acknowledged_at == acked.acknowledged_at
    set_status(store, made.id, "resolved", "bob")
    reviewed = set_status(store, made.id, "reviewed", "carol")
    assert reviewed.resolved_at is not None and reviewed.reviewed_at is not None
    _alerts(store, "api-2", Finding("load.per_core", Status.WARN, "", "load 3.1 per core"))
    (alert,) = stored_alerts(store)
    wider = update_incident(store, made.id, "bob", severity="P2", alert_ids=[alert.id])
    assert wider.hosts == ("api-1", "api-2") and wider.alert_ids == (alert.id,)
    assert wider.severity == "P2"
    with pytest.raises(IncidentError, match="unknown status 'fixed'"):
        set_status(store, made.id, "fixed", "bob")
    with pytest.raises(IncidentError, match="unknown severity 'P9'"):
        update_incident(store, made.id, "bob", severity="P9")
    with pytest.raises(IncidentError, match=f"no incident 99 in {store.path}"):
        add_note(store, 99, "bob", "hello")


def test_the_report_says_late_and_keeps_host_text_from_breaking_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    nasty = "/srv/a|b `x` \x1b[31mred"
    _alerts(store, "web|1", Finding("disk.space", Status.CRIT, nasty, f"{nasty} 99% used"))
    (alert,) = stored_alerts(store)
    made = open_incident(store, "Disk | full *now*", "P1", "alice", alert_ids=[alert.id])
    assert made.hosts == ("web|1",)
    add_note(store, made.id, "alice", "found \x1b]0;owned\x07 in the logs")
    later = made.opened_at + 20 * 60  # past P1's 15 minutes, nobody acknowledged
    audit = tmp_path / "audit.jsonl"
    AuditLog(audit).append(
        {
            "id": "a1",
            "event": "finished",
            "host": "web|1",
            "title": "rm",
            "outcome": "failed",
            "message": "failed: exit 1",
            "commands": ["rm -f /srv/x"],
            "undo": [],
            "operator": {"user": "alice"},
        }
    )
    report = build_report(store, made.id, audit, DEFAULT_TARGETS, now=later)
    assert report["response"]["acknowledge"]["verdict"] == "overdue"
    assert report["response"]["resolve"]["verdict"] == "not yet"
    assert any("ended failed" in f for f in report["followups"])
    # 20 minutes on, nobody has evaluated web|1 since: its alert is stale, not "firing".
    assert any(f"Alert {alert.id} " in f and "is still stale" in f for f in report["followups"])
    markdown = render_markdown(report)
    assert "\x1b" not in markdown and "\x07" not in markdown
    assert "\\x1b[31mred" in markdown.replace("\\[", "[")
    columns = None  # every row of a table has as many cells as its header
    for line in markdown.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        columns = cells if columns is None else columns
        assert cells == columns, line
    assert markdown.startswith("# Incident 1: Disk \\| full \\*now\\*")


def test_the_war_room_reads_incidents_alerts_and_actions(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    _alerts(store, "db-1", Finding("disk.space", Status.WARN, "/", "/ 85% used"))
    _alerts(store, "web-1", Finding("mem.usage", Status.CRIT, "", "memory 95%"))
    _alerts(store, "web-2", Finding("mem.usage", Status.CRIT, "", "memory 96%"))
    add_silence(store, "host=web-2", 3600, "bob")
    made = open_incident(store, "Memory", "P1", "alice", hosts=["web-1"])
    audit = tmp_path / "audit.jsonl"
    log = AuditLog(audit)
    for n in range(12):
        log.append(
            {
                "id": f"a{n}",
                "event": "finished",
                "host": "web-1",
                "title": f"fix {n}",
                "outcome": "verified",
                "operator": {"user": "alice"},
            }
        )
    view = overview(store, IncidentSettings(), audit, now=made.opened_at + 16 * 60)
    (only,) = view.incidents
    assert only.incident.id == made.id and only.acknowledge_late
    assert only.resolve_left == pytest.approx(4 * 3600 - 16 * 60, abs=1)
    # 16 minutes on, no console has evaluated these hosts since: listed, but as stale.
    assert [(a.host, a.severity, a.shown) for a in view.firing] == [
        ("web-1", "CRIT", "stale"),
        ("db-1", "WARN", "stale"),
    ]
    assert view.counts["silenced"] == 1 and view.counts["stale"] == 2
    now = overview(store, IncidentSettings(), audit)
    assert [(a.host, a.shown) for a in now.firing] == [("web-1", "firing"), ("db-1", "firing")]
    assert [r.id for r in view.actions] == [f"a{n}" for n in range(11, 1, -1)]


def test_the_commands_name_the_file_that_cannot_be_used(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where a directory should be\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["alerts", "--state", str(blocked / "state.db")]) == 1
    assert f"cannot open the state database {blocked / 'state.db'}" in err.getvalue()
    settings = tmp_path / "config.toml"
    settings.write_text('[[alerts.rules]]\nname = "x"\nseverity = "loud"\n')
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["--config", str(settings), "incident", "list"]) == 3
    assert f"{settings}:3: alerts.rules[0].severity: in rule 'x': 'loud'" in err.getvalue()
