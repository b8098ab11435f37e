"""Names that are not UTF-8, over real SSH: a deleted file held open and an old log, each
named with bytes no decoder accepts, on a namespace host. Each is found, shown escaped, and
acted on by its exact bytes, and the connection stays usable. A command whose output could
not be read is UNKNOWN, never "nothing found"."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import AuditLog, read_audit
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import Check, CheckContext, Finding, Status
from fleetdeck.checks.storage.cleanup import OLD_LOGS, UNCOMPRESSED_LOGS
from fleetdeck.checks.storage.wizard import DELETED
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import OutputLost, Shell
from fleetdeck.hosts.ssh import SSHShell

from shells import prefixed
from sshd import NetnsLab, SshKeys, ssh_shell

HOST = socket.gethostname()
BAD = b"bad-\xff\xfe-utf8"
SHOWN = "bad-\\xff\\xfe-utf8"
"""How the name reads on every screen: the two bytes that are not UTF-8, escaped."""
MiB = 1024 * 1024

HOLDER = """
import os, sys, time
path = os.fsencode(sys.argv[1])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"x" * (2 << 20))
os.unlink(path)
print("held", flush=True)
time.sleep(300)
"""


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, params or {})


async def yes_with_name(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def apply(check: Check, ctx: CheckContext, finding: Finding, audit: Path) -> ActionResult:
    """The finding's fix through the real gate, verified by re-running `check`."""

    async def verify() -> Finding | None:
        return next((f for f in await check.run(ctx) if f.key == finding.key), None)

    assert ctx.shell is not None
    gate = ActionGate(audit=AuditLog(audit), confirm=yes_with_name)
    return await gate.apply(FixHost(HOST, ctx.shell), finding, finding.fixes[0], verify)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding open 2 MiB in a deleted file named BAD."""
    path = os.path.join(os.fsencode(tmp_path), BAD)
    child = subprocess.Popen(
        ["python3", "-c", HOLDER, os.fsdecode(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.fixture
async def odd_shell(
    netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path: Path
) -> AsyncIterator[SSHShell]:
    """A shell on a namespace host (it shares this machine's files and processes)."""
    host = netns_lab.add_host()
    try:
        async with ssh_shell(host, ssh_keys, tmp_path / "known_hosts", "odd01") as shell:
            yield shell
    finally:
        netns_lab.remove_host(host)


def _fd_size(pid: int) -> int:
    (fd,) = (
        n
        for n in os.listdir(f"/proc/{pid}/fd")
        if BAD in os.readlink(f"/proc/{pid}/fd/{n}".encode())
    )
    return os.stat(f"/proc/{pid}/fd/{fd}").st_size


async def test_a_deleted_file_named_in_bytes_that_are_not_utf8_is_warned_and_truncated_over_ssh(
    held: subprocess.Popen[str], odd_shell: SSHShell, tmp_path: Path
) -> None:
    ctx = context(odd_shell)
    found = [f for f in await DELETED.run(ctx) if f"{SHOWN} (deleted)" in f.summary]
    assert len(found) == 1, found
    (finding,) = found
    assert finding.target.startswith(f"pid {held.pid} fd "), finding
    assert finding.status is Status.WARN, finding
    assert f"{SHOWN} (deleted) holds 2.0 MiB" in finding.summary, finding.summary
    assert "\ufffd" not in finding.summary and finding.fixes
    # The connection lived through the bytes: the next command runs on it.
    assert (await odd_shell.run(["echo", "still here"])).stdout == "still here\n"

    result = await apply(DELETED, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert _fd_size(held.pid) == 0  # the exact file, through /proc/PID/fd/N
    (record,) = read_audit(tmp_path / "audit.jsonl").records
    assert SHOWN in record.data["pin"]["value"]


DISGUISED = """
import os, sys, time
with open("/proc/self/comm", "w") as comm:
    comm.write(sys.argv[2])  # a process names itself
path = os.fsencode(sys.argv[1])
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x" * (2 << 20))
if sys.argv[3] == "unlink":
    os.unlink(path)
print("held", flush=True)
time.sleep(300)
"""
ODD_NAME = b"held\n1\t3\t5\t1:1\t1\tfake\tx"
"""A deleted file's name with a newline and tabs, shaped like one more line of the scan."""


@pytest.fixture
def disguised(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Two processes, each holding 2 MiB: one named `ta\tb` holding a deleted file named
    ODD_NAME; one holding a live file whose name ends in " (deleted)". Their pids."""
    children = []
    for name, comm, unlink in (
        (ODD_NAME, "ta\tb", "unlink"),
        (b"live (deleted)", "live", "keep"),
    ):
        path = os.fsdecode(os.path.join(os.fsencode(tmp_path), name))
        child = subprocess.Popen(
            ["python3", "-c", DISGUISED, path, comm, unlink], stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
    try:
        yield children[0].pid, children[1].pid
    finally:
        for child in children:
            child.kill()
            child.wait()


async def test_a_process_named_with_a_tab_cannot_hide_its_deleted_file_nor_fake_one(
    disguised: tuple[int, int], odd_shell: SSHShell, tmp_path: Path
) -> None:
    """Before, a tab in the process name dropped its record (a false OK on a filling disk),
    a newline in the file name cut it, and a live file named "x (deleted)" was offered for
    truncation."""
    hider, live = disguised
    ctx = context(odd_shell)
    findings = await DELETED.run(ctx)
    # The live process also holds pytest's capture file (its fd 2, unlinked): only its
    # live file named "... (deleted)" must be nowhere, neither listed nor a target.
    (live_fd,) = (n for n in os.listdir(f"/proc/{live}/fd") if os.readlink(
        f"/proc/{live}/fd/{n}").endswith("/live (deleted)"))  # fmt: skip
    text = [f.summary for f in findings] + [e.output for f in findings for e in f.evidence]
    assert not [line for line in text if "live (deleted)" in line], findings
    assert not [line for line in text if f"pid {live} (live) fd {live_fd}" in line], findings
    assert f"pid {live} fd {live_fd}" not in [f.target for f in findings], findings
    shown = "held\\n1\\t3\\t5\\t1:1\\t1\\tfake\\tx (deleted)"
    (finding,) = [f for f in findings if shown in f.summary]
    assert finding.target.startswith(f"pid {hider} fd "), finding
    assert finding.status is Status.WARN and finding.fixes, finding
    assert f"{shown} holds 2.0 MiB, open by ta b" in finding.summary, finding.summary
    result = await apply(DELETED, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    (fd,) = (n for n in os.listdir(f"/proc/{hider}/fd") if ODD_NAME in os.readlink(
        f"/proc/{hider}/fd/{n}".encode()))  # fmt: skip
    assert os.stat(f"/proc/{hider}/fd/{fd}").st_size == 0


async def test_an_old_log_named_in_bytes_that_are_not_utf8_is_listed_escaped_and_removed(
    odd_shell: SSHShell, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = os.path.join(os.fsencode(logs), b"old-" + BAD + b".log")
    fresh = logs / "fresh.log"
    for path in (old, fresh):
        Path(os.fsdecode(path)).write_bytes(b"GET /index.html 200\n" * (MiB // 20))
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    ctx = context(odd_shell, {"logs": str(logs), "older": "7"})

    # The gzip estimate reads a sample of the file by its name, passed in the argv over SSH
    # as the exact bytes: a name that reached the host mangled could not be read.
    (compress,) = await UNCOMPRESSED_LOGS.run(ctx)
    assert compress.status is Status.WARN, compress
    assert f"of {logs}/old-{SHOWN}.log compresses to" in compress.evidence[-1].output
    (finding,) = await OLD_LOGS.run(ctx)
    assert finding.status is Status.WARN, finding
    assert f"old-{SHOWN}.log" in finding.evidence[0].output, finding.evidence
    assert finding.summary.startswith("1 file older than 7 days"), finding.summary
    result = await apply(OLD_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert os.listdir(os.fsencode(logs)) == [b"fresh.log"]


async def test_output_lost_with_the_connection_is_unknown_never_nothing_found(
    odd_shell: SSHShell, tmp_path: Path
) -> None:
    """The connection drops under a running command: the command raises, and the steps
    that read "no output" as "nothing found" say UNKNOWN with the reason instead."""
    task = asyncio.ensure_future(odd_shell.run(["sleep", "5"]))
    await asyncio.sleep(0.5)
    odd_shell.connection.close()
    with pytest.raises(OutputLost, match="SSH"):
        await task
    ctx = context(odd_shell, {"logs": str(tmp_path), "older": "7"})
    for check in (DELETED, OLD_LOGS):
        (finding,) = await check.run(ctx)
        assert finding.status is Status.UNKNOWN, finding
        assert "SSH" in finding.summary, finding.summary


async def test_a_scan_killed_before_it_said_anything_is_unknown(tmp_path: Path) -> None:
    """Every command dies of SIGKILL at once (exit -9, no output), as a host's OOM killer
    would: the deleted-files scan and the old-logs listing are UNKNOWN, not "0 files"."""
    shell = prefixed("sh", "-c", 'kill -9 "$$"', "sh")
    ctx = context(shell, {"logs": str(tmp_path), "older": "7"})
    for check in (DELETED, OLD_LOGS):
        (finding,) = await check.run(ctx)
        assert finding.status is Status.UNKNOWN, finding
        assert "exit -9" in finding.summary or "-9" in finding.summary, finding.summary
