"""Docker the way the containers pane, the checks and the fixes will use it: a real engine, on
this machine and through a namespace host's SSH connection, and the ways it goes wrong (a
daemon that hangs, a socket this user may not open, no engine at all, a container removed
under us). Every container here is real, made from the busybox image by `docker import`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetdeck.hosts.docker.endpoint import (
    DockerEndpoint,
    DockerError,
    DockerFailure,
    EndpointKind,
    context_id,
    resolve,
)
from fleetdeck.hosts.docker.link import (
    MAX_LINE,
    Container,
    DockerLink,
    DockerSettings,
    Health,
    State,
    format_ports,
    parse_cgroup_read,
    parse_container,
    parse_time,
)
from fleetdeck.hosts.inventory.load import load_inventory
from fleetdeck.hosts.inventory.records import HostSpec, InventoryError
from fleetdeck.hosts.ssh import SSHOptions, connect_host

from conftest import REPO
from dockerd import SOCKET, Dockerd, DockerObjects, docker, memory_limit
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd
from sshd import NetnsLab, SshKeys, write_known_hosts

T = TypeVar("T")
LOOP = "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    """The first truthy answer of `probe`, polled; fails saying what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := await probe():
            return answer
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:g} s")


def local(**settings: Any) -> DockerLink:
    return DockerLink("here", settings=DockerSettings(**settings), env={})


# -- endpoints and the inventory ---------------------------------------------------------------


def test_endpoint_spellings_and_what_is_refused() -> None:
    parse = DockerEndpoint.parse
    assert parse("ssh") == DockerEndpoint(EndpointKind.SSH)
    assert parse(" NONE ") == DockerEndpoint(EndpointKind.NONE)
    assert parse("unix:///run/user/1000/docker.sock").address == "/run/user/1000/docker.sock"
    assert str(parse("tcp://10.0.0.5:2375")) == "tcp://10.0.0.5:2375"
    assert parse("context:prod") == DockerEndpoint(EndpointKind.CONTEXT, "prod")
    for bad, said in [
        ("ssh://ops@web-01", "second SSH login"),
        ("unix://run/docker.sock", "absolute path"),
        ("tcp://10.0.0.5", "tcp://address:port"),
        ("docker.sock", "unknown Docker endpoint"),
    ]:
        with pytest.raises(ValueError, match=said):
            parse(bad)


def test_the_local_default_follows_docker_host_then_the_context(tmp_path: Path) -> None:
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / context_id("lab") / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": "lab", "Endpoints": {"docker": {"Host": "tcp://h:2375"}}}))
    (config / "config.json").write_text(json.dumps({"currentContext": "lab"}))
    env = {"DOCKER_CONFIG": str(config)}

    route = resolve(None, host="here", remote=False, env=env)
    assert (route.url, route.source, route.via_ssh) == ("tcp://h:2375", "context lab", False)
    route = resolve(None, host="here", remote=False, env=env | {"DOCKER_HOST": "unix:///x.sock"})
    assert (route.url, route.source) == ("unix:///x.sock", "DOCKER_HOST")
    assert resolve(None, host="here", remote=False, env={}).url == f"unix://{SOCKET}"
    remote = resolve(None, host="web-01", remote=True, env=env)
    assert (remote.url, remote.via_ssh) == (f"unix://{SOCKET}", True)
    assert "through the host's SSH connection" in remote.where("web-01")

    with pytest.raises(DockerError) as caught:
        resolve(DockerEndpoint.parse("context:nope"), host="here", remote=False, env=env)
    assert caught.value.failure is DockerFailure.CONFIG and "no docker context 'nope'" in str(
        caught.value
    )
    meta.write_text(json.dumps({"Endpoints": {"docker": {"Host": "ssh://ops@far"}}}))
    with pytest.raises(DockerError, match="second SSH login"):
        resolve(None, host="here", remote=False, env=env)
    with pytest.raises(DockerError) as caught:
        resolve(DockerEndpoint.parse("none"), host="db-01", remote=True, env=env)
    assert caught.value.failure is DockerFailure.NO_ENDPOINT
    assert str(caught.value).startswith("db-01: Docker: no Docker endpoint")


