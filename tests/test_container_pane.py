"""The containers pane and the Fleet screen's containers column against a real Docker engine.

First what the pane reads (`checks.containers.pane.read_containers`): containers grouped by
their compose labels, an unhealthy one, one that exited with an error, CPU and memory from one
stats reading. Then what it must take calmly: a daemon that accepts and never answers, no
socket, `docker = "none"`, a socket this user may not open. Last, the pane on the local
console driven by Pilot at 80x24 and 200x50 (and kept responsive while the daemon hangs), and
the Fleet column of a namespace host whose engine is reached through its SSH connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.checks.containers.pane import ContainerSnapshot, read_containers
from fleetdeck.checks.model import Status
from fleetdeck.hosts.docker.endpoint import DockerEndpoint, DockerFailure
from fleetdeck.hosts.docker.link import DockerLink, DockerSettings
from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.ssh import SSHOptions
from fleetdeck.tui.app import Settings, make_app, make_fleet_app
from fleetdeck.tui.fleet_screen import FleetContainersTable, FleetScreen
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets import ContainersPane, ContainerTable, ProcessTable

from conftest import REPO
from dockerd import SOCKET, Dockerd, DockerObjects, docker, memory_limit
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd
from sshd import NetnsHost, NetnsLab, SshKeys, write_known_hosts

SHOP = ("--label", "com.docker.compose.project=shop")


def _service(name: str) -> tuple[str, ...]:
    return (*SHOP, "--label", f"com.docker.compose.service={name}")


def _local(**settings: float) -> DockerLink:
    return DockerLink("here", settings=DockerSettings(**settings), env={})  # type: ignore[arg-type]


async def _until(pilot: Pilot[None], condition: Callable[[], object], timeout: float) -> None:
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


@pytest.fixture
def shop(docker_objects: DockerObjects) -> dict[str, str]:
    """A compose project `shop` (web twice, db once, db unhealthy), a container that exited
    with 3, and one outside compose with a 16 MiB limit, 12 MiB of it used. Names by id."""
    made = {
        "web-a": docker_objects.start("sleep", "3600", flags=_service("web"), what="web"),
        "web-b": docker_objects.start("sleep", "3600", flags=_service("web"), what="web"),
        "db": docker_objects.start(
            "sleep",
            "3600",
            flags=[*_service("db"), "--health-cmd", "false", "--health-interval", "1s"],
            what="db",
        ),
        "job": docker_objects.start("sh", "-c", "exit 3", what="job"),
        "cache": docker_objects.start(
            "sh",
            "-c",
            "head -c 12m /dev/zero > /dev/shm/fill; sleep 3600",
            flags=memory_limit("16m"),
            what="cache",
        ),
    }
    return {cid: what for what, cid in made.items()}


async def _settled(link: DockerLink, shop: dict[str, str]) -> ContainerSnapshot:
    """Readings until the unhealthy one is unhealthy, the job has exited and the cache
    has filled its memory (each bounded; the first may not have CPU yet)."""
    deadline = time.monotonic() + 40
    while True:
        snapshot = await asyncio.wait_for(read_containers(link), 30)
        assert snapshot.error is None, snapshot.error
        lines = {line.id: line for line in snapshot.lines if line.id in shop}
        by_what = {shop[cid]: line for cid, line in lines.items()}
        if (
            len(lines) == len(shop)
            and by_what["db"].health == "unhealthy"
            and by_what["job"].state == "exited"
            and (by_what["cache"].memory_used or 0) > 11 * 2**20
            and by_what["web-a"].cpu_percent is not None
        ):
            return snapshot
        assert time.monotonic() < deadline, f"not settled: {by_what}"
        await asyncio.sleep(0.5)


# -- what the pane reads ---------------------------------------------------------------------


async def test_containers_grouped_by_compose_labels_with_health_exits_and_memory(
    dockerd: Dockerd, shop: dict[str, str]
) -> None:
    link = _local()
    try:
        snapshot = await _settled(link, shop)
    finally:
        await link.close()
    assert snapshot.engine == dockerd.version and snapshot.stats_read
    ours = [g for g in snapshot.groups if any(line.id in shop for line in g.lines)]
    keys = [(g.project, g.service, [shop[x.id] for x in g.lines if x.id in shop]) for g in ours]
    assert keys == [
        ("shop", "db", ["db"]),
        ("shop", "web", ["web-a", "web-b"]),
        (None, None, ["cache", "job"]),  # outside compose: after every project
    ]
    projects = [g.project for g in snapshot.groups]
    assert projects == sorted(projects, key=lambda p: (p is None, p or ""))
    lines = {shop[line.id]: line for line in snapshot.lines if line.id in shop}
    assert lines["db"].trouble == ("unhealthy",) and lines["db"].failing_streak >= 1
    assert lines["job"].trouble == ("exited 3",) and lines["job"].state_text == "exited (3)"
    assert lines["job"].stopped_for is not None and lines["job"].uptime is None
    assert lines["job"].cpu_percent is None and lines["job"].memory_used is None
    cache = lines["cache"]
    assert cache.memory_limit == 16 * 2**20 and cache.trouble == ()
    assert cache.memory_percent is not None and 68 < cache.memory_percent < 100
    assert lines["web-a"].uptime is not None and lines["web-a"].image == dockerd.image
    assert {line.id for line in snapshot.troubled} >= {
        cid for cid, what in shop.items() if what in ("db", "job")
    }


# -- bad input: a plain state, never a hang or a traceback ------------------------------------


@pytest.fixture
def hung_socket(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that accepts connections and never says a word (a hung daemon)."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(64)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
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


async def test_a_hung_daemon_no_socket_and_docker_none_are_said_plainly(
    hung_socket: Path, tmp_path: Path
) -> None:
    endpoint, quick = DockerEndpoint.parse(f"unix://{hung_socket}"), DockerSettings(timeout=1.0)
    hung = DockerLink("stuck", endpoint, settings=quick, env={})
    missing = DockerLink("bare", DockerEndpoint.parse(f"unix://{tmp_path}/docker.sock"), env={})
    off = DockerLink("db-01", DockerEndpoint.parse("none"))
    started = time.monotonic()
    try:
        silent, gone, none = await asyncio.gather(*map(read_containers, (hung, missing, off)))
    finally:
        await asyncio.gather(hung.close(), missing.close(), off.close())
    assert time.monotonic() - started < 5
    assert silent.failure is DockerFailure.TIMEOUT and not silent.absent
    assert silent.error == (
        f"stuck: Docker at unix://{hung_socket}: no answer: the engine took the connection "
        "but sent nothing within 1 s (hung, overloaded or stopped)"
    )
    assert gone.absent and gone.failure is DockerFailure.NOT_FOUND
    assert gone.error is not None and "Docker is not installed or not running here" in gone.error
    assert none.absent and none.error == (
        'db-01: Docker: no Docker endpoint: the inventory says docker = "none"'
    )


DENIED_CONSOLE = """
import asyncio, json
from fleetdeck.checks.config import Config
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.widgets import ContainersPane

