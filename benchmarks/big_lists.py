"""Big lists through a real terminal: key-to-screen latency and idle cost of the live tables.

A small Textual app (this file run with `--serve`) shows one of fleetdeck's tables full
screen, fed like the Host screen feeds it: every second a new list with figures that moved.
The benchmark runs it in a detached tmux pane (see `idle_cost.TmuxPane`), presses keys with
`tmux send-keys` and polls the pane every 5 ms until what the key asked for is on it:

* processes (20,000; the table shows the top 100): `p` sorts by PID, `m` by memory, `c` by
  CPU; each is timed until the first row is the process that sort puts first;
* alerts (10,000, all shown): `end` and `home`, until the last or first alert is on screen.

Then it measures the app's idle CPU (no keys, live updates going on) for `--seconds`, at
the big size and at a small one (100 rows), so "idle cost unchanged" is a ratio.

    .venv/bin/python benchmarks/big_lists.py [--processes 20000] [--alerts 10000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from idle_cost import CLK_TCK, REPO, TmuxPane, all_stats, tree, tree_ticks  # noqa: E402

POLL = 0.005
TIMEOUT = 10.0


# --- the app under test (run in the pane) ---------------------------------------------------


def serve(kind: str, count: int) -> None:
    """Show `count` rows of one table, fed anew every second."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding, BindingType

    from fleetdeck.checks.alerts import Alert, AlertState
    from fleetdeck.checks.model import Status
    from fleetdeck.hosts.metrics import ProcessRate
    from fleetdeck.hosts.sample import ProcessInfo
    from fleetdeck.widgets import AlertsTable, ProcessTable

    class Lists(App[None]):
        CSS = "RowTable { height: 1fr; max-height: 100%; }"
        BINDINGS: ClassVar[list[BindingType]] = [
            Binding("c", "sort('cpu')"),
            Binding("m", "sort('mem')"),
            Binding("p", "sort('pid')"),
            Binding("q", "quit"),
        ]

        def __init__(self) -> None:
            super().__init__()
            self.tick = 0
            self.started = time.time()

        def compose(self) -> ComposeResult:
            yield ProcessTable(id="table") if kind == "processes" else AlertsTable(id="table")

        def on_mount(self) -> None:
            self.feed()
            self.query_one("#table").focus()
            self.set_interval(1.0, self.feed)

        def action_sort(self, column: str) -> None:
            self.query_one(ProcessTable).sort_by = column

        def feed(self) -> None:
            self.tick += 1
            if kind == "processes":
                # PID order, memory growing with the PID, CPU moving every second.
                rates = [
                    ProcessRate(
                        ProcessInfo(
                            pid, "root", f"p{pid}", f"/usr/bin/p{pid}", 0.0, pid << 12, 1.0
                        ),
                        ((pid * 7 + self.tick) % 1000) / 10,
                        pid / count,
                    )
                    for pid in range(1, count + 1)
                ]
                self.query_one(ProcessTable).show(rates)
            else:
                # Ages move (those under a minute every second); summaries stay, as they do.
                alerts = [
                    Alert(
                        "bench",
                        "load.per_core",
                        f"t{i:05d}",
                        Status.WARN,
                        AlertState.FIRING,
                        f"alert {i:05d} load {i % 90} per core",
                        self.started - 30 * i,
                    )
                    for i in range(count)
                ]
                self.query_one(AlertsTable).show(alerts)

    Lists().run()


# --- the benchmark --------------------------------------------------------------------------


def pane_for(kind: str, count: int, size: tuple[int, int]) -> TmuxPane:
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, str(count)]
    pane = TmuxPane(f"{kind}-{count}", argv, size, REPO)
    pane.start()
    return pane


def wait_for(
    pane: TmuxPane, seen: Callable[[str], bool], what: str, start: float | None = None
) -> float:
    """Seconds from `start` (default now) until `seen` holds for the pane's text."""
    start = time.monotonic() if start is None else start
    while (spent := time.monotonic() - start) < TIMEOUT:
        if seen(pane.tmux("capture-pane", "-p", "-t", "bench", check=False)):
            return spent
        time.sleep(POLL)
    raise SystemExit(f"big_lists: {what} not on screen after {TIMEOUT:g} s:\n{pane.screen()}")


def press(pane: TmuxPane, key: str, seen: Callable[[str], bool], what: str) -> float:
    """Seconds from just before the key is written to the pane until its effect shows."""
    start = time.monotonic()
    pane.tmux("send-keys", "-t", "bench", key)
    return wait_for(pane, seen, what, start)


def first_row(pid: int) -> Callable[[str], bool]:
    """The first row under the header is this PID."""
    pattern = re.compile(rf"^\W*{pid}\s+root\b")

    def seen(screen: str) -> bool:
        rows = [line for line in screen.splitlines() if re.search(r"\broot\b", line)]
        return bool(rows) and bool(pattern.match(rows[0]))

    return seen


def idle_cpu(pane: TmuxPane, seconds: float) -> float:
    root = pane.pane_pid()
    before = tree_ticks(tree(root, all_stats()))
    start = time.monotonic()
    time.sleep(seconds)
    used = tree_ticks(tree(root, all_stats())) - before
    return 100 * used / CLK_TCK / (time.monotonic() - start)


def run(kind: str, count: int, small: int, rounds: int, seconds: float) -> list[str]:
    size = (120, 40)
    out = []
    cpu: dict[int, float] = {}
    for n in (small, count):
        pane = pane_for(kind, n, size)
        try:
            if kind == "processes":
                wait_for(pane, lambda s: " root " in s, "the first rows")
                keys = [("p", first_row(1), "PID 1 first"), ("m", first_row(n), f"PID {n} first")]
            else:
                wait_for(pane, lambda s: "alert 00000" in s, "the first alert")
                last = f"alert {n - 1:05d}"
                keys = [
                    ("End", lambda s, last=last: last in s, "the last alert"),
                    ("Home", lambda s: "alert 00000" in s, "the first alert"),
                ]
            time.sleep(2)
            cpu[n] = idle_cpu(pane, seconds)
            if n == count:
                for key, seen, what in keys:
                    times = [press(pane, key, seen, what)]
                    for _ in range(rounds - 1):
                        # back to the other state, then the key again
                        other = keys[(keys.index((key, seen, what)) + 1) % len(keys)]
                        press(pane, other[0], other[1], other[2])
                        times.append(press(pane, key, seen, what))
                    ms = [t * 1000 for t in times]
                    out.append(
                        f"{kind} ({n:,}): key {key!r} until {what}: median "
                        f"{statistics.median(ms):.0f} ms, max {max(ms):.0f} ms ({rounds} presses)"
                    )
        finally:
            pane.stop()
    out.append(
        f"{kind}: idle CPU {cpu[small]:.2f} % at {small} rows, {cpu[count]:.2f} % at {count:,} "
        f"({cpu[count] / max(cpu[small], 0.01):.2f}x), {seconds:g} s each, live updates every 1 s"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=20_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100, help="rows of the idle baseline")
    parser.add_argument("--rounds", type=int, default=5, help="presses of each key")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle CPU window")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    subprocess.run(["tmux", "-V"], check=True, capture_output=True)
    lines = run("processes", args.processes, args.small, args.rounds, args.seconds)
    lines += run("alerts", args.alerts, args.small, args.rounds, args.seconds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
