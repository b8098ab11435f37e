"""What a refresh of a 1,000-host fleet costs when it is watched through Prometheus.

Starts, on loopback and in a temporary directory (never the machine's units):
- node_exporter (Debian's prometheus-node-exporter) once, to record a real text exposition
  of this machine, cut down to the metric families fleetdeck's PromQL sampler reads;
- a tiny HTTP server (`python -m http.server`, a process of its own, so its work is not
  counted as fleetdeck's) serving that recorded text to every scrape;
- Prometheus (Debian's prometheus) scraping it as --hosts targets, each with its own
  `instance` label (`host-0001:9100` ...), every --scrape seconds.

Once Prometheus holds every target, it measures --rounds refreshes of the whole fleet the
way the console does them: one `HostWatch.poll` per host (sample, history, resource checks,
alerts; no screen), all sharing one `PromFleet` batch (six PromQL queries per refresh). Per
refresh: wall time, this process's CPU time (getrusage), Prometheus's CPU time (from
/proc/PID/stat; its scraping meanwhile is measured over an idle stretch of the same length
and subtracted), and the bytes of JSON read.

The SSH side is `benchmarks/fanout.py`'s sampling measurement (HostWatch.run over real sshd
hosts in network namespaces, at 20 hosts); pass its figures with --ssh-ms-per-host and
--ssh-sampling-ms-per-host (defaults: the last run in benchmarks/README.md) to print the
comparison, linear in the host count.

    python benchmarks/prom_fleet.py [--hosts 1000] [--rounds 10] [--scrape 30] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from fleetdeck.checks.config import Config  # noqa: E402
from fleetdeck.checks.watch import HostWatch  # noqa: E402
from fleetdeck.hosts.prometheus.api import Prometheus  # noqa: E402
from fleetdeck.hosts.prometheus.http import HttpSource, SourceError  # noqa: E402
from fleetdeck.hosts.prometheus.sampler import PromFleet, PromSampler  # noqa: E402

FAMILIES = (
    "node_cpu_seconds_total",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_network_",
    "node_filesystem_",
    "node_uname_info",
    "node_os_info",
    "node_boot_time_seconds",
)
SSH_MS_PER_HOST = 1.27
"""fanout.py's HostWatch.run CPU per host-sample (benchmarks/README.md, 2026-11-23, 20 hosts)."""
SSH_SAMPLING_MS_PER_HOST = 0.81
"""fanout.py's HostLink.sample CPU per host-sample, the same run."""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record_exposition(directory: Path) -> bytes:
    """node_exporter's /metrics for this machine, kept to the families the sampler reads."""
    port = free_port()
    collectors = ("cpu", "meminfo", "loadavg", "filesystem", "netdev", "uname", "os", "stat")
    process = subprocess.Popen(
        [
            "prometheus-node-exporter",
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            *(f"--collector.{c}" for c in collectors),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text: str = r.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(10)

    def family(line: str) -> str:  # "# HELP name ...", "# TYPE name ...", "name{...} value"
        return line.split(" ")[2] if line.startswith("#") else line

    kept = [line for line in text.splitlines() if family(line).startswith(FAMILIES)]
    return ("\n".join(kept) + "\n").encode()


def serve(directory: Path, body: bytes) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m http.server` serving the recorded exposition as /metrics.txt."""
    (directory / "www").mkdir()
    (directory / "www" / "metrics.txt").write_bytes(body)  # .txt: served as text/plain
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=directory / "www",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    prometheus = Prometheus(HttpSource(url, timeout=60))
    deadline = time.monotonic() + args.settle
    while True:
        try:
            [count] = await prometheus.query('count(up{job="node"} == 1)') or [None]
        except SourceError:  # not listening yet
            count = None
        if count is not None and count.value >= args.hosts:
            break
        if time.monotonic() > deadline:
            errors = {t.last_error for t in await prometheus.targets() if t.health != "up"}
            raise SystemExit(
                f"only {count.value if count else 0} of {args.hosts} targets up: {errors}"
            )
        await asyncio.sleep(1)
    fleet = PromFleet(prometheus, "node", max_age=0.5)
    hosts = await fleet.hosts()
    watches = [HostWatch(h, PromSampler(fleet, h), Config(), 2.0) for h in hosts]
    await asyncio.gather(*(w.poll() for w in watches))  # warm-up: info, first history
    await asyncio.sleep(1)

    idle_prom = proc_cpu(pid)
    idle_start = time.monotonic()
    await asyncio.sleep(args.idle)
    scrape_rate = (proc_cpu(pid) - idle_prom) / (time.monotonic() - idle_start)

    rounds = []
    for _ in range(args.rounds):
        await asyncio.sleep(1.0)  # the batch expires (max_age 0.5 s): each round asks anew
        cpu = own_cpu()
        await asyncio.gather(*(w.sampler.sample() for w in watches))  # sampling alone
        sampling = own_cpu() - cpu
        await asyncio.sleep(1.0)
        before = fleet.refreshes
        cpu, prom, wall = own_cpu(), proc_cpu(pid), time.monotonic()
        await asyncio.gather(*(w.poll() for w in watches))
        wall = time.monotonic() - wall
        rounds.append(
            {
                "wall_s": wall,
                "client_cpu_s": own_cpu() - cpu,
                "sampling_cpu_s": sampling,
                "prometheus_cpu_s": max(proc_cpu(pid) - prom - scrape_rate * wall, 0.0),
                "batches": fleet.refreshes - before,
                "failed": sum(1 for w in watches if w.error),
            }
        )
    return {"hosts": len(hosts), "rounds": rounds, "scrape_cpu_per_s": scrape_rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--scrape", type=float, default=30.0, help="scrape interval, seconds")
    parser.add_argument("--idle", type=float, default=10.0, help="idle stretch measured, s")
    parser.add_argument("--settle", type=float, default=120.0)
    parser.add_argument("--ssh-ms-per-host", type=float, default=SSH_MS_PER_HOST)
    parser.add_argument("--ssh-sampling-ms-per-host", type=float, default=SSH_SAMPLING_MS_PER_HOST)
    parser.add_argument("--ssh-hosts", type=int, default=20, help="hosts fanout.py measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for binary in ("prometheus", "prometheus-node-exporter"):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} missing: ./scripts/test installs it")
    with tempfile.TemporaryDirectory(prefix="fd-prom-bench-") as tmp:
        directory = Path(tmp)
        body = record_exposition(directory)
        server, exporter_port = serve(directory, body)
        port = free_port()
        statics = "".join(
            f"      - targets: ['127.0.0.1:{exporter_port}']\n"
            f"        labels: {{instance: 'host-{i:04d}:9100'}}\n"
            for i in range(args.hosts)
        )
        (directory / "prometheus.yml").write_text(
            f"global:\n  scrape_interval: {int(args.scrape * 1000)}ms\n"
            f"  scrape_timeout: {int(args.scrape * 800)}ms\n"
            "scrape_configs:\n  - job_name: node\n    metrics_path: /metrics.txt\n"
            f"    static_configs:\n{statics}"
        )
        prom = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=directory,
        )
        try:
            result = asyncio.run(measure(args, f"http://127.0.0.1:{port}", prom.pid))
            rss = int(Path(f"/proc/{prom.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        finally:
            for process in (prom, server):
                process.terminate()
                process.wait(30)
    result.update(
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        exposition_bytes=len(body),
        series_per_host=sum(1 for line in body.decode().splitlines() if not line.startswith("#")),
        prometheus_rss_mib=rss / 1024,
        prometheus_version=subprocess.run(
            ["prometheus", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0],
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rounds = result["rounds"]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n = result["hosts"]
    ssh_cpu = args.ssh_ms_per_host * n / 1000
    print(f"{result['date']}  {result['prometheus_version']}")
    print(
        f"{n} hosts, {result['series_per_host']} series each ({result['exposition_bytes']} "
        f"bytes), scraped every {args.scrape:g} s; Prometheus RSS "
        f"{result['prometheus_rss_mib']:.0f} MiB, scraping costs it "
        f"{result['scrape_cpu_per_s']:.3f} core"
    )
    print(f"{'per refresh of the whole fleet':40} {'median':>8} {'min':>8} {'max':>8}")
    for key, label in (
        ("wall_s", "wall s"),
        ("sampling_cpu_s", "fleetdeck CPU s, sampling alone"),
        ("client_cpu_s", "fleetdeck CPU s, + checks and alerts"),
        ("prometheus_cpu_s", "Prometheus CPU s (over scraping)"),
    ):
        values = [r[key] for r in rounds]
        print(f"{label:40} {med(key):8.3f} {min(values):8.3f} {max(values):8.3f}")
    print(f"{'PromQL batches per refresh':40} {med('batches'):8.0f}")
    print(f"{'hosts failed (any round)':40} {max(r['failed'] for r in rounds):8d}")
    ssh_sampling = args.ssh_sampling_ms_per_host * n / 1000
    print(f"\nover SSH (fanout.py, {args.ssh_hosts} hosts, linear in the host count):")
    for label, ssh, prom in (
        ("sampling alone", ssh_sampling, med("sampling_cpu_s")),
        ("+ checks and alerts", ssh_cpu, med("client_cpu_s")),
    ):
        print(
            f"  {label:22} {ssh:6.2f} s of fleetdeck CPU per refresh of {n} hosts over "
            f"{n} SSH connections; through Prometheus {prom:6.2f} s ({prom / ssh:.2f} of it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
