"""A real incident from end to end (runbooks R05, I1, I2, I4): a loop-mounted filesystem fills
with old logs, the console's own watch (`HostWatch`, psutil) fires the alert its rule in a real
settings file describes, and the alert lands in the state database; other processes (the
`fleetdeck` command) list it, open an incident from it and acknowledge it; the real fix (the
old logs gzipped) goes through the `ActionGate` and its audit log; the next sample resolves
the alert; and `fleetdeck report incident` writes the post-incident report.

The Markdown report is committed as docs/sample-incident-report.md: with
FLEETDECK_WRITE_SAMPLE=1 this test writes it; otherwise it checks that the committed one has
the same sections as today's, so the sample never drifts from what the command prints.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import load_config
from fleetdeck.checks.model import CheckContext, Finding
from fleetdeck.checks.storage.cleanup import UNCOMPRESSED_LOGS
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.samplers import PsutilSampler
from fleetdeck.hosts.shell import LocalShell

from loopfs import MakeLoopFs
from loopfs import loopfs as loopfs

HOST = socket.gethostname()
MiB = 1024 * 1024
SAMPLE = Path(__file__).parent.parent / "docs" / "sample-incident-report.md"


def _fleetdeck(settings: Path, *words: str) -> str:
    """One `fleetdeck` command in its own process, as a second console would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "fleetdeck", "--config", str(settings), *words],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"fleetdeck {' '.join(words)}: {done.stderr}"
    return done.stdout


