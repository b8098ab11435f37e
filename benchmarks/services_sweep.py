"""One services sweep on a host with 300 units, against the commands an operator would type.

Boots the test lab's systemd host (tests/systemd_host.py: a Debian root under systemd-nspawn
in a network namespace, reached over SSH) with --units extra units (oneshot, active), beside
the lab's failing and flapping ones. Then, over one SSH connection, --rounds times each:

1. fleetdeck's sweep: `services.units` and `services.logs` (`checks.services.sweep`);
2. the peer: `systemctl list-units --failed` and `journalctl -p err --since -15min`, the
   least an operator runs for the same answer (no restart counts, no grouping).

Prints the median and worst wall time of each and the ratio. The endpoint half of the
issue's benchmark (20 health endpoints against a curl loop) belongs to the endpoint probes.

    sudo .venv/bin/python benchmarks/services_sweep.py             # about a minute
    sudo .venv/bin/python benchmarks/services_sweep.py --units 300 --rounds 10 --json

Needs root, debootstrap, systemd-nspawn and iproute2 (./scripts/test installs them); the
Debian root is built once and cached (/var/cache/fleetdeck-tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetdeck.hosts.shell import Shell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ONESHOT = """\
[Unit]
Description=benchmark unit {n}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
"""


async def timed(rounds: int, body: Callable[[], Awaitable[object]]) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await body()
        times.append(time.perf_counter() - started)
    return times


async def booted(shell: Shell, limit: float = 120.0) -> None:
    """Wait until systemd is done starting units ("degraded": the lab's failing ones)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = await shell.run(("systemctl", "is-system-running"), timeout=30)
        if state.stdout.strip() not in ("starting", "initializing"):
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"systemd was still starting units after {limit:g} s")


async def measure(units: int, rounds: int) -> dict[str, object]:
    from fleetdeck.checks.config import Config
    from fleetdeck.checks.model import CheckContext
    from fleetdeck.checks.services.config import ServicesSettings
    from fleetdeck.checks.services.sweep import services_findings
    from fleetdeck.hosts.metrics import SampleHistory

    from sshd import NetnsLab, SshKeys, ssh_shell
    from systemd_host import LAB_UNITS, SystemdHost

    extra = {f"bench-{n:03d}.service": ONESHOT.format(n=n) for n in range(units)}
    with tempfile.TemporaryDirectory(prefix="fleetdeck-bench-") as workdir:
        keys = SshKeys.create(Path(workdir) / "keys")
        with NetnsLab(Path(workdir) / "lab", keys) as lab:
            host = SystemdHost(lab, keys, Path(workdir) / "host", units={**LAB_UNITS, **extra})
            try:
                async with ssh_shell(host, keys, Path(workdir) / "known", "bench") as shell:  # type: ignore[arg-type]
                    await booted(shell)
                    params = ServicesSettings(units=("fd-healthy.service",)).params()
                    ctx = CheckContext(
                        "bench", SampleHistory(size=2), Config().thresholds, shell, None, params
                    )
                    findings = await services_findings(ctx)

                    async def peer() -> None:
                        await shell.run(("systemctl", "list-units", "--failed", "--no-pager"))
                        await shell.run(
                            ("journalctl", "-p", "err", "--since=-15min", "--no-pager"), timeout=30
                        )

                    sweep = await timed(rounds, lambda: services_findings(ctx))
                    manual = await timed(rounds, peer)
            finally:
                host.close()
    return {
        "units": units + len(LAB_UNITS),
        "rounds": rounds,
        "findings": len(findings),
        "sweep_median_s": round(statistics.median(sweep), 3),
        "sweep_worst_s": round(max(sweep), 3),
        "peer_median_s": round(statistics.median(manual), 3),
        "peer_worst_s": round(max(manual), 3),
        "ratio": round(statistics.median(sweep) / statistics.median(manual), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.units, args.rounds))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}  {value}")


if __name__ == "__main__":
    main()
