"""Limits (runbook R10): how close the host runs to the kernel's limits on files and
connections, each told as current against configured, with the sysctl or limit to change.

- per process: open descriptors against its soft `Max open files` (the top consumers);
- system-wide: fs.file-nr against fs.file-max; nf_conntrack_count against nf_conntrack_max;
- listen queues: overflows and SYN drops growing between two readings of /proc/net/netstat
  (the counters nstat shows), and each listening socket's accept queue (ss Recv-Q) against
  its backlog (Send-Q: the listen() argument capped by net.core.somaxconn).

Nothing here changes a limit: the findings name the setting, and a change goes through the
operator (or, later, a gated fix).
"""

from __future__ import annotations

import asyncio

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import evidence as evidence_of
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status, printable
from fleetdeck.checks.services.probe_config import PERCENT_USED, ProbeSettings
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.linux.limits import (
    parse_fd_counts,
    parse_file_nr,
    parse_grep_values,
    parse_process_limits,
)
from fleetdeck.hosts.linux.netstat import parse_proc_netstat, parse_ss_listeners
from fleetdeck.hosts.shell import Shell

DOMAIN = "services"
FDS_ID, FILES_ID, CONNTRACK_ID, QUEUES_ID = (
    "limits.fds",
    "limits.files",
    "limits.conntrack",
    "limits.listen",
)
TOP = 10
"""How many of the processes holding the most descriptors are read and shown."""
SPACING = 1.0
"""Seconds between the two counter readings that tell growing drops from old ones."""
FILE_NR = "/proc/sys/fs/file-nr"
CONNTRACK_COUNT = "/proc/sys/net/netfilter/nf_conntrack_count"
CONNTRACK_MAX = "/proc/sys/net/netfilter/nf_conntrack_max"
SOMAXCONN = "/proc/sys/net/core/somaxconn"
SYN_BACKLOG = "/proc/sys/net/ipv4/tcp_max_syn_backlog"
SYSCTLS = (FILE_NR, CONNTRACK_COUNT, CONNTRACK_MAX, SOMAXCONN, SYN_BACKLOG)
DROPS = {
    "TcpExtListenOverflows": "accept-queue overflows",
    "TcpExtListenDrops": "SYNs dropped at listeners",
    "TcpExtTCPReqQFullDrop": "SYNs dropped for a full SYN queue",
}

# The descriptors of every process, counted per PID on the host (one line each, whatever the
# number of descriptors), and the names and limits of the PIDs given.
_COUNT_FDS = "find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null | cut -d/ -f3 | uniq -c"
_READ_LIMITS = (
    'for p; do printf "==> %s %s\\n" "$p" "$(cat /proc/$p/comm 2>/dev/null)"; '
    "cat /proc/$p/limits 2>/dev/null; done"
)


def _pct(used: int, limit: int) -> float:
    return 100.0 * used / limit if limit > 0 else 0.0


async def fd_findings(shell: Shell, limit: Limit) -> list[Finding]:
    """Processes holding the most descriptors against their soft limit."""
    counted = await run_command(shell, ("sh", "-c", _COUNT_FDS), timeout=20)
    counts = parse_fd_counts(counted.stdout)
    if not counts:
        raise StepFailed(f"no process's descriptors could be counted: {counted.stderr.strip()}")
    top = sorted(counts, key=lambda pid: -counts[pid])[:TOP]
    read = await run_command(shell, ("sh", "-c", _READ_LIMITS, "sh", *map(str, top)))
    limits = parse_process_limits(read.exact_stdout)
    proof = (Evidence(_COUNT_FDS, counted.stdout[:2000]), evidence_of(read, 2000))
    found: list[Finding] = []
    rows: list[str] = []
    for pid in top:
        process = limits.get(pid)
        if process is None:  # ended between the two readings
            continue
        name = printable(process.name, one_line=True)
        held = counts[pid]
        soft = process.soft
        rows.append(f"{name}[{pid}] {held}/{soft if soft is not None else 'unlimited'}")
        status = limit.grade(_pct(held, soft)) if soft else Status.OK
        if status is not Status.OK and soft:
            hard = process.hard if process.hard is not None else "unlimited"
            found.append(Finding(
                FDS_ID, status, f"{name}[{pid}]",
                f"holds {held} of its {soft} open files ({_pct(held, soft):.0f}%); raise its"
                f" soft limit (LimitNOFILE= in its unit, ulimit -n where it starts; hard"
                f" limit {hard})",
                proof,
            ))  # fmt: skip
    if not found:
        summary = "top open files/soft limit: " + ", ".join(rows[:5])
        found.append(Finding(FDS_ID, Status.OK, "open files per process", summary, proof))
    return found


