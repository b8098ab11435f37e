"""SSH to real sshd hosts: strict host keys, each failure its own state, jump chains, and
one persistent sampling stream per host. Every host here is a real OpenSSH sshd, on
loopback or in a network namespace of its own."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.ssh import ConnectError, ConnState, SSHOptions, SSHShell, connect_host
from fleetdeck.hosts.stream import StreamScripts

from sshd import JumpTopology, NetnsHost, NetnsLab, SshdHost, SshKeys, write_known_hosts


def spec(host: SshdHost, keys: SshKeys, key: Path | None = None, **extra: object) -> HostSpec:
    return HostSpec(
        name=host.name,
        address=host.address,
        port=host.port,
        user="root",
        identity_files=(str(key or keys.client_key),),
        **extra,  # type: ignore[arg-type]
    )


def trusting(tmp_path: Path, *hosts: SshdHost, accept_new: bool = False) -> SSHOptions:
    known = tmp_path / "known_hosts"
    write_known_hosts(known, *hosts)
    return SSHOptions(known_hosts=known, accept_new=accept_new, agent=False, connect_timeout=3)


async def test_commands_run_as_argv_on_a_trusted_host(
    loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    connection = await connect_host(
        spec(loopback_sshd, ssh_keys), trusting(tmp_path, loopback_sshd)
    )
    try:
        shell = SSHShell("lo", connection)
        assert (await shell.run(["hostname"])).stdout.strip() == "loopback"
        result = await shell.run(["printf", "%s|", "$(id)", "a b", "; rm -rf /"])
        assert result.stdout == "$(id)|a b|; rm -rf /|"
        assert (await shell.run(["sh", "-c", "exit 7"])).exit_status == 7
    finally:
        connection.close()


async def test_an_unknown_host_key_is_refused_with_its_fingerprint(
    loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    options = trusting(tmp_path)  # an empty known_hosts
    with pytest.raises(ConnectError) as caught:
        await connect_host(spec(loopback_sshd, ssh_keys), options)
    assert caught.value.state is ConnState.HOST_KEY_UNKNOWN
    assert loopback_sshd.host_key_fingerprint in str(caught.value)
    assert "--accept-new" in str(caught.value)
    assert options.known_hosts_path.read_text() == ""


async def test_accept_new_adds_an_unknown_key_once_and_then_trusts_it(
    loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    options = trusting(tmp_path, accept_new=True)
    (await connect_host(spec(loopback_sshd, ssh_keys), options)).close()
    saved = options.known_hosts_path.read_text()
    assert loopback_sshd.host_public_key.split()[1] in saved
    strict = SSHOptions(known_hosts=options.known_hosts_path, agent=False)
    (await connect_host(spec(loopback_sshd, ssh_keys), strict)).close()
    assert options.known_hosts_path.read_text() == saved


async def test_a_changed_host_key_is_refused_even_with_accept_new(
    fresh_loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    options = trusting(tmp_path, fresh_loopback_sshd, accept_new=True)
    before = options.known_hosts_path.read_text()
    fresh_loopback_sshd.rotate_host_key()
    with pytest.raises(ConnectError) as caught:
        await connect_host(spec(fresh_loopback_sshd, ssh_keys), options)
    assert caught.value.state is ConnState.HOST_KEY_CHANGED
    assert fresh_loopback_sshd.host_key_fingerprint in str(caught.value)
    assert "ssh-keygen -R" in str(caught.value)
    assert options.known_hosts_path.read_text() == before


async def test_each_failure_is_its_own_state(
    fresh_loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    options = trusting(tmp_path, fresh_loopback_sshd)
    with pytest.raises(ConnectError) as wrong_key:
        await connect_host(spec(fresh_loopback_sshd, ssh_keys, ssh_keys.wrong_key), options)
    assert wrong_key.value.state is ConnState.AUTH_FAILED
    fresh_loopback_sshd.stop()
    with pytest.raises(ConnectError) as refused:
        await connect_host(spec(fresh_loopback_sshd, ssh_keys), options)
    assert refused.value.state is ConnState.REFUSED
    assert f"port {fresh_loopback_sshd.port}" in str(refused.value)
    nowhere = HostSpec("ghost", "ghost.invalid", 22, "root")
    with pytest.raises(ConnectError) as unresolved:
        await connect_host(nowhere, options)
    assert unresolved.value.state is ConnState.NAME_NOT_RESOLVED


async def test_a_partitioned_host_times_out_within_the_connect_timeout(
    netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    host = netns_lab.add_host()
    try:
        host.partition()
        options = SSHOptions(
            known_hosts=trusting(tmp_path, host).known_hosts, agent=False, connect_timeout=1
        )
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConnectError) as caught:
            await connect_host(spec(host, ssh_keys), options)
        assert caught.value.state is ConnState.TIMEOUT
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        netns_lab.remove_host(host)


async def test_a_proxyjump_chain_reaches_a_host_the_runner_cannot(
    jump_topology: JumpTopology, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    jump, hidden = jump_topology.jump, jump_topology.hidden
    inventory = Inventory((spec(jump, ssh_keys), spec(hidden, ssh_keys, jump=jump.name)))
    options = trusting(tmp_path, jump, hidden)
    target = inventory.hosts[1]
    connection = await connect_host(target, options, inventory)
    try:
        assert (await SSHShell(hidden.name, connection).run(["hostname"])).stdout.strip() == (
            hidden.name
        )
    finally:
        connection.close()
    direct = SSHOptions(known_hosts=options.known_hosts, agent=False, connect_timeout=1)
    with pytest.raises(ConnectError) as caught:
        await connect_host(spec(hidden, ssh_keys), direct)
    assert caught.value.state is ConnState.TIMEOUT


async def test_samples_stream_over_one_channel_per_host(
    netns_hosts,
    ssh_keys: SshKeys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    hosts: list[NetnsHost] = netns_hosts(3)
    options = trusting(tmp_path, *hosts)
    connections = await asyncio.gather(*(connect_host(spec(h, ssh_keys), options) for h in hosts))
    try:
        streams = [StreamScripts(h.name, c) for h, c in zip(hosts, connections, strict=True)]
        samplers = [ProcSampler(s, processes=True) for s in streams]
        described = await asyncio.gather(*(s.describe() for s in samplers))
        assert [d.hostname for d in described] == [h.name for h in hosts]
        first = await asyncio.gather(*(s.sample() for s in samplers))
        channels = [s._process for s in streams]
        for _ in range(5):
            last = await asyncio.gather(*(s.sample() for s in samplers))
        assert [s._process for s in streams] == channels  # still the first channel each
        for sample in (*first, *last):
            assert sample.memory.total > 0 and sample.cores and sample.processes
            assert any(n.name.startswith("eth") or n.name == "lo" for n in sample.nets)
    finally:
        for connection in connections:
            connection.close()


async def test_a_stream_that_ended_is_reopened_by_the_next_sample(
    fresh_loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    connection = await connect_host(
        spec(fresh_loopback_sshd, ssh_keys), trusting(tmp_path, fresh_loopback_sshd)
    )
    try:
        stream = StreamScripts("fresh", connection)
        sampler = ProcSampler(stream)
        await sampler.sample()
        first = stream._process
        assert first is not None
        first.stdin.write_eof()  # the remote loop ends, as if its sh had been killed
        await first.wait_closed()
        assert (await sampler.sample()).memory.total > 0
        assert stream._process is not None and stream._process is not first
    finally:
        connection.close()


async def test_a_lost_connection_is_a_sample_error_naming_the_host(
    fresh_loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    from fleetdeck.hosts.samplers import SampleError

    connection = await connect_host(
        spec(fresh_loopback_sshd, ssh_keys), trusting(tmp_path, fresh_loopback_sshd)
    )
    sampler = ProcSampler(StreamScripts("fresh", connection), timeout=3)
    await sampler.sample()
    fresh_loopback_sshd.stop()  # kills the sessions too
    await asyncio.sleep(0.3)
    with pytest.raises(SampleError, match=r"^fresh: "):
        await sampler.sample()
    connection.close()


async def test_ad_hoc_commands_run_on_the_open_stream_framed_with_their_status(
    loopback_sshd: SshdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    from fleetdeck.hosts.shell import ShellError

    connection = await connect_host(
        spec(loopback_sshd, ssh_keys), trusting(tmp_path, loopback_sshd)
    )
    try:
        stream = StreamScripts("lo", connection)
        result = await stream.run_command(["hostname"])
        channel = stream._process
        assert (result.stdout, result.exit_status) == ("loopback\n", 0)
        # Output that imitates the end marker cannot end the answer early: the nonce differs.
        fake = "\\n@@fleetdeck:@done 0000000000000000\\nafter"  # printf turns \\n into lines
        echoed = await stream.run_command(["printf", fake])
        assert echoed.stdout == "\n@@fleetdeck:@done 0000000000000000\nafter"
        failed = await stream.run_command(["sh", "-c", "echo oops >&2; exit 4"])
        assert (failed.stdout, failed.exit_status) == ("oops\n", 4)
        assert (await ProcSampler(stream).sample()).memory.total > 0  # samples share it
        assert stream._process is channel
        with pytest.raises(ShellError, match="one line"):
            await stream.run_command(["printf", "a\nb"])
    finally:
        connection.close()
