"""The action gate and the audit log, with real processes and real files on this machine.

The check here is a small file check (a file must exist) so every ending of a fix can be
forced on purpose: the gate, the shell, the audit file and the commands are all real.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog, Operator, read_audit
from fleetdeck.checks.model import Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.secrets import redact
from fleetdeck.hosts.shell import LocalShell

from loopfs import MakeLoopFs
from loopfs import loopfs as loopfs


def file_finding(path: Path, commands: tuple[tuple[str, ...], ...], **fix: object) -> Finding:
    """A CRIT finding "file missing" on `path`, offering `commands` pinned on the directory's
    inode (so replacing the directory between confirmation and running is caught)."""
    inode = str(path.parent.stat().st_ino)
    made = Fix(
        id="demo.create",
        title=f"create {path.name}",
        risk=fix.pop("risk", Risk.SAFE),  # type: ignore[arg-type]
        commands=commands,
        target=str(path),
        pin=Pin(f"inode of {path.parent}", ("stat", "-c", "%i", str(path.parent)), inode),
        verify="demo.file",
        impact="creates one empty file",
        **fix,  # type: ignore[arg-type]
    )
    return Finding("demo.file", Status.CRIT, str(path), f"{path.name} is missing", (), (made,))


def verifier(path: Path):  # type: ignore[no-untyped-def]
    async def verify() -> Finding:
        ok = path.exists()
        return Finding(
            "demo.file",
            Status.OK if ok else Status.CRIT,
            str(path),
            f"{path.name} {'exists' if ok else 'is missing'}",
        )

    return verify


class Script:
    """A confirmer that answers as told and remembers what it was shown."""

    def __init__(self, approved: bool = True, typed: str = "", before=None) -> None:  # type: ignore[no-untyped-def]
        self.decision = Decision(approved, typed)
        self.asked: list[ConfirmRequest] = []
        self.before = before

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.asked.append(request)
        if self.before:
            self.before()
        return self.decision


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.jsonl"


def host(tier: str | None = None) -> FixHost:
    return FixHost("web-01", LocalShell("web-01"), tier)


async def test_confirmed_fix_runs_is_audited_field_by_field_and_verified(
    tmp_path: Path, audit_path: Path
) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(path, (("touch", str(path)),))
    confirm = Script()
    operator = Operator.current({"SSH_CONNECTION": "192.0.2.7 50312 10.0.0.1 22"})
    gate = ActionGate(audit=AuditLog(audit_path), confirm=confirm, operator=operator)

    result = await gate.apply(host("staging"), finding, finding.fixes[0], verifier(path))

    assert result.outcome is Outcome.VERIFIED and path.exists()
    assert result.before.status is Status.CRIT and result.after is not None
    assert result.after.status is Status.OK
    shown = "\n".join(confirm.asked[0].summary_lines())
    assert "web-01 (tier: staging)" in shown and f"$ touch {path}" in shown
    assert "risk:    safe" in shown and "creates one empty file" in shown
    started, finished = records(audit_path)
    assert started["event"] == "started" and finished["event"] == "finished"
    assert started["id"] == finished["id"] == result.attempt
    assert str(finished["time"]).endswith("Z") and str(finished["time"]) >= str(started["time"])
    assert finished["operator"] == {
        "user": operator.user,
        "console_host": operator.console_host,
        "ssh_from": "192.0.2.7 port 50312",
        "sudo_user": None,
        "uid": os.getuid(),
    }
    assert finished["host"] == "web-01" and finished["tier"] == "staging"
    assert finished["check"] == "demo.file" and finished["fix"] == "demo.create"
    assert finished["commands"] == [f"touch {path}"]
    (run,) = finished["runs"]  # type: ignore[misc]
    assert run["command"] == f"touch {path}" and run["exit_status"] == 0
    assert run["duration_s"] >= 0 and run["result"] == "exit status 0"
    assert finished["outcome"] == "verified"
    verification = finished["verification"]
    assert verification["before"]["status"] == "CRIT"  # type: ignore[index]
    assert verification["after"]["status"] == "OK"  # type: ignore[index]
    assert oct(audit_path.stat().st_mode & 0o777) == "0o600"


async def test_read_only_refuses_without_asking_and_audits_the_refusal(
    tmp_path: Path, audit_path: Path
) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(path, (("touch", str(path)),))
    confirm = Script()
    gate = ActionGate(audit=AuditLog(audit_path), confirm=confirm, read_only=True)
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.REFUSED and "read-only" in result.message
    assert confirm.asked == [] and not path.exists()
    (record,) = records(audit_path)
    assert record["event"] == "refused" and record["read_only"] is True
    assert record["commands"] == [f"touch {path}"]


async def test_operator_saying_no_runs_nothing(tmp_path: Path, audit_path: Path) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(path, (("touch", str(path)),))
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script(approved=False))
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.DECLINED and not path.exists()
    assert [r["event"] for r in records(audit_path)] == ["declined"]


@pytest.mark.parametrize(
    ("tier", "risk", "typed", "runs"),
    [
        ("prod", Risk.SAFE, "", False),
        ("prod", Risk.SAFE, "web-02", False),
        ("prod", Risk.SAFE, "web-01", True),
        ("staging", Risk.DESTRUCTIVE, "", False),
        ("staging", Risk.DESTRUCTIVE, " web-01 ", True),
        ("prod", Risk.SAFE, "web-01 ", True),  # white space around the name is forgiven
        ("prod", Risk.SAFE, "\tweb-01\n", True),
        ("prod", Risk.SAFE, "WEB-01", False),  # the rest is exact: case,
        ("prod", Risk.SAFE, "web -01", False),  # inner characters,
        ("prod", Risk.SAFE, "web-0", False),  # the whole name
        ("staging", Risk.DISRUPTIVE, "", True),
    ],
)
async def test_prod_hosts_and_destructive_fixes_need_the_host_name_typed(
    tmp_path: Path, audit_path: Path, tier: str, risk: Risk, typed: str, runs: bool
) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(path, (("touch", str(path)),), risk=risk)
    confirm = Script(typed=typed)
    gate = ActionGate(audit=AuditLog(audit_path), confirm=confirm)
    result = await gate.apply(host(tier), finding, finding.fixes[0], verifier(path))
    assert confirm.asked[0].needs_typed_name is (tier == "prod" or risk is Risk.DESTRUCTIVE)
    assert path.exists() is runs
    assert result.outcome is (Outcome.VERIFIED if runs else Outcome.DECLINED)
    if not runs:
        assert "host name typed" in result.message


async def test_target_changed_after_confirmation_aborts_with_what_changed(
    tmp_path: Path, audit_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    path = workdir / "wanted"
    finding = file_finding(path, (("touch", str(path)),))

    def swap_directory() -> None:  # another operator replaces it while we look at the modal
        workdir.rename(tmp_path / "old-work")
        workdir.mkdir()

    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script(before=swap_directory))
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.ABORTED and not path.exists()
    assert f"inode of {workdir} changed" in result.message
    (record,) = records(audit_path)
    assert record["event"] == "aborted"
    assert record["pin"]["value"] != record["pin_now"]  # type: ignore[index]
    assert record["pin_now"] == str(workdir.stat().st_ino)


async def test_target_gone_aborts(tmp_path: Path, audit_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    path = workdir / "wanted"
    finding = file_finding(path, (("touch", str(path)),))
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script(before=workdir.rmdir))
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.ABORTED and "gone" in result.message


async def test_failing_fix_shows_exit_status_and_stderr_and_step_stays_failed(
    tmp_path: Path, audit_path: Path
) -> None:
    path = tmp_path / "no-such-dir" / "wanted"
    (tmp_path / "no-such-dir").mkdir()
    finding = file_finding(
        path,
        (
            ("sh", "-c", "echo trying; echo 'touch: permission denied' >&2; exit 4"),
            ("touch", str(path)),
        ),
    )
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.FAILED and not path.exists()
    assert "exit status 4" in result.message and "permission denied" in result.message
    assert len(result.runs) == 1  # stopped at the first failing command
    assert result.after is not None and result.after.status is Status.CRIT
    finished = records(audit_path)[-1]
    assert finished["outcome"] == "failed"
    (run,) = finished["runs"]  # type: ignore[misc]
    assert run["exit_status"] == 4 and "permission denied" in run["output"]
    assert "trying" in run["output"]


async def test_fix_that_overruns_is_killed_and_audited(tmp_path: Path, audit_path: Path) -> None:
    path = tmp_path / "wanted"
    marker = tmp_path / "child-pid"
    finding = file_finding(
        path, (("sh", "-c", f"echo $$ > {marker}; sleep 30; touch {path}"),), timeout=1.0
    )
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    started = time.monotonic()
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert time.monotonic() - started < 10
    assert result.outcome is Outcome.FAILED and "timed out after 1 s: killed" in result.message
    pid = int(marker.read_text())
    await asyncio.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert records(audit_path)[-1]["runs"][0]["result"].startswith("timed out")  # type: ignore[index]


async def test_fix_process_killed_part_way_is_audited_as_killed(
    tmp_path: Path, audit_path: Path
) -> None:
    path = tmp_path / "wanted"
    marker = tmp_path / "pid"
    finding = file_finding(
        path, (("sh", "-c", f"echo half done; echo $$ > {marker}; sleep 30; touch {path}"),)
    )
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    task = asyncio.create_task(gate.apply(host(), finding, finding.fixes[0], verifier(path)))
    for _ in range(100):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.05)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    result = await task
    assert result.outcome is Outcome.FAILED
    assert "killed by signal 9 (SIGKILL)" in result.message
    started, finished = records(audit_path)
    assert started["event"] == "started" and finished["id"] == started["id"]
    (run,) = finished["runs"]  # type: ignore[misc]
    assert run["exit_status"] == -9 and "half done" in run["output"]
    assert finished["verification"]["after"]["status"] == "CRIT"  # type: ignore[index]


def test_console_killed_mid_fix_leaves_a_readable_interrupted_record(
    tmp_path: Path, audit_path: Path
) -> None:
    """SIGKILL the whole fleetdeck process while its fix runs: the started record is whole,
    `fleetdeck audit` reports the attempt as interrupted, and later records still append."""
    marker = tmp_path / "running"
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import asyncio, pathlib
        from fleetdeck.checks.actions import ActionGate, Decision, FixHost
        from fleetdeck.checks.audit import AuditLog
        from fleetdeck.checks.model import Finding, Fix, Pin, Risk, Status
        from fleetdeck.hosts.shell import LocalShell

        async def yes(request):
            return Decision(True)

        async def main():
            fix = Fix("demo.slow", "slow fix", Risk.SAFE,
                      (("sh", "-c", "touch {marker}; sleep 60"),), "x",
                      Pin("nothing", ("true",), ""), "demo.file")
            finding = Finding("demo.file", Status.CRIT, "x", "broken", (), (fix,))
            gate = ActionGate(audit=AuditLog(pathlib.Path({str(audit_path)!r})), confirm=yes)
            async def verify():
                return None
            await gate.apply(FixHost("web-01", LocalShell("web-01")), finding, fix, verify)

        asyncio.run(main())
    """)
    )
    process = subprocess.Popen([sys.executable, str(driver)], cwd=Path(__file__).parent.parent)
    try:
        for _ in range(200):
            if marker.exists():
                break
            time.sleep(0.05)
        assert marker.exists(), "the fix never started"
        process.kill()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    (started,) = records(audit_path)
    assert started["event"] == "started" and started["fix"] == "demo.slow"
    # A writer that dies mid-line leaves half a record; the next append closes it off.
    with audit_path.open("a") as handle:
        handle.write('{"v": 1, "time": "2026-')
    AuditLog(audit_path).append({"id": "later", "event": "refused", "host": "web-02"})
    reading = read_audit(audit_path)
    assert [r.outcome for r in reading.records] == ["interrupted", "refused"]
    assert reading.damaged_lines == [2]
    shown = subprocess.run(
        [sys.executable, "-m", "fleetdeck", "audit", "--audit-log", str(audit_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout and "fleetdeck stopped while the fix ran" in shown.stdout
    assert "line 2 skipped: not JSON" in shown.stderr


async def test_secrets_never_reach_the_audit_log(tmp_path: Path, audit_path: Path) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(
        path,
        (
            (
                "sh",
                "-c",
                "echo connecting to postgres://app:hunter2@db/x; "
                "echo PGPASSWORD=s3cret-pw >&2; exit 1",
            ),
        ),
    )
    log = AuditLog(audit_path, secrets=["tok-ABCDEF"])
    gate = ActionGate(audit=log, confirm=Script())
    await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    log.append({"id": "x", "event": "note", "message": "token tok-ABCDEF used"})
    text = audit_path.read_text()
    for secret in ("hunter2", "s3cret-pw", "tok-ABCDEF"):
        assert secret not in text
    assert "postgres://app:***@db" in text
    assert redact("password: 'abc123'") == "password: '***'"


async def test_unwritable_audit_log_refuses_to_run_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "wanted"
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    finding = file_finding(path, (("touch", str(path)),))
    gate = ActionGate(audit=AuditLog(blocker / "audit.jsonl"), confirm=Script())
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.REFUSED and not path.exists()
    assert "audit log" in result.message


async def test_quotes_backslashes_and_secrets_keep_every_record_valid_json(
    tmp_path: Path, audit_path: Path
) -> None:
    """Host text with quotes, backslashes and secret-looking words (a firewall comment,
    say) stays one valid JSON line; the secret is masked and the record says which
    command fields masking changed."""
    path = tmp_path / "wanted"
    finding = file_finding(
        path,
        (("sh", "-c", 'echo \'password: "hunter2" and a \\\\ backslash\'; exit 3'),),
        undo=(("iptables", "-A", "INPUT", "-m", "comment", "--comment", "ops token: abc", "-j",
               "DROP"),),
    )  # fmt: skip
    log = AuditLog(audit_path, secrets=['quo"te\\secret'])
    gate = ActionGate(audit=log, confirm=Script())
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.FAILED
    log.append({"id": "y", "event": "note", "message": 'known quo"te\\secret here'})
    text = audit_path.read_text()
    started, finished, note = (json.loads(line) for line in text.splitlines())
    assert "hunter2" not in text and "token: abc" not in text
    assert note["message"] == "known *** here"
    assert started["masked_fields"] == ["commands", "undo"] and "***" in started["undo"][0]
    assert "backslash" in finished["runs"][0]["output"]
    assert read_audit(audit_path).damaged_lines == []


async def test_a_fix_cancelled_part_way_is_audited_as_cancelled(
    tmp_path: Path, audit_path: Path
) -> None:
    path = tmp_path / "wanted"
    finding = file_finding(path, (("sleep", "30"),))
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    task = asyncio.create_task(gate.apply(host(), finding, finding.fixes[0], verifier(path)))
    for _ in range(100):
        if audit_path.exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started, finished = records(audit_path)
    assert started["event"] == "started" and finished["outcome"] == "cancelled"
    assert finished["id"] == started["id"] and "may have run in part" in finished["message"]
    assert [r.outcome for r in read_audit(audit_path).records] == ["cancelled"]


async def test_verification_waits_for_an_effect_that_takes_a_moment(
    tmp_path: Path, audit_path: Path
) -> None:
    """Like carrier after `ip link set up`: the command returns before the check passes."""
    path = tmp_path / "wanted"
    finding = file_finding(path, (("sh", "-c", f"(sleep 2; touch {path}) >/dev/null 2>&1 &"),))
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    result = await gate.apply(host(), finding, finding.fixes[0], verifier(path))
    assert result.outcome is Outcome.VERIFIED, result.message


# -- space: what a fix promised, measured ------------------------------------------------------

MiB = 1 << 20


def space_fix(commands: tuple[tuple[str, ...], ...], frees: int, on: str) -> Finding:
    """A fix on a file that promises `frees` bytes on the filesystem holding `on`."""
    made = Fix(
        id="demo.free",
        title="free some space",
        risk=Risk.SAFE,
        commands=commands,
        target=on,
        pin=Pin("nothing", ("true",), ""),
        verify="demo.file",
        frees=frees,
        frees_on=on,
    )
    return Finding("demo.file", Status.WARN, on, "space to win back", (), (made,))


async def test_fix_that_frees_far_less_than_promised_is_unverified_and_audited(
    loopfs: MakeLoopFs, audit_path: Path
) -> None:
    """Deleting a log a process still holds removes the name and frees nothing: the check
    passes (the file is gone), but the gate measured 0 B of 8 MiB and says so."""
    fs = loopfs(size_mib=32)
    held, loose = fs.mountpoint / "held.log", fs.mountpoint / "loose.log"
    for path in (held, loose):
        path.write_bytes(os.urandom(8 * MiB))
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    with held.open("rb") as log:
        holder = await asyncio.create_subprocess_exec("sleep", "300", stdin=log)
    try:
        finding = space_fix((("rm", "--", str(held)),), 8 * MiB, str(fs.mountpoint))
        fix = finding.fixes[0]
        result = await gate.apply(host(), finding, fix, gone(held))
    finally:
        holder.kill()
        await holder.wait()
    assert result.outcome is Outcome.UNVERIFIED and not held.exists()
    assert result.message.startswith("ran, but freed only 0 B of 8.0 MiB promised on ")
    assert result.message.endswith(": held.log is gone"), result.message
    finished = records(audit_path)[-1]
    assert finished["outcome"] == "unverified"
    assert finished["space"]["short"] is True and finished["space"]["promised"] == 8 * MiB  # type: ignore[index]

    finding = space_fix((("rm", "--", str(loose)),), 8 * MiB, str(fs.mountpoint))
    result = await gate.apply(host(), finding, finding.fixes[0], gone(loose))
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.message == (
        f"verified: loose.log is gone; freed 8.0 MiB of 8.0 MiB promised on {fs.mountpoint}"
    )


def gone(path: Path):  # type: ignore[no-untyped-def]
    async def verify() -> Finding:
        ok = not path.exists()
        state = "is gone" if ok else "is still there"
        return Finding(
            "demo.file", Status.OK if ok else Status.WARN, str(path), f"{path.name} {state}"
        )

    return verify


async def test_space_is_measured_through_proc_fd_of_a_deleted_file_on_a_full_filesystem(
    loopfs: MakeLoopFs, audit_path: Path
) -> None:
    """The truncate fix for a deleted file a process holds measures free space through
    /proc/PID/fd/N, before and after (the file, still open, is empty then), on a filesystem
    root filled into its reserved blocks, where df shows 0 B available throughout."""
    fs = loopfs(size_mib=64)  # 3.2 MiB reserved for root: more than the 2 MiB freed
    holder = fs.hold_deleted(2 * MiB)
    fs.fill_to(100)
    assert shutil.disk_usage(fs.mountpoint).free == 0
    fd = f"/proc/{holder.pid}/fd/3"
    finding = space_fix((("truncate", "-s", "0", fd),), 2 * MiB, fd)

    async def emptied() -> Finding:
        size = os.stat(fd).st_size
        return Finding("demo.file", Status.OK if size == 0 else Status.WARN, fd, f"{size} bytes")

    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    result = await gate.apply(host(), finding, finding.fixes[0], emptied)
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 2 * MiB, result.message
    assert f"freed 2.0 MiB of 2.0 MiB promised on {fd}" in result.message
    assert holder.poll() is None and shutil.disk_usage(fs.mountpoint).free == 0


async def test_pin_that_cannot_be_read_in_its_time_aborts_saying_so(
    tmp_path: Path, audit_path: Path
) -> None:
    """A pin over a slow listing waits as long as the pin says, and one that does not
    answer in time aborts the fix as unreadable, not as changed."""
    path = tmp_path / "wanted"
    slow = Pin("the slow listing", ("sh", "-c", "sleep 1.5; echo same"), "same", timeout=4.0)
    finding = file_finding(path, (("touch", str(path)),))
    fix = replace(finding.fixes[0], pin=slow)
    gate = ActionGate(audit=AuditLog(audit_path), confirm=Script())
    result = await gate.apply(host(), finding, fix, verifier(path))
    assert result.outcome is Outcome.VERIFIED, result.message

    path.unlink()
    started = time.monotonic()
    result = await gate.apply(
        host(), finding, replace(fix, pin=replace(slow, timeout=0.5)), verifier(path)
    )
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.ABORTED and not path.exists()
    assert result.message.startswith("aborted: the slow listing could not be read in 0.5 s")
    assert "changed" not in result.message
    assert records(audit_path)[-1]["pin_now"] == "no reading in 0.5 s"
