"""Pure parsers of sshd's failed logins in syslog lines (auth.log, /var/log/secure, or
`journalctl -o short-iso`).

A failed attempt is counted once per connection (address and source port): sshd writes
several lines for one (`Invalid user`, `Failed publickey`, `Connection closed by
authenticating user ... [preauth]`), and which of them appear depends on its LogLevel and
on the method tried. Lines older than `since` (seconds since the epoch) are left out; a line
whose time cannot be read is left out too, so a file of another format never inflates counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_ISO = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")
_CLASSIC = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)\s")
_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec"
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES.split(), 1)}
_SSHD = re.compile(r"\bsshd(?:-session)?\[\d+\]: (.*)$")
_ADDR = r"(?P<addr>[0-9A-Fa-f:.]+) port (?P<port>\d+)"
_FAILURES = (
    re.compile(rf"^Failed \S+ for (?:invalid user )?(?P<user>.*?) from {_ADDR}"),
    re.compile(rf"^Invalid user (?P<user>.*?) from {_ADDR}"),
    re.compile(
        rf"^(?:Connection closed|Disconnected) by (?:authenticating|invalid) user "
        rf"(?P<user>.*?) {_ADDR} \[preauth\]"
    ),
)


@dataclass(frozen=True, slots=True)
class FailedLogin:
    """One connection that tried to log in and failed."""

    when: float
    user: str
    address: str
    port: int


def line_time(line: str, now: float) -> float | None:
    """A syslog line's time in seconds since the epoch: RFC 3339 (rsyslog's default since
    Debian 12, journalctl's short-iso), or the classic `Dec  7 21:55:00` read in UTC in the
    year that puts it at or before `now`. None when the line starts with neither."""
    if match := _ISO.match(line):
        stamp = match.group(1).replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", stamp):
            stamp = f"{stamp[:-2]}:{stamp[-2:]}"
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if match := _CLASSIC.match(line):
        month, day, hour, minute, second = match.groups()
        year = datetime.fromtimestamp(now, UTC).year
        for candidate in (year, year - 1):
            try:
                moment = datetime(candidate, _MONTHS[month], int(day), int(hour), int(minute),
                                  int(second), tzinfo=UTC)  # fmt: skip
            except (KeyError, ValueError):
                return None
            if moment.timestamp() <= now + 86400:
                return moment.timestamp()
    return None


def parse_failed_logins(text: str, since: float, now: float) -> list[FailedLogin]:
    """The failed SSH logins in `text` from `since` on, one per connection, oldest first."""
    seen: dict[tuple[str, int], FailedLogin] = {}
    for line in text.splitlines():
        sshd = _SSHD.search(line)
        if sshd is None:
            continue
        when = line_time(line, now)
        if when is None or when < since:
            continue
        for pattern in _FAILURES:
            if match := pattern.match(sshd.group(1)):
                key = (match["addr"], int(match["port"]))
                seen.setdefault(key, FailedLogin(when, match["user"], *key))
                break
    return sorted(seen.values(), key=lambda failure: failure.when)
