"""Runbook R06 for real: the lab's journal (journald inside the systemd root) read over SSH,
error lines grouped by unit and folded message; a unit's log followed with a bounded buffer;
a host without a journal reading the files the settings name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.services.logs import LOGS, LOGS_ID, UnitLog
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import Shell
from fleetdeck.hosts.ssh import SSHShell

from sshd import NetnsHost, SshKeys, ssh_shell

WAIT = 60.0


def age(line: str) -> int:
    """Seconds of an evidence line's age column (`  3  1m 35s ago  unit: ...`)."""
    words = line.split("ago")[0].split()[1:]
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(int(word[:-1]) * units[word[-1]] for word in words)


def context(shell: Shell, **params: str) -> CheckContext:
    return CheckContext("sysd", SampleHistory(size=2), Config().thresholds, shell, None, params)


async def test_error_lines_are_grouped_by_unit_and_folded_message_newest_first(
    lab_shell: SSHShell,
) -> None:
    async def two_crashes() -> str:
        (finding,) = await LOGS.run(context(lab_shell, log_minutes="30"))
        lines = finding.evidence[0].output.splitlines()
        flappy = [line for line in lines if "fd-flappy: lost connection" in line]
        return finding.summary if flappy and int(flappy[0].split()[0]) >= 2 else ""

    deadline = asyncio.get_running_loop().time() + WAIT
    while not await two_crashes():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("fd-flappy never logged two crashes")
        await asyncio.sleep(1)
    (finding,) = await LOGS.run(context(lab_shell, log_minutes="30"))
    assert finding.check == LOGS_ID
    assert finding.status is Status.WARN
    assert "error lines in the last 30 min" in finding.summary
    lines = finding.evidence[0].output.splitlines()
    flappy = [line for line in lines if "fd-flappy: lost connection" in line]
    assert len(flappy) == 1, lines  # every crash's address and time folded into one kind
    assert "fd-flappy.service:" in flappy[0]
    assert any("fd-broken: cannot open /srv/data/shard-4711.db" in line for line in lines)
    assert not any("fd-healthy" in line for line in lines)  # the healthy unit is quiet
    ages = [age(line) for line in lines]
    assert ages == sorted(ages)  # newest first
    crit = await LOGS.run(context(lab_shell, log_minutes="30", log_crit="2"))
    assert crit[0].status is Status.CRIT


async def test_a_units_log_is_followed_from_its_cursor_in_a_bounded_buffer(
    lab_shell: SSHShell,
) -> None:
    log = UnitLog(lab_shell, "fd-flappy", tail=5, keep=8)
    first = await log.poll()
    assert 1 <= len(first) <= 5, log.error
    assert all(b" " in line and line[:4].isdigit() for line in first)
    deadline = asyncio.get_running_loop().time() + WAIT
    new: list[bytes] = []
    while not new:
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("no new line for fd-flappy")
        await asyncio.sleep(1)
        new = await log.poll()
    assert not set(new) & set(first)  # from the cursor on: nothing read twice
    while log.dropped == 0:
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("the buffer never filled")
        await asyncio.sleep(1)
        await log.poll()
    assert len(log.lines) == 8


async def test_follow_yields_lines_as_they_come_like_a_container_log_stream(
    lab_shell: SSHShell,
) -> None:
    log = UnitLog(lab_shell, "fd-flappy", tail=2)
    seen: list[bytes] = []
    async with asyncio.timeout(WAIT):
        async for line in log.follow(interval=0.5):
            seen.append(line)
            if len(seen) == 4:  # the two of the tail, and two written since
                break
    assert b"fd-flappy" in b"".join(seen) and len(set(seen)) == 4


async def test_a_host_without_a_journal_reads_the_files_the_settings_name(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    (host,) = netns_hosts(1)
    app_log = tmp_path / "app.log"
    app_log.write_bytes(
        b"info started\nERROR db timeout after 31 ms\nERROR db timeout after 7 ms\n"
        b"error \x1b[31mred\xff\n"
    )
    async with ssh_shell(host, ssh_keys, tmp_path / "known_hosts", host.name) as shell:
        (quiet,) = await LOGS.run(context(shell))
        (found,) = await LOGS.run(context(shell, log_files=f"{app_log}\n"))
    assert quiet.status is Status.OK
    assert "no journal" in quiet.summary
    assert found.status is Status.WARN
    assert found.summary.startswith("3 error lines at the end of 1 log files")
    output = found.evidence[0].output
    assert "     2 " in output  # the two timeouts are one kind
    assert "\\x1b[31m" in output and "\x1b" not in output