async def yes(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def test_a_full_disk_becomes_an_incident_that_is_fixed_and_reported(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=32)
    mount = str(fs.mountpoint)
    state, audit = tmp_path / "state.db", tmp_path / "audit.jsonl"
    settings = tmp_path / "config.toml"
    # Resources other than disks are not graded here: a busy shared test machine's load
    # would be a real alert of its own, and this story is about one disk.
    settings.write_text(f"""\
[thresholds.cpu]
warn = 100
crit = 100
[thresholds.memory]
warn = 100
crit = 100
[thresholds.swap]
warn = 100
crit = 100
[thresholds.load]
warn = 1000
crit = 1000

[alerts]
for = 30
state = {json.dumps(str(state))}

[alerts.targets]
P2 = {{ acknowledge = "30m", resolve = "4h" }}

[[alerts.rules]]
name = "data disk full"
check = "disk.space"
target = {json.dumps(mount)}
severity = "critical"
for = 0
labels = {{ team = "storage" }}
runbook = "S5"
""")
    config = load_config(settings, required=True)
    watch = HostWatch(HOST, PsutilSampler(), config, 1.0)

    # Healthy first: nothing fires, nothing is recorded.
    await watch.poll()
    assert watch.error is None, watch.error
    assert json.loads(_fleetdeck(settings, "alerts", "--json"))["alerts"] == []

    # The fault: old logs nobody compressed fill the disk past the critical threshold.
    st = os.statvfs(mount)
    size = (st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    logs = fs.make_logs(old_days=10, fresh=1, old=math.ceil((0.95 * size - used) / MiB), size=MiB)
    assert fs.use_percent() >= 90
    await watch.poll()
    listed = json.loads(_fleetdeck(settings, "alerts", "--json"))
    (alert,) = listed["alerts"]
    assert (alert["host"], alert["check"], alert["target"]) == (HOST, "disk.space", mount)
    assert alert["state"] == "firing" and alert["severity"] == "CRIT"
    assert alert["runbook"] == "S5" and alert["wizard"] == "storage"
    assert alert["labels"]["team"] == "storage"
    assert listed["counts"]["firing"] == 1

    # The operators, from their own shells: open, acknowledge, assess.
    opened = _fleetdeck(
        settings,
        "incident",
        "open",
        "Data disk full on " + HOST,
        "--severity",
        "P2",
        "--alert",
        str(alert["id"]),
        "--owner",
        "alice",
        "--impact",
        "Writes to the data disk fail while it is full.",
        "--who",
        "alice",
    )
    number = re.search(r"incident (\d+) opened", opened)
    assert number, opened
    incident = number[1]
    _fleetdeck(settings, "alerts", "ack", str(alert["id"]), "--note", "on it", "--who", "alice")
    _fleetdeck(settings, "incident", "status", incident, "acknowledged", "--who", "alice")
    _fleetdeck(
        settings,
        "incident",
        "status",
        incident,
        "assessing",
        "--who",
        "alice",
        "--note",
        "old logs in log/ never compressed",
    )
    shown = json.loads(_fleetdeck(settings, "alerts", "--json"))["alerts"][0]
    assert shown["state"] == "acknowledged" and shown["acknowledged"]["by"] == "alice"

    # The fix: the storage wizard's step finds the logs; the gate runs, audits and verifies.
    _fleetdeck(settings, "incident", "status", incident, "responding", "--who", "alice")
    ctx = CheckContext(
        HOST,
        watch.history,
        config.thresholds,
        LocalShell(HOST),
        None,
        {"logs": str(logs.directory), "older": "7"},
    )
    (finding,) = await UNCOMPRESSED_LOGS.run(ctx)

    async def verify() -> Finding | None:
        return next((f for f in await UNCOMPRESSED_LOGS.run(ctx) if f.key == finding.key), None)

    gate = ActionGate(audit=AuditLog(audit), confirm=yes)
    result = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, finding.fixes[0], verify)
    assert result.outcome is Outcome.VERIFIED, result.message
    assert fs.use_percent() < 80

    # The next sample resolves the alert, which every process sees.
    await watch.poll()
    assert json.loads(_fleetdeck(settings, "alerts", "--json"))["alerts"] == []
    (after,) = json.loads(_fleetdeck(settings, "alerts", "--all", "--json"))["alerts"]
    assert after["state"] == "resolved" and after["id"] == alert["id"]

    _fleetdeck(
        settings,
        "incident",
        "status",
        incident,
        "communicating",
        "--who",
        "alice",
        "--note",
        "told #ops the data disk has room again",
    )
    _fleetdeck(
        settings,
        "incident",
        "note",
        incident,
        "--followup",
        "--who",
        "alice",
        "Compress logs daily (logrotate) so they never fill the data disk again",
    )
    _fleetdeck(settings, "incident", "status", incident, "resolved", "--who", "alice")

    report = json.loads(
        _fleetdeck(
            settings, "report", "incident", incident, "--format", "json", "--audit-log", str(audit)
        )
    )
    assert report["incident"]["status"] == "resolved" and report["incident"]["severity"] == "P2"
    assert report["incident"]["hosts"] == [HOST]
    assert report["response"]["acknowledge"]["verdict"] == "met"
    assert report["response"]["acknowledge"]["target_seconds"] == 1800
    assert report["response"]["resolve"]["verdict"] == "met"
    (action,) = report["actions"]
    assert action["outcome"] == "verified" and action["host"] == HOST
    assert any("gzip" in command for command in action["commands"])
    kinds = [entry["kind"] for entry in report["timeline"]]
    # What happened, in the order it happened: the alert before the incident, the fix before
    # the alert resolved, the resolution last.
    assert kinds.index("alert") < kinds.index("opened") < kinds.index("ack")
    assert kinds.index("action") < max(i for i, k in enumerate(kinds) if k == "alert")
    assert kinds[-1] == "status"
    texts = [entry["text"] for entry in report["timeline"]]
    assert any(f"disk.space firing (CRIT): {mount} " in t for t in texts), texts
    assert any(f"disk.space {mount} resolved" in t for t in texts), texts
    assert report["followups"] == [
        "Compress logs daily (logrotate) so they never fill the data disk again"
    ]
    assert report["warnings"] == []

    markdown = _fleetdeck(settings, "report", "incident", incident, "--audit-log", str(audit))
    assert markdown.startswith(f"# Incident {incident}: Data disk full on ")
    assert "Time to acknowledge: " in markdown and "**met**" in markdown
    assert "**verified**" in markdown and "- [ ] Compress logs daily" in markdown
    if os.environ.get("FLEETDECK_WRITE_SAMPLE"):
        SAMPLE.parent.mkdir(exist_ok=True)
        SAMPLE.write_text(markdown)
    assert _sections(SAMPLE.read_text()) == _sections(markdown), (
        f"{SAMPLE} is not what the report prints now: FLEETDECK_WRITE_SAMPLE=1 rewrites it"
    )


def _sections(markdown: str) -> list[str]:
    """The report's headings and table headers: its shape, without this run's figures."""
    return [
        line
        for line in markdown.splitlines()
        if line.startswith("#") or line.startswith("| Time") or line.startswith("| Alert")
    ][1:]  # the title holds the host's name
