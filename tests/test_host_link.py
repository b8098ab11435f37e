"""A host link keeps itself up: a host whose sshd dies is down with the reason, backs off,
and comes back by itself when sshd does; a host that never answers backs off longer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetdeck.hosts.inventory.records import HostSpec
from fleetdeck.hosts.link import HostLink
from fleetdeck.hosts.samplers import SampleError
from fleetdeck.hosts.ssh import ConnState, SSHOptions

from sshd import SshdHost, SshKeys, write_known_hosts


def _link(host: SshdHost, keys: SshKeys, tmp_path: Path) -> HostLink:
    known = tmp_path / "known_hosts"
    write_known_hosts(known, host)
    spec = HostSpec(
        host.name, host.address, host.port, "root", identity_files=(str(keys.client_key),)
    )
    options = SSHOptions(known_hosts=known, agent=False, connect_timeout=2)
    return HostLink(spec, options, backoff=(0.3, 2.0), jitter=lambda: 1.0, timeout=3)


async def test_a_host_whose_sshd_dies_goes_down_then_comes_back_by_itself(
    fresh_loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    link = _link(fresh_loopback_sshd, ssh_keys, tmp_path)
    try:
        assert (await link.sample()).memory.total > 0
        assert link.state is ConnState.UP
        fresh_loopback_sshd.stop()
        await asyncio.sleep(0.2)
        with pytest.raises(SampleError, match="fresh"):
            await link.sample()
        assert link.state is ConnState.DOWN
        with pytest.raises(SampleError, match="refused"):
            await link.sample()  # the immediate reconnect finds nothing listening
        assert link.state is ConnState.REFUSED and link.retry_in() > 0
        with pytest.raises(SampleError, match="retry in"):
            await link.sample()  # backing off: no new attempt, no new fd
        fresh_loopback_sshd.start()
        for _ in range(40):
            await asyncio.sleep(0.1)
            try:
                sample = await link.sample()
            except SampleError:
                continue
            break
        else:
            pytest.fail(f"the link never came back: {link.state} {link.reason}")
        assert sample.memory.total > 0 and link.state is ConnState.UP
    finally:
        link.close()


async def test_back_off_doubles_up_to_its_cap(ssh_keys: SshKeys, tmp_path: Path) -> None:
    spec = HostSpec("gone", "127.0.0.1", 1, "root")  # nothing listens on port 1
    link = HostLink(
        spec,
        SSHOptions(known_hosts=tmp_path / "kh", agent=False, connect_timeout=1),
        backoff=(0.05, 0.2),
        jitter=lambda: 1.0,
    )
    waits = []
    for _ in range(4):
        await asyncio.sleep(link.retry_in())
        with pytest.raises(SampleError, match="refused"):
            await link.sample()
        waits.append(round(link.retry_in(), 2))
    assert waits == pytest.approx([0.05, 0.1, 0.2, 0.2], abs=0.02)  # doubling, then the cap
