"""Between hosts (N7) over real SSH: pings from one namespace host to another, with half the
far host's replies dropped at random inside its namespace, beside the clean path; iperf3
throughput when the far host runs a server, and said not measured when not.

The loss is made by nftables (`numgen random`), not `tc netem`: this test machine's kernel
has no sch_netem ("Specified qdisc kind is unknown"). The delay is made the way a congested
uplink makes it: a token bucket (`tc qdisc ... tbf`, which the kernel has) on the far host's
link, kept full by a paced stream of datagrams, so its replies wait in the queue (and, the
queue being full, some are dropped, as on a real congested link)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.network.between import BETWEEN
from fleetdeck.hosts.metrics import SampleHistory

from sshd import NetnsHost, NetnsLab, SshKeys, ssh_shell


@pytest.fixture
def pair(netns_lab: NetnsLab) -> Iterator[tuple[NetnsHost, NetnsHost]]:
    """Two hosts of their own, so the far one's qdisc is this test's alone."""
    near, far = netns_lab.add_host(), netns_lab.add_host()
    try:
        yield near, far
    finally:
        netns_lab.remove_host(far)
        netns_lab.remove_host(near)


async def between(near: NetnsHost, far: NetnsHost, keys: SshKeys, tmp: Path) -> list[Finding]:
    async with ssh_shell(near, keys, tmp / "known_hosts", near.name) as shell:
        ctx = CheckContext(near.name, SampleHistory(size=2), Config().thresholds, shell,
                           params={"target": f"{far.address}:22"})  # fmt: skip
        return await BETWEEN.run(ctx)


LOSSY = """
table inet lossy {
  chain output {
    type filter hook output priority 0; policy accept;
    icmp type echo-reply numgen random mod 100 < 50 drop
  }
}
"""


async def test_replies_lost_at_random_are_seen_where_the_clean_path_was_ok(
    pair: tuple[NetnsHost, NetnsHost], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    near, far = pair
    (clean,) = await between(near, far, ssh_keys, tmp_path)
    nft = ["ip", "netns", "exec", str(far.netns), "nft", "-f", "-"]
    await asyncio.to_thread(subprocess.run, nft, input=LOSSY, text=True, check=True)
    (lossy,) = await between(near, far, ssh_keys, tmp_path)
    assert clean.status is Status.OK, clean
    assert clean.summary.startswith(f"{far.address}: 0% loss of 20 pings; rtt min/avg/max/mdev")
    assert "throughput not measured: no iperf3 server answers on" in clean.summary
    assert lossy.status in (Status.WARN, Status.CRIT), lossy
    loss = int(lossy.summary.split(": ", 1)[1].split("%", 1)[0])
    assert loss > 0
    assert lossy.status is (Status.CRIT if loss >= 20 else Status.WARN)
    low, average, high, _ = _rtt(lossy)
    assert 0 < low <= average <= high, lossy.summary
    assert float(lossy.summary.split("jitter ", 1)[1].split(" ms")[0]) >= 0, lossy.summary


SHAPED = ("tbf", "rate", "200kbit", "burst", "4kb", "latency", "300ms")
"""A 200 kbit/s link whose queue holds up to 300 ms of traffic."""
STREAM = """
import socket, sys, time
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:  # 100 KB/s, four times what the link passes: its queue stays full
    out.sendto(bytes(1000), (sys.argv[1], 9))
    time.sleep(0.01)
"""


@contextlib.contextmanager
def congested(host: NetnsHost, toward: NetnsHost) -> Iterator[None]:
    """`host`'s link shaped (SHAPED) and kept full by STREAM toward `toward` meanwhile."""
    netns = ["ip", "netns", "exec", str(host.netns)]
    subprocess.run([*netns, "tc", "qdisc", "add", "dev", "eth0", "root", *SHAPED], check=True)
    stream = subprocess.Popen([*netns, sys.executable, "-c", STREAM, str(toward.address)])
    try:
        yield
    finally:
        stream.kill()
        stream.wait(timeout=5)
        subprocess.run([*netns, "tc", "qdisc", "del", "dev", "eth0", "root"], check=True)


def _rtt(finding: Finding) -> tuple[float, float, float, float]:
    low, average, high, mdev = finding.summary.split("rtt min/avg/max/mdev ", 1)[1].split("/")
    return float(low), float(average), float(high), float(mdev.split(" ")[0])


async def test_a_congested_link_shows_in_the_round_trip_times_and_its_drops_as_loss(
    pair: tuple[NetnsHost, NetnsHost], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    near, far = pair
    (clean,) = await between(near, far, ssh_keys, tmp_path)
    with congested(far, toward=near):
        (queued,) = await between(near, far, ssh_keys, tmp_path)
    assert clean.status is Status.OK, clean
    # A full queue drops what comes next, replies too, as a congested uplink does: the loss
    # is graded as any loss is. The replies that got through waited behind up to 300 ms of
    # datagrams, where a round trip on the bare bridge takes well under a millisecond;
    # latency is told, not graded (the module says why).
    loss = int(queued.summary.split(": ", 1)[1].split("%", 1)[0])
    assert queued.status is (Status.CRIT if loss >= 20 else Status.WARN if loss else Status.OK), (
        queued.summary
    )
    assert _rtt(queued)[1] > 100 > 10 * _rtt(clean)[1], (clean.summary, queued.summary)


@pytest.fixture
def iperf_server(pair: tuple[NetnsHost, NetnsHost]) -> Iterator[None]:
    """`iperf3 -s` on the far host of the pair, for one test."""
    far = pair[1]
    netns = ["ip", "netns", "exec", str(far.netns)]
    server = subprocess.Popen([*netns, "iperf3", "-s", "-B", str(far.address)],
                              stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        # iperf3 buffers its "Server listening" line when not on a terminal: ask ss instead.
        for _ in range(100):
            listing = subprocess.run([*netns, "ss", "-ltnH", "sport = :5201"],
                                     capture_output=True, text=True, check=True)  # fmt: skip
            if listing.stdout.strip():
                break
            time.sleep(0.1)
        else:
            pytest.fail("iperf3 -s did not listen on port 5201 within 10 s")
        yield
    finally:
        server.kill()
        server.wait(timeout=5)


async def test_throughput_is_measured_where_the_far_host_runs_an_iperf3_server(
    pair: tuple[NetnsHost, NetnsHost], ssh_keys: SshKeys, tmp_path: Path, iperf_server: None
) -> None:
    near, far = pair
    ping, throughput = await between(near, far, ssh_keys, tmp_path)
    assert ping.status is Status.OK and "throughput not measured" not in ping.summary
    assert throughput.target == f"iperf3 {far.address}"
    assert throughput.status is Status.OK
    assert throughput.summary.endswith("Mbit/s received over 3 s (iperf3)")
    assert float(throughput.summary.split(": ", 1)[1].split(" ")[0]) > 0
