"""Idle cost of fleetdeck next to Glances and htop: CPU share and peak RSS at 1 s refresh.

Each tool runs alone, in a tmux server of its own (so nothing else shares it), in one pane of
the same size. After a warm-up that is not counted, the script measures for N seconds:

* CPU %: user+system CPU time of the process tree under the pane (the pane's process and all
  its descendants, read from /proc/<pid>/stat, reaped children included through cutime and
  cstime), divided by wall time, in % of one core;
* peak RSS: the largest sum of the tree's resident set sizes, sampled every 0.5 s;
* bytes written to the terminal: everything the tool wrote to its pane during the window,
  copied by `tmux pipe-pane -o` (the tool's own stdout and stderr both reach the pane: Textual
  draws on stderr, so nothing is redirected).

The tmux server's own CPU (drawing what the tool writes) is shown apart, not in CPU %.

    python benchmarks/idle_cost.py [--seconds 30] [--size 120x40,200x60] [--rounds 2] [--json]

Needs Linux, tmux and root for installing htop with apt-get when it is missing. Glances is
installed with pip into a venv of its own (see --peers-venv), never into the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_EVERY = 0.5
TOOLS = ("fleetdeck", "glances", "htop")
GLANCES_FLAGS = ("-t", "1", "--disable-check-update")  # curses UI: no web UI unless -w


class BenchError(Exception):
    """A tool could not be installed, started or measured; the message says why."""


@dataclass(frozen=True, slots=True)
class Tool:
    """One program to measure: its name, the command the pane runs, and its version."""

    name: str
    argv: tuple[str, ...]
    version: str


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The parts of /proc/<pid>/stat this benchmark reads."""

    pid: int
    ppid: int
    comm: str
    own_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime: children that exited and were reaped
    rss_bytes: int


@dataclass(slots=True)
class Measurement:
    """What one tool cost during the measured window."""

    tool: str
    command: str
    version: str
    seconds: float
    cpu_percent: float
    peak_rss_mib: float
    tmux_cpu_percent: float
    terminal_bytes: int
    system_busy_percent: float
    busiest: str
    processes: list[str] = field(default_factory=list)
    cpu_ratio: float | None = None
    rss_ratio: float | None = None
    bytes_ratio: float | None = None


# --- /proc ----------------------------------------------------------------------------------


def read_stat(pid: int) -> ProcStat | None:
    """One process's stat line, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    head, _, tail = text.rpartition(")")
    comm = head.partition("(")[2]
    rest = tail.split()  # rest[0] is field 3 (state)
    return ProcStat(
        pid=pid,
        ppid=int(rest[1]),
        comm=comm,
        own_ticks=int(rest[11]) + int(rest[12]),
        child_ticks=int(rest[13]) + int(rest[14]),
        rss_bytes=int(rest[21]) * PAGE_SIZE,
    )


def all_stats() -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[stat.pid] = stat
    return stats


def tree(root: int, stats: dict[int, ProcStat]) -> dict[int, ProcStat]:
    """The root process and all its descendants (threads are counted inside each stat)."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: dict[int, ProcStat] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats and pid not in found:
            found[pid] = stats[pid]
            todo.extend(children.get(pid, ()))
    return found


