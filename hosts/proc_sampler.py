"""`ProcSampler`: samples any Linux host from the text of /proc and `df`.

The host runs fixed POSIX sh scripts (below) that print the files between markers; the pure
parsers of `hosts.procfs` turn the text into a `Sample`. Where the scripts run is a
`ScriptRunner`: once per call through any `Shell` (`ShellScripts`), or on one long-lived
remote process per host (`hosts.stream.StreamScripts`), which costs the remote sshd no new
channel per sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from hosts import procfs
from hosts.sample import HostInfo, Mount, ProcessInfo, Sample
from hosts.samplers import SampleError, SampleGarbage, keep_mount
from hosts.shell import Shell, ShellError

MARKER = "@@fleetdeck:"

DF_TIMEOUT = 4  # seconds: df stalls on a hung NFS mount, and would stall the whole sample

# One round trip, POSIX sh only. Section names are fixed words; nothing here comes from input.
SAMPLE_SCRIPT = f"""LC_ALL=C; export LC_ALL
m() {{ printf '\\n{MARKER}%s\\n' "$1"; }}
m hz; getconf CLK_TCK 2>/dev/null
m page; getconf PAGESIZE 2>/dev/null
m stat; cat /proc/stat
m meminfo; cat /proc/meminfo
m loadavg; cat /proc/loadavg
m uptime; cat /proc/uptime
m netdev; cat /proc/net/dev
m diskstats; cat /proc/diskstats
t=; command -v timeout >/dev/null 2>&1 && t="timeout {DF_TIMEOUT}"
m df; $t df -PkT 2>&1
m dfstatus; echo $?
m dfi; $t df -Pi 2>&1
m end
"""
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
        inodes = procfs.parse_df_inodes(s.get("dfi", ""))
        mounts = []
        if s.get("dfstatus", "").strip() == "124":  # timeout(1) killed df
            mounts.append(
                Mount(
                    "(df)",
                    error=f"df did not finish within {DF_TIMEOUT} s: a mount is hung, "
                    "and the mounts listed after it are missing",
                )
            )
        for mount in procfs.parse_df_usage(s.get("df", "")):
            if mount.mountpoint in inodes:
                total, used = inodes[mount.mountpoint]
                mount = replace(mount, inodes_total=total, inodes_used=used)
            if keep_mount(mount):
                mounts.append(mount)
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
            disks=procfs.parse_diskstats(s.get("diskstats", "")),
            mounts=tuple(mounts),
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
