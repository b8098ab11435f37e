"""Fan-out over SSH: one ad-hoc command on every host, and the steady cost of sampling them.

Starts N hosts with a real OpenSSH sshd, each in a network namespace of its own
(tests/sshd.py's NetnsLab; needs root), writes a known_hosts that trusts them and the same
fleet as a fleetdeck TOML inventory, an Ansible INI inventory and a pssh host file, then
measures, in the same run:

(a) the wall time of `uname -n` on every host, median of --rounds rounds after one warm-up
    round that is not counted, the tools taking turns within each round:
    - fleetdeck, steady state (connections already open): on the open sampling stream
      (`StreamScripts.run_command`, when it exists) and on a new channel of the open
      connection (`SSHShell.run`);
    - fleetdeck, cold: connect, run, close, all hosts at once;
    - parallel-ssh (`ParallelSSHClient`): one client kept between rounds, and a new one each round;
    - `ansible all -m raw` and `ansible all -m command`, with -f N.
(b) the client CPU time of sampling every host every second for --sample-seconds: per
    host-sample, and extrapolated linearly to 500 hosts every 2 s.

    python benchmarks/fanout.py [--hosts 20] [--rounds 5] [--sample-seconds 20] [--json]
                                [--keep-bashrc] [--bench-venv DIR]

Ansible and parallel-ssh are installed with pip into a venv of their own,
~/.cache/fleetdeck-bench/ansible-venv (--bench-venv to move it), never the project's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # fleetdeck itself, and tests/sshd.py

import asyncssh  # noqa: E402

from fleetdeck.checks.config import Config  # noqa: E402
from fleetdeck.checks.runner import FLEET_CONCURRENCY  # noqa: E402
from fleetdeck.checks.watch import HostWatch  # noqa: E402
from fleetdeck.hosts.inventory.load import load_inventory  # noqa: E402
from fleetdeck.hosts.inventory.records import HostSpec, Inventory  # noqa: E402
from fleetdeck.hosts.link import HostLink  # noqa: E402
from fleetdeck.hosts.sample import HostInfo, Sample  # noqa: E402
from fleetdeck.hosts.shell import CommandResult  # noqa: E402
from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host  # noqa: E402
from fleetdeck.hosts.stream import StreamScripts  # noqa: E402

from sshd import NetnsHost, NetnsLab, SshKeys  # noqa: E402

COMMAND = ("uname", "-n")
TIMEOUT = 30.0
TARGET_ANSIBLE = 50.0
TARGET_PSSH = 5.0
TARGET_CORES = 0.5
EXTRAPOLATE_HOSTS, EXTRAPOLATE_INTERVAL = 500, 2.0
STEADY_KEYS = ("fd-stream", "fd-channel")
WINDOWS = 4  # (b) is also measured in this many windows, to show how steady it is
PEERS = ("ansible-core", "parallel-ssh")
ADHOC_HEADER = re.compile(r"^(\S+) \| ([A-Z!]+)\b")

# Runs in the bench venv, one round per line on stdin ("warm" or "cold"), one JSON line out.
# parallel-ssh checks no host key: the key each session got is compared with known_hosts
# after the round, outside the timing, so the report can say whether the right hosts answered.
PSSH_HELPER = r"""
import base64, json, resource, sys, time
from pssh.clients import ParallelSSHClient

cfg = json.loads(sys.argv[1])
hosts = []
for line in open(cfg["host_file"]):
    line = line.strip()
    if line and not line.startswith("#"):
        hosts.append(line.split("@", 1)[-1].rsplit(":", 1)[0])

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def client():
    return ParallelSSHClient(
        hosts, user=cfg["user"], pkey=cfg["key"], num_retries=1, timeout=10,
        allow_agent=False, identity_auth=False, pool_size=max(10, len(hosts)),
    )

def keys_matching(c):
    found = 0
    for (_, host), one in list(c._host_clients.items()):
        session = getattr(one, "session", None)
        if session is not None:
            found += base64.b64encode(session.hostkey()[0]).decode() == cfg["known"].get(host)
    return found

kept = None
for line in sys.stdin:
    mode = line.strip()
    t0, c0 = time.perf_counter(), cpu()
    c = kept if mode == "warm" and kept is not None else client()
    out = c.run_command(cfg["command"], stop_on_errors=False)
    c.join(out)
    outputs, errors = {}, {}
    for o in out:
        if o.exception is not None:
            errors[o.host] = repr(o.exception)
        else:
            text = "\n".join(o.stdout)
            outputs[o.host] = text if o.exit_code == 0 else f"{text} (exit {o.exit_code})"
    wall, used = time.perf_counter() - t0, cpu() - c0
    report = {"wall": wall, "cpu": used, "outputs": outputs, "errors": errors,
              "keys_matching": keys_matching(c)}
    if mode == "warm":
        kept = c
    del c
    print(json.dumps(report), flush=True)
