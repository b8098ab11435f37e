"""An audit log with odd lines in it: valid JSON of the wrong shape, a line that is not
JSON, a last line cut short. Each is skipped with a warning naming its line, and every good
record still shows, in `fleetdeck audit` and on the Audit screen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import DataTable, Static

from fleetdeck.checks.audit import AuditLog, read_audit, shape_problem
from fleetdeck.tui.audit_screen import AuditScreen

ROOT = Path(__file__).parent.parent
GOOD = 7


@pytest.fixture
def odd_log(tmp_path: Path) -> Path:
    """Seven good records written by AuditLog, with three bad lines among them."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    operator = {"user": "alice", "console_host": "jump", "ssh_from": None, "sudo_user": None}
    for n in range(GOOD):
        log.append(
            {"id": f"a{n}", "event": "refused", "outcome": "refused", "host": f"web-{n:02}",
             "fix": "net.link.up", "target": "eth0", "operator": operator,
             "commands": ["ip link set dev eth0 up"], "message": "refused: read-only"}
        )  # fmt: skip
        if n == 2:  # line 4
            bad = {"v": 1, "time": "2026-01-01T00:00:00Z", "event": "refused", "id": "odd"}
            with path.open("a") as handle:
                handle.write(json.dumps({**bad, "operator": "just-a-string"}) + "\n")
        if n == 4:  # line 7
            with path.open("a") as handle:
                handle.write("this is not JSON\n")
    with path.open("a") as handle:  # line 10: a writer died mid-line
        handle.write('{"v": 1, "time": "2026-01-01T00:00:00Z", "ev')
    return path


def test_each_bad_line_is_skipped_with_its_number_and_why(odd_log: Path) -> None:
    reading = read_audit(odd_log)
    assert [r.data["host"] for r in reading.records] == [f"web-{n:02}" for n in range(GOOD)]
    assert reading.warnings() == [
        "line 4 skipped: 'operator' is a string",
        "line 7 skipped: not JSON",
        "line 10 skipped: not JSON (the line is cut short)",
    ]


def test_the_shapes_the_readers_rely_on_are_checked() -> None:
    good = {"time": "2026-01-01T00:00:00Z", "event": "finished"}
    assert shape_problem(good) is None
    assert shape_problem(["a", "list"]) == "a JSON list, not a JSON object"
    assert shape_problem({"event": "x"}) == "no 'time' field"
    assert shape_problem({**good, "time": "yesterday"}) == "'time' is not a time: 'yesterday'"
    assert shape_problem({**good, "commands": "rm -rf /"}) == "'commands' is a string"
    assert shape_problem({**good, "runs": [1]}) == "'runs' holds a value of the wrong kind"
    assert shape_problem({**good, "verification": {"before": "OK"}}) == (
        "'verification' 'before' is a string"
    )


def test_fleetdeck_audit_shows_the_good_records_and_warns_of_each_bad_line(
    odd_log: Path,
) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "fleetdeck", "audit", "--audit-log", str(odd_log)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert all(f"web-{n:02}" in shown.stdout for n in range(GOOD)), shown.stdout
    assert "just-a-string" not in shown.stdout
    warnings = [line for line in shown.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"fleetdeck: warning: {odd_log}: line 4 skipped: 'operator' is a string",
        f"fleetdeck: warning: {odd_log}: line 7 skipped: not JSON",
        f"fleetdeck: warning: {odd_log}: line 10 skipped: not JSON (the line is cut short)",
    ]
    as_json = subprocess.run(
        [sys.executable, "-m", "fleetdeck", "audit", "--json", "--audit-log", str(odd_log)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert len(as_json.stdout.splitlines()) == GOOD, as_json.stdout


class AuditApp(App[None]):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_mount(self) -> None:
        self.push_screen(AuditScreen(self.path))


async def test_audit_screen_shows_the_seven_good_records_and_the_warning(odd_log: Path) -> None:
    app = AuditApp(odd_log)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        for _ in range(50):
            if screen.records:
                break
            await pilot.pause(0.05)
        assert screen.query_one(DataTable).row_count == GOOD
        detail = str(screen.query_one("#audit-detail", Static).render())
        assert "Warning: line 4 skipped: 'operator' is a string" in detail, detail
        assert "line 10 skipped: not JSON (the line is cut short)" in detail
        assert "$ ip link set dev eth0 up" in detail  # the newest record's details below


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--config", "/nonexistent/\x1b]0;PWNED\x07\x1b[2J.toml"],
        ["hosts", "-i", "/nonexistent/\x1b]0;PWNED\x07\x1b[2J.ini"],
        ["audit", "--since", "\x1b[2Jyesterday"],
    ],
)
def test_error_messages_show_control_characters_escaped(argv: list[str]) -> None:
    """Text an operator typed or a file holds comes back in errors: escaped there too."""
    shown = subprocess.run(
        [sys.executable, "-m", "fleetdeck", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert shown.returncode != 0 and shown.stderr
    assert "\x1b" not in shown.stderr + shown.stdout and "\x07" not in shown.stderr
    assert "\\x1b" in shown.stderr, shown.stderr


def test_a_line_nested_too_deep_for_the_decoder_is_skipped_not_a_crash(tmp_path: Path) -> None:
    """`{"pin": [[[[...` 100,000 deep made json.loads raise RecursionError, which took
    `fleetdeck audit` and the Audit screen down with it."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append({"id": "a", "event": "refused", "host": "web-01", "fix": "net.link.up"})
    with path.open("a") as handle:
        deep = "[" * 100_000 + "]" * 100_000
        handle.write(f'{{"time": "2026-01-01T00:00:00Z", "event": "refused", "pin": {deep}}}\n')
    log.append({"id": "b", "event": "refused", "host": "web-02", "fix": "net.link.up"})
    reading = read_audit(path)
    assert [r.data["host"] for r in reading.records] == ["web-01", "web-02"]
    (warning,) = reading.warnings()
    assert warning == "line 2 skipped: not an audit record (JSON nested too deep to read)"
    shown = subprocess.run(
        [sys.executable, "-m", "fleetdeck", "audit", "--audit-log", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "web-01" in shown.stdout and "web-02" in shown.stdout, shown.stdout
