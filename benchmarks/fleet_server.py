"""One asyncssh server that stands in for a whole fleet, for `fleet_1000.py`.

Every SSH connection is a host: the login name is the host's name (the inventory gives each
host `user = NAME`), and the server speaks the protocol of `hosts/stream.py` on the one
long-lived `sh` the console opens: a request per line (`sample`, `processes`, `describe`,
`run`), an answer, and the end marker with the request's nonce.

The answers are this machine's own: at start the server runs fleetdeck's real scripts
(`hosts/proc_sampler.SCRIPTS`) once with `sh` and keeps what they printed. Each `sample`
answer is that recorded text with the figures the Fleet screen shows changed per host and
per round, so rows move as on a real fleet: the CPU counters of /proc/stat advance by a
busy share that differs per host (2-70 %) and wanders a few points each round, memory use
(20-85 %), the load average and the root filesystem's use (10-92 %: a few hosts over the
disk thresholds) differ per host and wander too, and uptime grows.
So the console parses, checks and draws real text for 1,000 hosts while the server costs
one process, not 1,000 sshd logins and 1,000 shells reading /proc.

    .venv/bin/python benchmarks/fleet_server.py --dir DIR

writes DIR/port (once listening) and DIR/stats (a JSON line of counts, every 0.5 s).
DIR must hold `host_key` (the server's key) and `client_key.pub` (the key it accepts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import asyncssh

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fleetdeck.hosts.proc_sampler import MARKER, SCRIPTS  # noqa: E402

DONE = f"\n{MARKER}@done "
HZ = 100
COUNTS = {"connections": 0, "open": 0, "sample": 0, "processes": 0, "describe": 0, "run": 0}


def record() -> dict[str, str]:
    """What each script prints on this machine, once."""
    return {
        name: subprocess.run(
            ["sh", "-c", body], capture_output=True, text=True, errors="replace", check=False
        ).stdout
        for name, body in SCRIPTS.items()
    }


def sections(text: str) -> list[tuple[str, str]]:
    """The recorded answer split at its markers, in order: (name, body)."""
    parts = re.split(rf"\n{re.escape(MARKER)}([^\n]*)\n", "\n" + text)
    return list(zip(parts[1::2], parts[2::2], strict=True))


class Host:
    """One connection's state: its name, its counters, its round."""

    def __init__(self, name: str, recorded: dict[str, str]) -> None:
        self.name = name
        self.seed = zlib.crc32(name.encode())
        self.recorded = recorded
        self.round = 0
        self.started = time.monotonic()
        self.last = self.started
        stat = dict(sections(recorded["sample"])).get("stat", "")
        self.cores = sum(1 for line in stat.splitlines() if re.match(r"cpu\d", line)) or 1
        # user, system, iowait, idle ticks per core, from a start that differs per host
        self.ticks = [[float(self.seed % 100_000), 0.0, 0.0, 1e6] for _ in range(self.cores)]

    def share(self, spread: int, low: float, high: float) -> float:
        """A figure between `low` and `high` that differs per host (from its name) and
        wanders a few points from round to round, as a quiet fleet's figures do."""
        base = (self.seed % spread) / spread
        wander = 0.03 * math.sin(self.round / 3 + self.seed % 7)
        return low + (high - low) * min(max(base + wander, 0.0), 1.0)

    def sample(self) -> str:
        self.round += 1
        now = time.monotonic()
        elapsed, self.last = (now - self.last) * HZ, now
        busy = self.share(97, 0.02, 0.7)
        for core in self.ticks:
            core[0] += elapsed * busy * 0.8
            core[1] += elapsed * busy * 0.2
            core[3] += elapsed * (1 - busy)
        out = []
        for name, body in sections(self.recorded["sample"]):
            if name == "stat":
                body = self._stat(body)
            elif name == "meminfo":
                body = self._meminfo(body)
            elif name == "loadavg":
                load = self.cores * self.share(89, 0.05, 1.2)
                body = (
                    f"{load:.2f} {load * 0.9:.2f} {load * 0.8:.2f} 1/{200 + self.seed % 300} 4242\n"
                )
            elif name == "uptime":
                up = 86_400 + self.seed % 1_000_000 + now - self.started
                body = f"{up:.2f} {up * self.cores * 0.9:.2f}\n"
            elif name == "df":
                body = self._df(body)
            out.append(f"\n{MARKER}{name}\n{body}")
        return "".join(out).removeprefix("\n")

    def _stat(self, body: str) -> str:
        total = [sum(col) for col in zip(*self.ticks, strict=True)]
        lines = []
        for line in body.splitlines():
            if line.startswith("cpu"):
                label = line.split(" ", 1)[0]
                t = total if label == "cpu" else self.ticks[int(label[3:]) % self.cores]
                u, s, w, i = (int(x) for x in t)
                line = f"{label} {u} 0 {s} {i} {w} 0 0 0 0 0"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def _meminfo(self, body: str) -> str:
        found = re.search(r"^MemTotal:\s+(\d+)", body, re.M)
        total = int(found[1]) if found else 8_000_000
        free = int(total * (1 - self.share(83, 0.2, 0.85)))
        body = re.sub(r"^(MemAvailable:\s+)\d+", rf"\g<1>{free}", body, flags=re.M)
        return re.sub(r"^(MemFree:\s+)\d+", rf"\g<1>{free // 2}", body, flags=re.M)

    def _df(self, body: str) -> str:
        lines = []
        for line in body.splitlines():
            parts = line.split()
            if len(parts) == 7 and parts[6] == "/" and parts[2].isdecimal():
                size = int(parts[2])
                used = int(size * self.share(71, 0.1, 0.92))
                percent = -(-100 * used // max(size, 1))
                parts[3:6] = [str(used), str(size - used), f"{percent}%"]
                line = " ".join(parts)
            lines.append(line)
        return "\n".join(lines) + "\n"

    def answer(self, request: str) -> str:
        if request == "sample":
            return self.sample()
        if request == "describe":
            return re.sub(
                rf"({re.escape(MARKER)}hostname\n)[^\n]*", rf"\g<1>{self.name}",
                self.recorded["describe"],
            )  # fmt: skip
        return self.recorded[request]


async def serve_host(process: asyncssh.SSHServerProcess[str], recorded: dict[str, str]) -> None:
    """The stream protocol on one channel, until the client closes it."""
    host = Host(process.get_extra_info("username") or "?", recorded)
    COUNTS["open"] += 1
    try:
        while True:
            line = await process.stdin.readline()
            if not line:
                break
            request, _, nonce = line.strip().partition(" ")
            if request == "run":
                await process.stdin.readline()  # the command: not served here
                text = f"\n{MARKER}@out\nfleet_server: commands are not served\n"
                text += f"\n{MARKER}@status\n127\n"
            elif request in SCRIPTS:
                text = host.answer(request)
            else:
                text = f"\n{MARKER}error\nunknown request\n"
                request = "run"
            COUNTS[request] += 1
            process.stdout.write(f"{text}{DONE}{nonce}\n")
    except (asyncssh.Error, OSError, asyncio.IncompleteReadError):
        pass
    finally:
        COUNTS["open"] -= 1
        process.exit(0)


class Server(asyncssh.SSHServer):
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        COUNTS["connections"] += 1


async def main(directory: Path) -> None:
    recorded = record()
    server = await asyncssh.create_server(
        Server,
        "127.0.0.1",
        0,
        server_host_keys=[str(directory / "host_key")],
        authorized_client_keys=str(directory / "client_key.pub"),
        process_factory=lambda p: serve_host(p, recorded),
        encoding="utf-8",
        line_editor=False,
        backlog=1024,
    )
    port = server.sockets[0].getsockname()[1]
    (directory / "port.tmp").write_text(str(port))
    (directory / "port.tmp").rename(directory / "port")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stats = directory / "stats"
    while not stop.is_set():
        (directory / "stats.tmp").write_text(json.dumps(COUNTS))
        os.replace(directory / "stats.tmp", stats)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    asyncio.run(main(parser.parse_args().dir))
