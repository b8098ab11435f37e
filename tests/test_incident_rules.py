"""Alert rules, acks, silences, maintenance and flap damping, read from a real settings file
and driven through the real `AlertTracker` into a real state database; and the settings
parser's errors on bad files (file, line and key named)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.catalog import WIZARDS
from fleetdeck.checks.config import ConfigError, load_config
from fleetdeck.checks.incidents.alertlog import (
    STALE_AFTER,
    AckError,
    AlertRecorder,
    acknowledge,
    counts,
    stored_alerts,
)
from fleetdeck.checks.incidents.config import DEFAULT_TARGETS, RUNBOOK_WIZARDS, IncidentSettings
from fleetdeck.checks.incidents.silences import MatcherError, add_silence, parse_matcher
from fleetdeck.checks.incidents.store import Store
from fleetdeck.checks.model import Finding, Status

SETTINGS = """\
[alerts]
for = 30
flap_window = "10m"
flap_count = 2

[alerts.targets]
P1 = { acknowledge = "5m", resolve = "2h" }

[[alerts.rules]]
name = "data disks"
check = "disk.*"
target = "/srv/*"
groups = ["db"]
severity = "critical"
for = "2m"
labels = { team = "storage" }
runbook = "S5"

[[alerts.rules]]
name = "everything else"
check = "*"
for = 0
"""


def _settings(tmp_path: Path, text: str = SETTINGS) -> IncidentSettings:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path, required=True).incidents


def _full(target: str = "/srv/data", status: Status = Status.CRIT) -> Finding:
    return Finding("disk.space", status, target, f"{target} 97% used")


def test_rules_and_targets_come_from_the_settings_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first, second = settings.rules
    assert (first.name, first.check, first.target, first.groups) == (
        "data disks",
        "disk.*",
        "/srv/*",
        ("db",),
    )
    assert (first.severity, first.for_seconds, dict(first.labels)) == (
        "critical",
        120.0,
        {"team": "storage"},
    )
    assert first.runbook == "S5" and first.wizard == "storage"
    assert second.for_seconds == 0.0 and second.runbook is None
    assert settings.targets["P1"].acknowledge == 300 and settings.targets["P1"].resolve == 7200
    assert settings.targets["P2"] == DEFAULT_TARGETS["P2"]  # the others keep runbook I1's
    assert DEFAULT_TARGETS["P1"].acknowledge == 15 * 60
    assert (settings.flap_window, settings.flap_count) == (600.0, 2)


def test_every_runbook_prefix_opens_a_wizard_that_exists() -> None:
    assert set(RUNBOOK_WIZARDS.values()) <= set(WIZARDS)


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ("[alerts]\nfor = 30\nsilly = 1\n", 3, "alerts.silly", "unknown key (known: flap_count"),
        ('[[alerts.rules]]\ncheck = "disk.*"\n', 1, "alerts.rules[0]", "the rule has no name"),
        (
            '[[alerts.rules]]\nname = "a"\nseverity = "info"\n\n'
            '[[alerts.rules]]\nname = "b"\nseverity = "huge"\n',
            7,  # the second rule's, though the first sets a severity too
            "alerts.rules[1].severity",
            "in rule 'b': 'huge' (known: critical, warning, info)",
        ),
        (
            '[[alerts.rules]]\nname = "a"\nfor = "soon"\n',
            3,
            "alerts.rules[0].for",
            'expected a duration such as 90, "15m"',
        ),
        (
            '[[alerts.rules]]\nname = "a"\nrunbook = "Z9"\n',
            3,
            "alerts.rules[0].runbook",
            "Z9 opens no wizard",
        ),
        (
            '[[alerts.rules]]\nname = "a"\nhosts = "web1"\n',
            3,
            "alerts.rules[0].hosts",
            "expected a list of names",
        ),
        ('[[alerts.rules]]\nname = "a"\nwhen = 1\n', 3, "alerts.rules[0].when", "unknown key"),
        (
            '[[alerts.rules]]\nname = "a"\n[[alerts.rules]]\nname = "a"\n',
            4,
            "alerts.rules[1].name",
            "a rule before it is named 'a' too",
        ),
        (
            '[alerts.targets]\nP5 = { acknowledge = "1m" }\n',
            2,
            "alerts.targets.P5",
            "unknown severity",
        ),
        (
            '[alerts.targets]\nP1 = { acknowledge = "2h", resolve = "1h" }\n',
            2,
            "alerts.targets.P1.resolve",
            "shorter than the time to acknowledge",
        ),
        ("[alerts]\nflap_count = 0\n", 2, "alerts.flap_count", "expected a whole number >= 1"),
        ("[alerts]\nstate = 3\n", 2, "alerts.state", "expected the path"),
    ],
)
def test_bad_incident_settings_name_the_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, required=True)
    error = caught.value
    assert (error.path, error.line, error.key) == (path, line, key), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_durations_read_as_people_write_them(tmp_path: Path) -> None:
    text = '[[alerts.rules]]\nname = "a"\nfor = "1h30m"\n[[alerts.rules]]\nname = "b"\nfor = 90\n'
    first, second = _settings(tmp_path, text).rules
    assert (first.for_seconds, second.for_seconds) == (5400.0, 90.0)


def test_a_rule_gives_its_for_severity_labels_and_runbook(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    settings = _settings(tmp_path)
    tracker = AlertTracker("db1", 30.0, hook=AlertRecorder(store, "db1", settings, ["db"]))
    other = AlertTracker("web1", 30.0, hook=AlertRecorder(store, "web1", settings, ["web"]))
    tracker.update([_full()], 0.0)
    other.update([_full()], 0.0)
    tracker.update([_full()], 100.0)  # the rule's 2 minutes are not up yet
    other.update([_full()], 100.0)  # "everything else": for = 0, so firing at once
    shown = {(a.host, a.shown) for a in stored_alerts(store)}
    assert shown == {("db1", "pending"), ("web1", "firing")}
    tracker.update([_full()], 121.0)
    (db_alert,) = [a for a in stored_alerts(store) if a.host == "db1"]
    assert db_alert.shown == "firing" and db_alert.runbook == "S5"
    assert db_alert.labels["severity"] == "critical" and db_alert.labels["team"] == "storage"
    assert db_alert.labels["group"] == "db" and db_alert.labels["rule"] == "data disks"
    states = [
        r["state"]
        for r in store.read(
            "SELECT state FROM transitions WHERE alert_id = ? ORDER BY id", (db_alert.id,)
        )
    ]
    assert states == ["pending", "firing"]


def test_ack_silence_and_maintenance_are_counted_not_hidden(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    settings = IncidentSettings()
    for host, groups in (("web1", ["web"]), ("web2", ["web"]), ("db1", ["db", "prod"])):
        tracker = AlertTracker(host, 0.0, hook=AlertRecorder(store, host, settings, groups))
        tracker.update([_full("/"), _full("/var", Status.WARN)], 0.0)
    assert counts(stored_alerts(store))["firing"] == 6

    web1_root = next(a for a in stored_alerts(store) if a.key == ("web1", "disk.space", "/"))
    acknowledge(store, web1_root.id, "alice", "cleaning up")
    add_silence(store, "host=web2,target=~/v.*", 600, "bob", "known")
    add_silence(store, "group=prod", 3600, "carol", "patching", kind="maintenance")
    alerts = stored_alerts(store)
    tally = counts(alerts)
    assert (tally["firing"], tally["acknowledged"], tally["silenced"]) == (2, 1, 3)
    acked = next(a for a in alerts if a.id == web1_root.id)
    assert (acked.acked_by, acked.ack_note) == ("alice", "cleaning up")
    silenced = {a.key for a in alerts if a.shown == "silenced"}
    assert silenced == {
        ("web2", "disk.space", "/var"),
        ("db1", "disk.space", "/"),
        ("db1", "disk.space", "/var"),
    }
    # A window that starts later silences nothing yet.
    later = Store(tmp_path / "later.db")
    AlertTracker("x", 0.0, hook=AlertRecorder(later, "x", settings)).update([_full()], 0.0)
    add_silence(later, "host=x", 60, "d", kind="maintenance", starts_at=time.time() + 600)
    assert counts(stored_alerts(later))["firing"] == 1


def test_flapping_alert_keeps_its_ack_and_is_shown_as_flapping(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    settings = IncidentSettings(flap_window=300.0, flap_count=2)
    tracker = AlertTracker("web1", 0.0, hook=AlertRecorder(store, "web1", settings))
    tracker.update([_full()], 0.0)
    (alert,) = stored_alerts(store)
    acknowledge(store, alert.id, "alice", "watching it")
    tracker.update([], 10.0)  # resolved
    assert stored_alerts(store) == []
    with pytest.raises(AckError, match="has resolved"):
        acknowledge(store, alert.id, "bob")
    tracker.update([_full()], 20.0)  # back within the window: the same episode
    (back,) = stored_alerts(store)
    assert back.id == alert.id and back.shown == "acknowledged" and back.flaps == 1
    assert back.active_since == alert.active_since
    with store.write() as db:  # as if nobody had acked, to see the flapping itself
        db.execute("UPDATE alerts SET acked_at = NULL WHERE id = ?", (alert.id,))
    tracker.update([], 30.0)
    tracker.update([_full()], 40.0)
    assert stored_alerts(store)[0].shown == "firing"  # flap_count is the caller's, 3 by default
    (flapping,) = stored_alerts(store, flap_count=settings.flap_count)
    assert flapping.shown == "flapping" and flapping.flaps == 2
    tracker.update([], 50.0)
    tracker.update([_full()], 1000.0)  # long after: a new episode
    (fresh,) = stored_alerts(store)
    assert fresh.flaps == 0 and fresh.shown == "firing" and fresh.active_since == 1000.0


def test_a_restarted_console_keeps_the_ack_of_an_alert_still_firing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = Store(db)
    AlertTracker("web1", 0.0, hook=AlertRecorder(store, "web1", IncidentSettings())).update(
        [_full()], 0.0
    )
    (alert,) = stored_alerts(store)
    acknowledge(store, alert.id, "alice")
    store.close()
    again = Store(db)  # a new console: a new tracker that has never seen the alert
    AlertTracker("web1", 0.0, hook=AlertRecorder(again, "web1", IncidentSettings())).update(
        [_full()], 500.0
    )
    (kept,) = stored_alerts(again)
    assert kept.id == alert.id and kept.shown == "acknowledged" and kept.acked_by == "alice"


def test_a_changed_finding_under_a_standing_alert_is_recorded(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    tracker = AlertTracker("web1", 0.0, hook=AlertRecorder(store, "web1", IncidentSettings()))
    tracker.update([_full(status=Status.WARN)], 0.0)
    tracker.update([_full(status=Status.WARN)], 1.0)  # nothing new: nothing written
    tracker.update([_full(status=Status.CRIT)], 2.0)
    rows = store.read("SELECT state, previous, severity FROM transitions ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("pending", None, "WARN"),
        ("firing", "pending", "WARN"),
        ("changed", "firing", "CRIT"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("host", "is not name=value"),
        ("host!=a", "only excludes"),
        ("check=~(", "bad regular expression"),
        ("host=a,", "is not name=value"),
    ],
)
def test_bad_matchers_say_why(text: str, problem: str) -> None:
    with pytest.raises(MatcherError, match=problem.replace("(", r"\(")):
        parse_matcher(text)


def test_an_alert_nobody_evaluates_any_more_is_shown_stale(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    recorder = AlertRecorder(store, "web1", IncidentSettings())
    tracker = AlertTracker("web1", 0.0, hook=recorder)
    tracker.update([_full()], 0.0)
    (alert,) = stored_alerts(store)
    assert alert.shown == "firing" and alert.evaluated_at is not None
    later = alert.evaluated_at + STALE_AFTER + 1  # the console that raised it is gone
    (gone,) = stored_alerts(store, now=later)
    assert gone.shown == "stale" and counts([gone])["stale"] == 1
    # A console still watching notes so every HEARTBEAT, though nothing changes.
    tracker.update([_full()], 1.0)
    (same,) = stored_alerts(store)
    assert same.evaluated_at == alert.evaluated_at  # within the heartbeat: nothing written