def tree_ticks(members: dict[int, ProcStat]) -> int:
    """CPU ticks used so far by a tree, counting reaped children through their parents."""
    return sum(s.own_ticks + s.child_ticks for s in members.values())


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return shlex.join(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def system_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user and nice
    return total - idle, total


# --- tmux -----------------------------------------------------------------------------------


def terminal_type() -> str:
    for base in ("/lib/terminfo", "/usr/share/terminfo", "/etc/terminfo"):
        if Path(base, "t", "tmux-256color").exists():
            return "tmux-256color"
    return "screen"


class TmuxPane:
    """One detached tmux server with a single session that runs one command."""

    def __init__(self, name: str, argv: Sequence[str], size: tuple[int, int], cwd: Path):
        self.socket = f"fleetdeck-bench-{os.getpid()}-{name}"
        self.argv = list(argv)
        self.size = size
        self.cwd = cwd
        self._conf = Path(tempfile.mkstemp(prefix="fleetdeck-bench-", suffix=".tmux.conf")[1])

    def tmux(self, *args: str, check: bool = True) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self._conf), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check and done.returncode != 0:
            raise BenchError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> None:
        # remain-on-exit keeps a dead pane's screen to show; no status line steals a row.
        self._conf.write_text(
            "set -g remain-on-exit on\nset -g status off\n"
            f"set -g default-terminal {terminal_type()}\nset -g history-limit 100\n"
        )
        width, height = self.size
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "bench",
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            str(self.cwd),
            "--",
            *self.argv,
        )

    def display(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", "bench", fmt)

    def pane_pid(self) -> int:
        return int(self.display("#{pane_pid}"))

    def server_pid(self) -> int:
        return int(self.display("#{pid}"))

    def dead(self) -> bool:
        return self.display("#{pane_dead}") == "1"

    def screen(self) -> str:
        """The pane's text, runs of blank lines squeezed to one."""
        lines = self.tmux("capture-pane", "-p", "-S", "-", "-t", "bench", check=False).splitlines()
        kept = [
            line for i, line in enumerate(lines) if line.strip() or (i and lines[i - 1].strip())
        ]
        return "\n".join(kept).strip()

    def pipe_to(self, path: Path | None) -> None:
        """Copy what the program writes to its pane into `path` from now on (None: stop)."""
        if path is None:
            self.tmux("pipe-pane", "-t", "bench")
        else:
            self.tmux("pipe-pane", "-o", "-t", "bench", f"cat > {shlex.quote(str(path))}")

    def stop(self) -> None:
        """Kill this server and remove its socket (tmux leaves it behind when killed)."""
        socket_path = self.tmux("display-message", "-p", "#{socket_path}", check=False)
        self.tmux("kill-server", check=False)
        if socket_path:
            Path(socket_path).unlink(missing_ok=True)
        self._conf.unlink(missing_ok=True)


@contextmanager
def running(tool: Tool, size: tuple[int, int]) -> Iterator[TmuxPane]:
    """The tool running in its own pane; the tmux server and the tool's tree end afterwards."""
    pane = TmuxPane(tool.name, tool.argv, size, REPO)
    members: set[int] = set()
    try:
        pane.start()
        yield pane
    finally:
        with suppress(BenchError, ValueError):
            members = set(tree(pane.pane_pid(), all_stats()))
        pane.stop()
        reap(members)


def reap(pids: set[int]) -> None:
    """SIGTERM, then SIGKILL, whatever of a measured tree outlived its tmux server."""
    for sig in (15, 9):
        alive = {pid for pid in pids if read_stat(pid) is not None}
        for pid in alive:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        if not alive:
            return
        time.sleep(0.5)


# --- finding and installing the tools --------------------------------------------------------


def version_of(argv: Sequence[str]) -> str:
    """The first line a `--version` style command prints, whitespace squeezed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"? ({error})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return " ".join(lines[0].split()) if lines else "?"


def fleetdeck_tool(command: str | None) -> Tool:
    if command:
        argv = shlex.split(command)
    elif (local := REPO / ".venv" / "bin" / "fleetdeck").exists():
        argv = [str(local)]
    elif found := shutil.which("fleetdeck"):
        argv = [found]
    else:
        raise BenchError(
            f"fleetdeck not found: neither {REPO}/.venv/bin/fleetdeck nor on PATH "
            "(install the project with `pip install -e .` or pass --fleetdeck CMD)"
        )
    return Tool("fleetdeck", (*argv, "--interval", "1"), version_of([*argv, "--version"]))


def repo_state() -> str:
    """The repo's commit, and whether its working tree had changes (what fleetdeck ran)."""
    git = ["git", "-C", str(REPO)]
    head = version_of([*git, "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return head
    return f"{head} with uncommitted changes" if dirty else head


def default_peers_venv() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fleetdeck-bench" / "peers-venv"


def ensure_glances(venv: Path, command: str | None) -> Tool:
    """Glances from --glances, else from a venv of its own, installed there if missing."""
    if command:
        argv = shlex.split(command)
    else:
        glances = venv / "bin" / "glances"
        if not glances.exists():
            install_glances(venv)
        argv = [str(glances)]
    return Tool("glances", (*argv, *GLANCES_FLAGS), version_of([*argv, "-V"]))


def install_glances(venv: Path) -> None:
    log(f"installing Glances with pip into {venv} (once; not the project venv)")
    steps = [[sys.executable, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install"]]
    steps[1] += ["--quiet", "glances"]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"could not install Glances: {shlex.join(step)}\n{done.stderr}")
    if not (venv / "bin" / "glances").exists():
        raise BenchError(f"pip installed Glances but {venv}/bin/glances is missing")


def ensure_apt(program: str, package: str) -> str:
    """Path of a program, installed with apt-get (apt-get update only if needed) if missing."""
    if found := shutil.which(program):
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(f"{program} is missing: install the {package!r} package and rerun")
    log(f"installing {package} with apt-get")
    install = ["apt-get", "install", "-y", "-q", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, capture_output=True, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, check=False)
        done = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise BenchError(f"apt-get could not install {package}:\n{done.stderr}")
    if found := shutil.which(program):
        return found
    raise BenchError(f"apt-get installed {package} but {program} is not on PATH")


def htop_tool() -> Tool:
    htop = ensure_apt("htop", "htop")
    return Tool("htop", (htop, "-d", "10"), version_of([htop, "--version"]))


# --- measuring --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"idle_cost: {message}", file=sys.stderr, flush=True)


def check_alive(pane: TmuxPane, tool: Tool, when: str) -> int:
    """The pane's pid, or a BenchError with the dead pane's last screen."""
    if pane.dead():
        status = pane.display("#{pane_dead_status}")
        raise BenchError(
            f"{tool.name} is not running {when} (exit status {status or '?'}); "
            f"command: {shlex.join(tool.argv)}\n--- its last screen ---\n{pane.screen()}"
        )
    return pane.pane_pid()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The measured tree, the tmux server and the whole machine at one moment."""

    at: float
    members: dict[int, ProcStat]
    server_ticks: int
    system: tuple[int, int]

    @property
    def rss(self) -> int:
        return sum(s.rss_bytes for s in self.members.values())


def snapshot(root: int, server: int) -> Snapshot:
    stats = all_stats()
    server_stat = stats.get(server)
    return Snapshot(
        at=time.monotonic(),
        members=tree(root, stats),
        server_ticks=server_stat.own_ticks if server_stat else 0,
        system=system_ticks(),
    )


def watch(pane: TmuxPane, tool: Tool, root: int, seconds: float) -> list[Snapshot]:
    """Snapshots every SAMPLE_EVERY seconds from now until the window ends, both ends included."""
    server = pane.server_pid()

    def take() -> Snapshot:
        shot = snapshot(root, server)
        if root not in shot.members:
            check_alive(pane, tool, "during the run")
            raise BenchError(f"{tool.name}: pane process {root} vanished during the run")
        return shot

    shots = [take()]
    end = shots[0].at + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(SAMPLE_EVERY, left))
        shots.append(take())
    return shots


def summarize(tool: Tool, shots: list[Snapshot], written: int) -> Measurement:
    first, last = shots[0], shots[-1]
    wall = last.at - first.at
    used = tree_ticks(last.members) - tree_ticks(first.members)
    busy = last.system[0] - first.system[0], last.system[1] - first.system[1]
    seen: dict[int, ProcStat] = {}
    for shot in shots:
        seen.update(shot.members)

    def own_use(stat: ProcStat) -> int:
        before = first.members.get(stat.pid)
        return stat.own_ticks - (before.own_ticks if before else 0)

    busiest = max(last.members.values(), key=own_use)
    return Measurement(
        tool=tool.name,
        command=shlex.join(tool.argv),
        version=tool.version,
        seconds=round(wall, 2),
        cpu_percent=round(100 * used / CLK_TCK / wall, 2),
        peak_rss_mib=round(max(shot.rss for shot in shots) / 2**20, 1),
        tmux_cpu_percent=round(100 * (last.server_ticks - first.server_ticks) / CLK_TCK / wall, 2),
        terminal_bytes=written,
        system_busy_percent=round(100 * busy[0] / max(1, busy[1]), 1),
        busiest=f"{busiest.pid} {cmdline(busiest.pid)}",
        processes=sorted(f"{s.pid} {s.comm}" for s in seen.values()),
    )


def measure(
    tool: Tool, size: tuple[int, int], seconds: float, warmup: float, keep: Path | None = None
) -> Measurement:
    """One tool's run; with `keep`, what it wrote in the window is also copied into that
    folder (`TOOL-WxH-N.bytes`), to see which screen rows the bytes went to."""
    log(f"{tool.name}: {shlex.join(tool.argv)} ({warmup:g} s warm-up, {seconds:g} s measured)")
    with running(tool, size) as pane:
        time.sleep(warmup)
        root = check_alive(pane, tool, "after the warm-up")
        with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as tmp:
            copy = Path(tmp, "pane.bytes")
            pane.pipe_to(copy)
            shots = watch(pane, tool, root, seconds)
            pane.pipe_to(None)
            time.sleep(0.2)  # let cat write out what it still holds
            written = copy.stat().st_size if copy.exists() else 0
            if keep is not None and copy.exists():
                keep.mkdir(parents=True, exist_ok=True)
                n = len(list(keep.glob(f"{tool.name}-{size[0]}x{size[1]}-*.bytes"))) + 1
                shutil.copyfile(copy, keep / f"{tool.name}-{size[0]}x{size[1]}-{n}.bytes")
        check_alive(pane, tool, "at the end of the run")
        return summarize(tool, shots, written)


def add_ratios(results: list[Measurement]) -> None:
    base = next((m for m in results if m.tool == "fleetdeck"), None)
    if base is None:
        return
    for m in results:
        m.cpu_ratio = round(m.cpu_percent / base.cpu_percent, 2) if base.cpu_percent else None
        m.rss_ratio = round(m.peak_rss_mib / base.peak_rss_mib, 2) if base.peak_rss_mib else None
        m.bytes_ratio = (
            round(m.terminal_bytes / base.terminal_bytes, 2) if base.terminal_bytes else None
        )


# --- output ---------------------------------------------------------------------------------


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def align(row: Sequence[str], widths: Sequence[int]) -> str:
    """First column to the left, numbers to the right."""
    cells = [row[0].ljust(widths[0])] + [
        c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
    ]
    return "  ".join(cells).rstrip()


def table(results: list[Measurement], size: tuple[int, int], repo: str) -> str:
    head = (
        "tool",
        "CPU %",
        "peak RSS MiB",
        "bytes/s",
        "CPU vs fleetdeck",
        "RSS vs fleetdeck",
        "bytes vs fleetdeck",
        "tmux CPU %",
    )
    rows = [
        (
            m.tool,
            f"{m.cpu_percent:.2f}",
            f"{m.peak_rss_mib:.1f}",
            f"{m.terminal_bytes / m.seconds:,.0f}",
            ratio(m.cpu_ratio),
            ratio(m.rss_ratio),
            ratio(m.bytes_ratio),
            f"{m.tmux_cpu_percent:.2f}",
        )
        for m in results
    ]
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    lines = [align(head, widths), "  ".join("-" * w for w in widths)]
    lines += [align(row, widths) for row in rows]
    notes = [
        "",
        f"{size[0]}x{size[1]} pane, {results[0].seconds:.0f} s each after warm-up, 1 s refresh; "
        "CPU % is of one core (user+system of the pane's process tree).",
        f"Repo {REPO} at {repo}.",
    ]
    for m in results:
        notes.append(
            f"  {m.tool}: {m.version}; busiest process {m.busiest}; "
            f"machine {m.system_busy_percent:.1f}% busy (all {os.cpu_count()} cores)"
        )
    return "\n".join(lines + notes)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`120x40` or `120x40,200x60`."""
    sizes = []
    for item in text.split(","):
        width, sep, height = item.strip().lower().partition("x")
        if not sep or not width.isdigit() or not height.isdigit():
            raise argparse.ArgumentTypeError(f"size must look like 120x40, not {item!r}")
        if int(width) < 20 or int(height) < 5:
            raise argparse.ArgumentTypeError("size must be at least 20x5")
        sizes.append((int(width), int(height)))
    return sizes


def mean_of(rounds: list[list[Measurement]]) -> list[Measurement]:
    """Each tool's figures averaged over the rounds (the first round's notes kept)."""
    merged = []
    for first in rounds[0]:
        same = [m for run in rounds for m in run if m.tool == first.tool]
        n = len(same)
        merged.append(
            Measurement(
                tool=first.tool,
                command=first.command,
                version=first.version,
                seconds=round(sum(m.seconds for m in same) / n, 2),
                cpu_percent=round(sum(m.cpu_percent for m in same) / n, 2),
                peak_rss_mib=max(m.peak_rss_mib for m in same),
                tmux_cpu_percent=round(sum(m.tmux_cpu_percent for m in same) / n, 2),
                terminal_bytes=round(sum(m.terminal_bytes for m in same) / n),
                system_busy_percent=round(sum(m.system_busy_percent for m in same) / n, 1),
                busiest=first.busiest,
                processes=first.processes,
            )
        )
    add_ratios(merged)
    return merged


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--seconds", type=float, default=30.0, help="measured seconds per tool (default 30)")
    add("--warmup", type=float, default=3.0, help="uncounted seconds after start (default 3)")
    add(
        "--size",
        type=parse_sizes,
        default=[(120, 40)],
        help="pane size WxH, or several separated by commas (default 120x40)",
    )
    add(
        "--rounds",
        type=int,
        default=1,
        help="runs of every tool per size, in alternating order; the table shows each and the mean",
    )
    add("--fleetdeck", metavar="CMD", help="fleetdeck command (`--interval 1` is appended)")
    add("--glances", metavar="CMD", help="Glances command to use instead of the peers venv")
    add("--peers-venv", type=Path, default=default_peers_venv(), help="venv for Glances")
    add("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    add("--json", action="store_true", help="print JSON instead of the table")
    add("--keep", type=Path, metavar="DIR", help="also keep what each tool wrote, in DIR")
    return parser


def prepare(args: argparse.Namespace, names: list[str]) -> list[Tool]:
    ensure_apt("tmux", "tmux")
    makers = {
        "fleetdeck": lambda: fleetdeck_tool(args.fleetdeck),
        "glances": lambda: ensure_glances(args.peers_venv, args.glances),
        "htop": htop_tool,
    }
    return [makers[name]() for name in names]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.tools.split(",") if n.strip()]
    if unknown := sorted(set(names) - set(TOOLS)):
        raise SystemExit(f"idle_cost: unknown tool(s) {', '.join(unknown)}; pick from {TOOLS}")
    if args.seconds <= 0 or args.warmup < 0:
        raise SystemExit("idle_cost: --seconds must be > 0 and --warmup >= 0")
    if args.rounds < 1:
        raise SystemExit("idle_cost: --rounds must be at least 1")
    repo = repo_state()
    reports = []
    try:
        tools = prepare(args, names)
        for size in args.size:
            rounds = []
            for n in range(args.rounds):
                # Alternate the order so that neither tool always runs on a warmer machine.
                order = tools if n % 2 == 0 else tools[::-1]
                run = [measure(t, size, args.seconds, args.warmup, args.keep) for t in order]
                run.sort(key=lambda m: names.index(m.tool))
                add_ratios(run)
                rounds.append(run)
            reports.append((size, rounds))
    except BenchError as error:
        print(f"idle_cost: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        out = [
            {
                "size": {"width": size[0], "height": size[1]},
                "repo": repo,
                "rounds": [[asdict(m) for m in run] for run in rounds],
                "mean": [asdict(m) for m in mean_of(rounds)],
            }
            for size, rounds in reports
        ]
        print(json.dumps(out, indent=2))
        return 0
    for size, rounds in reports:
        if len(rounds) > 1:
            for n, run in enumerate(rounds, 1):
                print(f"round {n}, {size[0]}x{size[1]}")
                print(table(run, size, repo).split("\n\n")[0] + "\n")
            print(f"mean of {len(rounds)} rounds, {size[0]}x{size[1]}")
        print(table(mean_of(rounds), size, repo) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
