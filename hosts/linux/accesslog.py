"""A pure parser of web servers' access logs in the common and combined formats (nginx's and
Apache's defaults): the client address, the time and the status of each request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_LINE = re.compile(
    r'^(?P<addr>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?:[^"\\]|\\.)*" (?P<status>\d{3}) '
)


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the access log tells it."""

    when: float
    address: str
    status: int


def parse_access_log(text: str, since: float) -> list[Request]:
    """The requests logged from `since` (seconds since the epoch) on; lines of another
    format, or whose time cannot be read, are left out."""
    found: list[Request] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        try:
            when = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z").timestamp()
        except ValueError:
            continue
        if when >= since:
            found.append(Request(when, match["addr"], int(match["status"])))
    return found
