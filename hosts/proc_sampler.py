"""`ProcSampler`: samples any Linux host from the text of /proc and `df`.

The host runs fixed POSIX sh scripts (below) that print the files between markers; the pure
parsers of `hosts.linux.procfs` turn the text into a `Sample`. Where the scripts run is a
`ScriptRunner`: once per call through any `Shell` (`ShellScripts`), or on one long-lived
remote process per host (`hosts.stream.StreamScripts`), which costs the remote sshd no new
channel per sample.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from fleetdeck.hosts.linux import procfs
from fleetdeck.hosts.linux.diskstats import disk_counters
from fleetdeck.hosts.sample import HostInfo, Mount, ProcessInfo, Sample
from fleetdeck.hosts.samplers import SampleError, SampleGarbage, keep_mount
from fleetdeck.hosts.shell import Shell, ShellError

MARKER = "@@fleetdeck:"

DF_TIMEOUT = 3
"""Seconds one df may take (then TERM, and KILL a second later: a process waiting on a hard
NFS mount ignores TERM). Local filesystems and each network or FUSE mount get their own df,
side by side, so a hung mount costs one bound, not the whole sample (sampled within 10 s)."""

NETWORK_FSTYPES = (
    "fuse|fuse\\..*|fuseblk|9p|nfs|nfs4|cifs|smb3|smbfs|ceph|glusterfs|lustre"
    "|acfs|afs|auristorfs|coda|fhgfs|gpfs|ibrix|ocfs2|vxfs"
)
"""Filesystem types (an awk pattern) asked one mount at a time, each under its own bound:
network filesystems and FUSE (s3fs, rclone, sshfs…), whose daemon or server may never answer.
They are left out of the local `df -l -x TYPE`, which then never touches them (df does not
stat an excluded or remote mount)."""

# The local df and the separate ones run at the same time. The separate ones (in the
# background) each print their whole record in one printf, small enough to be one atomic
# write to the pipe; the main shell prints nothing until they are all done, so no two
# records can mix. Their sections repeat and add up: `netdf` and `netdfi` have df's usual
# rows, `dfhung` one `MOUNTPOINT SOURCE` line (as /proc/mounts escapes them) per mount whose
# df was killed at its bound. `df`, `dfstatus` and `dfi` are the local df's, as they always
# were; busybox's df, without -l and -x, lists everything there instead.
_DF_PART = r"""t=; command -v timeout >/dev/null 2>&1 && t="timeout -k 1 @SECONDS@"
awk '$3 != "autofs" && ($1 ~ /:/ || $1 ~ /^\/\// || $3 ~ /^(@TYPES@)$/) { print $2, $1 }' \
  /proc/mounts 2>/dev/null | { while read -r mp src; do
  case $mp in
    *\\*) p=$(printf '%s' "$mp" | sed 's/\\/\\0/g'); p=$(printf '%bx' "$p"); p=${p%x} ;;
    *) p=$mp ;;
  esac
  ( o=$($t df -PkT -- "$p" 2>&1); s=$?
    case $s in
      124|137|143) printf '\n@MARKER@dfhung\n%s %s\n' "$mp" "$src" ;;
      0) i=$($t df -Pi -- "$p" 2>&1)
         printf '\n@MARKER@netdf\n%s\n@MARKER@netdfi\n%s\n' "$o" "$i" ;;
      *) printf '\n@MARKER@netdf\n%s\n' "$o" ;;
    esac ) &