"""


class BenchError(Exception):
    """Something the benchmark needs could not be set up; the message says what."""


# --------------------------------------------------------------------------- results


@dataclass
class Round:
    """One round of one tool: wall and client CPU seconds, and how many hosts answered right."""

    wall: float
    cpu: float
    ok: int
    problem: str | None = None


@dataclass
class ToolResult:
    key: str
    label: str
    note: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.rounds]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.rounds)

    @property
    def ok(self) -> int:
        return min(r.ok for r in self.rounds)

    @property
    def problems(self) -> list[str]:
        return sorted({r.problem for r in self.rounds if r.problem})


@dataclass
class Cost:
    """Client CPU of sampling `hosts` hosts every `interval` s during `seconds` s, in total
    and per window of the run (the spread says how steady the figure is)."""

    key: str
    label: str
    hosts: int
    interval: float
    seconds: float
    host_samples: int
    failed: int
    cpu: float
    windows: list[float]
    """CPU seconds per host-sample in each window."""

    @property
    def per_sample(self) -> float:
        return self.cpu / self.host_samples if self.host_samples else float("nan")

    @property
    def cores_extrapolated(self) -> float:
        return cores_for(self.per_sample)


def cores_for(per_sample: float) -> float:
    """Cores for EXTRAPOLATE_HOSTS hosts every EXTRAPOLATE_INTERVAL s, linearly."""
    return EXTRAPOLATE_HOSTS / EXTRAPOLATE_INTERVAL * per_sample


class Meter:
    """Marks (CPU time, samples so far) along a run; a window is between two marks."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float, int]] = []

    def mark(self, samples: int) -> None:
        self.marks.append((time.monotonic(), cpu_seconds(), samples))

    def cost(self, key: str, label: str, hosts: int, interval: float, failed: int) -> Cost:
        (t0, cpu0, n0), (t1, cpu1, n1) = self.marks[0], self.marks[-1]
        windows = [
            (c1 - c0) / (s1 - s0)
            for (_, c0, s0), (_, c1, s1) in itertools.pairwise(self.marks)
            if s1 > s0
        ]
        return Cost(key, label, hosts, interval, t1 - t0, n1 - n0, failed, cpu1 - cpu0, windows)


@dataclass(frozen=True)
class Files:
    directory: Path
    key: Path
    known_hosts: Path
    toml: Path
    ini: Path
    pssh_hosts: Path
    ansible_cfg: Path


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def judge(
    wall: float, cpu: float, expected: Sequence[str], got: dict[str, str], errors: list[str]
) -> Round:
    """A round counts a host as ok only when it answered its own hostname."""
    wrong = [
        f"{name} answered {got.get(name, '(nothing)').strip()[:60]!r}"
        for name in expected
        if got.get(name, "").strip() != name
    ]
    problem = "; ".join([*errors, *wrong][:3]) or None
    return Round(wall, cpu, len(expected) - len(wrong), problem)


