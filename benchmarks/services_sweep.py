"""One services sweep on a host with 300 units, against the commands an operator would type.

Boots the test lab's systemd host (tests/systemd_host.py: a Debian root under systemd-nspawn
in a network namespace, reached over SSH) with --units extra units (oneshot, active), beside
the lab's failing and flapping ones. Then, over one SSH connection, --rounds times each:

1. fleetdeck's sweep: `services.units` and `services.logs` (`checks.services.sweep`);
2. the peer: `systemctl list-units --failed` and `journalctl -p err --since -15min`, the
   least an operator runs for the same answer (no restart counts, no grouping).

Then, on the same host, over the same connection, with tests/webd.py serving /ok on
--endpoints ports of the host's loopback (from its network namespace), --rounds times each:

3. fleetdeck's `http.health` check over those endpoints (`checks.services.http`: curl on
   the host, 4 endpoints at once);
4. the peer: one shell loop of `curl -sS -o /dev/null -w '%{http_code} %{time_total}'`
   over the same URLs, the least an operator types for the same statuses and times;
5. `true`, for what any one command costs there (a session and a shell).

Prints the median and worst wall time of each and the ratios.

    sudo .venv/bin/python benchmarks/services_sweep.py             # about a minute
    sudo .venv/bin/python benchmarks/services_sweep.py --units 300 --endpoints 20 --rounds 10 --json

Needs root, debootstrap, systemd-nspawn and iproute2 (./scripts/test installs them); the
Debian root is built once and cached (/var/cache/fleetdeck-tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
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
WEBD = ROOT / "tests" / "webd.py"
FIRST_PORT = 8100
"""The endpoints listen on FIRST_PORT and up, on the web host's loopback."""

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


def start_webd(netns: str, ports: list[int]) -> subprocess.Popen[str]:
    """tests/webd.py serving /ok on each port of the namespace's loopback, once it is ready."""
    serving = [arg for port in ports for arg in ("--http", str(port))]
    webd = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, str(WEBD), *serving],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert webd.stdout is not None
    if webd.stdout.readline().strip() != "ready":
        webd.kill()
        raise SystemExit("tests/webd.py did not start")
    return webd


async def endpoints_half(
    shell: Shell, netns: str, endpoints: int, rounds: int
) -> dict[str, object]:
    """fleetdeck's `http.health` over `endpoints` URLs on the host's loopback (tests/webd.py
    in its network namespace) against a curl loop, over the host's one SSH connection."""
    from fleetdeck.checks.config import Config
    from fleetdeck.checks.model import CheckContext, Status
    from fleetdeck.checks.services.http import http_check
    from fleetdeck.checks.services.probe_config import HttpEndpoint, ProbeSettings
    from fleetdeck.hosts.metrics import SampleHistory

    ports = [FIRST_PORT + n for n in range(endpoints)]
    urls = [f"http://127.0.0.1:{port}/ok" for port in ports]
    webd = start_webd(netns, ports)
    try:
        settings = ProbeSettings(http=tuple(HttpEndpoint(url) for url in urls))
        check = http_check(settings)
        ctx = CheckContext("web", SampleHistory(size=2), Config().thresholds, shell)
        found = await check.run(ctx)
        healthy = sum(f.status is Status.OK and "curl" in str(f.evidence) for f in found)
        if healthy != endpoints:
            raise SystemExit(f"{healthy} of {endpoints} endpoints OK by curl: {found}")
        loop = (
            "for u in " + " ".join(urls) + "; do curl -sS -o /dev/null --max-time 4 "
            "-w '%{http_code} %{time_total}\\n' \"$u\"; done"
        )
        peer = await shell.run(("sh", "-c", loop), timeout=60)
        if peer.stdout.count("200 ") != endpoints:
            raise SystemExit(f"the curl loop did not get {endpoints} answers: {peer.stdout}")
        probes = await timed(rounds, lambda: check.run(ctx))
        curls = await timed(rounds, lambda: shell.run(("sh", "-c", loop), timeout=60))
        # What one command costs on this host whatever it runs (a session and a shell):
        # fleetdeck pays it per endpoint (PARALLEL at once), the loop once.
        floor = await timed(rounds, lambda: shell.run(("true",), timeout=60))
    finally:
        webd.kill()
        webd.wait(timeout=5)
    return {
        "endpoints": endpoints,
        "http_median_s": round(statistics.median(probes), 3),
        "http_worst_s": round(max(probes), 3),
        "curl_loop_median_s": round(statistics.median(curls), 3),
        "curl_loop_worst_s": round(max(curls), 3),
        "http_ratio": round(statistics.median(probes) / statistics.median(curls), 2),
        "one_command_median_s": round(statistics.median(floor), 3),
    }


async def measure(units: int, rounds: int, endpoints: int) -> dict[str, object]:
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
                    web = await endpoints_half(shell, host.netns, endpoints, rounds)
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
        **web,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.units, args.rounds, args.endpoints))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>16}  {value}")


if __name__ == "__main__":
    main()
