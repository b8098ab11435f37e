"""`fleetdeck alerts` with a real Alertmanager (tests/prom.py: Prometheus's always-firing rule
sends its alert there) beside a dead one: the live one's alert is listed with its source,
silenced it stays listed and counted, and the dead one is one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from prom import PromStack
from prom import prom_stack as prom_stack

from fleetdeck.checks.model import Status
from fleetdeck.checks.sources.alerts import SourceAlert
from fleetdeck.tui.alert_sources import SourceReading, alert_hosts


def _alerts(settings: Path, state: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetdeck", "--config", str(settings), "alerts",
         "--state", str(state), *more],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_alerts_lists_alertmanager_alerts_with_their_source(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    settings = tmp_path / "fleetdeck.toml"
    settings.write_text(
        f'[[sources.alertmanager]]\nurl = "{prom_stack.alertmanager}"\n\n'
        '[[sources.alertmanager]]\nurl = "http://127.0.0.1:9"\n'
    )
    state = tmp_path / "state.db"
    where = prom_stack.alertmanager.split("//", 1)[1]
    listed: list[dict[str, object]] = []
    for _ in range(120):  # Prometheus evaluates and sends each second; bounded: 60 s
        done = _alerts(settings, state, "--json")
        assert done.returncode == 0, done.stderr
        listed = json.loads(done.stdout)["sources"]
        if any(a["alert"] == "FleetdeckAlwaysFiring" for a in listed):
            break
        time.sleep(0.5)
    (ours,) = [a for a in listed if a["alert"] == "FleetdeckAlwaysFiring"]
    assert ours["source"] == f"alertmanager {where}"
    assert (ours["state"], ours["severity"], ours["host"]) == ("firing", "WARN", "testhost")
    (dead,) = [a for a in listed if a["source"] == "alertmanager 127.0.0.1:9"]
    assert (dead["alert"], dead["severity"]) == ("source unreadable", "UNKNOWN")
    assert "127.0.0.1:9" in str(dead["summary"])

    prom_stack.amtool(
        "silence", "add", "alertname=FleetdeckAlwaysFiring", "--comment=cli test",
        "--author=test", "--duration=10m",
    )  # fmt: skip
    text = ""
    for _ in range(120):
        done = _alerts(settings, state)
        assert done.returncode == 0, done.stderr
        text = done.stdout
        line = [x for x in text.splitlines() if "FleetdeckAlwaysFiring" in x]
        if line and "silenced" in line[0]:
            break
        time.sleep(0.5)
    (line,) = [x for x in text.splitlines() if "FleetdeckAlwaysFiring" in x]
    assert line.split()[:3] == ["alertmanager", where, "silenced"]  # listed, not hidden
    assert "1 silenced" in text.splitlines()[-1]
    assert "1 source(s) unreadable" in text.splitlines()[-1]
    assert "no alerts" in text  # fleetdeck's own list, still said first


def _alert(labels: dict[str, str]) -> SourceAlert:
    return SourceAlert(
        "http://am:9093", "f1", labels.get("alertname", "A"), labels.get("instance", ""),
        Status.WARN, "active", (), labels, {}, "2026-12-07T00:00:00Z", "",
    )  # fmt: skip


def test_an_alert_is_about_its_instance_host_or_hostname() -> None:
    assert alert_hosts(_alert({"instance": "web1:9100"})) == {"web1"}
    assert alert_hosts(_alert({"instance": "[::1]:9100"})) == {"::1"}
    assert alert_hosts(_alert({"instance": "10.0.0.5"})) == {"10.0.0.5"}
    assert alert_hosts(_alert({"hostname": "DB-01", "host": "db1"})) == {"db-01", "db1"}
    assert alert_hosts(_alert({"alertname": "Watchdog"})) == set()
    web = _alert({"instance": "web1.example:9100"})
    other = _alert({"instance": "web10:9100"})
    reading = SourceReading((web, other))
    assert reading.about("WEB1.example", "10.0.0.1") == [web]
    assert reading.about("web1", "") == []
