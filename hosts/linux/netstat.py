"""Pure parsers of the kernel's network counters and listening queues: /proc/net/netstat
(what `nstat` reads, without nstat's history file, which a reading would move) and
`ss -ltnH`, which for a listening socket puts the accept queue's current length in Recv-Q and
its backlog (the listen() argument, capped by net.core.somaxconn) in Send-Q.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError


def parse_proc_netstat(text: str) -> dict[str, int]:
    """Counters of /proc/net/netstat (or /proc/net/snmp): each `Prefix: names` line is
    followed by a `Prefix: values` line; `TcpExt: ListenOverflows` becomes
    `TcpExtListenOverflows`, as nstat names it."""
    counters: dict[str, int] = {}
    lines = text.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, heads = names.partition(":")
        other, _, numbers = values.partition(":")
        if prefix != other or not prefix:
            continue
        for name, number in zip(heads.split(), numbers.split(), strict=False):
            if number.isdecimal():
                counters[prefix + name] = int(number)
    if not counters:
        raise ParseError("/proc/net/netstat: no counters in it")
    return counters


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket: where it listens, its accept queue now, and its backlog."""

    local: str
    queued: int
    backlog: int


def parse_ss_listeners(text: str) -> list[Listener]:
    """`ss -ltnH` lines: `LISTEN RECV-Q SEND-Q LOCAL PEER [PROCESS]`; others skipped."""
    found: list[Listener] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1].isdecimal() and fields[2].isdecimal():
            found.append(Listener(fields[3], int(fields[1]), int(fields[2])))
    return found
