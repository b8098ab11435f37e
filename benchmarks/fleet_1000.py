"""The Fleet screen at 1,000 hosts, measured through a real terminal.

Starts `fleet_server.py` (one asyncssh server answering every host of the fleet with this
machine's recorded /proc text, varied per host and per round) and, with `--real N`, N real
OpenSSH sshd hosts in network namespaces (tests/sshd.py's NetnsLab; needs root). Writes a
fleetdeck TOML inventory (the served hosts all on 127.0.0.1 and the server's port, each
logging in as its own name; groups `rackNN`, tags by role) and a known_hosts trusting them,
then runs the console on it in a detached tmux pane (see `idle_cost.TmuxPane`; its stderr,
where Textual draws, goes to the pane) and measures, at a small fleet and at the big one:

* CPU: user+system time of the console's process tree over `--seconds`, divided by the
  host-samples answered meanwhile (the server's count plus one per real host and interval),
  with the Fleet screen drawn; and in % of one core;
* RSS of the console's tree after the window; per host, the difference between the two
  fleets divided by the difference in hosts;
* at the big fleet, key to screen: the time from `tmux send-keys` to the pane showing the
  key's effect, polled every 5 ms (`big_lists.wait_for`): `s` (sort, until the table's title
  names the next sort), `g` (group, until it names the grouping), `/` (until the filter box
  is open), typing a host name (until the summary says one host matches), Escape (until the
  filter is gone), Enter (until the Host screen's CPU pane is on screen) and Escape back
  (until the Fleet summary is back). Each `--presses` times; median and max.

    .venv/bin/python benchmarks/fleet_1000.py [--hosts 1000] [--small 50] [--real 20]
                                              [--interval 2] [--seconds 20]

Everything it starts (server, tmux server, console, namespaces) is stopped at the end,
also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO), str(REPO / "tests")]

warnings.filterwarnings("ignore", module="asyncssh")  # its DSA imports warn on each start
import asyncssh  # noqa: E402
from big_lists import TIMEOUT, wait_for  # noqa: E402
from idle_cost import (  # noqa: E402
    CLK_TCK,
    TmuxPane,
    all_stats,
    fleetdeck_tool,
    reap,
    repo_state,
    tree,
    tree_ticks,
)

from sshd import NetnsHost, NetnsLab, SshKeys  # noqa: E402

SIZE = (160, 50)
READY_TIMEOUT = 300.0
SETTLE = 60.0


@dataclass
class Cost:
    hosts: int
    seconds: float
    samples: int
    cpu_seconds: float
    rss_mib: float
    server_seconds: float
    load: float

    @property
    def ms_per_sample(self) -> float:
        return 1000 * self.cpu_seconds / max(self.samples, 1)

    @property
    def core_percent(self) -> float:
        return 100 * self.cpu_seconds / self.seconds


def log(message: str) -> None:
    print(f"[fleet_1000 {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def fleet_server(directory: Path, keys: SshKeys) -> Iterator[tuple[int, str, int]]:
    """The server running: (its port, its host key's public line, its pid)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(directory / "host_key")
    (directory / "client_key.pub").write_bytes(keys.authorized_keys.read_bytes())
    server_log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fleet_server.py"), "--dir", str(directory)],
        stdout=server_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (directory / "port").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "fleet_1000: the fleet server did not start:\n"
                    + (directory / "server.log").read_text(errors="replace")
                )
            time.sleep(0.05)
        port = int((directory / "port").read_text())
        yield port, key.export_public_key("openssh").decode().strip(), process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server_log.close()


def served(directory: Path) -> int:
    return int(json.loads((directory / "stats").read_text())["sample"])


def write_fleet(
    directory: Path, n: int, port: int, key_line: str, keys: SshKeys, real: list[NetnsHost]
) -> tuple[Path, Path]:
    """The inventory (n served hosts, then the real ones) and a known_hosts for all."""
    known = directory / f"known_hosts-{n}"
    known.write_text(
        f"[127.0.0.1]:{port} {key_line}\n" + "".join(f"{h.known_hosts_line}\n" for h in real)
    )
    roles = ("web", "db", "cache", "queue", "batch")
    lines = [f'[defaults]\nidentity_file = "{keys.client_key}"\ndocker = "none"\n']
    for i in range(n):
        name = f"h{i:04d}"
        lines.append(
            f'[[host]]\nname = "{name}"\naddress = "127.0.0.1"\nport = {port}\n'
            f'user = "{name}"\ngroups = ["rack{i % 20:02d}"]\ntags = ["{roles[i % 5]}"]\n'
        )
    for h in real:
        lines.append(
            f'[[host]]\nname = "{h.name}"\naddress = "{h.address}"\nport = {h.port}\n'
            f'user = "root"\ngroups = ["real"]\ntags = ["sshd"]\n'
        )
    inventory = directory / f"fleet-{n}.toml"
    inventory.write_text("\n".join(lines))
    return inventory, known


