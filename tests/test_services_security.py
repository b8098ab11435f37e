"""The security review over real SSH on a namespace host: failed logins made for real with a
key the host does not authorize, read back from its sshd's own log lines, and 401 answers
counted from a real web server's access log."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.services.probe_config import ProbeSettings, SecuritySettings
from fleetdeck.checks.services.security import security_check
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import CommandResult, LocalShell, Shell

from sshd import NetnsHost, NetnsLab, SshClient, SshKeys, ssh_shell

WEBD = Path(__file__).parent / "webd.py"


def context(shell: Shell) -> CheckContext:
    return CheckContext(shell.host, SampleHistory(size=2), Config().thresholds, shell)


def as_syslog(host: NetnsHost, since: int, path: Path, when: datetime) -> None:
    """Append what sshd logged (to stderr, `sshd -e`) from byte `since` on to `path` as a
    syslog daemon writes it: an RFC 3339 time (rsyslog's default), the host, `sshd[PID]:`.
    The text of each line is sshd's own."""
    stamp = when.isoformat(timespec="microseconds")
    lines = [line for line in host.log(since).splitlines() if line.strip()]
    with path.open("a") as log:
        log.writelines(f"{stamp} {host.name} sshd[{host.pid}]: {line}\n" for line in lines)


async def review(
    host: NetnsHost, keys: SshKeys, tmp: Path, settings: ProbeSettings
) -> list[Finding]:
    async with ssh_shell(host, keys, tmp / "known_hosts", host.name) as shell:
        return await security_check(settings).run(context(shell))


async def test_failed_logins_with_a_wrong_key_are_counted_with_their_source_and_user(
    netns_lab: NetnsLab, ssh_keys: SshKeys, ssh_client: SshClient, tmp_path: Path
) -> None:
    host = netns_lab.add_host()
    auth_log = tmp_path / "auth.log"
    # Two hours ago: outside the window, never counted.
    old = datetime.now(UTC) - timedelta(hours=2)
    line = "Failed password for root from 10.9.9.9 port 1 ssh2"
    auth_log.write_text(f"{old.isoformat()} {host.name} sshd[1]: {line}\n")
    settings = ProbeSettings(security=SecuritySettings(
        failed_logins=Limit(2, 10), auth_logs=(str(auth_log),),
    ))  # fmt: skip
    try:
        ssh_client.trust(host)
        offset = host.log_path.stat().st_size
        assert ssh_client.run(host, "true").returncode == 0
        as_syslog(host, offset, auth_log, datetime.now(UTC))
        (quiet, *_) = await review(host, ssh_keys, tmp_path, settings)
        offset = host.log_path.stat().st_size
        wrong = ssh_client.with_identity(ssh_keys.wrong_key)
        wrong.trust(host)
        for _ in range(3):
            assert wrong.run(host, "true").returncode == 255
        as_syslog(host, offset, auth_log, datetime.now(UTC))
        (failed, *_) = await review(host, ssh_keys, tmp_path, settings)
    finally:
        netns_lab.remove_host(host)
    assert quiet.status is Status.OK, quiet
    assert quiet.summary == f"0 failed SSH logins in the last hour ({auth_log})"
    assert failed.status is Status.WARN, (failed, auth_log.read_text())
    assert failed.summary == (
        f"3 failed SSH logins in the last hour ({auth_log}); sources: {netns_lab.gateway} (3);"
        " users: root (3)"
    )


async def test_without_a_journal_or_an_auth_log_the_logins_are_unknown(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    (host,) = netns_hosts(1)
    missing = str(tmp_path / "no-such.log")
    settings = ProbeSettings(security=SecuritySettings(auth_logs=(missing,)))
    (finding, *_) = await review(host, ssh_keys, tmp_path, settings)
    assert finding.status is Status.UNKNOWN
    assert finding.summary == f"no journal, and none of {missing} can be read"


class NoSshdShell:
    """This machine's shell in a network namespace of its own, where no sshd runs, and not
    come in over SSH: a host nobody logs in to over the network."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.shell = LocalShell("no-sshd", env={"SSH_CONNECTION": ""})

    @property
    def host(self) -> str:
        return self.shell.host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 30.0, stdin: str | None = None
    ) -> CommandResult:
        wrapped = ("ip", "netns", "exec", self.netns, *argv)
        return await self.shell.run(wrapped, timeout=timeout, stdin=stdin)


@pytest.fixture
def empty_netns() -> Iterator[str]:
    netns = f"fdt{os.getpid()}-nosshd"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        yield netns
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=True)


async def test_a_host_where_no_ssh_server_runs_has_no_logins_to_review(
    empty_netns: str, tmp_path: Path
) -> None:
    """An ordinary machine with neither a journal nor an auth log, and no sshd: quiet, saying
    why; the UNKNOWN above is for a host whose sshd logs nowhere fleetdeck can read."""
    missing = str(tmp_path / "no-such.log")
    settings = ProbeSettings(security=SecuritySettings(auth_logs=(missing,)))
    findings = await security_check(settings).run(context(NoSshdShell(empty_netns)))
    (logins,) = [f for f in findings if f.check == "security.ssh_logins"]
    if logins.summary.startswith("0 failed"):  # this machine keeps a journal after all
        return
    assert logins.status is Status.OK, logins
    assert logins.summary == "no SSH server runs on this host: no logins to review"


@pytest.fixture
def access_logs(
    netns_hosts: Callable[[int], list[NetnsHost]], tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    """Two real web servers on a namespace host, each writing its access log: one asked
    /denied 30 times and /ok once, the other /ok once."""
    (host,) = netns_hosts(1)
    logs = (tmp_path / "access.log", tmp_path / "quiet.log")
    netns = ["ip", "netns", "exec", str(host.netns)]
    servers = []
    try:
        for port, path in zip((8180, 8181), logs, strict=True):
            argv = [
                *netns,
                sys.executable,
                str(WEBD),
                "--http",
                str(port),
                "--access-log",
                str(path),
            ]
            server = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            servers.append(server)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        curl = [*netns, "curl", "-s", "-o", "/dev/null"]
        denied = ["http://127.0.0.1:8180/denied"] * 30
        subprocess.run([*curl, *denied, "http://127.0.0.1:8180/ok"], check=True)
        subprocess.run([*curl, "http://127.0.0.1:8181/ok"], check=True)
        yield logs
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=5)


async def test_a_burst_of_401_answers_in_the_access_log_is_graded(
    netns_hosts: Callable[[int], list[NetnsHost]],
    ssh_keys: SshKeys,
    tmp_path: Path,
    access_logs: tuple[Path, Path],
) -> None:
    (host,) = netns_hosts(1)
    log, quiet_log = access_logs
    settings = ProbeSettings(security=SecuritySettings(
        denied=Limit(10, 100), access_logs=(str(log), str(quiet_log)),
        auth_logs=(str(tmp_path / "none"),),
    ))  # fmt: skip
    found = await review(host, ssh_keys, tmp_path, settings)
    denied = {f.target: f for f in found if f.check == "security.denied"}
    assert denied[str(log)].status is Status.WARN, denied
    assert denied[str(log)].summary == (
        "30 of 31 requests answered 401/403 in the last hour; sources: 127.0.0.1 (30)"
    )
    assert denied[str(quiet_log)].status is Status.OK
