"""Pure parsers of the kernel's network counters and listening queues: `nstat -asz` and
`ss -ltnH`.

`nstat -a` prints absolute counters (`-s` leaves its history file alone, so a reading never
changes what the next `nstat` run on the host shows as a delta). For a listening socket `ss`
puts the accept queue's current length in Recv-Q and its configured backlog (already capped
by net.core.somaxconn) in Send-Q.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError


def parse_nstat(text: str) -> dict[str, int]:
    """Counter name to value from `nstat -asz` (`#kernel` header and odd lines skipped)."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].isdecimal():
            counters[fields[0]] = int(fields[1])
    if not counters:
        raise ParseError("nstat: no counters in its output")
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