done; wait; } &
set -- -l $(awk '$3 ~ /^(@TYPES@)$/ { print "-x", $3 }' /proc/mounts 2>/dev/null)
o=$($t df -PkT "$@" 2>&1); s=$?
case $o in *'invalid option'*|*'unrecognized option'*) set --; o=$($t df -PkT 2>&1); s=$? ;; esac
i=; case $s in 124|137|143) ;; *) i=$($t df -Pi "$@" 2>&1) ;; esac
wait
m df; printf '%s\n' "$o"
m dfstatus; echo $s
m dfi; printf '%s\n' "$i"
m end
"""
_DF_PART = (
    _DF_PART.replace("@SECONDS@", str(DF_TIMEOUT))
    .replace("@TYPES@", NETWORK_FSTYPES)
    .replace("@MARKER@", MARKER)
)

# One round trip, POSIX sh only. Section names are fixed words; nothing here comes from input.
SAMPLE_SCRIPT = (
    f"""LC_ALL=C; export LC_ALL
m() {{ printf '\\n{MARKER}%s\\n' "$1"; }}
m hz; getconf CLK_TCK 2>/dev/null
m page; getconf PAGESIZE 2>/dev/null
m stat; cat /proc/stat
m meminfo; cat /proc/meminfo
m loadavg; cat /proc/loadavg
m uptime; cat /proc/uptime
m netdev; cat /proc/net/dev
m diskstats; cat /proc/diskstats
"""
    + _DF_PART
)
PROCESS_SCRIPT = f"""LC_ALL=C; export LC_ALL
printf '\\n{MARKER}pidstat\\n'
for f in /proc/[0-9]*/stat; do read -r line < "$f" 2>/dev/null && printf '%s\\n' "$line"; done
printf '\\n{MARKER}ps\\n'; ps -eo pid=,user:32=,args=
"""
DESCRIBE_SCRIPT = f"""printf '\\n{MARKER}hostname\\n'; uname -n
printf '\\n{MARKER}kernel\\n'; uname -r
printf '\\n{MARKER}os\\n'; cat /etc/os-release 2>/dev/null
printf '\\n{MARKER}uptime\\n'; cat /proc/uptime
"""
KILLED = frozenset({"124", "137", "143"})
"""How a df stopped at its bound ends: timeout(1)'s 124, 137 after its KILL, 143 where
busybox's timeout runs the command itself and it dies of the TERM."""
QUIET_ERRORS = ("Permission denied", "No such file or directory")
"""What df, listing every mount, passes over in silence (another user's FUSE mount, one gone
since): the separate df of one mount reports them, so they are dropped the same way."""


def parse_mounts(sections: Mapping[str, str]) -> tuple[Mount, ...]:
    """The mounts of one sample: the local df's rows, each network or FUSE mount's own, and
    those that did not answer in time, with inodes where df gave them; each mount once."""
    inodes = {
        **procfs.parse_df_inodes(sections.get("netdfi", "")),
        **procfs.parse_df_inodes(sections.get("dfi", "")),
    }
    found: list[Mount] = []
    if sections.get("dfstatus", "").strip() in KILLED:
        why = f"df of the local filesystems did not finish within {DF_TIMEOUT} s: one of them "
        found.append(Mount("(df)", error=why + "is hung, so none of them could be listed"))
    found += procfs.parse_df_usage(sections.get("df", ""))
    found += (
        mount
        for mount in procfs.parse_df_usage(sections.get("netdf", ""))
        if mount.error not in QUIET_ERRORS
    )
    for line in sections.get("dfhung", "").splitlines():
        mountpoint, _, source = line.partition(" ")
        if mountpoint:
            why = f"df did not answer within {DF_TIMEOUT} s: hung mount of {_unescape(source)}"
            found.append(Mount(_unescape(mountpoint), device=_unescape(source), error=why))
    mounts: dict[str, Mount] = {}
    for mount in found:
        if mount.mountpoint in inodes and mount.error is None:
            total, used = inodes[mount.mountpoint]
            mount = replace(mount, inodes_total=total, inodes_used=used)
        if keep_mount(mount):
            mounts.setdefault(mount.mountpoint, mount)
    return tuple(mounts.values())


