"""Pure parsers for the text Linux hosts give out: /proc files, `df`, `ps`, os-release.

Each function takes text and returns data. Lines it cannot read are skipped; a text with
nothing usable in it raises `ParseError`, which names what was being read. No other
exception escapes, whatever the input: the property tests hold them to that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fleetdeck.hosts.sample import CpuTimes, LoadAvg, Memory, Mount, NetCounters

DEFAULT_USER_HZ = 100  # /proc/stat ticks; fixed at 100 on every Linux architecture in use


class ParseError(ValueError):
    """The text had nothing usable in it; the message says which text and why."""


def _int(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        return None


def _float(token: str) -> float | None:
    try:
        value = float(token)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _ints(tokens: list[str]) -> list[int] | None:
    values = [_int(t) for t in tokens]
    return None if any(v is None for v in values) else [v for v in values if v is not None]


def split_sections(text: str, marker: str) -> dict[str, str]:
    """Cut a stream of `<marker>NAME` lines and the text after each into {NAME: text}."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(marker):
            current = sections.setdefault(line[len(marker) :].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def parse_proc_stat(
    text: str, user_hz: int = DEFAULT_USER_HZ
) -> tuple[CpuTimes, tuple[CpuTimes, ...]]:
    """Total and per-core CPU times (seconds) from /proc/stat."""
    total: CpuTimes | None = None
    cores: list[tuple[int, CpuTimes]] = []
    hz = user_hz if user_hz > 0 else DEFAULT_USER_HZ
    for line in text.splitlines():
        fields = line.split()
        if not fields or not fields[0].startswith("cpu"):
            continue
        ticks = _ints(fields[1:9])
        if ticks is None or not ticks:
            continue
        ticks += [0] * (8 - len(ticks))
        times = CpuTimes(*(max(t, 0) / hz for t in ticks))
        label = fields[0][3:]
        if label == "":
            total = times
        elif (index := _int(label)) is not None:
            cores.append((index, times))
    if total is None:
        raise ParseError("/proc/stat: no 'cpu' line")
    cores.sort(key=lambda pair: pair[0])
    return total, tuple(times for _, times in cores)


def parse_meminfo(text: str) -> Memory:
    """Memory and swap (bytes) from /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or not fields or (number := _int(fields[0])) is None:
            continue
        unit = fields[1].lower() if len(fields) > 1 else ""
        values[key.strip()] = max(number, 0) * (1024 if unit == "kb" else 1)
    if "MemTotal" not in values:
        raise ParseError("/proc/meminfo: no MemTotal line")
    total = values["MemTotal"]
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14: the usual estimate
        available = sum(values.get(k, 0) for k in ("MemFree", "Buffers", "Cached"))
    return Memory(
        total=total,
        available=min(available, total),
        swap_total=values.get("SwapTotal", 0),
        swap_free=min(values.get("SwapFree", 0), values.get("SwapTotal", 0)),
    )


def parse_loadavg(text: str) -> LoadAvg:
    """Load averages from /proc/loadavg."""
    values = [_float(t) for t in text.split()[:3]]
    if len(values) < 3 or any(v is None or v < 0 for v in values):
        raise ParseError(f"/proc/loadavg: expected three load figures, got {text[:40]!r}")
    one, five, fifteen = (v for v in values if v is not None)
    return LoadAvg(one, five, fifteen)


def parse_uptime(text: str) -> float:
    """Seconds since boot from /proc/uptime."""
    fields = text.split()
    value = _float(fields[0]) if fields else None
    if value is None or value < 0:
        raise ParseError(f"/proc/uptime: expected seconds since boot, got {text[:40]!r}")
    return value


def parse_net_dev(text: str) -> tuple[NetCounters, ...]:
    """Per-interface counters from /proc/net/dev."""
    nets: list[NetCounters] = []
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or "|" in line:
            continue
        numbers = _ints(rest.split()[:16])
        if not numbers:
            continue
        n = numbers + [0] * (16 - len(numbers))
        nets.append(
            NetCounters(
                name=name,
                rx_bytes=n[0],
                rx_packets=n[1],
                rx_errors=n[2],
                rx_drops=n[3],
                tx_bytes=n[8],
                tx_packets=n[9],
                tx_errors=n[10],
                tx_drops=n[11],
            )
        )
    return tuple(nets)


# `df -P` lines: the mount point is whatever follows the capacity column, spaces and all.
_DF_USAGE = re.compile(
    r"^(?P<device>\S+)\s+(?P<fstype>\S+)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+"
    r"(?P<free>-?\d+)\s+(?P<pct>\d+%|-)\s(?P<mount>.+)$"
)
_DF_INODES = re.compile(
    r"^(?P<device>\S+)\s+(?P<total>\d+|-)\s+(?P<used>\d+|-)\s+(?P<free>\d+|-)\s+"
    r"(?P<pct>\d+%|-)\s(?P<mount>.+)$"
)
# `df: '/mnt/x': Permission denied`, with ASCII or typographic quotes or none.
_DF_ERROR = re.compile(r"^df: [‘'\"]?(?P<mount>.+?)[’'\"]?: (?P<reason>[^:]+)$")


def df_errors(text: str) -> Iterator[tuple[str, str]]:
    """(mount point, reason) for each path df could not stat."""
    for line in text.splitlines():
        if match := _DF_ERROR.match(line.strip()):
            yield match["mount"], match["reason"].strip()


def parse_df_usage(text: str, block_size: int = 1024) -> tuple[Mount, ...]:
    """Space per mount from `df -PkT` (errors from its stderr may be mixed in)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        match = _DF_USAGE.match(line.rstrip("\n"))
        if not match:
            continue
        mounts.append(
            Mount(
                mountpoint=match["mount"].strip() or match["mount"],
                device=match["device"],
                fstype=match["fstype"],
                total=int(match["total"]) * block_size,
                used=int(match["used"]) * block_size,
                free=max(int(match["free"]), 0) * block_size,
            )
        )
    mounts.extend(Mount(mountpoint=m, error=reason) for m, reason in df_errors(text))
    return tuple(mounts)


def parse_df_inodes(text: str) -> dict[str, tuple[int, int]]:
    """{mount point: (inodes total, inodes used)} from `df -Pi`; filesystems without fixed
    inode tables (btrfs, some network filesystems) are left out."""
    inodes: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        match = _DF_INODES.match(line.rstrip("\n"))
        if not match or not match["total"].isdecimal() or not match["used"].isdecimal():
            continue
        total, used = int(match["total"]), int(match["used"])
        if total > 0:
            inodes[match["mount"].strip() or match["mount"]] = (total, min(used, total))
    return inodes


def parse_os_release(text: str) -> str:
    """The distribution's name from /etc/os-release: PRETTY_NAME, else NAME VERSION."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    if values.get("PRETTY_NAME"):
        return values["PRETTY_NAME"]
    return " ".join(v for v in (values.get("NAME"), values.get("VERSION")) if v) or "Linux"


def parse_pid_stat(line: str) -> tuple[int, str, int, int, int] | None:
    """(pid, comm, utime+stime ticks, start ticks, rss pages) from one /proc/PID/stat line.

    The command name sits in parentheses and may itself hold spaces and parentheses, so the
    fields are counted from the last closing parenthesis.
    """
    head, sep, tail = line.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    pid = _int(pid_text.strip())
    fields = tail.split()
    if not sep or pid is None or len(fields) < 22:
        return None
    numbers = _ints([fields[11], fields[12], fields[19], fields[21]])
    if numbers is None:
        return None
    utime, stime, start, rss = numbers
    return pid, comm, utime + stime, start, max(rss, 0)


def parse_ps_users(text: str) -> dict[int, tuple[str, str]]:
    """{pid: (user, command line)} from `ps -eo pid=,user:32=,args=`."""
    found: dict[int, tuple[str, str]] = {}
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) >= 2 and (pid := _int(fields[0])) is not None:
            found[pid] = (fields[1], fields[2] if len(fields) > 2 else "")
    return found
