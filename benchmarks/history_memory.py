"""Memory one host's `SampleHistory` holds after a full window of samples.

Reads this machine once through the sampling scripts a remote host runs (`ProcSampler` on
a `LocalShell`), then replays that recorded text: each of `--adds` samples is parsed anew
(its own objects, as from a host) with the clock 2 s further on, and added to one history
of `--size` samples (what `checks/watch.py` gives a host). tracemalloc says how much is
still allocated after the adds: the history's cost for one host, once without process
lists (the Fleet screen) and once with them (a Host screen open on the Processes tab).

    .venv/bin/python benchmarks/history_memory.py [--adds 600] [--size 600]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc

from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.proc_sampler import ProcSampler, ShellScripts
from fleetdeck.hosts.shell import LocalShell


class Replay:
    """A `ScriptRunner` that answers each script with what this machine printed once."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    @property
    def host(self) -> str:
        return "recorded"

    async def run_script(self, name: str, timeout: float) -> str:
        return self.answers[name]


async def held(answers: dict[str, str], adds: int, size: int, processes: bool) -> tuple[int, int]:
    """(bytes still allocated after `adds` samples went into one history, whole samples'
    mounts seen in the last sample) with the samples replayed from `answers`."""
    ticks = iter(range(adds))
    sampler = ProcSampler(Replay(answers), processes=processes, clock=lambda: 2.0 * next(ticks))
    gc.collect()
    tracemalloc.start()
    history = SampleHistory(size=size)
    for _ in range(adds):
        history.add(await sampler.sample())
    gc.collect()
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    latest = history.latest
    return current, 0 if latest is None else len(latest.mounts)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--adds", type=int, default=600)
    parser.add_argument("--size", type=int, default=600)
    args = parser.parse_args()
    scripts = ShellScripts(LocalShell())
    answers = {name: await scripts.run_script(name, 30.0) for name in ("sample", "processes")}
    for processes in (False, True):
        current, mounts = await held(answers, args.adds, args.size, processes)
        print(
            f"processes {'on ' if processes else 'off'}: {args.adds} adds into a history of "
            f"{args.size}: {current / 1024:,.0f} KiB held, {current / args.adds / 1024:.2f} "
            f"KiB a sample ({mounts} mounts a sample)"
        )


if __name__ == "__main__":
    asyncio.run(main())
