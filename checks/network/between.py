"""Between hosts (runbook N7): packet loss, latency (min/avg/max/mdev) and jitter from this
host to the target over PINGS pings, and throughput with iperf3 where it is on both ends
(this host has the client and an iperf3 server answers on the target's port 5201).

Loss grades the step: any is WARN, LOSS_CRIT percent or more CRIT, all lost CRIT. Latency and
jitter are told, not graded: what is slow depends on the path (a LAN or another continent).
"""

from __future__ import annotations

import json

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import evidence as evidence_of
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.hosts.linux.ping import PingResult, parse_ping
from fleetdeck.hosts.shell import Shell

DOMAIN = "network"
PINGS = 20
INTERVAL = 0.2
LOSS_CRIT = 20.0
IPERF_SECONDS = 3


def _host_of(target: str) -> str:
    """The host part of a normalised HOST:PORT or [IPv6]:PORT target."""
    return target.rsplit(":", 1)[0].removeprefix("[").removesuffix("]")


def grade_ping(host: str, found: PingResult) -> tuple[Status, str]:
    if found.received == 0:
        return Status.CRIT, f"{host}: no answer to {found.sent} pings (100% loss)"
    low, avg, high, mdev = found.rtt or (0.0, 0.0, 0.0, 0.0)
    jitter = f", jitter {found.jitter:.2f} ms" if found.jitter is not None else ""
    said = (
        f"{host}: {found.loss:.0f}% loss of {found.sent} pings; rtt min/avg/max/mdev"
        f" {low:.2f}/{avg:.2f}/{high:.2f}/{mdev:.2f} ms{jitter}"
    )
    if found.loss >= LOSS_CRIT:
        return Status.CRIT, said
    return (Status.WARN if found.loss > 0 else Status.OK), said


async def _throughput(shell: Shell, host: str) -> tuple[Finding | None, str]:
    """An iperf3 reading, or None and why none was taken."""
    argv = ("iperf3", "-c", host, "-t", str(IPERF_SECONDS), "-J", "--connect-timeout", "2000")
    result = await run_command(shell, argv, timeout=IPERF_SECONDS + 15)
    if result.exit_status == 127:
        return None, "iperf3 is not on this host"
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None, f"iperf3 said nothing readable (exit {result.exit_status})"
    if not isinstance(data, dict) or data.get("error"):
        error = data.get("error") if isinstance(data, dict) else "no report"
        return None, f"no iperf3 server answers on {host} ({error})"
    try:
        bits = float(data["end"]["sum_received"]["bits_per_second"])
    except (KeyError, TypeError, ValueError):
        return None, "iperf3's report has no received rate"
    summary = f"{host}: {bits / 1e6:.1f} Mbit/s received over {IPERF_SECONDS} s (iperf3)"
    return Finding(
        "net.between", Status.OK, f"iperf3 {host}", summary, (evidence_of(result, 1500),)
    ), ""


async def _check_between(ctx: CheckContext, shell: Shell) -> list[Finding]:
    host = _host_of(ctx.params["target"])
    argv = ("ping", "-n", "-c", str(PINGS), "-i", f"{INTERVAL:g}", "-W", "1", host)
    result = await run_command(shell, argv, timeout=PINGS * INTERVAL + 15)
    if result.exit_status == 127:
        raise StepFailed("ping is not installed on this host")
    found = parse_ping(result.stdout)
    status, summary = grade_ping(host, found)
    measured, why = await _throughput(shell, host)
    if measured is None:
        summary += f"; throughput not measured: {why}"
    ping = Finding("net.between", status, f"ping {host}", summary, (evidence_of(result, 3000),))
    return [ping] if measured is None else [ping, measured]


BETWEEN = ShellCheck(
    "net.between", "Loss, latency and throughput to the target", _check_between, DOMAIN
)