def console_pane(directory: Path, inventory: Path, known: Path, interval: float) -> TmuxPane:
    argv = list(fleetdeck_tool(None).argv[:1])
    (directory / "config.toml").touch()
    argv += ["--config", str(directory / "config.toml"), "-i", str(inventory)]
    argv += ["--known-hosts", str(known), "--interval", f"{interval:g}"]
    pane = TmuxPane(f"fleet-{inventory.stem}", argv, SIZE, REPO)
    pane.start()
    return pane


def all_up(total: int) -> Callable[[str], bool]:
    return lambda screen: f"· {total} hosts · {total} up ·" in screen


def measure(
    pane: TmuxPane, directory: Path, total: int, real: int, interval: float, seconds: float,
    server: int,
) -> Cost:  # fmt: skip
    """The console's CPU per host-sample and RSS over `seconds`, every host up; the fleet
    server's CPU and the load average beside it."""
    root = pane.pane_pid()
    stats = all_stats()
    members = tree(root, stats)
    start, count = time.monotonic(), served(directory)
    ticks, server_ticks = tree_ticks(members), stats[server].own_ticks
    time.sleep(seconds)
    stats = all_stats()
    members = tree(root, stats)
    used = (tree_ticks(members) - ticks) / CLK_TCK
    server_used = (stats[server].own_ticks - server_ticks) / CLK_TCK
    wall = time.monotonic() - start
    samples = served(directory) - count + round(real * wall / interval)
    if not all_up(total)(pane.tmux("capture-pane", "-p", "-t", "bench", check=False)):
        log(f"warning: not every host was up at the end of the window:\n{pane.screen()[:600]}")
    rss = sum(s.rss_bytes for s in members.values()) / 2**20
    return Cost(total, wall, samples, used, rss, server_used, os.getloadavg()[0])


def timed(pane: TmuxPane, presses: int, last: str) -> list[tuple[str, list[float]]]:
    """Key-to-screen times of the Fleet screen's keys, `presses` times each; the filter
    is typed as `last`, the name of the fleet's last host (one match)."""
    sorts = ("name", "state", "cpu", "mem", "disk", "alerts")
    results: dict[str, list[float]] = {}

    def note(what: str, keys: str, seen: Callable[[str], bool], literal: bool = False) -> None:
        """Write `keys` to the pane and time it until `seen` holds. A press that shows
        nothing within big_lists' TIMEOUT counts as that bound (a console too busy to
        answer is a result, not a reason to stop), and the next press waits, untimed and
        up to SETTLE s, for its effect, so that it starts from the screen it expects."""
        start = time.monotonic()
        pane.tmux("send-keys", "-t", "bench", *(["-l"] if literal else []), keys)
        try:
            spent = wait_for(pane, seen, what, start)
        except SystemExit as error:
            log(f"{what}: {str(error).splitlines()[0]}")
            spent = TIMEOUT
            with contextlib.suppress(SystemExit):
                wait_for(pane, seen, what, time.monotonic() - TIMEOUT + SETTLE)
        results.setdefault(what, []).append(spent * 1000)

    def shows(text: str) -> Callable[[str], bool]:
        return lambda screen: text in screen

    def lacks(text: str, also: str) -> Callable[[str], bool]:
        return lambda screen: text not in screen and also in screen

    sort = 0
    for _ in range(presses):
        for _ in range(len(sorts)):
            sort = (sort + 1) % len(sorts)
            note("s (sort)", "s", shows(f"sorted by {sorts[sort]}"))
        note("g (group by group)", "g", shows("grouped by group"))
        note("g (group by tag)", "g", shows("grouped by tag"))
        note("g (no grouping)", "g", lacks("grouped by", "sorted by"))
        note("/ (filter box)", "/", shows("filter by name or tag"))
        note(f"type '{last}' (filtered)", last, shows(f"showing 1 matching '{last}'"), True)
        note("Escape (filter cleared)", "Escape", lacks("showing", "sorted by"))
        note("Enter (open host)", "Enter", shows("─ CPU "))
        note("Escape (back to fleet)", "Escape", lacks("─ CPU ", "hosts ·"))
    return list(results.items())


