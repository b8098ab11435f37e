"""A pure parser of iputils `ping` output: each reply's round-trip time, the packets sent
and received, and the min/avg/max/mdev summary line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError

_REPLY = re.compile(r"\bicmp_seq=\d+ .*?\btime=([\d.]+) ms")
_COUNTS = re.compile(r"^(\d+) packets transmitted, (\d+) received", re.M)
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


@dataclass(frozen=True, slots=True)
class PingResult:
    """What N pings found: counts, round trips (ms) in order, and ping's own summary."""

    sent: int
    received: int
    times: tuple[float, ...]
    rtt: tuple[float, float, float, float] | None
    """min, avg, max, mdev in ms; None when nothing came back."""

    @property
    def loss(self) -> float:
        """Percent of pings with no answer."""
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def jitter(self) -> float | None:
        """Mean difference between consecutive round trips, in ms (RFC 3550's idea of
        jitter, without its smoothing); None with fewer than two replies."""
        pairs = list(zip(self.times, self.times[1:], strict=False))
        return sum(abs(b - a) for a, b in pairs) / len(pairs) if pairs else None


def parse_ping(text: str) -> PingResult:
    counts = _COUNTS.search(text)
    if counts is None:
        raise ParseError("ping: no 'packets transmitted' line")
    times = tuple(float(t) for t in _REPLY.findall(text))
    rtt = _RTT.search(text)
    figures = (float(rtt[1]), float(rtt[2]), float(rtt[3]), float(rtt[4])) if rtt else None
    return PingResult(int(counts[1]), int(counts[2]), times, figures)
