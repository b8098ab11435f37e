"""Time from the command to a drawn first screen: fleetdeck next to Glances and htop.

Each run starts the tool in a fresh detached tmux server (see `idle_cost.TmuxPane`) and
polls the pane every 10 ms until the tool's CPU meter is on it: fleetdeck's CPU pane title
and meter, Glances' and htop's CPU lines. Import time is counted: the clock starts before
tmux is asked to start the command. The tools take turns, so a busy spell of the machine
falls on all of them.

    python benchmarks/first_frame.py [--runs 5] [--size 120x40]

Also times `fleetdeck --version` (no screen at all) the same number of times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from idle_cost import (
    REPO,
    BenchError,
    TmuxPane,
    Tool,
    default_peers_venv,
    ensure_apt,
    ensure_glances,
    fleetdeck_tool,
    htop_tool,
    parse_sizes,
)

POLL = 0.01
TIMEOUT = 20.0

# What shows that the tool's first screen is drawn: its CPU pane or meter. fleetdeck draws
# its CPU pane at once ("measuring…") and its meter after two samples (a rate needs two),
# so it is timed to both; Glances' and htop's first screens hold their CPU figures.
DRAWN: dict[str, Callable[[str], bool]] = {
    "fleetdeck": lambda screen: "─ CPU " in screen,
    "fleetdeck CPU figure": lambda screen: "CPU[" in screen,
    "glances": lambda screen: "CPU" in screen and "%" in screen,
    "htop": lambda screen: "[" in screen and "%]" in screen,
}


def first_frame(tool: Tool, size: tuple[int, int]) -> dict[str, float]:
    """Seconds from asking tmux to start the tool until each of its markers is on the pane."""
    pane = TmuxPane(tool.name, tool.argv, size, REPO)
    markers = {name: seen for name, seen in DRAWN.items() if name.split()[0] == tool.name}
    found: dict[str, float] = {}
    try:
        start = time.monotonic()
        pane.start()
        while (spent := time.monotonic() - start) < TIMEOUT:
            shown = pane.tmux("capture-pane", "-p", "-t", "bench", check=False)
            found |= {n: spent for n, seen in markers.items() if n not in found and seen(shown)}
            if len(found) == len(markers):
                return found
            time.sleep(POLL)
        raise BenchError(f"{tool.name}: no first screen after {TIMEOUT:g} s:\n{pane.screen()}")
    finally:
        pane.stop()


def version_time(tool: Tool) -> float:
    argv = [tool.argv[0], "--version"]
    start = time.monotonic()
    subprocess.run(argv, capture_output=True, check=True)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool (default 5)")
    parser.add_argument("--size", type=parse_sizes, default=[(120, 40)], help="pane WxH")
    parser.add_argument("--fleetdeck", metavar="CMD", help="fleetdeck command")
    parser.add_argument("--glances", metavar="CMD", help="Glances command")
    args = parser.parse_args(argv)
    ensure_apt("tmux", "tmux")
    tools = [
        fleetdeck_tool(args.fleetdeck),
        ensure_glances(default_peers_venv(), args.glances),
        htop_tool(),
    ]
    size = args.size[0]
    times: dict[str, list[float]] = {name: [] for name in DRAWN}
    versions: list[float] = []
    try:
        for n in range(args.runs):
            for tool in tools if n % 2 == 0 else tools[::-1]:
                for name, spent in first_frame(tool, size).items():
                    times[name].append(spent)
            versions.append(version_time(tools[0]))
    except BenchError as error:
        print(f"first_frame: error: {error}", file=sys.stderr)
        return 1
    base = statistics.median(times["fleetdeck"])
    print(f"{'tool':<22}{'median s':>9}{'min s':>8}{'max s':>8}{'vs fleetdeck':>14}")
    for name, got in times.items():
        med = statistics.median(got)
        print(f"{name:<22}{med:9.3f}{min(got):8.3f}{max(got):8.3f}{med / base:13.2f}x")
    print(
        f"{'fleetdeck --version':<22}{statistics.median(versions):9.3f}"
        f"{min(versions):8.3f}{max(versions):8.3f}"
    )
    print(
        f"\n{size[0]}x{size[1]} pane, {args.runs} runs each, alternating; "
        + "; ".join(f"{t.name} {t.version}" for t in tools)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