def _unescape(field: str) -> str:
    """A /proc/mounts field as it is: the kernel writes space, tab, newline and backslash
    as octal escapes (`\\040`)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


SCRIPTS = {"sample": SAMPLE_SCRIPT, "processes": PROCESS_SCRIPT, "describe": DESCRIBE_SCRIPT}


@runtime_checkable
class ScriptRunner(Protocol):
    """Runs one of the named `SCRIPTS` on a host and returns what it printed."""

    @property
    def host(self) -> str: ...

    async def run_script(self, name: str, timeout: float) -> str:
        """Raise `SampleError` naming the host when the script cannot run."""
        ...


class ShellScripts:
    """Runs each script as its own command (`sh -c`) through a `Shell`."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    @property
    def host(self) -> str:
        return self.shell.host

    async def run_script(self, name: str, timeout: float) -> str:
        try:
            result = await self.shell.run(["sh", "-c", SCRIPTS[name]], timeout=timeout)
        except ShellError as error:
            raise SampleError(str(error)) from None
        if MARKER not in result.stdout:
            detail = (result.stderr.strip() or f"exit status {result.exit_status}")[:200]
            raise SampleError(f"{self.host}: the {name} script printed nothing usable: {detail}")
        return result.stdout


class ProcSampler:
    """Samples a Linux host by reading /proc and df, through a `Shell` or a `ScriptRunner`."""

    def __init__(
        self,
        source: Shell | ScriptRunner,
        processes: bool = False,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scripts = source if isinstance(source, ScriptRunner) else ShellScripts(source)
        self.processes = processes
        self.timeout = timeout
        self.clock = clock

    @property
    def host(self) -> str:
        return self.scripts.host

    async def _sections(self, name: str) -> dict[str, str]:
        text = await self.scripts.run_script(name, self.timeout)
        return procfs.split_sections(text, MARKER)

    async def describe(self) -> HostInfo:
        s = await self._sections("describe")
        try:
            uptime = procfs.parse_uptime(s.get("uptime", ""))
        except procfs.ParseError:
            uptime = 0.0
        return HostInfo(
            hostname=s.get("hostname", "").strip() or self.host,
            os=procfs.parse_os_release(s.get("os", "")),
            kernel=s.get("kernel", "").strip() or "?",
            boot_time=self.clock() - uptime,
        )

    async def sample(self) -> Sample:
        at = self.clock()
        s = await self._sections("sample")
        if "end" not in s:
            raise SampleGarbage(f"{self.host}: the sampling script stopped part way")
        hz = procfs._int(s.get("hz", "").strip()) or procfs.DEFAULT_USER_HZ
        try:
            cpu, cores = procfs.parse_proc_stat(s.get("stat", ""), hz)
            memory = procfs.parse_meminfo(s.get("meminfo", ""))
            load = procfs.parse_loadavg(s.get("loadavg", ""))
        except procfs.ParseError as error:
            raise SampleGarbage(f"{self.host}: unreadable answer: {error}") from None
        mounts = parse_mounts(s)
        processes = None
        if self.processes:
            page = procfs._int(s.get("page", "").strip()) or 4096
            processes = await self._processes(hz, page)
        return Sample(
            at=at,
            cpu=cpu,
            cores=cores,
            memory=memory,
            load=load,
            nets=procfs.parse_net_dev(s.get("netdev", "")),
            disks=disk_counters(s.get("diskstats", "")),
            mounts=mounts,
            processes=processes,
        )

    async def _processes(self, hz: int, page: int) -> tuple[ProcessInfo, ...]:
        s = await self._sections("processes")
        users = procfs.parse_ps_users(s.get("ps", ""))
        found = []
        for line in s.get("pidstat", "").splitlines():
            parsed = procfs.parse_pid_stat(line)
            if parsed is None:
                continue
            pid, comm, ticks, start, rss = parsed
            user, args = users.get(pid, ("?", ""))
            found.append(
                ProcessInfo(
                    pid=pid,
                    user=user,
                    name=comm,
                    command=args or f"[{comm}]",
                    cpu_seconds=ticks / hz,
                    rss=rss * page,
                    started=start / hz,
                )
            )
        return tuple(found)