def log(message: str) -> None:
    print(f"fanout: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def ensure_bench_venv(venv: Path) -> dict[str, str]:
    """ansible-core and parallel-ssh in their own venv (installed once); their versions."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "ansible").exists() or not _has_pssh(python):
        log(f"installing ansible-core and parallel-ssh with pip into {venv} (once)")
        for step in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "-q", *PEERS],
        ):
            if subprocess.run(step, stdout=sys.stderr).returncode != 0:
                raise BenchError(f"`{' '.join(step)}` failed")
    code = f"import importlib.metadata as m\nfor p in {PEERS!r}: print(m.version(p))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return dict(zip(PEERS, out.stdout.split(), strict=True))


def _has_pssh(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import pssh.clients"], capture_output=True)
    return probe.returncode == 0


def quiet_shell_startup(hosts: Sequence[NetnsHost]) -> None:
    """Make the hosts' bash skip root's ~/.bashrc for SSH commands (`SetEnv SHLVL=1`; Debian's
    bash reads it only at SHLVL < 2), then restart their sshd.

    The namespace hosts share this machine's /root, whose .bashrc runs `pyenv init`: about
    0.1 s for every command any tool starts over a new channel, a cost real hosts rarely
    have and that the persistent stream pays only once. --keep-bashrc leaves it in.
    """
    for host in hosts:
        with host.config_path.open("a") as config:
            config.write("SetEnv SHLVL=1\n")
        host.restart()


def machine_ticks(marker: str = "") -> tuple[int, int, int]:
    """(busy, total) ticks of all CPUs since boot, from /proc/stat, and the busy ticks of
    this run: this process's tree (itself, the hosts' sshd and sh, ansible, the parallel-ssh
    helper) and processes that left it but name `marker` (ansible's ssh control masters)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values), run_ticks(marker)


def run_ticks(marker: str) -> int:
    """utime+stime+cutime+cstime of this process, processes whose command line holds
    `marker`, and every live descendant of those, in clock ticks."""
    parents, ticks, roots = {}, {}, [os.getpid()]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            named = bool(marker) and marker.encode() in (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        pid = int(entry.name)
        parents[pid], ticks[pid] = int(fields[1]), sum(int(f) for f in fields[11:15])
        roots += [pid] if named else []
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    while roots:
        pid = roots.pop()
        if pid not in seen:
            seen.add(pid)
            roots += children.get(pid, [])
    return sum(ticks.get(pid, 0) for pid in seen)


def busy_since(start: tuple[int, int, int], marker: str = "") -> dict[str, float]:
    """Shares of all CPUs since `start` (0..1): busy in all, and busy outside this run."""
    now = machine_ticks(marker)
    busy, total, ours = (a - b for a, b in zip(now, start, strict=True))
    total = max(total, 1)
    return {"all": round(busy / total, 3), "others": round(max(busy - ours, 0) / total, 3)}


def write_files(directory: Path, hosts: Sequence[NetnsHost], key: Path, forks: int) -> Files:
    """known_hosts trusting every host, and the fleet as TOML, Ansible INI and pssh host file."""
    files = Files(
        directory=directory,
        key=key,
        known_hosts=directory / "known_hosts",
        toml=directory / "fleet.toml",
        ini=directory / "hosts.ini",
        pssh_hosts=directory / "pssh_hosts",
        ansible_cfg=directory / "ansible.cfg",
    )
    files.known_hosts.write_text("".join(f"{h.known_hosts_line}\n" for h in hosts))
    toml = [f'[defaults]\nuser = "root"\nidentity_file = "{key}"\n']
    toml += [f'[[host]]\nname = "{h.name}"\naddress = "{h.address}"\n' for h in hosts]
    files.toml.write_text("\n".join(toml))
    ini = ["[fleet]"]
    ini += [f"{h.name} ansible_host={h.address} ansible_user=root" for h in hosts]
    ini += ["", "[all:vars]", f"ansible_ssh_private_key_file={key}"]
    ini += ["ansible_python_interpreter=/usr/bin/python3", ""]
    files.ini.write_text("\n".join(ini))
    files.pssh_hosts.write_text("".join(f"root@{h.address}:{h.port}\n" for h in hosts))
    files.ansible_cfg.write_text(ansible_cfg(files, forks))
    return files


def ansible_cfg(files: Files, forks: int) -> str:
    """Host keys checked by OpenSSH against our known_hosts only; ansible's default ssh_args
    (ControlMaster=auto, ControlPersist=60s) and pipelining (off) are left as they are; its
    files (control sockets, remote tmp) go under the run's temporary directory."""
    ssh = (
        f"-o UserKnownHostsFile={files.known_hosts} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o IdentityAgent=none"
    )
    return (
        "[defaults]\n"
        f"inventory = {files.ini}\n"
        "host_key_checking = True\n"
        f"forks = {forks}\n"
        f"remote_tmp = {files.directory / 'ansible-remote-tmp'}\n"
        "deprecation_warnings = False\n"
        "\n[ssh_connection]\n"
        f"ssh_common_args = {ssh}\n"
        f"control_path_dir = {files.directory / 'ansible-cp'}\n"
    )


# --------------------------------------------------------------------------- fleetdeck, (a)


def stdout_of(result: CommandResult) -> str:
    return result.stdout if result.ok else f"exit {result.exit_status}: {result.stdout}"


async def fan_out(names: Sequence[str], run_one: Callable[[str], Awaitable[str]]) -> Round:
    """Run one call per host at once; wall and this process's CPU time around them."""
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    outputs = await asyncio.gather(*(run_one(n) for n in names), return_exceptions=True)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    got = {n: o for n, o in zip(names, outputs, strict=True) if isinstance(o, str)}
    errors = [f"{n}: {o}" for n, o in zip(names, outputs, strict=True) if not isinstance(o, str)]
    return judge(wall, cpu, names, got, errors)


class Fleetdeck:
    """fleetdeck's three ways to run the command: stream, channel (both on open
    connections) and cold."""

    def __init__(self, specs: Sequence[HostSpec], inventory: Inventory, files: Files) -> None:
        self.specs = {s.name: s for s in specs}
        self.inventory = inventory
        self.options = SSHOptions(known_hosts=files.known_hosts, agent=False)
        self.connections: dict[str, asyncssh.SSHClientConnection] = {}
        self.streams: dict[str, StreamScripts] = {}

    async def open(self) -> None:
        names = list(self.specs)
        opened = await asyncio.gather(
            *(connect_host(self.specs[n], self.options, self.inventory) for n in names)
        )
        self.connections = dict(zip(names, opened, strict=True))
        self.streams = {n: StreamScripts(n, c) for n, c in self.connections.items()}

    async def close(self) -> None:
        for stream in self.streams.values():
            stream.close()
        for conn in self.connections.values():
            conn.close()
        await asyncio.gather(*(c.wait_closed() for c in self.connections.values()))

    async def stream_round(self) -> Round:
        async def one(name: str) -> str:
            return stdout_of(await self.streams[name].run_command(list(COMMAND), TIMEOUT))

        return await fan_out(list(self.specs), one)

    async def channel_round(self) -> Round:
        async def one(name: str) -> str:
            shell = SSHShell(name, self.connections[name])
            return stdout_of(await shell.run(list(COMMAND), timeout=TIMEOUT))

        return await fan_out(list(self.specs), one)

    async def cold_round(self) -> Round:
        gate = asyncio.Semaphore(FLEET_CONCURRENCY)
        closing: list[asyncssh.SSHClientConnection] = []

        async def one(name: str) -> str:
            async with gate:
                conn = await connect_host(self.specs[name], self.options, self.inventory)
            closing.append(conn)
            try:
                return stdout_of(await SSHShell(name, conn).run(list(COMMAND), timeout=TIMEOUT))
            finally:
                conn.close()

        result = await fan_out(list(self.specs), one)
        await asyncio.gather(*(c.wait_closed() for c in closing))  # not timed
        return result


# --------------------------------------------------------------------------- peers, (a)


def ansible_argv(venv: Path, files: Files, module: str, forks: int) -> list[str]:
    """`ansible all -m MODULE`, output as people see it (the script reads it to check)."""
    command, ini = " ".join(COMMAND), str(files.ini)
    ansible = str(venv / "bin" / "ansible")
    return [ansible, "all", "-i", ini, "-m", module, "-a", command, "-f", str(forks)]


def ansible_env(files: Files) -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(files.ansible_cfg),
        "ANSIBLE_HOME": str(files.directory / "ansible-home"),
        "LC_ALL": "C.UTF-8",
    }


async def ansible_round(argv: Sequence[str], env: dict[str, str], names: Sequence[str]) -> Round:
    """Time the whole `ansible` command, as a person runs it; CPU of its process tree."""
    cpu0, t0 = cpu_seconds(resource.RUSAGE_CHILDREN), time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    wall, cpu = time.perf_counter() - t0, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0
    got = parse_adhoc(out.decode(errors="replace"))
    errors = [] if got else [f"exit {process.returncode}: {err.decode()[-300:].strip()}"]
    return judge(wall, cpu, names, got, errors)


def parse_adhoc(text: str) -> dict[str, str]:
    """{host: first line of its output} from ansible's ad-hoc output, where each host's
    answer starts with `NAME | CHANGED | rc=0 >>`; a host that failed gets its header."""
    got: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if match := ADHOC_HEADER.match(line):
            name, status = match[1], match[2]
            current = name if status in {"CHANGED", "SUCCESS"} else None
            got[name] = "" if current else line
        elif current is not None and line.strip() and not got[current]:
            got[current] = line.strip()
    return got


class Pssh:
    """The parallel-ssh helper process, kept for the whole run (its kept client with it)."""

    def __init__(self, venv: Path, files: Files, hosts: Sequence[NetnsHost]) -> None:
        self.python = venv / "bin" / "python"
        self.names = {h.address: h.name for h in hosts}
        self.config = {
            "host_file": str(files.pssh_hosts),
            "user": "root",
            "key": str(files.key),
            "command": " ".join(COMMAND),
            "known": {h.address: h.host_public_key.split()[1] for h in hosts},
        }
        self.process: asyncio.subprocess.Process | None = None
        self.keys_matching: list[int] = []

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            str(self.python),
            "-c",
            PSSH_HELPER,
            json.dumps(self.config),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=2**24,
        )

    async def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            await self.process.wait()

    async def round(self, mode: str) -> Round:
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{mode}\n".encode())
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise BenchError(f"the parallel-ssh helper exited ({await process.wait()})")
        report: dict[str, Any] = json.loads(line)
        got = {self.names.get(a, a): text for a, text in report["outputs"].items()}
        errors = [f"{self.names.get(a, a)}: {e}" for a, e in report["errors"].items()]
        self.keys_matching.append(int(report["keys_matching"]))
        return judge(report["wall"], report["cpu"], list(self.names.values()), got, errors)


