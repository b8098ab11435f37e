"""The state database for real: two processes writing one file at once, a writer killed with
SIGKILL in the middle of its writes, and the schema's version. Every write a process saw
return (and printed) must be in the file afterwards, and SQLite's integrity check must pass."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fleetdeck.checks.incidents.alertlog import stored_alerts
from fleetdeck.checks.incidents.incidents import list_incidents
from fleetdeck.checks.incidents.store import SCHEMA, SCHEMA_VERSION, Store, StoreError

WRITER = Path(__file__).parent / "incident_writer.py"


def _writer(db: Path, tag: str, count: int | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, str(WRITER), str(db), tag]
    if count is not None:
        argv.append(str(count))
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_written(store: Store, lines: list[str]) -> tuple[int, int, int]:
    """Every note, ack and silence a writer printed is in the store; returns their counts."""
    notes = {(r["incident_id"], r["text"]) for r in store.read("SELECT * FROM incident_events")}
    acks = {(r["alert_id"], r["at"]) for r in store.read("SELECT alert_id, at FROM acks")}
    silence_ids = {r["id"] for r in store.read("SELECT id FROM silences")}
    counted = [0, 0, 0]
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "note":
            number, text = rest.split(" ", 1)
            assert (int(number), text) in notes, line
            counted[0] += 1
        elif kind == "ack":
            alert, at = rest.split(" ")
            assert (int(alert), float(at)) in acks, line
            counted[1] += 1
        elif kind == "silence":
            assert int(rest) in silence_ids, line
            counted[2] += 1
    return counted[0], counted[1], counted[2]


def test_two_processes_write_one_database_at_once_and_both_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    writers = [_writer(db, "web1", 150), _writer(db, "web2", 150)]
    outputs = [w.communicate(timeout=300) for w in writers]
    for writer, (_out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0, err
    store = Store(db)
    assert store.integrity() == "ok"
    for out, _err in outputs:
        assert _check_written(store, out.splitlines()) == (150, 150, 150)
    # Each console sees the other's alerts and incident: one state for the jump host.
    assert {a.host for a in stored_alerts(store)} == {"web1", "web2"}
    assert sorted(i.title for i in list_incidents(store)) == ["web1 disks", "web2 disks"]
    assert len(store.read("SELECT id FROM silences")) == 300


def test_a_writer_killed_mid_write_loses_nothing_it_was_told_was_written(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    other = _writer(db, "calm", 60)  # a second console writing all along
    victim = _writer(db, "victim")
    assert victim.stdout is not None
    seen: list[str] = []
    while len(seen) < 400:  # well into its loop, and with writes in flight
        line = victim.stdout.readline()
        assert line, victim.stderr.read() if victim.stderr else "the writer stopped"
        seen.append(line.rstrip("\n"))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    seen += victim.stdout.read().splitlines()  # what it printed before it died counts too
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    store = Store(db)  # reopened: WAL recovery, then the same checks
    assert store.integrity() == "ok"
    notes, acks, silences = _check_written(store, seen)
    assert notes >= 130 and acks >= 130 and silences >= 130, (notes, acks, silences)
    assert _check_written(store, out.splitlines()) == (60, 60, 60)
    # ... and the database still takes writes after the crash.
    assert _writer(db, "after", 3).wait(timeout=120) == 0


def test_the_schema_is_versioned_and_a_newer_file_is_refused_by_name(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store(db).close()
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(StoreError, match=rf"{db}: written by a newer fleetdeck"):
        Store(db)


def test_a_file_that_is_not_a_database_is_named_in_the_error(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not SQLite\n" * 100)
    with pytest.raises(StoreError, match=rf"cannot open the state database {db}"):
        Store(db)


def test_a_file_of_an_older_schema_is_brought_up_to_date_keeping_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    raw = sqlite3.connect(db)
    raw.executescript(SCHEMA[1])  # as the first release of the state database left it
    raw.execute(
        "INSERT INTO silences (kind, matcher, starts_at, ends_at, created_at, who, comment)"
        " VALUES ('silence', '[[\"host\", \"=\", \"web1\"]]', 0, 9e9, 0, 'alice', 'kept')"
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    store = Store(db)
    assert store.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 2
    assert [r["comment"] for r in store.read("SELECT comment FROM silences")] == ["kept"]
    assert store.read("SELECT count(*) FROM evaluations")[0][0] == 0