def test_a_toml_host_names_its_docker_endpoint_and_mistakes_name_their_line(
    tmp_path: Path,
) -> None:
    good = tmp_path / "fleet.toml"
    good.write_text(
        '[defaults]\ndocker = "none"\n\n'
        '[[host]]\nname = "web"\ndocker = "ssh"\n\n'
        '[[host]]\nname = "ci"\ndocker = "context:ci"\n\n'
        '[[host]]\nname = "db"\n'
    )
    web, ci, db = load_inventory([good]).hosts
    assert web.docker == DockerEndpoint(EndpointKind.SSH)
    assert ci.docker == DockerEndpoint(EndpointKind.CONTEXT, "ci")
    assert db.docker == DockerEndpoint(EndpointKind.NONE)  # from [defaults]
    assert HostSpec("x", "x").docker is None

    bad = tmp_path / "bad.toml"
    bad.write_text('[[host]]\nname = "web"\naddress = "10.0.0.1"\ndocker = "ssh://web"\n')
    with pytest.raises(InventoryError) as caught:
        load_inventory([bad])
    assert str(caught.value).startswith(f"{bad}:4: host 'web': docker: 'ssh://web' would make")


# -- pure parsers ------------------------------------------------------------------------------


def test_engine_timestamps_ports_and_a_bare_inspect_are_read() -> None:
    assert parse_time("2026-11-23T18:45:22.083995107Z") is not None
    assert parse_time("0001-01-01T00:00:00Z") is None
    ports = {
        "443/tcp": None,
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
    }
    assert format_ports(ports) == ("0.0.0.0:8080->80/tcp", "[::]:8080->80/tcp")
    bare = parse_container({"Id": "abc", "Name": "/x", "State": {"Status": "weird"}})
    assert (bare.name, bare.state, bare.health, bare.has_healthcheck) == (
        "x", State.UNKNOWN, None, False
    )  # fmt: skip


def test_cgroup_v2_output_is_read_and_a_reused_pid_is_left_out() -> None:
    a, b = "a" * 64, "b" * 64
    text = (
        "@t 100.50 400.00\n"
        f"/sys/fs/cgroup/system.slice/docker-{a}.scope/memory.current:104857600\n"
        f"/sys/fs/cgroup/system.slice/docker-{a}.scope/memory.max:max\n"
        f"/sys/fs/cgroup/system.slice/docker-{a}.scope/memory.stat:anon 83886080\n"
        f"/sys/fs/cgroup/system.slice/docker-{a}.scope/memory.stat:inactive_file 4194304\n"
        f"/sys/fs/cgroup/system.slice/docker-{a}.scope/cpu.stat:usage_usec 2500000\n"
        "/sys/fs/cgroup/system.slice/cron.service/memory.current:99\n"  # a pid reused
        f"/sys/fs/cgroup/docker/{b}/memory.current:garbage\n"
    )
    (reading,) = parse_cgroup_read(text, {a, b}).values()
    assert (reading.usage, reading.limit, reading.inactive_file, reading.anon) == (
        104857600, None, 4194304, 83886080
    )  # fmt: skip
    assert (reading.cpu_ns, reading.clock) == (2_500_000_000, 100.5)


@given(st.text())
def test_cgroup_output_of_any_shape_never_breaks_the_reader(text: str) -> None:
    parse_cgroup_read(text, {"a" * 64})


# -- a real engine on this machine -------------------------------------------------------------