# --------------------------------------------------------------------------- (a) rounds


@dataclass
class Contender:
    result: ToolResult
    run: Callable[[], Awaitable[Round]]


async def measure_fanout(
    args: argparse.Namespace, files: Files, hosts: Sequence[NetnsHost], venv: Path
) -> tuple[list[ToolResult], list[int]]:
    """Every tool once per round, in turn; round 0 warms up and is not kept."""
    inventory = load_inventory([files.toml])
    names = [s.name for s in inventory.hosts]
    fleetdeck, pssh = Fleetdeck(inventory.hosts, inventory, files), Pssh(venv, files, hosts)
    await fleetdeck.open()
    await pssh.start()
    try:
        contenders = contenders_for(fleetdeck, pssh, files, venv, names, args.hosts)
        for number in range(args.rounds + 1):
            log(f"round {number}/{args.rounds}" + (" (warm-up, not counted)" if not number else ""))
            for contender in contenders:
                measured = await contender.run()
                if number:
                    contender.result.rounds.append(measured)
        return [c.result for c in contenders], pssh.keys_matching
    finally:
        await fleetdeck.close()
        await pssh.stop()


CONTENDERS = {
    "fd-stream": (
        "fleetdeck steady: stream",
        "StreamScripts.run_command on each host's open sampling stream: no new channel",
    ),
    "fd-channel": (
        "fleetdeck steady: channel",
        "SSHShell.run: a new channel (exec) per command on each open connection",
    ),
    "fd-cold": (
        "fleetdeck cold",
        f"connect_host + SSHShell.run + close, all at once (at most {FLEET_CONCURRENCY} "
        "handshakes at a time); closing is not waited for",
    ),
    "pssh-kept": (
        "parallel-ssh: client kept",
        "one ParallelSSHClient kept from round to round: its connections stay open",
    ),
    "pssh-new": (
        "parallel-ssh: new client",
        "a new ParallelSSHClient each round: connect + run_command + join + read output",
    ),
    "ansible-raw": ("ansible -m raw", ""),
    "ansible-command": ("ansible -m command", ""),
}
"""key: (label, how it is run); the ansible ones are described by their command line."""