def system_findings(
    values: dict[str, str], limits: ProbeSettings, proof: Evidence
) -> list[Finding]:
    """fs.file-nr against fs.file-max, conntrack entries against the table's size."""
    found: list[Finding] = []
    if FILE_NR not in values:
        found.append(Finding(FILES_ID, Status.UNKNOWN, "fs.file-nr", f"{FILE_NR} unread", (proof,)))
    else:
        files = parse_file_nr(values[FILE_NR])
        pct = _pct(files.allocated, files.maximum)
        status = (limits.limits.file_nr or PERCENT_USED).grade(pct)
        summary = f"{files.allocated} of fs.file-max {files.maximum} file handles ({pct:.1f}%)"
        if status is not Status.OK:
            summary += "; raise fs.file-max (sysctl -w fs.file-max=N, and in /etc/sysctl.d)"
        found.append(Finding(FILES_ID, status, "fs.file-nr", summary, (proof,)))
    count, size = values.get(CONNTRACK_COUNT, ""), values.get(CONNTRACK_MAX, "")
    if not (count.isdecimal() and size.isdecimal()):
        summary = "connection tracking is not loaded here (no nf_conntrack table)"
        found.append(Finding(CONNTRACK_ID, Status.OK, "conntrack", summary, (proof,)))
    else:
        pct = _pct(int(count), int(size))
        status = (limits.limits.conntrack or PERCENT_USED).grade(pct)
        summary = f"{count} of nf_conntrack_max {size} entries ({pct:.1f}%)"
        if status is not Status.OK:
            summary += (
                "; new connections are dropped when full: raise net.netfilter.nf_conntrack_max"
            )
        found.append(Finding(CONNTRACK_ID, status, "conntrack", summary, (proof,)))
    return found


async def queue_findings(shell: Shell, values: dict[str, str]) -> list[Finding]:
    """Drops growing between two counter readings, and listen queues against their backlog."""
    first = await run_command(shell, ("cat", "/proc/net/netstat"))
    await asyncio.sleep(SPACING)
    second = await run_command(shell, ("cat", "/proc/net/netstat"))
    listing = await run_command(shell, ("ss", "-ltnH"))
    if not (first.ok and second.ok):
        raise StepFailed(f"/proc/net/netstat unread: {(first.stderr or second.stderr).strip()}")
    before, after = parse_proc_netstat(first.stdout), parse_proc_netstat(second.stdout)
    somaxconn = values.get(SOMAXCONN, "?")
    syn_backlog = values.get(SYN_BACKLOG, "?")
    proof = (evidence_of(second, 2000), evidence_of(listing, 2000))
    grown = {
        name: after[name] - before[name]
        for name in DROPS
        if name in after and name in before and after[name] > before[name]
    }
    found: list[Finding] = []
    if grown:
        what = ", ".join(f"{n} {DROPS[name]}" for name, n in grown.items())
        found.append(Finding(
            QUEUES_ID, Status.CRIT, "listen drops",
            f"{what} in {SPACING:g} s: a listener's queue is full; raise its backlog (the"
            f" service's listen backlog, capped by net.core.somaxconn={somaxconn};"
            f" net.ipv4.tcp_max_syn_backlog={syn_backlog}) or make it accept faster",
            proof,
        ))  # fmt: skip
    listeners = parse_ss_listeners(listing.stdout) if listing.ok else []
    for listener in listeners:
        if listener.backlog and listener.queued >= listener.backlog:
            where = printable(listener.local, one_line=True)
            found.append(Finding(
                QUEUES_ID, Status.CRIT, f"listen {where}",
                f"accept queue full: {listener.queued} waiting, backlog {listener.backlog}"
                f" (net.core.somaxconn={somaxconn} caps it): the service is not accepting",
                proof,
            ))  # fmt: skip
    if not found:
        if not listing.ok:
            summary = f"no drops growing; ss unread ({listing.stderr.strip()[:80]})"
            return [Finding(QUEUES_ID, Status.UNKNOWN, "listen queues", summary, proof)]
        deepest = max(listeners, key=lambda x: x.queued / max(x.backlog, 1), default=None)
        queue = ""
        if deepest is not None:
            where = printable(deepest.local, one_line=True)
            queue = f"; deepest queue {deepest.queued}/{deepest.backlog} at {where}"
        summary = f"no drops growing; {len(listeners)} listeners, somaxconn {somaxconn}{queue}"
        found.append(Finding(QUEUES_ID, Status.OK, "listen queues", summary, proof))
    return found


async def limits_findings(
    ctx: CheckContext, shell: Shell, settings: ProbeSettings
) -> list[Finding]:
    """Every limit this module reads, one host."""
    read = await run_command(shell, ("grep", "-s", "-H", ".", *SYSCTLS))
    values = parse_grep_values(read.stdout)
    found = await fd_findings(shell, settings.limits.fds or PERCENT_USED)
    found += system_findings(values, settings, evidence_of(read))
    found += await queue_findings(shell, values)
    return found


def limits_check(settings: ProbeSettings) -> ShellCheck:
    """The limits checks (`limits.fds`, `limits.files`, `limits.conntrack`, `limits.listen`)."""

    async def body(ctx: CheckContext, shell: Shell) -> list[Finding]:
        return await limits_findings(ctx, shell, settings)

    return ShellCheck("limits", "Limits on files and connections", body, DOMAIN)
