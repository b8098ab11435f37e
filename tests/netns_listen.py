"""A real TCP listener inside a network namespace, for tests that need a service there."""

from __future__ import annotations

import subprocess
import sys


def tcp_listener(netns: str, address: str, port: int) -> subprocess.Popen[str]:
    """Listen on address:port inside `netns`, accepting and closing every connection, until
    killed; returns once it listens. The caller kills it."""
    code = (
        "import socket\ns=socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(({address!r},{port}))\ns.listen()\nprint('ready',flush=True)\n"
        "while True: s.accept()[0].close()\n"
    )
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout is None or process.stdout.readline().strip() != "ready":
        process.kill()
        process.wait(5)
        raise AssertionError(f"no listener on {address}:{port} in {netns}")
    return process