def contenders_for(
    fleetdeck: Fleetdeck, pssh: Pssh, files: Files, venv: Path, names: list[str], forks: int
) -> list[Contender]:
    runs: dict[str, Callable[[], Awaitable[Round]]] = {}
    if hasattr(StreamScripts, "run_command"):
        runs["fd-stream"] = fleetdeck.stream_round
    runs["fd-channel"], runs["fd-cold"] = fleetdeck.channel_round, fleetdeck.cold_round
    runs["pssh-kept"] = functools.partial(pssh.round, "warm")
    runs["pssh-new"] = functools.partial(pssh.round, "cold")
    notes = {key: note for key, (_, note) in CONTENDERS.items()}
    env = ansible_env(files)
    for module in ("raw", "command"):
        argv = ansible_argv(venv, files, module, forks)
        runs[f"ansible-{module}"] = functools.partial(ansible_round, argv, env, names)
        notes[f"ansible-{module}"] = " ".join(argv[1:]).replace(str(files.directory), "$TMP")
    return [
        Contender(ToolResult(key, CONTENDERS[key][0], notes[key]), run) for key, run in runs.items()
    ]


# --------------------------------------------------------------------------- (b) sampling


async def sample_all(links: Sequence[HostLink]) -> tuple[int, int]:
    results = await asyncio.gather(*(link.sample() for link in links), return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in results)
    return len(results) - failed, failed


