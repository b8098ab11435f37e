"""The sshd fixtures do what the SSH tests will lean on: real sshd, real keys, real namespaces.

Each test is a story the fleet tests will tell about hosts, checked here with the real
OpenSSH client and with asyncssh, so a fleet test that fails points at fleetdeck, not at
its fixtures.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from sshd import (
    NAME_PREFIX,
    JumpTopology,
    NetnsHost,
    NetnsLab,
    SshClient,
    SshdHost,
    SshKeys,
    clean_stale,
    link_names,
    netns_names,
    require_sshd_tools,
)


async def _hostname_over_asyncssh(client: SshClient, host: SshdHost) -> str:
    async with asyncssh.connect(**client.asyncssh_options(host)) as connection:
        result = await connection.run("hostname", check=True, timeout=10)
    return str(result.stdout).strip()


def test_loopback_sshd_lets_the_authorized_key_in(
    loopback_sshd: SshdHost, ssh_client: SshClient
) -> None:
    ssh_client.trust(loopback_sshd)
    result = ssh_client.run(loopback_sshd, "hostname")
    assert (result.returncode, result.stdout.strip()) == (0, "loopback"), result.stderr
    assert loopback_sshd.known_hosts_line.startswith(f"[127.0.0.1]:{loopback_sshd.port} ")
    assert int(loopback_sshd.pid_file.read_text()) == loopback_sshd.pid


async def test_loopback_sshd_answers_asyncssh_with_strict_known_hosts(
    loopback_sshd: SshdHost, ssh_client: SshClient
) -> None:
    ssh_client.trust(loopback_sshd)
    assert await _hostname_over_asyncssh(ssh_client, loopback_sshd) == "loopback"


async def test_loopback_sshd_refuses_a_key_it_does_not_authorize(
    loopback_sshd: SshdHost, ssh_client: SshClient, ssh_keys: SshKeys
) -> None:
    wrong = ssh_client.with_identity(ssh_keys.wrong_key)
    wrong.trust(loopback_sshd)
    result = wrong.run(loopback_sshd, "hostname")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr
    with pytest.raises(asyncssh.PermissionDenied):
        await _hostname_over_asyncssh(wrong, loopback_sshd)


async def test_three_namespace_hosts_each_answer_with_their_own_name_and_address(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_client: SshClient
) -> None:
    hosts = netns_hosts(3)
    assert len({host.address for host in hosts}) == 3
    assert len({host.name for host in hosts}) == 3
    assert all(
        host.port == 22 and host.known_hosts_line.startswith(f"{host.address} ") for host in hosts
    )
    ssh_client.trust(*hosts)
    for host in hosts:
        result = ssh_client.run(host, "hostname; ip -4 -o addr show dev eth0")
        assert result.returncode == 0, result.stderr
        name, addresses = result.stdout.split("\n", 1)
        assert name == host.name
        assert f" {host.address}/" in addresses
        assert int(host.pid_file.read_text()) == host.pid
    names = await asyncio.gather(*(_hostname_over_asyncssh(ssh_client, h) for h in hosts))
    assert names == [host.name for host in hosts]


async def test_a_stopped_sshd_refuses_and_comes_back_with_the_same_host_key(
    fresh_loopback_sshd: SshdHost, ssh_client: SshClient
) -> None:
    host = fresh_loopback_sshd
    ssh_client.trust(host)
    key_before = host.host_public_key
    async with asyncssh.connect(**ssh_client.asyncssh_options(host)) as session:
        host.stop()
        # The session it served dies with it, as when the host goes away.
        await asyncio.wait_for(session.wait_closed(), timeout=5)
    assert host.pid is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host.address, host.port), timeout=2)
    refused = ssh_client.run(host, "true")
    assert refused.returncode == 255 and "Connection refused" in refused.stderr

    host.start()
    assert host.host_public_key == key_before
    result = ssh_client.run(host, "hostname")
    assert (result.returncode, result.stdout.strip()) == (0, "fresh"), result.stderr


async def test_a_rotated_host_key_fails_strict_host_key_checking(
    fresh_loopback_sshd: SshdHost, ssh_client: SshClient
) -> None:
    host = fresh_loopback_sshd
    ssh_client.trust(host)
    assert ssh_client.run(host, "true").returncode == 0
    fingerprint = host.host_key_fingerprint
    host.rotate_host_key()
    assert host.is_running and host.host_key_fingerprint != fingerprint
    result = ssh_client.run(host, "true")
    assert result.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr
    assert "Host key verification failed" in result.stderr
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await _hostname_over_asyncssh(ssh_client, host)


def test_a_partitioned_namespace_host_times_out_and_heals(
    netns_lab: NetnsLab, ssh_client: SshClient
) -> None:
    host = netns_lab.add_host("flaky")
    try:
        ssh_client.trust(host)
        host.partition()
        started = time.monotonic()
        result = ssh_client.run(host, "true", connect_timeout=1)
        assert result.returncode == 255 and "timed out" in result.stderr
        assert time.monotonic() - started < 5
        host.heal()
        host.stop()
        assert "Connection refused" in ssh_client.run(host, "true").stderr
        host.start()
        assert ssh_client.run(host, "hostname").stdout.strip() == "flaky"
    finally:
        netns_lab.remove_host(host)
    assert not any(name.endswith("-flaky") for name in netns_names())


async def test_a_hidden_host_is_reached_only_through_its_jump_host(
    jump_topology: JumpTopology, ssh_client: SshClient
) -> None:
    jump, hidden = jump_topology.jump, jump_topology.hidden
    ssh_client.trust(jump, hidden)
    with pytest.raises(OSError):
        socket.create_connection((hidden.address, hidden.port), timeout=1)
    direct = ssh_client.run(hidden, "hostname", connect_timeout=1)
    assert direct.returncode == 255, direct.stdout

    via_jump = ssh_client.run(hidden, "hostname", jump=jump)
    assert (via_jump.returncode, via_jump.stdout.strip()) == (0, hidden.name), via_jump.stderr
    async with (
        asyncssh.connect(**ssh_client.asyncssh_options(jump)) as tunnel,
        asyncssh.connect(**ssh_client.asyncssh_options(hidden), tunnel=tunnel) as connection,
    ):
        result = await connection.run("hostname", check=True, timeout=10)
    assert str(result.stdout).strip() == hidden.name


def test_closing_a_lab_leaves_no_namespace_link_or_process(
    tmp_path: Path, ssh_keys: SshKeys, ssh_client: SshClient
) -> None:
    with NetnsLab(tmp_path / "lab", ssh_keys) as lab:
        jump = lab.add_host()
        hidden = lab.add_hidden_host(jump)
        ssh_client.trust(jump, hidden)
        assert ssh_client.run(hidden, "true", jump=jump).returncode == 0
        pids = [host.pid for host in (jump, hidden)]
        assert [n for n in link_names() if n.startswith(lab.prefix)] == [lab.gateway_link]
        assert len([n for n in netns_names() if n.startswith(lab.prefix)]) == 3  # and switch
    assert not [n for n in [*netns_names(), *link_names()] if n.startswith(lab.prefix)]
    assert not [pid for pid in pids if pid is not None and os.path.exists(f"/proc/{pid}")]
    lab.close()  # a second close is harmless


def test_leftovers_of_a_crashed_run_are_cleaned_and_live_ones_kept(
    netns_hosts: Callable[[int], list[NetnsHost]], netns_lab: NetnsLab
) -> None:
    netns_hosts(1)
    dead = f"{NAME_PREFIX}9999999z"  # above pid_max: that run cannot be alive
    for netns in (f"{dead}-switch", f"{dead}-ghost"):
        subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(
        ["ip", "link", "add", f"{dead}gw", "type", "veth", "peer", "name", "uplink", "netns",
         f"{dead}-switch"],
        check=True,
    )  # fmt: skip
    # What a crash of a lab from before the switch namespace left: a root bridge and port.
    subprocess.run(["ip", "link", "add", f"{dead}br", "type", "bridge"], check=True)
    subprocess.run(
        ["ip", "link", "add", f"{dead}v1", "type", "veth", "peer", "name", "eth0", "netns",
         f"{dead}-ghost"],
        check=True,
    )  # fmt: skip
    removed = clean_stale()
    assert sorted(removed) == sorted(
        [f"{dead}-switch", f"{dead}-ghost", f"{dead}gw", f"{dead}v1", f"{dead}br"]
    )
    assert not [n for n in [*netns_names(), *link_names()] if n.startswith(dead)]
    assert netns_lab.gateway_link in link_names() and netns_lab.switch in netns_names()
    assert all(host.is_running for host in netns_lab.hosts)


def test_missing_root_or_tools_fail_with_how_to_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "ip" else name)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install iproute2"):
        require_sshd_tools(netns=True)
    monkeypatch.setattr(shutil, "which", lambda name: name)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match=r"run ./scripts/test as root"):
        require_sshd_tools()
