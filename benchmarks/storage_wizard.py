"""The storage wizard on a crowded host: 50 mounts and a 200,000-file log tree.

Builds the host for real (root): 50 small ext4 filesystems on loop devices, and a log tree
of 200,000 small files (half of them 30 days old) on one more ext4 made with inline_data
so that small files take no blocks. Then, against this machine:

1. `fleetdeck wizard storage --json` with --mounts (the 50), --logs and --usage on the
   tree, answers from /dev/null (no fix is applied), with the page cache dropped first
   (cold) and again warm: wall time, per-step times, the worst step, and whether any step
   said its listing was partial.
2. The same questions asked by hand, the way runbooks S1-S6 do them (`df`, `df -i`,
   /proc/mounts, /proc/mdstat, the deleted-file scan, two /proc/diskstats readings a
   second apart, `du -x -d 2 | sort`, `find -mtime +7` twice, `journalctl --disk-usage`,
   `docker system df`), as one shell script: the peer, timed the same way.
3. `disk.usage` in process on --tight-path (default `/`, this machine's whole root
   filesystem) with the du bound cut to --tight seconds, caches dropped: the step must
   come back within its bound with the partial listing said so, not hang.

    sudo .venv/bin/python benchmarks/storage_wizard.py              # about 2 minutes
    sudo .venv/bin/python benchmarks/storage_wizard.py --files 20000 --json

Everything it makes is under one temporary directory and removed at the end (--keep to
look at it). Linux only; needs root, mkfs.ext4 (e2fsprogs) and losetup (mount).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD = 30 * 86400  # seconds: the old half of the log tree
PER_DIR = 1000


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done


class Host:
    """The crowded host's filesystems: made by `build`, all removed by `close`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.devices: list[str] = []
        self.mounts: list[Path] = []
        self.tree = workdir / "logs-mnt"

    def _ext4(self, name: str, mib: int, *mkfs: str) -> Path:
        image = self.workdir / f"{name}.img"
        with image.open("xb") as f:
            f.truncate(mib << 20)
        sh("mkfs.ext4", "-q", "-F", *mkfs, str(image))
        device = sh("losetup", "--find", "--show", str(image)).stdout.strip()
        self.devices.append(device)
        mountpoint = self.workdir / f"{name}-mnt"
        mountpoint.mkdir()
        sh("mount", "-t", "ext4", device, str(mountpoint))
        self.mounts.append(mountpoint)
        return mountpoint

    def build(self, mounts: int, files: int) -> dict[str, float]:
        took: dict[str, float] = {}
        started = time.perf_counter()
        for n in range(mounts):
            self._ext4(f"m{n:02d}", 4)
        took["mounts"] = time.perf_counter() - started
        started = time.perf_counter()
        inodes = str(max(files + files // 4, 1024))
        self._ext4("logs", 1024, "-O", "inline_data", "-I", "256", "-N", inodes)
        old = time.time() - OLD
        line = b"2026-11-23T03:00:00Z app[1234]: request served in 12 ms\n"
        for n in range(files):
            folder = self.tree / f"app-{n // PER_DIR:04d}"
            if n % PER_DIR == 0:
                folder.mkdir()
            path = folder / f"app.log.{n % PER_DIR}"
            path.write_bytes(line)
            if n % 2:
                os.utime(path, (old, old))
        took["log tree"] = time.perf_counter() - started
        return took

    def close(self) -> None:
        for mountpoint in reversed(self.mounts):
            sh("umount", "-l", str(mountpoint), check=False)
        for device in self.devices:
            sh("losetup", "-d", device, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def drop_caches() -> None:
    os.sync()
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def fleetdeck_argv() -> list[str]:
    local = ROOT / ".venv" / "bin" / "fleetdeck"
    return [str(local)] if local.exists() else ["fleetdeck"]


def run_wizard(host: Host, audit: Path) -> dict[str, Any]:
    argv = [*fleetdeck_argv(), "wizard", "storage", "--json", "--audit-log", str(audit)]
    argv += ["--logs", str(host.tree), "--older", "7", "--usage", str(host.tree)]
    for mountpoint in host.mounts:
        argv += ["--mounts", str(mountpoint)]
    started = time.perf_counter()
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900
    )
    wall = time.perf_counter() - started
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        said = f"no JSON from the wizard (exit {done.returncode}): {done.stderr}"
        raise SystemExit(said) from None
    steps = [
        {
            "id": s["id"],
            "status": s.get("status"),
            "seconds": round(float(s.get("duration") or 0.0), 3),
            "partial": any("partial" in f.get("summary", "") for f in s.get("findings", [])),
        }
        for s in doc["steps"]
    ]
    return {"wall": wall, "exit": done.returncode, "steps": steps}


PEER_SCRIPT = r"""
tree=$1
df -P >/dev/null; df -Pi >/dev/null
cat /proc/mounts /proc/mdstat >/dev/null 2>&1
find /proc/[0-9]*/fd -lname '*(deleted)' 2>/dev/null | wc -l >/dev/null
cat /proc/diskstats >/dev/null; sleep 1; cat /proc/diskstats >/dev/null
du -x -d 2 -B1 "$tree" 2>/dev/null | sort -n | tail -20 >/dev/null
find "$tree" -xdev -type f -mtime +7 -printf '%i %s %p\n' | wc -l >/dev/null
find "$tree" -xdev -type f -mtime +7 ! -name '*.gz' -printf '%i %s %b %p\n' | wc -l >/dev/null
journalctl --disk-usage >/dev/null 2>&1
docker system df >/dev/null 2>&1
true
"""


def run_peer(host: Host) -> float:
    started = time.perf_counter()
    sh("sh", "-c", PEER_SCRIPT, "sh", str(host.tree))
    return time.perf_counter() - started


def run_tight(path: str, seconds: float) -> dict[str, Any]:
    """disk.usage with its du bound cut short, in process: it must say it is partial."""
    from fleetdeck.checks.config import Thresholds
    from fleetdeck.checks.model import CheckContext
    from fleetdeck.checks.storage.diskusage import DISK_USAGE
    from fleetdeck.hosts.metrics import SampleHistory
    from fleetdeck.hosts.shell import LocalShell

    name = socket.gethostname()
    params = {"usage": path, "usage_seconds": f"{seconds:g}"}
    ctx = CheckContext(name, SampleHistory(2), Thresholds(), LocalShell(name), None, params)
    drop_caches()
    started = time.perf_counter()
    findings = asyncio.run(DISK_USAGE.run(ctx))
    wall = time.perf_counter() - started
    return {
        "path": path,
        "bound_s": seconds,
        "wall": wall,
        "statuses": sorted({f.status.value for f in findings}),
        "summary": findings[0].summary if findings else "",
    }


@contextlib.contextmanager
def crowded_host(mounts: int, files: int, keep: bool) -> Iterator[tuple[Host, dict[str, float]]]:
    workdir = Path(tempfile.mkdtemp(prefix="fleetdeck-bench-storage-"))
    host = Host(workdir)
    try:
        yield host, host.build(mounts, files)
    finally:
        if keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            host.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mounts", type=int, default=50)
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--tight", type=float, default=1.0, help="du bound, last run (s, >= 1)")
    parser.add_argument("--tight-path", default="/", help="where the last run looks")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the filesystems mounted")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("storage_wizard.py: needs root (loop devices and mounts)", file=sys.stderr)
        return 2
    with crowded_host(args.mounts, args.files, args.keep) as (host, setup):
        audit = host.workdir / "audit.jsonl"
        drop_caches()
        cold = run_wizard(host, audit)
        drop_caches()
        peer_cold = run_peer(host)
        warm = run_wizard(host, audit)
        peer_warm = run_peer(host)
        tight = run_tight(args.tight_path, args.tight)
    result = {
        "mounts": args.mounts,
        "files": args.files,
        "setup_s": {k: round(v, 1) for k, v in setup.items()},
        "cold": cold,
        "warm": warm,
        "peer_cold_s": peer_cold,
        "peer_warm_s": peer_warm,
        "tight": tight,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"host: {args.mounts} ext4 mounts + a {args.files:,}-file log tree "
        f"(setup {setup['mounts']:.0f} s + {setup['log tree']:.0f} s)"
    )
    print(f"{'run':<6}{'fleetdeck s':>12}{'by hand s':>11}{'ratio':>7}  slowest steps")
    for label, run, peer in (("cold", cold, peer_cold), ("warm", warm, peer_warm)):
        steps = sorted(run["steps"], key=lambda s: -s["seconds"])
        slowest = ", ".join(f"{s['id']} {s['seconds']:.1f}" for s in steps[:3])
        wall = float(run["wall"])
        print(f"{label:<6}{wall:>12.1f}{peer:>11.1f}{wall / peer:>7.2f}  {slowest}")
        partial = [s["id"] for s in run["steps"] if s["partial"]]
        if partial:
            print(f"       partial listings: {', '.join(partial)}")
    print(
        f"tight: disk.usage on {tight['path']} with a {tight['bound_s']:g} s du bound came back in "
        f"{float(tight['wall']):.1f} s ({', '.join(tight['statuses'])}): {tight['summary']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