async def link_cost(
    specs: Sequence[HostSpec], options: SSHOptions, interval: float, seconds: float
) -> Cost:
    """HostLink.sample on every host at each tick; the first two rounds (connect, open the
    stream) are not counted."""
    gate = asyncio.Semaphore(FLEET_CONCURRENCY)
    links = [HostLink(s, options, gate=gate) for s in specs]
    meter, done, failed = Meter(), 0, 0
    try:
        for _ in range(2):
            await sample_all(links)
        ticks = max(1, round(seconds / interval))
        per_window = max(1, ticks // WINDOWS)
        meter.mark(0)
        start = time.monotonic()
        for tick in range(ticks):
            await asyncio.sleep(max(0.0, start + tick * interval - time.monotonic()))
            ok, bad = await sample_all(links)
            done, failed = done + ok, failed + bad
            if (tick + 1) % per_window == 0 and tick + 1 < ticks:
                meter.mark(done)
        await asyncio.sleep(max(0.0, start + ticks * interval - time.monotonic()))
        meter.mark(done)
    finally:
        for link in links:
            link.close()
    label = "HostLink.sample (transport + parsing)"
    return meter.cost("link", label, len(specs), interval, failed)


class Counting:
    """A `Sampler` that counts the samples of the one it wraps, good and failed."""

    def __init__(self, inner: HostLink) -> None:
        self.inner = inner
        self.processes = False
        self.good = self.failed = 0

    async def sample(self) -> Sample:
        self.inner.processes = self.processes
        try:
            sample = await self.inner.sample()
        except Exception:
            self.failed += 1
            raise
        self.good += 1
        return sample

    async def describe(self) -> HostInfo:
        return await self.inner.describe()


async def warmed_up(watches: Sequence[HostWatch], polls: int, timeout: float = 60) -> None:
    """Until every watch has `polls` good polls and has described its host."""
    ready = asyncio.Event()

    def check(_: HostWatch) -> None:
        if all(w.polls >= polls and w.info is not None for w in watches):
            ready.set()

    stops = [w.listen(check) for w in watches]
    try:
        async with asyncio.timeout(timeout):
            await ready.wait()
    finally:
        for stop in stops:
            stop()


async def watch_cost(
    specs: Sequence[HostSpec], options: SSHOptions, interval: float, seconds: float
) -> Cost:
    """HostWatch.run per host, as the console runs them (checks and alerts after each
    sample), without the screen; counted once every watch has polled three times."""
    gate = asyncio.Semaphore(FLEET_CONCURRENCY)
    samplers = [Counting(HostLink(s, options, gate=gate)) for s in specs]
    watches = [HostWatch(c.inner.name, c, Config(), interval) for c in samplers]
    tasks = [asyncio.create_task(w.run()) for w in watches]
    meter = Meter()

    def good() -> int:
        return sum(c.good for c in samplers)

    try:
        await warmed_up(watches, polls=3)
        good0, failed0 = good(), sum(c.failed for c in samplers)
        meter.mark(0)
        for _ in range(WINDOWS):
            await asyncio.sleep(seconds / WINDOWS)
            meter.mark(good() - good0)
        failed = sum(c.failed for c in samplers) - failed0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for counting in samplers:
            counting.inner.close()
    label = "HostWatch.run (+ checks, alerts; no screen)"
    return meter.cost("watch", label, len(specs), interval, failed)


async def measure_sampling(files: Files, seconds: float) -> list[Cost]:
    inventory = load_inventory([files.toml])
    options = SSHOptions(known_hosts=files.known_hosts, agent=False)
    costs = []
    for measure in (link_cost, watch_cost):
        log(f"sampling cost: {measure.__name__}, {seconds:g} s")
        costs.append(await measure(inventory.hosts, options, 1.0, seconds))
    return costs


# --------------------------------------------------------------------------- report


def reference(tools: Sequence[ToolResult]) -> tuple[ToolResult, ToolResult]:
    """fleetdeck's steady state (the stream when it exists) and cold results."""
    by_key = {t.key: t for t in tools}
    steady = next(by_key[k] for k in STEADY_KEYS if k in by_key)
    return steady, by_key["fd-cold"]


def targets(tools: Sequence[ToolResult], costs: Sequence[Cost]) -> list[dict[str, Any]]:
    steady, _ = reference(tools)
    by_key = {t.key: t for t in tools}
    found = []
    for key, goal in (
        ("ansible-command", TARGET_ANSIBLE),
        ("pssh-kept", TARGET_PSSH),
        ("pssh-new", TARGET_PSSH),
    ):
        factor = by_key[key].median / steady.median
        found.append(
            {
                "target": f"(a) {steady.label} at least {goal:g}x faster than {by_key[key].label}",
                "value": round(factor, 1),
                "met": factor >= goal,
            }
        )
    for cost in costs:
        low, high = spread([cores_for(w) for w in cost.windows])
        found.append(
            {
                "target": f"(b) {EXTRAPOLATE_HOSTS} hosts every {EXTRAPOLATE_INTERVAL:g} s under "
                f"{TARGET_CORES:g} core ({cost.key}: {cost.label})",
                "value": round(cost.cores_extrapolated, 3),
                "met": cost.cores_extrapolated < TARGET_CORES,
                "borderline": low < TARGET_CORES <= high,
                "windows": [round(low, 3), round(high, 3)],
            }
        )
    return found


def spread(values: Sequence[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def tool_rows(tools: Sequence[ToolResult], hosts: int) -> list[list[str]]:
    steady, cold = reference(tools)
    rows = [
        ["tool", "median ms", "min ms", "max ms", "client CPU ms", "ok", "vs steady", "vs cold"]
    ]
    for t in tools:
        rows.append(
            [
                t.label,
                f"{t.median * 1e3:.1f}",
                f"{min(t.walls) * 1e3:.1f}",
                f"{max(t.walls) * 1e3:.1f}",
                f"{t.cpu * 1e3:.0f}",
                f"{t.ok}/{hosts}",
                f"{t.median / steady.median:.1f}x",
                f"{t.median / cold.median:.2f}x",
            ]
        )
    return rows


def cost_rows(costs: Sequence[Cost]) -> list[list[str]]:
    extrapolated = f"cores for {EXTRAPOLATE_HOSTS} hosts/{EXTRAPOLATE_INTERVAL:g} s"
    header = ["sampling", "hosts", "seconds", "host-samples", "failed", "CPU s"]
    rows = [[*header, "ms/host-sample", "(windows)", extrapolated, "(windows)"]]
    for c in costs:
        low, high = spread(c.windows)
        figures = [c.hosts, f"{c.seconds:.1f}", c.host_samples, c.failed, f"{c.cpu:.2f}"]
        per_sample = [f"{c.per_sample * 1e3:.2f}", f"{low * 1e3:.2f}-{high * 1e3:.2f}"]
        cores = [f"{c.cores_extrapolated:.3f}", f"{cores_for(low):.3f}-{cores_for(high):.3f}"]
        rows.append([c.label, *map(str, figures), *per_sample, *cores])
    return rows


def align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def notes(meta: dict[str, Any], tools: Sequence[ToolResult], pssh_keys: list[int]) -> list[str]:
    steady, cold = reference(tools)
    hosts, busy = meta["hosts"], meta["machine_busy"]
    matched = f"{min(pssh_keys, default=0)}/{hosts}" if pssh_keys else "?"
    lines = [
        f"'vs steady' / 'vs cold': a tool's median over '{steady.label}' / '{cold.label}' "
        "(above 1x: slower). Libraries (fleetdeck, parallel-ssh) are timed in their process, "
        "imports excluded; ansible as the whole command, start-up included. 'client CPU': "
        "user+sys CPU of the client per round (ansible: its process tree, from "
        "RUSAGE_CHILDREN); the sshd side is not in it. 'ok': hosts that answered their own "
        "hostname in every round.",
        "Host keys: fleetdeck (known_hosts given, no agent) and ansible (OpenSSH, "
        "StrictHostKeyChecking=yes, UserKnownHostsFile=the same file) refuse a key that is not "
        "in known_hosts. parallel-ssh 2.x checks no host key at all; after each round, "
        "untimed, the script compared the keys its sessions got with known_hosts (fewest "
        f"matching in a round, warm-up included: {matched}), which proves the right hosts "
        "answered here but protects nothing at connect time.",
        "ansible keeps its defaults: ssh_args ControlMaster=auto ControlPersist=60s (so after "
        "the warm-up round its ssh connections are reused, like fleetdeck's steady state), "
        "pipelining off; -m command copies a Python module to each host and runs "
        "/usr/bin/python3 there, -m raw runs the command through ssh alone.",
        "parallel-ssh is judged twice: with its client kept (connections open, the "
        "like-for-like comparison with fleetdeck's steady state) and with a new client (how a "
        "one-off script runs it).",
        f"All {hosts} hosts share this machine's {meta['cores']} cores: every remote sshd, sh "
        "and (ansible -m command) python runs on the CPUs the clients use, which lengthens "
        "wall times, the heaviest tools' most; on a real fleet that remote work is spread "
        "over the hosts.",
        f"(b) extrapolation: cores = {EXTRAPOLATE_HOSTS}/{EXTRAPOLATE_INTERVAL:g} host-samples "
        "per second x CPU per host-sample measured here. Linear: it assumes a sample costs "
        "the same with 500 connections as with these few. Not in it: drawing the screen, "
        "connecting and reconnecting, garbage collection over a longer history (a watch keeps "
        "up to 600 samples per host; here a few dozen), and the larger /proc and df output of "
        "hosts with more CPUs, disks, mounts and interfaces (these hosts read this machine's). "
        "The figure also moves with how many SSH packets each answer arrives in, which "
        "depends on scheduling on the hosts: the windows column shows how much.",
        f"Remote shell start-up: root's ~/.bashrc {meta['root_bashrc']}. On this machine it "
        "runs `pyenv init` (about 0.1 s) for every command a tool starts on a new channel; "
        "the stream starts its shell once. --keep-bashrc measures with it.",
        "Machine busy, share of all cores (all processes / processes outside this run, which "
        f"compete for the CPUs): before the start {busy['before']['all']:.0%} / "
        f"{busy['before']['others']:.0%}, during (a) {busy['a']['all']:.0%} / "
        f"{busy['a']['others']:.0%}, during (b) {busy['b']['all']:.0%} / "
        f"{busy['b']['others']:.0%}.",
    ]
    return lines


def render(
    meta: dict[str, Any], tools: Sequence[ToolResult], costs: Sequence[Cost], pssh_keys: list[int]
) -> str:
    head = [
        f"fleetdeck fan-out: {meta['hosts']} namespace hosts with real sshd, `{' '.join(COMMAND)}` "
        f"on all, median of {meta['rounds']} rounds (+1 warm-up not counted)",
        f"{meta['date']}  {meta['machine']}, {meta['cores']} cores, Python {meta['python']}, "
        + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
    ]
    body = align(tool_rows(tools, meta["hosts"]))
    body += ["", *align(cost_rows(costs)), "", "targets:"]
    for t in targets(tools, costs):
        verdict = "MET    " if t["met"] else "NOT MET"
        line = f"  {verdict}  {t['target']}: {t['value']:g}"
        if t.get("borderline"):
            low, high = t["windows"]
            line += f" (borderline: its {WINDOWS} windows ranged {low:g}-{high:g})"
        body.append(line)
    body += ["", "how each was run:"]
    body += [f"  {t.label}: {t.note}" for t in tools]
    problems = [f"  {t.label}: {p}" for t in tools for p in t.problems]
    if problems:
        body += ["", "problems:", *problems]
    body += ["", "notes:"]
    body += [
        textwrap.fill(n, 100, initial_indent="- ", subsequent_indent="  ")
        for n in notes(meta, tools, pssh_keys)
    ]
    return "\n".join(head + body)


def as_json(
    meta: dict[str, Any], tools: Sequence[ToolResult], costs: Sequence[Cost], pssh_keys: list[int]
) -> str:
    steady, cold = reference(tools)
    return json.dumps(
        {
            "meta": meta,
            "tools": [
                {
                    **asdict(t),
                    "median": t.median,
                    "cpu_median": t.cpu,
                    "ok": t.ok,
                    "vs_steady": t.median / steady.median,
                    "vs_cold": t.median / cold.median,
                }
                for t in tools
            ],
            "sampling": [
                {
                    **asdict(c),
                    "cpu_per_host_sample": c.per_sample,
                    "cores_500_hosts_every_2s": c.cores_extrapolated,
                }
                for c in costs
            ],
            "pssh_host_keys_matching": pssh_keys,
            "targets": targets(tools, costs),
            "notes": notes(meta, tools, pssh_keys),
        },
        indent=2,
    )


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--hosts", type=int, default=20, help="namespace hosts to start (default 20)")
    add("--rounds", type=int, default=5, help="counted rounds of (a) (default 5)")
    add("--sample-seconds", type=float, default=20.0, help="length of each (b) run (20)")
    add("--bench-venv", type=Path, default=default_venv(), help="venv for ansible, parallel-ssh")
    add("--keep-bashrc", action="store_true", help="let SSH commands read root's ~/.bashrc")
    add("--json", action="store_true", help="print JSON instead of the table")
    return parser


def default_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache) / "fleetdeck-bench" / "ansible-venv"


def run(args: argparse.Namespace) -> str:
    versions = ensure_bench_venv(args.bench_venv)
    before = machine_ticks()
    time.sleep(2)
    busy = {"before": busy_since(before)}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-fanout-") as tmp:
        directory = Path(tmp)
        keys = SshKeys.create(directory / "keys")
        with NetnsLab(directory / "lab", keys) as lab:
            log(f"starting {args.hosts} namespace hosts with sshd")
            hosts = lab.add_hosts(args.hosts)
            if not args.keep_bashrc:
                quiet_shell_startup(hosts)
            files = write_files(directory, hosts, keys.client_key, args.hosts)
            start = machine_ticks(tmp)
            tools, pssh_keys = asyncio.run(measure_fanout(args, files, hosts, args.bench_venv))
            busy["a"], start = busy_since(start, tmp), machine_ticks(tmp)
            costs = asyncio.run(measure_sampling(files, args.sample_seconds))
            busy["b"] = busy_since(start, tmp)
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": platform.node(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "hosts": args.hosts,
        "rounds": args.rounds,
        "versions": {"asyncssh": metadata.version("asyncssh"), **versions},
        "root_bashrc": "read" if args.keep_bashrc else "skipped (SetEnv SHLVL=1)",
        "machine_busy": busy,
    }
    show = as_json if args.json else render
    return show(meta, tools, costs, pssh_keys)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.geteuid() != 0:
        print("fanout: needs root (network namespaces and sshd)", file=sys.stderr)
        return 2
    if args.hosts < 1 or args.rounds < 1:
        print("fanout: --hosts and --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        print(run(args))
    except BenchError as error:
        print(f"fanout: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