def run(args: argparse.Namespace, directory: Path) -> list[str]:
    keys = SshKeys.create(directory / "keys")
    with contextlib.ExitStack() as stack:
        real: list[NetnsHost] = []
        if args.real:
            log(f"starting {args.real} real sshd hosts in namespaces")
            lab = stack.enter_context(NetnsLab(directory / "lab", keys))
            real = lab.add_hosts(args.real)
        port, key_line, server = stack.enter_context(fleet_server(directory, keys))
        costs: list[Cost] = []
        keys_out: list[tuple[str, list[float]]] = []
        for n in (args.small, args.hosts):
            inventory, known = write_fleet(directory, n, port, key_line, keys, real)
            total = n + len(real)
            log(f"console on {total} hosts ({n} served, {len(real)} real sshd)")
            pane = console_pane(directory, inventory, known, args.interval)
            members: set[int] = set()
            try:
                started = time.monotonic()
                with contextlib.suppress(SystemExit):
                    wait_for_all(pane, total)
                if not all_up(total)(pane.tmux("capture-pane", "-p", "-t", "bench")):
                    raise SystemExit(f"fleet_1000: not all {total} hosts up:\n{pane.screen()}")
                log(f"all {total} up after {time.monotonic() - started:.1f} s; warming up")
                time.sleep(args.warmup)
                costs.append(
                    measure(pane, directory, total, len(real), args.interval, args.seconds, server)
                )
                if n == args.hosts:
                    keys_out = timed(pane, args.presses, f"h{n - 1:04d}")
            finally:
                with contextlib.suppress(Exception):
                    members = set(tree(pane.pane_pid(), all_stats()))
                pane.stop()
                reap(members)
    return report(args, costs, keys_out)


def wait_for_all(pane: TmuxPane, total: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        screen = pane.tmux("capture-pane", "-p", "-t", "bench", check=False)
        if all_up(total)(screen):
            return
        if pane.dead():
            raise SystemExit(f"fleet_1000: the console exited:\n{pane.screen()}")
        time.sleep(0.5)


def report(
    args: argparse.Namespace, costs: list[Cost], keys: list[tuple[str, list[float]]]
) -> list[str]:
    small, big = costs
    out = [
        f"fleet_1000: {time.strftime('%Y-%m-%d %H:%M')} UTC, repo at {repo_state()}, "
        f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"interval {args.interval:g} s, {args.seconds:g} s window after {args.warmup:g} s "
        f"warm-up, pane {SIZE[0]}x{SIZE[1]}, {args.real} real sshd hosts in each fleet",
        "",
        f"{'hosts':>6} {'host-samples':>13} {'samples/s':>10} {'CPU % of a core':>16} "
        f"{'ms CPU/host-sample':>19} {'RSS MiB':>8} {'server CPU %':>13} {'load 1 min':>11}",
    ]
    for c in costs:
        out.append(
            f"{c.hosts:>6} {c.samples:>13,} {c.samples / c.seconds:>10.1f} "
            f"{c.core_percent:>16.1f} {c.ms_per_sample:>19.2f} {c.rss_mib:>8.1f}"
            f" {100 * c.server_seconds / c.seconds:>13.1f} {c.load:>11.2f}"
        )
    per_host = (big.rss_mib - small.rss_mib) * 1024 / max(big.hosts - small.hosts, 1)
    out.append(f"memory per host: {per_host:.0f} KiB (RSS difference / host difference)")
    if keys:
        out += ["", f"key to screen at {big.hosts} hosts (ms):"]
        for what, ms in keys:
            flag = "" if max(ms) < 100 else "  <- over 100 ms"
            out.append(
                f"  {what:<26} median {statistics.median(ms):6.0f}  max {max(ms):6.0f}"
                f"  ({len(ms)} presses){flag}"
            )
    return out


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--hosts", type=int, default=1000, help="served hosts of the big fleet (default 1000)")
    add("--small", type=int, default=50, help="served hosts of the small fleet (default 50)")
    add("--real", type=int, default=0, help="real sshd namespace hosts in both fleets (root)")
    add("--interval", type=float, default=2.0, help="the console's --interval (default 2)")
    add("--seconds", type=float, default=20.0, help="measured window (default 20)")
    add("--warmup", type=float, default=5.0, help="seconds after all hosts are up (default 5)")
    add("--presses", type=int, default=5, help="presses of each key (default 5)")
    args = parser.parse_args(argv)
    subprocess.run(["tmux", "-V"], check=True, capture_output=True)
    # SIGTERM unwinds like Ctrl-C, so every `finally` above stops what it started.
    signal.signal(signal.SIGTERM, interrupted)
    with tempfile.TemporaryDirectory(prefix="fleetdeck-fleet1000-") as tmp:
        print("\n".join(run(args, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