async def main():
    app = make_app(Settings(interval=0.5, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.screen.query_one(ContainersPane)
        for _ in range(150):
            if pane.latest is not None:
                break
            await pilot.pause(0.1)
        print(json.dumps({"text": pane.text(), "classes": sorted(pane.classes)}))

asyncio.run(main())
"""


def test_a_socket_this_user_may_not_open_shows_who_and_the_way_in(dockerd: Dockerd) -> None:
    """Root opens any socket, so the console runs as `nobody`, on this machine's engine."""
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            *("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"),
            *(sys.executable, "-c", DENIED_CONSOLE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=env,
    )
    shown = json.loads(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}")
    assert shown, done.stderr
    assert "-error" in shown["classes"] and "-absent" not in shown["classes"]
    assert shown["text"].startswith(f"localhost: Docker at unix://{SOCKET}: permission denied: ")
    assert f"user nobody may not use {SOCKET}" in shown["text"]
    assert "add nobody to group" in shown["text"]


# -- the pane on the Host screen -------------------------------------------------------------


def _table_text(table: ContainerTable) -> list[str]:
    """The table's lines as the terminal gets them (cut at the pane's width)."""
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


async def test_the_local_console_groups_marks_and_opens_logs_at_80x24_and_200x50(
    dockerd: Dockerd, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    names = {what: docker("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")
             for cid, what in shop.items()}  # fmt: skip
    app = make_app(Settings(interval=0.5, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        pane = screen.query_one(ContainersPane)
        assert pane.border_title == "7 Containers"

        def settled() -> bool:
            good = pane.good
            lines = {shop[line.id]: line for line in good.lines if line.id in shop} if good else {}
            return (
                len(lines) == 5
                and lines["db"].health == "unhealthy"
                and lines["cache"].cpu_percent is not None
            )

        await _until(pilot, settled, 40)
        await pilot.press("7")
        await pilot.pause(0.3)
        table = pane.table
        assert screen.focused is table and pane.region.height > 5
        assert re.search(r"^\d+ containers, \d+ running, \d+ need a look · Docker ", pane.text())
        assert f"{names['db']} unhealthy" in pane.text()
        assert f"{names['job']} exited 3" in pane.text()
        keys = table.row_keys
        shop_at = keys.index("project:shop")
        assert keys[shop_at + 1 : shop_at + 3] == [
            next(c for c, w in shop.items() if w == "db"),
            "service:shop/web",
        ]
        heading = table.row(shop_at)
        assert heading[0].plain == "▸ shop" and heading[1].plain == "3/3 up ▲1"
        db_row = table.row(shop_at + 1)
        assert db_row[0].plain == f"  {names['db']}" and db_row[2].plain.startswith("unhealthy")
        web_row = table.row(keys.index(next(c for c, w in shop.items() if w == "web-a")))
        assert web_row[0].plain.startswith("    ")  # under its project and its service

        # 80 columns: name, state, health, restarts, CPU and memory are on screen.
        table.move_cursor(keys.index(next(c for c, w in shop.items() if w == "cache")))
        await pilot.pause(0.3)
        visible = _table_text(table)
        header = visible[0]
        assert pane.region.width <= 80 and len(header) <= 76
        for label in ("Container", "State", "Health", "Rst", "CPU", "Mem", "Mem%"):
            assert label in header, header
        cache_line = next(line for line in visible if names["cache"] in line)
        assert re.search(r"running +- +0 +[\d.]+% +1\d\.\d MiB +\d+%", cache_line), cache_line

        await pilot.press("l")
        await _until(pilot, lambda: type(app.screen).__name__ == "LogsScreen", 5)
        assert app.screen.source.container_id == next(c for c, w in shop.items() if w == "cache")  # type: ignore[attr-defined]
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen is screen, 5)

        await pilot.resize_terminal(200, 50)
        await pilot.pause(0.5)
        assert screen.has_class("-wide")
        wide = _table_text(table)
        assert re.search(r"Mem% +Limit +Up +OOM +Ports +Image", wide[0]), wide[0]
        job_line = next(line for line in wide if names["job"] in line)
        assert re.search(r"exited \(3\) +- +0 +- +- +- +none +[\dhms ]+ ago +", job_line), job_line
        assert " fleetdeck" in job_line  # the image begins where the pane ends


async def test_the_host_screen_raises_alerts_from_the_container_checks(
    dockerd: Dockerd, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the Host screen is open the container checks run on the pane's link: the
    unhealthy container is a finding, and an alert; the job that exited with an error, that
    nothing restarts and nobody labelled a one-shot job, is a warning with its exit."""
    from fleetdeck.widgets import FindingsTable

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    names = {what: docker("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")
             for cid, what in shop.items()}  # fmt: skip
    app = make_app(Settings(interval=0.5, storage_every=0), Config(alert_for=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        watch = screen.host_watch
        wanted = {("container.state", names["db"])}

        def alerted() -> bool:
            return wanted <= {(a.check, a.target) for a in watch.alerts.alerts()}

        for _ in range(600):
            if alerted():
                break
            await pilot.pause(0.1)
        seen = [
            (f.check, f.target, f.status.name) for f in watch.domain_findings.get("containers", [])
        ]
        assert alerted(), (seen, watch.alerts.alerts())
        findings = {(f.check, f.target): f for f in watch.domain_findings["containers"]}
        assert "unhealthy" in findings["container.state", names["db"]].summary
        job = findings["container.state", names["job"]]
        assert job.status is Status.WARN and job.summary.startswith("exited with exit code 3 at ")
        keys = screen.query_one(FindingsTable).row_keys
        assert f"container.state|{names['db']}" in keys, keys
    # Nobody refreshes them once the screen is gone: they must not keep alerts firing.
    assert watch.domain_findings.get("containers", []) == []


async def test_a_hung_daemon_never_freezes_the_screen(
    hung_socket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{hung_socket}")
    app = make_app(Settings(interval=0.5, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        pane = screen.query_one(ContainersPane)
        processes = screen.query_one(ProcessTable)
        await pilot.press("r")
        for key, column in (("m", "mem"), ("p", "pid"), ("c", "cpu"), ("m", "mem")):
            started = time.monotonic()
            await pilot.press(key)
            assert processes.sort_by == column and time.monotonic() - started < 1
            await pilot.pause(0.5)
        await _until(pilot, lambda: pane.latest is not None, 15)
        assert pane.has_class("-error") and not pane.has_class("-absent")
        assert re.fullmatch(
            rf"localhost: Docker at unix://{hung_socket} from DOCKER_HOST: no answer: the engine "
            r"took the connection but sent nothing within \d+ s \(hung, overloaded or stopped\)",
            pane.text(),
        ), pane.text()
        started = time.monotonic()
        await pilot.press("7")
        assert screen.focused is pane.table and time.monotonic() - started < 1
        await pilot.press("l")  # nothing to show: said, not a crash
        await pilot.pause(0.2)
        assert app.screen is screen
        assert [w.is_running for w in app.workers if w.group == "containers"] == [True]


# -- the Fleet column ------------------------------------------------------------------------


def _column(table: FleetContainersTable, name: str) -> str:
    return table.row(table.row_keys.index(name))[table.column_index("containers")].plain


async def test_the_fleet_column_counts_marks_and_never_waits_on_a_hung_engine(
    dockerd: Dockerd,
    shop: dict[str, str],
    netns_hosts: Callable[[int], list[NetnsHost]],
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    hung_socket: Path,
    tmp_path: Path,
) -> None:
    """Three names for one namespace host (it shares this filesystem, so its Docker socket is
    the test engine's): its default engine through SSH, `docker = "none"`, and a socket that
    hangs. The hung one shows "?" while the others keep their figures."""
    (host,) = netns_hosts(1)
    key = (str(ssh_keys.client_key),)
    endpoints = {
        "dock": None,
        "plain": DockerEndpoint.parse("none"),
        "stuck": DockerEndpoint.parse(f"unix://{hung_socket}"),
    }
    specs = tuple(
        HostSpec(name, host.address, host.port, "root", identity_files=key, docker=endpoint)
        for name, endpoint in endpoints.items()
    )
    options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known_hosts", host), agent=False)
    app = make_fleet_app(Settings(interval=0.5), Config(), Inventory(specs), specs, options)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one(FleetContainersTable)
        assert table.COLUMNS[6].label == "Ctrs"
        await _until(pilot, lambda: re.fullmatch(r"\d+ ▲\d+", _column(table, "dock")), 40)
        assert _column(table, "plain") == "-"
        await _until(pilot, lambda: _column(table, "stuck") == "?", 40)
        polls = {n: screen.watches[n].polls for n in endpoints}
        await pilot.pause(1.5)
        assert all(screen.watches[n].polls > polls[n] for n in endpoints)  # none held up
        assert re.fullmatch(r"\d+ ▲\d+", _column(table, "dock"))
        table.move_cursor(table.row_keys.index("stuck"))
        await pilot.pause(1.2)
        detail = str(screen.query_one("#detail").render())
        assert "· containers: stuck: Docker at unix://" in detail and "no answer" in detail
        running = int(_column(table, "dock").split()[0])
        assert running >= 4  # web twice, db, cache (and whatever else the engine runs)