async def test_containers_show_health_exits_restart_loops_oom_and_compose_labels(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    unhealthy = docker_objects.start(
        "sleep", "3600", flags=["--health-cmd", "false", "--health-interval", "1s"]
    )
    exits = docker_objects.start("sh", "-c", "exit 3")
    loops = docker_objects.start("sh", "-c", "exit 1", flags=["--restart", "always"])
    full = docker_objects.start(
        "sh", "-c", "head -c 14m /dev/zero > /dev/shm/fill; sleep 3600", flags=memory_limit("16m")
    )
    oom = docker_objects.start(
        "sh", "-c", "head -c 24m /dev/zero > /dev/shm/fill", flags=memory_limit("16m")
    )
    web = docker_objects.start(
        "sleep",
        "3600",
        flags=[
            *("--label", "com.docker.compose.project=shop"),
            *("--label", "com.docker.compose.service=web", "--restart", "on-failure:5"),
        ],
    )
    link = local()
    try:

        async def settled() -> dict[str, Container] | None:
            found = {c.id: c for c in await link.containers()}
            ready = (
                found[unhealthy].health is Health.UNHEALTHY
                and found[exits].state is State.EXITED
                and found[loops].restart_count >= 2
                # The engine may record the OOM kill a moment after the exit (two events):
                # the link shows it once recorded, not a stale "killed" (_oom_may_follow).
                and found[oom].state is State.EXITED
                and found[oom].oom_killed
            )
            return found if ready else None

        seen = await until(settled, "the containers reached their states")
        sick = seen[unhealthy]
        assert sick.has_healthcheck and sick.state is State.RUNNING and sick.failing_streak >= 3
        assert sick.pid > 0 and sick.uptime() is not None and sick.started_at is not None
        assert (seen[exits].exit_code, seen[exits].finished_at is not None) == (3, True)
        looping = seen[loops]  # between two runs, or caught in one
        assert looping.restart_policy == "always"
        assert looping.state in (State.RESTARTING, State.RUNNING)
        assert seen[oom].oom_killed and seen[oom].exit_code == 137
        assert seen[full].memory_limit == 16 * 2**20 and not seen[full].oom_killed
        shop = seen[web]
        assert (shop.project, shop.service, shop.restart_policy) == ("shop", "web", "on-failure:5")
        assert shop.image == dockerd.image and shop.health is None and not shop.has_healthcheck
        assert shop.name.startswith("fdt") and shop.started_raw.endswith("Z")
        assert docker("inspect", "-f", "{{.State.StartedAt}}", web).stdout.strip() == (
            shop.started_raw
        )
    finally:
        await link.close()


async def test_stats_read_cgroups_in_one_command_and_agree_with_the_engine(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    full = docker_objects.start(
        "sh", "-c", "head -c 14m /dev/zero > /dev/shm/fill; sleep 3600", flags=memory_limit("16m")
    )
    busy = docker_objects.start("sh", "-c", "while :; do :; done")
    idle = docker_objects.start("sleep", "3600")
    link, engine = local(stats_from="cgroup"), local(stats_from="api")
    try:
        await until(
            lambda: _memory(link, full, 14 * 2**20), "the memory container filled its /dev/shm"
        )
        for _ in range(2):  # CPU % needs a previous reading
            mine, theirs = await asyncio.gather(link.stats(), engine.stats())
            await asyncio.sleep(1.0)
        mine, theirs = await asyncio.gather(link.stats(), engine.stats())
        for cid in (full, busy, idle):
            assert mine[cid].source == "cgroup" and theirs[cid].source == "api"
            assert abs(mine[cid].memory_used - theirs[cid].memory_used) < 2 * 2**20
        assert mine[full].memory_limit == 16 * 2**20 and mine[idle].memory_limit is None
        assert 85 <= (mine[full].memory_percent or 0) <= 100
        assert (mine[busy].cpu_percent or 0) > 50 and (theirs[busy].cpu_percent or 0) > 50
        assert (mine[idle].cpu_percent or 0) < 5

        started = time.monotonic()
        await link.stats()
        assert time.monotonic() - started < 1.0  # one command, not a second per container
    finally:
        await asyncio.gather(link.close(), engine.close())


async def _memory(link: DockerLink, cid: str, at_least: int) -> bool:
    found = (await link.stats()).get(cid)
    return found is not None and found.memory_used >= at_least


async def test_a_pin_catches_a_restart_and_a_removed_container_is_gone_not_a_crash(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    cid = docker_objects.start("sleep", "3600")
    victim = docker_objects.start("sleep", "3600")
    link = local()
    try:
        before = await link.inspect(cid)
        assert before is not None and before.pin.holds(before)
        await link.restart(cid, timeout=1)
        after = await link.inspect(cid)
        assert after is not None and after.state is State.RUNNING
        assert not before.pin.holds(after) and after.pin.holds(after)
        await link.stop(cid, timeout=1)
        assert (await link.inspect(cid)).state is State.EXITED  # type: ignore[union-attr]
        await link.start(cid)
        assert (await link.inspect(cid)).state is State.RUNNING  # type: ignore[union-attr]

        # Removed between the list and the inspects: left out, the others still listed.
        listing = link.call

        async def list_then_remove(fn: Callable[[Any], T], **kwargs: Any) -> T:
            answer = await listing(fn, **kwargs)
            if isinstance(answer, list):
                await asyncio.to_thread(docker, "rm", "-f", victim)
            return answer

        link.call = list_then_remove  # type: ignore[method-assign]
        ids = {c.id for c in await link.containers()}
        link.call = listing  # type: ignore[method-assign]
        assert cid in ids and victim not in ids
        assert await link.inspect(victim) is None and not before.pin.holds(None)
        with pytest.raises(DockerError) as caught:
            await link.restart(victim)
        assert caught.value.failure is DockerFailure.GONE
        assert str(caught.value).startswith(f"here: Docker at unix://{SOCKET}: container gone")
    finally:
        await link.close()


async def test_a_listing_never_serves_an_older_reading_than_an_inspect_gave(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    """Restarted within its first minute, a container's list entry reads as before ("Up 2
    seconds", "Up 1 second": "Up seconds"), so the list alone would keep serving the cached
    inspect. The link's own inspect saw the new start, and the listing serves that one: the
    pane never shows a count or start that the wizard has seen go by, nor pins on it."""
    cid = docker_objects.start("sleep", "3600")
    link = local()
    try:
        (before,) = [c for c in await link.containers() if c.id == cid]
        await asyncio.to_thread(docker, "restart", "-t", "0", cid)
        after = await link.inspect(cid)
        assert after is not None and after.started_at != before.started_at
        (listed,) = [c for c in await link.containers() if c.id == cid]
        assert listed.started_at == after.started_at and listed.pin.holds(after)
    finally:
        await link.close()


async def test_a_container_killed_but_not_yet_marked_oom_is_read_again_until_it_settles(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    """Docker records an exit and its OOM kill from two events, and on a busy host the OOM
    flag can land after the list already says "Exited (137)": the entry does not change when
    it does. So an exit 137 not marked OOM is inspected afresh at each refresh while it
    settles (oom_settle), where another exit is served from the cache. `docker update` stands
    in for the late flag here: an inspect that changes while the list entry does not."""
    killed = docker_objects.start("sh", "-c", "exit 137")
    failed = docker_objects.start("sh", "-c", "exit 3")
    link = local(oom_settle=3600.0, inspect_max_age=3600.0)
    try:

        async def exited() -> dict[str, Container] | None:
            found = {c.id: c for c in await link.containers()}
            done = all(found[cid].state is State.EXITED for cid in (killed, failed))
            return found if done else None

        before = await until(exited, "both containers exited")
        assert (before[killed].exit_code, before[killed].oom_killed) == (137, False)
        assert before[killed].memory_limit == before[failed].memory_limit == 0  # no limit
        for cid in (killed, failed):
            await asyncio.to_thread(
                docker, "update", "--memory", "32m", "--memory-swap", "64m", cid
            )
        after = {c.id: c for c in await link.containers()}
        assert after[killed].memory_limit == 32 * 2**20  # read again: it may yet be an OOM
        assert after[failed].memory_limit == 0  # an exit 3 is final: the cached inspect
    finally:
        await link.close()


async def test_logs_tail_follow_keep_raw_bytes_and_stop_at_once(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    raw = docker_objects.start(
        "sh",
        "-c",
        r"printf 'caf\351 \033[2Jx\r\n'; head -c 140000 /dev/zero | tr '\0' a; echo; sleep 3600",
    )
    ticking = docker_objects.start("sh", "-c", LOOP)
    link = local()
    try:
        await asyncio.sleep(1.0)
        async with link.logs(raw, tail=None) as lines:
            got = [line async for line in lines]
        # The json-file log driver keeps lines as JSON strings, so invalid UTF-8 arrives as
        # U+FFFD; escape sequences and the carriage return arrive as written (the view shows
        # them safely).
        assert got[0] == b"caf\xef\xbf\xbd \x1b[2Jx\r"
        assert [len(piece) for piece in got[1:]] == [MAX_LINE, MAX_LINE, 140000 - 2 * MAX_LINE]

        async with link.logs(ticking, tail=2) as lines:
            assert len([line async for line in lines]) == 2
        threads = threading.active_count()
        async with link.logs(ticking, tail=0, follow=True) as lines:
            first = await asyncio.wait_for(anext(lines), 5)
            second = await asyncio.wait_for(anext(lines), 5)
        assert first.startswith(b"tick ") and int(second.split()[1]) == int(first.split()[1]) + 1
        await until(_fewer_threads(threads), "the follow thread ended when its block was left", 5)

        with pytest.raises(DockerError) as caught:
            async with link.logs("fdt-no-such-container") as lines:
                pass
        assert caught.value.failure is DockerFailure.GONE
        streams = [link.logs(ticking, follow=True) for _ in range(link.settings.log_streams + 1)]
        for stream in streams[:-1]:
            await stream.open()
        with pytest.raises(DockerError) as caught:
            await streams[-1].open()
        assert caught.value.failure is DockerFailure.BUSY
    finally:
        await link.close()  # closes the open streams too
    await until(_fewer_threads(threads), "link.close() ended every follow thread", 5)


def _fewer_threads(than: int) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return threading.active_count() <= than

    return probe


# -- when it goes wrong ------------------------------------------------------------------------


@pytest.fixture
def hung_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that accepts connections and never says a word (a hung daemon)."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


async def test_a_hung_daemon_times_out_in_bounded_time_and_the_loop_keeps_running(
    hung_socket: Path,
) -> None:
    endpoint = DockerEndpoint.parse(f"unix://{hung_socket}")
    link = DockerLink("stuck", endpoint, settings=DockerSettings(timeout=1.0, workers=2), env={})
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    ticker = asyncio.create_task(tick())
    threads = threading.active_count()
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(link.containers() for _ in range(10)), return_exceptions=True
        )
    finally:
        ticker.cancel()
        await link.close()
    elapsed = time.monotonic() - started
    assert all(
        isinstance(r, DockerError) and r.failure is DockerFailure.TIMEOUT for r in results
    ), results
    error = results[0]
    assert str(error) == (
        f"stuck: Docker at unix://{hung_socket}: no answer: the engine took the connection but "
        "sent nothing within 1 s (hung, overloaded or stopped)"
    )
    assert elapsed < 6 and ticks >= elapsed / 0.05 * 0.5  # the loop was never held
    assert threading.active_count() <= threads + 2  # two workers at most, not one per call


async def test_no_socket_and_no_endpoint_are_said_plainly(tmp_path: Path) -> None:
    missing = DockerLink("bare", DockerEndpoint.parse(f"unix://{tmp_path}/docker.sock"), env={})
    with pytest.raises(DockerError) as caught:
        await missing.containers()
    assert caught.value.failure is DockerFailure.NOT_FOUND
    assert str(caught.value) == (
        f"bare: Docker at unix://{tmp_path}/docker.sock: no Docker socket: no socket at "
        f"{tmp_path}/docker.sock: Docker is not installed or not running here"
    )
    await missing.close()
    off = DockerLink("db-01", DockerEndpoint.parse("none"))
    with pytest.raises(DockerError) as caught:
        await off.engine()
    assert caught.value.failure is DockerFailure.NO_ENDPOINT
    await off.close()


DENIED_PROBE = """
import asyncio, json, sys
from fleetdeck.hosts.docker.link import DockerLink, DockerError
from fleetdeck.hosts.docker.endpoint import DockerEndpoint

async def main():
    link = DockerLink("here", DockerEndpoint.parse(sys.argv[1]), env={})
    try:
        await link.containers()
        print(json.dumps({"failure": None}))
    except DockerError as error:
        print(json.dumps({"failure": error.failure.name, "message": str(error)}))
    finally:
        await link.close()

asyncio.run(main())
"""


def test_a_socket_this_user_may_not_open_is_denied_with_the_way_in(dockerd: Dockerd) -> None:
    """Root opens any socket, so the client runs as `nobody` against the engine's socket."""
    info = os.stat(SOCKET)
    assert stat.S_IMODE(info.st_mode) & 0o007 == 0, "the engine's socket is open to everyone"
    done = subprocess.run(
        [
            *("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"),
            *(sys.executable, "-c", DENIED_PROBE, f"unix://{SOCKET}"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent", "PYTHONPATH": str(REPO)},
    )
    answer = json.loads(done.stdout or "{}")
    assert answer.get("failure") == "DENIED", done.stderr
    assert answer["message"].startswith(f"here: Docker at unix://{SOCKET}: permission denied: ")
    assert f"user nobody may not use {SOCKET}" in answer["message"]
    assert "add nobody to group" in answer["message"]


# -- a remote host, through its own SSH connection --------------------------------------------


async def test_a_remote_engine_is_reached_through_the_hosts_ssh_connection(
    dockerd: Dockerd,
    docker_objects: DockerObjects,
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    tmp_path: Path,
) -> None:
    """The namespace host shares this filesystem, so its /var/run/docker.sock is the test
    engine; its /sys is its own, so stats fall back to the engine's one-shot stats."""
    ticking = docker_objects.start("sh", "-c", LOOP)
    host = netns_lab.add_host("dock")
    options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known_hosts", host), agent=False)
    spec = HostSpec(host.name, host.address, host.port, "root", None, (str(ssh_keys.client_key),))
    connections = [await connect_host(spec, options)]

    async def opener() -> Any:  # as HostLink.connection: the live one, reconnected if need be
        if connections[-1].is_closed():
            connections.append(await connect_host(spec, options))
        return connections[-1]

    dead = tmp_path / "dead.sock"  # a socket file nobody listens on (a stopped engine)
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(dead))
    link = DockerLink(host.name, ssh=opener)
    missing = DockerLink(host.name, DockerEndpoint.parse("unix:///run/no-docker.sock"), ssh=opener)
    stopped = DockerLink(host.name, DockerEndpoint.parse(f"unix://{dead}"), ssh=opener)
    try:
        assert (await link.engine()).version == dockerd.version
        assert link.route.via_ssh and link.where.endswith("through the host's SSH connection")
        assert ticking in {c.id for c in await link.containers()}
        forwarded = Path(link.forward_socket or "/nowhere")
        assert stat.S_IMODE(forwarded.parent.stat().st_mode) == 0o700 and forwarded.is_socket()
        await link.stats()
        await asyncio.sleep(1.0)
        reading = (await link.stats())[ticking]
        assert reading.source == "api" and reading.memory_used > 0
        assert reading.cpu_percent is not None
        async with link.logs(ticking, tail=1) as lines:
            (last,) = [line async for line in lines]
        assert last.startswith(b"tick ")

        with pytest.raises(DockerError) as caught:
            await missing.containers()
        assert caught.value.failure is DockerFailure.NOT_FOUND
        assert "no socket at /run/no-docker.sock on dock" in str(caught.value)
        with pytest.raises(DockerError) as caught:
            await stopped.containers()
        assert caught.value.failure is DockerFailure.REFUSED
        assert f"nothing listens at {dead} on dock" in str(caught.value)

        connections[0].close()  # the host's connection dropped; HostLink would reconnect
        await connections[0].wait_closed()
        assert ticking in {c.id for c in await link.containers()}
        later = Path(link.forward_socket or "/nowhere")
        assert len(connections) == 2 and later != forwarded and not forwarded.parent.exists()
    finally:
        await asyncio.gather(link.close(), missing.close(), stopped.close())
        for connection in connections:
            connection.close()
        netns_lab.remove_host(host)
    assert not later.parent.exists()  # close() removed the forward's private directory
