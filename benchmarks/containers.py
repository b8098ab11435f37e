"""What a refresh of the containers pane costs with 200 running containers, next to looping
`docker ps -a` and `docker stats --no-stream`.

Uses the Docker engine that answers (or starts one as tests/dockerd.py does: Debian's dockerd
with its data on a tmpfs, no iptables, no bridge) and the test image (`docker import` of
busybox-static). Starts --containers containers (200) named `fdbench-<pid>-NNN`, all with
`--network none`: most `sleep 3600`; a few spinning, each capped at 5 % of a core; every fifth
with a 64 MiB memory limit, part of it filled; half with compose labels. Then, in --rounds
rounds (the first cold, the rest steady), each taking its turn in every round:

1. fleetdeck, as the containers pane refreshes: `await link.containers()` then
   `await link.stats(containers)` on a local `DockerLink` (one list call, an inspect of each
   container that changed, and every running container's cgroup files in one shell command).
   Before each steady refresh, not measured, the link lists once more and inspects what has
   become due (a status text that moved on to the next minute);
2. the same on a link that re-inspects every container on every refresh (`inspect_max_age`
   0): what each container costs again about once a minute;
3. the same with the engine's one-shot stats (`stats_from="api"`, 32 at a time): the
   fallback where the cgroup files are out of reach;
4. the same over SSH, through a namespace host's connection (tests/sshd.py's NetnsLab; the
   socket forwarded, no second login). That host has no cgroup files of its own, so its stats
   come from the engine too. --no-ssh leaves it out;
5. the peer: `docker ps -a` and `docker stats --no-stream` (default table output), each timed,
   and their sum: one loop of an operator's `watch`.

Per refresh: wall time; client CPU: this process's (all threads, `getrusage`) plus its
children's (fleetdeck's cgroup-reading `sh`, the peer's `docker` CLI); and the engine's CPU
meanwhile, from /proc/PID/stat: dockerd, and containerd with every containerd-shim (the
engine's stats go through them); for the SSH row, the namespace host's sshd.

    .venv/bin/python benchmarks/containers.py                 # as root: about 3.5 minutes
    .venv/bin/python benchmarks/containers.py --containers 100 --rounds 6 --no-ssh --json

Every container it made is removed at the end, also on Ctrl-C or SIGTERM (only those: the
engine may be shared with a test run), and an engine it started is stopped, unless someone
else's containers are on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # fleetdeck, tests/dockerd.py and sshd.py

import asyncssh  # noqa: E402

from fleetdeck.hosts.docker.link import Container, DockerError, DockerLink, DockerSettings  # noqa: E402
from fleetdeck.hosts.inventory.records import HostSpec  # noqa: E402
from fleetdeck.hosts.ssh import SSHOptions, connect_host  # noqa: E402

from dockerd import (  # noqa: E402
    BUSYBOX,
    STATE_DIR,
    TEST_IMAGE,
    DockerdError,
    _answers,
    _Engine,
    busybox_tar,
    docker,
    import_image,
    is_static,
)
from sshd import NetnsHost, NetnsLab, SshKeys, _is_live_python, write_known_hosts  # noqa: E402

PREFIX = "fdbench"
STALE = re.compile(rf"^{PREFIX}-(\d+)-")
BUSY, BUSY_CPUS = 4, "0.05"  # spinning containers, each capped at 5 % of one core
MEMORY_EVERY, MEMORY_LIMIT = 5, "64m"
PROJECTS = ("shop", "billing", "search", "auth", "media")
SERVICES = ("web", "worker", "cache", "db")
CLI_TIMEOUT = 120.0
STEADY_MAX_AGE = 3600.0
"""The steady row's inspect_max_age: past the run, so none of its refreshes re-inspects (the
default, 60 s, re-inspects each container once a minute: the re-inspect row is that refresh)."""
DEFAULT_MAX_AGE = DockerSettings().inspect_max_age
PANE_EVERY = 2.0  # checks/containers/domain.py PANE_EVERY: the pane reads at most this often
TICK = os.sysconf("SC_CLK_TCK")
SHIM = "containerd-shim"  # comm is cut at 15 characters: containerd-shim-runc-v2


# -- the containers ---------------------------------------------------------------------------


def run_args(n: int, name: str, run_label: str) -> list[str]:
    """`docker run -d` arguments of the n-th container."""
    flags = ["--name", name, "--network", "none", "--label", run_label]
    command = ["sleep", "3600"]
    if n < BUSY:
        flags += ["--cpus", BUSY_CPUS]
        command = ["sh", "-c", "while :; do :; done"]
    elif n % MEMORY_EVERY == 1:
        fill = 8 + (n * 7) % 40  # 8 to 47 MiB of 64, in the container's /dev/shm
        flags += ["--memory", MEMORY_LIMIT]
        command = ["sh", "-c", f"head -c {fill}m /dev/zero > /dev/shm/fill; exec sleep 3600"]
    if n % 2 == 0:
        project, service = PROJECTS[n // 2 % len(PROJECTS)], SERVICES[n // 10 % len(SERVICES)]
        flags += ["--label", f"com.docker.compose.project=fdbench-{project}"]
        flags += ["--label", f"com.docker.compose.service={service}"]
        flags += ["--label", f"com.docker.compose.container-number={n // 40 + 1}"]
    return ["run", "-d", *flags, TEST_IMAGE, *command]


class Fleet:
    """The containers of this run: named before they exist, so a failed start is removed too."""

    def __init__(self, count: int) -> None:
        self.prefix = f"{PREFIX}-{os.getpid()}-"
        self.names = [f"{self.prefix}{n:03d}" for n in range(count)]
        self.made: list[str] = []

    def mine(self, name: str) -> bool:
        return name.lstrip("/").startswith(self.prefix)

    def create(self, parallel: int) -> float:
        """Start them all, `parallel` `docker run -d` at a time; seconds it took."""
        started = time.perf_counter()
        label = f"fdbench.run={os.getpid()}"
        pool = ThreadPoolExecutor(parallel)
        try:
            jobs = []
            for n, name in enumerate(self.names):
                self.made.append(name)
                jobs.append(pool.submit(docker, *run_args(n, name, label), timeout=CLI_TIMEOUT))
            for job in jobs:
                job.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return time.perf_counter() - started

    def remove(self) -> float:
        started = time.perf_counter()
        if self.made:
            docker("rm", "-f", *self.made, check=False, timeout=300)
        return time.perf_counter() - started


def clean_stale() -> list[str]:
    """Remove containers of an earlier run of this script that is no longer alive."""
    names = docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    stale = [n for n in names if (m := STALE.match(n)) and not _is_live_python(int(m[1]))]
    if stale:
        docker("rm", "-f", *stale, check=False, timeout=300)
    return stale


def others(fleet: Fleet) -> list[str]:
    """Containers on the engine that this run did not make."""
    names = docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    return [n for n in names if not fleet.mine(n)]


# -- the engine -------------------------------------------------------------------------------


def start_engine() -> _Engine | None:
    """The engine that answers (None), or one started here, under the test fixture's lock so
    that a test session starting at the same moment does not start a second one."""
    if shutil.which("docker") is None:
        raise DockerdError("the docker CLI is missing: apt-get install docker.io")
    if not BUSYBOX.exists() or not is_static(BUSYBOX):
        raise DockerdError(f"{BUSYBOX} is missing or not static: apt-get install busybox-static")
    with (STATE_DIR.parent / "fleetdeck-test-dockerd.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers() is not None:
            return None
        if os.geteuid() != 0:
            raise DockerdError("no Docker engine answers, and starting one needs root")
        for binary, package in (("dockerd", "docker.io"), ("containerd", "containerd")):
            if shutil.which(binary) is None:
                raise DockerdError(f"{binary} is missing: apt-get install {package}")
        return _Engine()


def stop_engine(engine: _Engine, fleet: Fleet) -> str:
    """Stop the engine this run started, unless containers of others are on it now."""
    left = others(fleet)
    if left:
        pid = engine.process.pid
        return (
            f"dockerd (pid {pid}) started here is left running: {len(left)} containers of "
            f"others are on it ({', '.join(left[:3])}...)"
        )
    engine.stop()
    return "dockerd started here: stopped"


def versions() -> dict[str, str]:
    done = docker("version", "--format", "{{.Client.Version}} {{.Server.Version}}", check=False)
    client, _, server = done.stdout.strip().partition(" ")
    runtime = subprocess.run(["containerd", "--version"], capture_output=True, text=True)
    words = runtime.stdout.split()  # containerd github.com/containerd/containerd 1.6.20 ...
    return {"cli": client, "engine": server, "containerd": words[2] if len(words) > 2 else "?"}


# -- what each refresh costs -------------------------------------------------------------------


def _ticks(pid: str) -> int:
    """utime + stime of a process (its own: not its children's), in clock ticks."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])
    return -1


def engine_ticks() -> dict[str, dict[str, int]]:
    """{"dockerd"|"containerd": {pid: ticks}}; every shim counts as containerd."""
    found: dict[str, dict[str, int]] = {"dockerd": {}, "containerd": {}}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
        except OSError:
            continue
        kind = "containerd" if comm.startswith(SHIM) else comm
        if kind in found and (ticks := _ticks(entry.name)) >= 0:
            found[kind][entry.name] = ticks
    return found


def netns_ticks(netns: str | None) -> dict[str, int]:
    """Processes in a namespace (the SSH host's sshd and what it runs), with their exited
    children's time, so a command that ended in between still counts."""
    if netns is None:
        return {}
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    found = {}
    for pid in pids.stdout.split():
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            found[pid] = sum(int(f) for f in fields[11:15])
    return found


def _delta(before: dict[str, int], after: dict[str, int]) -> float:
    """CPU seconds of the processes alive at both ends."""
    return sum(after[p] - before[p] for p in after.keys() & before.keys()) / TICK


def _rusage() -> tuple[float, float]:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@dataclass(frozen=True, slots=True)
class Cost:
    """One refresh (seconds)."""

    wall: float
    own: float
    """This process's CPU: every thread (the link's pools, the event loop)."""
    children: float
    """Its children's: fleetdeck's cgroup-reading sh, grep and awk; the peer's docker CLI."""
    dockerd: float
    containerd: float
    """containerd and every containerd-shim."""
    remote: float
    """The SSH host's namespace: sshd forwarding the socket (the SSH row only)."""
    ok: int
    """Containers of this run that the refresh showed (with their stats, for fleetdeck)."""
    inspects: int = 0
    error: str = ""
    """Why the refresh failed ("" if it did not): a failed one is left out of the summary."""

    @property
    def client(self) -> float:
        return self.own + self.children

    @property
    def engine(self) -> float:
        return self.dockerd + self.containerd


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: int
    inspects: int = 0
    error: str = ""


async def measure(refresh: Callable[[], Awaitable[Outcome]], netns: str | None) -> Cost:
    """Run one refresh; the readings of /proc are taken outside its own CPU and wall time."""
    engine0, remote0 = engine_ticks(), netns_ticks(netns)
    own0, kids0 = _rusage()
    started = time.perf_counter()
    outcome = await refresh()
    wall = time.perf_counter() - started
    own1, kids1 = _rusage()
    engine1, remote1 = engine_ticks(), netns_ticks(netns)
    return Cost(
        wall,
        own1 - own0,
        kids1 - kids0,
        _delta(engine0["dockerd"], engine1["dockerd"]),
        _delta(engine0["containerd"], engine1["containerd"]),
        _delta(remote0, remote1),
        outcome.ok,
        outcome.inspects,
        outcome.error,
    )


# -- the tools --------------------------------------------------------------------------------


class CountingLink(DockerLink):
    """A DockerLink that counts its inspect calls (the cold refresh makes one per container)."""

    inspects = 0

    async def inspect(self, container_id: str) -> Container | None:
        self.inspects += 1
        return await super().inspect(container_id)


class Pane:
    """One link, refreshed as the containers pane refreshes it."""

    def __init__(self, link: CountingLink, fleet: Fleet, *, catch_up: bool = True) -> None:
        self.link, self.fleet, self.catch_up = link, fleet, catch_up
        self.sources: set[str] = set()
        self.caught_up = 0
        """Inspects made by `settle`: status texts that changed since the last round."""

    async def settle(self) -> None:
        """Before a steady refresh (not measured): inspect what became due since the last
        round, so the refresh measured has no inspect in it. A container's status text moves
        on each minute in its first hour ("Up 2 minutes"), and the pane re-inspects it then:
        that cost is the re-inspect row's, spread over a minute of refreshes."""
        if self.catch_up:
            before = self.link.inspects
            await self.link.containers()
            self.caught_up += self.link.inspects - before

    async def refresh(self) -> Outcome:
        before = self.link.inspects
        try:
            containers = await self.link.containers()
            stats = await self.link.stats(containers)
        except DockerError as error:  # the run goes on: the report lists it
            return Outcome(0, self.link.inspects - before, str(error))
        mine = {c.id for c in containers if self.fleet.mine(c.name)}
        self.sources |= {stats[cid].source for cid in mine if cid in stats}
        return Outcome(len(mine & stats.keys()), self.link.inspects - before)


class Cli:
    """A docker command of the peer's loop; counts this run's containers in its output."""

    def __init__(self, fleet: Fleet, *args: str) -> None:
        self.fleet, self.args = fleet, args

    async def refresh(self) -> Outcome:
        process = await asyncio.create_subprocess_exec(
            "docker", *self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        names = re.findall(rf"\b{re.escape(self.fleet.prefix)}\d+", out.decode())
        failed = f"docker {' '.join(self.args)}: {err.decode().strip()}"
        return Outcome(len(set(names)), 0, failed if process.returncode else "")

    async def settle(self) -> None:
        pass


@dataclass
class Row:
    key: str
    label: str
    tool: Pane | Cli
    netns: str | None = None
    costs: list[Cost] | None = None


class SshHost:
    """A namespace host and fleetdeck's connection to it, as HostLink.connection gives it."""

    def __init__(self, workdir: Path) -> None:
        keys = SshKeys.create(workdir / "keys")
        self.lab = NetnsLab(workdir / "lab", keys)
        try:
            self.host: NetnsHost = self.lab.add_host("dock")
        except BaseException:
            self.lab.close()
            raise
        known = write_known_hosts(workdir / "known_hosts", self.host)
        self.options = SSHOptions(known_hosts=known, agent=False)
        host, key = self.host, str(keys.client_key)
        self.spec = HostSpec(host.name, host.address, host.port, "root", None, (key,))
        self.connection: asyncssh.SSHClientConnection | None = None

    async def opener(self) -> asyncssh.SSHClientConnection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await connect_host(self.spec, self.options)
        return self.connection

    async def disconnect(self) -> None:
        if self.connection is not None:
            self.connection.close()
            await self.connection.wait_closed()


# -- the run ----------------------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, monotonic time), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK, time.monotonic()


async def run_rounds(rows: Sequence[Row], rounds: int) -> float:
    """Every row once per round, in turn; the machine's busy cores meanwhile."""
    busy0, at0 = machine_busy()
    for n in range(rounds):
        for row in rows:
            assert row.costs is not None
            if n > 0:
                await row.tool.settle()
            row.costs.append(await measure(row.tool.refresh, row.netns))
        walls = "  ".join(f"{row.key} {row.costs[-1].wall:.2f}" for row in rows if row.costs)
        print(f"round {n + 1}/{rounds}: {walls} s", file=sys.stderr)
    busy1, at1 = machine_busy()
    return (busy1 - busy0) / (at1 - at0)


async def bench(fleet: Fleet, rounds: int, ssh: SshHost | None) -> dict[str, Any]:
    steady = DockerSettings(inspect_max_age=STEADY_MAX_AGE)
    local = CountingLink("local", settings=steady)
    fresh = CountingLink("local", settings=DockerSettings(inspect_max_age=0.0))
    api = CountingLink("local", settings=replace(steady, stats_from="api"))
    remote = None if ssh is None else CountingLink(ssh.host.name, ssh=ssh.opener, settings=steady)
    rows = [
        Row("fd", "fleetdeck: containers() + stats()", Pane(local, fleet)),
        Row("fd-reinspect", "fleetdeck, all re-inspected", Pane(fresh, fleet, catch_up=False)),
        Row("fd-api", "fleetdeck, stats from the engine", Pane(api, fleet)),
    ]
    if remote is not None and ssh is not None:
        await ssh.opener()  # the host's connection is open before the pane's first refresh
        label = "fleetdeck over SSH (engine's stats)"
        rows.append(Row("fd-ssh", label, Pane(remote, fleet), ssh.host.netns))
    rows += [
        Row("ps", "docker ps -a", Cli(fleet, "ps", "-a")),
        Row("stats", "docker stats --no-stream", Cli(fleet, "stats", "--no-stream")),
    ]
    for row in rows:
        row.costs = []
    try:
        busy = await run_rounds(rows, rounds)
    finally:
        await asyncio.gather(*(link.close() for link in (local, fresh, api, remote) if link))
        if ssh is not None:
            await ssh.disconnect()
    result: dict[str, Any] = {"machine_busy_cores": busy, "rows": {}}
    for row in rows:
        assert row.costs is not None
        entry: dict[str, Any] = {"label": row.label, "costs": [asdict(c) for c in row.costs]}
        if isinstance(row.tool, Pane):
            entry["stats_from"] = sorted(row.tool.sources)
            entry["caught_up"] = row.tool.caught_up
        result["rows"][row.key] = entry
    stats = [Cost(**c) for c in result["rows"]["stats"]["costs"]]
    loop = [add(a, b) for a, b in zip(rows[-2].costs or [], stats, strict=True)]
    label = "peer loop: docker ps -a + stats"
    result["rows"]["peer"] = {"label": label, "costs": [asdict(c) for c in loop]}
    return result


def add(a: Cost, b: Cost) -> Cost:
    """Two commands run one after the other, as one loop."""
    return Cost(
        a.wall + b.wall,
        a.own + b.own,
        a.children + b.children,
        a.dockerd + b.dockerd,
        a.containerd + b.containerd,
        a.remote + b.remote,
        min(a.ok, b.ok),
        error=a.error or b.error,
    )


# -- the report -------------------------------------------------------------------------------

CPU_FIELDS = ("own", "children", "dockerd", "containerd", "remote")


def summarize(costs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cold: the first refresh. Steady: the rest, wall as median (min, max), CPU as mean
    (/proc's ticks are 10 ms: one refresh alone is too coarse a reading)."""
    steady = [c for c in costs[1:] if not c["error"]] or costs[1:] or costs
    walls = [c["wall"] for c in steady]
    return {
        "cold": {**costs[0], "client": costs[0]["own"] + costs[0]["children"]},
        "steady": {
            "wall": statistics.median(walls),
            "wall_min": min(walls),
            "wall_max": max(walls),
            **{f: statistics.fmean(c[f] for c in steady) for f in CPU_FIELDS},
            "client": statistics.fmean(c["own"] + c["children"] for c in steady),
            "ok": min(c["ok"] for c in steady),
            "inspects": statistics.fmean(c["inspects"] for c in steady),
        },
    }


def _line(label: str, s: dict[str, Any], expected: int, spread: bool, ssh: bool) -> str:
    wall = f"{s['wall'] * 1000:8.1f}"
    if spread:
        wall += f" ({s['wall_min'] * 1000:.0f}-{s['wall_max'] * 1000:.0f})"
    engine = s["dockerd"] + s["containerd"]
    remote = f"{s['remote'] * 1000:6.1f}" if ssh else "     -"
    return (
        f"{label:40} {s['ok']:>3}/{expected:<3} {wall:<20} {s['client'] * 1000:7.1f}"
        f" ({s['own'] * 1000:.1f}+{s['children'] * 1000:.1f})".ljust(17)
        + f" {s['dockerd'] * 1000:8.1f} {s['containerd'] * 1000:10.1f}"
        f" {(s['client'] + engine) * 1000:8.1f} {s['inspects']:8.0f} {remote}"
    )


def report(result: dict[str, Any]) -> None:
    summaries = {key: summarize(row["costs"]) for key, row in result["rows"].items()}
    keys = ("fd", "fd-reinspect", "fd-api", "fd-ssh", "ps", "stats", "peer")
    order = [k for k in keys if k in summaries]
    labels = {k: result["rows"][k]["label"] for k in order}
    head = (
        f"{'':40} {'ok':7} {'wall ms':20} {'client CPU ms':17} {'dockerd':>8}"
        f" {'containerd':>10} {'all CPU':>8} {'inspects':>8} {'sshd':>6}"
    )
    rounds = result["rounds"]
    for phase, title in (
        ("steady", f"steady, rounds 2-{rounds}: wall median (min-max), CPU ms per refresh, mean"),
        ("cold", "cold, round 1: a new link (dial, list, inspect each), the peer's first loop"),
    ):
        print(f"\n{title}\n{head}")
        for key in order:
            one = summaries[key][phase]
            print(_line(labels[key], one, result["containers"], phase == "steady", key == "fd-ssh"))
    peer = summaries["peer"]["steady"]
    print("\nfleetdeck / peer loop (steady), below 1 = fleetdeck cheaper:")
    compared = [("fd", "steady"), ("fd", "cold"), ("fd-reinspect", "steady")]
    compared += [(k, "steady") for k in ("fd-api", "fd-ssh") if k in summaries]
    for key, phase in compared:
        text = ", ".join(
            f"{name} {value:.3f}" for name, value in ratios(summaries[key][phase], peer)
        )
        print(f"  {labels[key]} ({phase}): {text}")
    print("\nnotes:\n" + "\n".join(f"  {n}" for n in notes(result, summaries)))


def ratios(one: dict[str, Any], peer: dict[str, Any]) -> list[tuple[str, float]]:
    def engine(s: dict[str, Any]) -> float:
        return float(s["dockerd"] + s["containerd"])

    return [
        ("wall", one["wall"] / peer["wall"]),
        ("client CPU", one["client"] / peer["client"]),
        ("engine CPU", engine(one) / engine(peer)),
        ("all CPU", (one["client"] + engine(one)) / (peer["client"] + engine(peer))),
    ]


def notes(result: dict[str, Any], summaries: dict[str, Any]) -> list[str]:
    steady, again = summaries["fd"]["steady"], summaries["fd-reinspect"]["steady"]
    share = PANE_EVERY / DEFAULT_MAX_AGE
    spread = {f: steady[f] + (again[f] - steady[f]) * share for f in (*CPU_FIELDS, "wall")}
    caught = {k: r["caught_up"] for k, r in result["rows"].items() if r.get("caught_up")}
    rows = [r for r in result["rows"].values() if "stats_from" in r]
    sources = [f"{r['label']}: {'/'.join(r['stats_from'])}" for r in rows]
    versions = result["versions"]
    failed = [
        f"{key} round {n}: {cost['error']}"
        for key, row in result["rows"].items()
        if key != "peer"
        for n, cost in enumerate(row["costs"], 1)
        if cost["error"]
    ]
    return [
        f"refreshes that failed (left out of the summary): {len(failed)}",
        *(f"  {line}" for line in failed),
        f"each container is inspected again about once a minute (its status text moves on to "
        f"the next minute in its first hour; inspect_max_age is {DEFAULT_MAX_AGE:g} s): a pane "
        f"refreshing every {PANE_EVERY:g} s pays the re-inspect row once in "
        f"{DEFAULT_MAX_AGE / PANE_EVERY:g} refreshes, on average "
        f"{spread['wall'] * 1000:.1f} ms wall, {(spread['own'] + spread['children']) * 1000:.1f}"
        f" ms client CPU, {(spread['dockerd'] + spread['containerd']) * 1000:.1f} ms engine CPU",
        "between rounds, not measured, the steady rows first inspected what had become due: "
        + (", ".join(f"{k} {n}" for k, n in caught.items()) or "nothing"),
        f"Docker CLI {versions['cli']}, engine {versions['engine']}, containerd "
        f"{versions['containerd']}; {os.cpu_count()} cores",
        f"{result['containers']} containers of this run ({BUSY} spinning at {BUSY_CPUS} CPU "
        f"each, every {MEMORY_EVERY}th with a {MEMORY_LIMIT} limit, half with compose labels), "
        f"started in {result['create_s']:.1f} s; {result['others']} other containers",
        "stats from: " + "; ".join(sources),
        f"the whole machine meanwhile: {result['machine_busy_cores']:.2f} of "
        f"{os.cpu_count()} cores busy (the measured tools included)",
        "client CPU = this process (all threads) + its children (fleetdeck's cgroup-reading "
        "sh/grep/awk, the peer's docker CLI); containerd = containerd + every shim; sshd = "
        "the SSH host's namespace (forwarding the socket)",
    ]


# -- main -------------------------------------------------------------------------------------


def prepare(fleet: Fleet, parallel: int) -> dict[str, Any]:
    """Stale containers gone, the test image there, this run's containers running."""
    stale = clean_stale()
    if stale:
        print(f"removed {len(stale)} containers of an earlier run", file=sys.stderr)
    if docker("image", "inspect", TEST_IMAGE, check=False).returncode != 0:
        import_image(TEST_IMAGE, busybox_tar())
    print(f"starting {len(fleet.names)} containers...", file=sys.stderr)
    took = fleet.create(parallel)
    running = docker(
        "ps", "--filter", f"label=fdbench.run={os.getpid()}", "--format", "{{.Names}}"
    ).stdout.split()
    if len(running) != len(fleet.names):
        raise DockerdError(f"only {len(running)} of {len(fleet.names)} containers are running")
    time.sleep(2.0)  # the memory fills are written, the engine is quiet again
    return {"create_s": took, "others": len(others(fleet)), "versions": versions()}


def _attempt(what: str, step: Callable[[], str | None]) -> None:
    try:
        said = step()
    except Exception as error:
        said = f"containers.py: {what}: {error}"
    if said:
        print(said, file=sys.stderr)


def clean_up(fleet: Fleet, engine: _Engine | None, ssh: SshHost | None) -> None:
    """Each step whatever the others did: the namespace host, the containers, the engine."""
    if ssh is not None:
        _attempt("removing the SSH host", ssh.lab.close)
    _attempt("removing containers", lambda: f"removed them in {fleet.remove():.1f} s")
    if engine is not None:
        _attempt("stopping dockerd", lambda: stop_engine(engine, fleet))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8, help="the first is cold")
    parser.add_argument("--parallel", type=int, default=8, help="docker run -d at a time")
    parser.add_argument("--no-ssh", action="store_true", help="leave out the SSH row")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.containers < 10 or args.rounds < 2:
        parser.error("at least 10 containers and 2 rounds")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    fleet, engine, ssh = Fleet(args.containers), None, None
    workdir = Path(tempfile.mkdtemp(prefix="fdbench-"))
    try:
        engine = start_engine()
        result = prepare(fleet, args.parallel)
        if not args.no_ssh:
            ssh = SshHost(workdir)
        result |= {"containers": args.containers, "rounds": args.rounds}
        result |= asyncio.run(bench(fleet, args.rounds, ssh))
    except KeyboardInterrupt:
        print("containers.py: interrupted; removing its containers", file=sys.stderr)
        return 130
    except DockerdError as error:
        print(f"containers.py: {error}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave them
            signal.signal(signum, signal.SIG_IGN)
        clean_up(fleet, engine, ssh)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
