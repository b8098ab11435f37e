"""Deleted files held open that must not be truncated (shared memory, memory-mapped files),
SMART devices behind a RAID controller, and a RAID scrub: the cases the first storage steps
got wrong."""

from __future__ import annotations

import mmap
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.storage.wizard import DELETED, RAID, SMART
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import CommandResult, LocalShell, Shell

from loopfs import MakeLoopFs
from loopfs import loopfs as loopfs

HOST = socket.gethostname()
DATA = Path(__file__).parent / "data"

# A child that maps the file it is given and then waits: the mapping lives as long as it.
MAPPER = """
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0)
os.unlink(sys.argv[1])
print("mapped", flush=True)
time.sleep(300)
"""


def context(shell: Shell) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, {})


@pytest.fixture
def mapped_file(loopfs: MakeLoopFs) -> Iterator[Path]:
    fs = loopfs(size_mib=32)
    path = fs.mountpoint / "cache.bin"
    path.write_bytes(bytes(4 << 20))
    child = subprocess.Popen(
        ["python3", "-c", MAPPER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "mapped"
        yield path
    finally:
        child.kill()
        child.wait()


async def test_a_memory_mapped_deleted_file_is_reported_but_never_offered_a_truncate(
    mapped_file: Path,
) -> None:
    found = [
        f for f in await DELETED.run(context(LocalShell(HOST))) if str(mapped_file) in f.summary
    ]
    assert len(found) == 1, found
    (finding,) = found
    assert finding.status is Status.WARN and finding.fixes == ()
    assert "mapped into memory" in finding.summary and "SIGBUS" in finding.summary


async def test_shared_memory_is_not_a_deleted_file() -> None:
    fd = os.memfd_create("fleetdeck-test-memfd")
    os.ftruncate(fd, 8 << 20)
    region = mmap.mmap(fd, 8 << 20)
    region[:4] = b"data"
    try:
        found = await DELETED.run(context(LocalShell(HOST)))
        assert not any("memfd:" in f.summary for f in found), found
    finally:
        region.close()
        os.close(fd)


class Recorded:
    """Answers `smartctl` and `cat /proc/mdstat` from recorded texts; nothing else."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str]]) -> None:
        self.answers = answers
        self.ran: list[tuple[str, ...]] = []

    @property
    def host(self) -> str:
        return "db-07"

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        self.ran.append(tuple(argv))
        status, out = self.answers.get(tuple(argv), (1, ""))
        return CommandResult(tuple(argv), status, out, "" if status == 0 else "not recorded", 0.0)


SCAN = (
    "/dev/sda -d scsi # /dev/sda, SCSI device\n"
    "/dev/bus/0 -d megaraid,0 # /dev/bus/0 [megaraid_disk_00], SCSI device\n"
    "/dev/bus/0 -d megaraid,1 # /dev/bus/0 [megaraid_disk_01], SCSI device\n"
)


async def test_smart_asks_each_disk_behind_a_raid_controller_with_its_type() -> None:
    health = "=== START OF READ SMART DATA SECTION ===\nSMART Health Status: OK\n"
    standby = "Device is in STANDBY mode, exit(2)\n"
    shell = Recorded(
        {
            ("smartctl", "--scan"): (0, SCAN),
            ("smartctl", "-H", "-A", "-n", "standby", "/dev/sda", "-d", "scsi"): (0, health),
            ("smartctl", "-H", "-A", "-n", "standby", "/dev/bus/0", "-d", "megaraid,0"): (
                0,
                health.replace("OK", "FAILED!"),
            ),
            ("smartctl", "-H", "-A", "-n", "standby", "/dev/bus/0", "-d", "megaraid,1"): (
                2,
                standby,
            ),
        }
    )
    found: dict[str, Finding] = {f.target: f for f in await SMART.run(context(shell))}
    assert set(found) == {
        "/dev/sda -d scsi",
        "/dev/bus/0 -d megaraid,0",
        "/dev/bus/0 -d megaraid,1",
    }
    assert found["/dev/sda -d scsi"].status is Status.OK
    assert found["/dev/bus/0 -d megaraid,0"].status is Status.CRIT
    asleep = found["/dev/bus/0 -d megaraid,1"]
    assert asleep.status is Status.OK and "standby, not woken" in asleep.summary


async def test_a_raid_scrub_of_a_healthy_mirror_is_ok() -> None:
    text = (DATA / "mdstat" / "raid1-check.txt").read_text()
    shell = Recorded({("cat", "/proc/mdstat"): (0, text)})
    (finding,) = await RAID.run(context(shell))
    assert finding.status is Status.OK, finding.summary
    assert "2 of 2 members working" in finding.summary and "check 7.5 %" in finding.summary


@pytest.fixture
def ro_bind(loopfs: MakeLoopFs, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A directory of a loop filesystem bound read-only elsewhere (a container's :ro)."""
    fs = loopfs(size_mib=16)
    (fs.mountpoint / "config").mkdir()
    target = tmp_path / "ro view"
    target.mkdir()
    subprocess.run(["mount", "--bind", str(fs.mountpoint / "config"), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        yield fs.mountpoint, target
    finally:
        subprocess.run(["umount", str(target)], check=True)


async def test_a_read_only_bind_mount_is_on_purpose_and_offered_nothing(
    ro_bind: tuple[Path, Path],
) -> None:
    """A container's `:ro` volume is a read-only bind of a directory: OK, no remount."""
    from fleetdeck.checks.storage.mounts import READONLY

    mountpoint, target = ro_bind
    found = {f.target: f for f in await READONLY.run(context(LocalShell(HOST)))}
    view = found[str(target)]
    assert view.status is Status.OK and view.fixes == ()
    assert view.summary.startswith("read-only on purpose: a read-only bind mount of /config")
    assert found[str(mountpoint)].summary == "read-write"


async def test_a_step_with_longer_bounds_of_its_own_is_not_cut_at_the_wizards_limit() -> None:
    """A listing bounded at 60 s must not end as "did not finish within 30 s": a step may
    carry its own limit. Here a real 0.5 s command under a 0.2 s wizard limit."""
    from fleetdeck.checks.hostcheck import ShellCheck
    from fleetdeck.checks.hostcheck import run as run_command
    from fleetdeck.checks.wizards import Step, Wizard, WizardRun

    async def slow(ctx: CheckContext, shell: Shell) -> list[Finding]:
        await run_command(shell, ("sleep", "0.5"))
        return [Finding("t.slow", Status.OK, ctx.host, "finished")]

    check = ShellCheck("t.slow", "Slow", slow, "test")
    for step, said in (
        (Step(check, ""), "did not finish"),
        (Step(check, "", timeout=5), "finished"),
    ):
        run = WizardRun(Wizard("test", "t", (step,)), context(LocalShell(HOST)), timeout=0.2)
        await run.run()
        (finding,) = run.results[0].findings
        assert said in finding.summary, finding.summary
