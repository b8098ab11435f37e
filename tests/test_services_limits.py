"""Limits over real SSH on a namespace host: a process holding thousands of descriptors
near its soft limit (and a twin far from it), and a listen queue overflowed for real (a
listener with a backlog of 2 that never accepts, flooded with connects) beside the quiet
namespace it was before."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.services.limits import limits_check
from fleetdeck.checks.services.probe_config import ProbeSettings
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import Shell

from sshd import NetnsHost, SshKeys, ssh_shell

HOLDER = """
import os, resource, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
limit = hard if sys.argv[1] == "hard" else int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
held = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[2]))]
print("ready", flush=True)
sys.stdin.read()
"""
LISTENER = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 9000))
server.listen(2)
print("ready", flush=True)
sys.stdin.read()
"""
FLOOD = """
import socket, sys, time
held = []
print("ready", flush=True)
while len(held) < 3000:
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", 9000))
    held.append(s)
    time.sleep(0.005)
sys.stdin.read()
"""


def context(shell: Shell) -> CheckContext:
    return CheckContext(shell.host, SampleHistory(size=2), Config().thresholds, shell)


def started(netns: str | None, script: str, *args: str) -> subprocess.Popen[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    process = subprocess.Popen(
        [*prefix, sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        pytest.fail(f"helper process did not start: {process.communicate()[1]}")
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    running: list[subprocess.Popen[str]] = []
    try:
        yield running
    finally:
        for process in running:
            process.kill()
            process.wait(timeout=5)


async def run_limits(host: NetnsHost, keys: SshKeys, tmp: Path) -> list[Finding]:
    async with ssh_shell(host, keys, tmp / "known_hosts", host.name) as shell:
        return await limits_check(ProbeSettings()).run(context(shell))


async def test_a_process_near_its_open_files_limit_is_critical_and_its_twin_quiet(
    netns_hosts: Callable[[int], list[NetnsHost]],
    ssh_keys: SshKeys,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
) -> None:
    (host,) = netns_hosts(1)
    near = started(host.netns, HOLDER, "3100", "3000")
    far = started(host.netns, HOLDER, "hard", "3000")
    processes += [near, far]
    found = await run_limits(host, ssh_keys, tmp_path)
    mine = {f.target: f for f in found if f.check == "limits.fds"}
    (held,) = (f for target, f in mine.items() if target.endswith(f"[{near.pid}]"))
    assert held.status is Status.CRIT
    assert "holds 3003 of its 3100 open files (97%)" in held.summary, held.summary
    assert "LimitNOFILE=" in held.summary and "hard limit 3100" in held.summary
    assert not any(target.endswith(f"[{far.pid}]") for target in mine), mine
    files = next(f for f in found if f.check == "limits.files")
    assert files.status is Status.OK and "of fs.file-max" in files.summary


async def test_an_overflowing_listen_queue_is_critical_where_the_quiet_namespace_was_ok(
    netns_lab: object,
    ssh_keys: SshKeys,
    tmp_path: Path,
    processes: list[subprocess.Popen[str]],
) -> None:
    from sshd import NetnsLab

    assert isinstance(netns_lab, NetnsLab)
    host = netns_lab.add_host()
    try:
        processes.append(started(host.netns, LISTENER))
        quiet = await run_limits(host, ssh_keys, tmp_path)
        (before,) = (f for f in quiet if f.check == "limits.listen")
        assert before.status is Status.OK, before
        assert "no drops growing" in before.summary
        processes.append(started(host.netns, FLOOD))
        flooded = await run_limits(host, ssh_keys, tmp_path)
    finally:
        netns_lab.remove_host(host)
    after = {f.target: f for f in flooded if f.check == "limits.listen"}
    assert after["listen drops"].status is Status.CRIT, after
    assert "accept-queue overflows" in after["listen drops"].summary
    assert "net.core.somaxconn=" in after["listen drops"].summary
    full = after["listen 127.0.0.1:9000"]
    assert full.status is Status.CRIT and "backlog 2" in full.summary, full
