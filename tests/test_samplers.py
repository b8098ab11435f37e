"""Both samplers see this machine the same way: psutil, and /proc read through a Shell.

The /proc sampler is what remote hosts will use, so it must agree with psutil here, where
both can look at the same kernel within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetdeck.hosts.metrics import rates
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.samplers import PsutilSampler, SampleError
from fleetdeck.hosts.shell import LocalShell


async def _pair() -> tuple:  # type: ignore[type-arg]
    local, proc = PsutilSampler(processes=True), ProcSampler(LocalShell(), processes=True)
    first = await asyncio.gather(local.sample(), proc.sample())
    burn_until = asyncio.get_running_loop().time() + 1.0
    while asyncio.get_running_loop().time() < burn_until:  # some CPU for both to see
        sum(range(10_000))
        await asyncio.sleep(0)
    second = await asyncio.gather(local.sample(), proc.sample())
    return first, second


async def test_psutil_and_proc_samplers_agree_on_this_machine() -> None:
    (l1, p1), (l2, p2) = await _pair()
    assert p2.core_count == l2.core_count
    assert p2.memory.total == l2.memory.total
    assert p2.memory.available == pytest.approx(l2.memory.available, rel=0.05)
    assert p2.memory.swap_total == l2.memory.swap_total
    assert p2.load.fifteen == pytest.approx(l2.load.fifteen, abs=0.2)

    assert {m.mountpoint for m in p2.mounts} == {m.mountpoint for m in l2.mounts}
    local_mounts = {m.mountpoint: m for m in l2.mounts}
    for mount in p2.mounts:
        other = local_mounts[mount.mountpoint]
        assert mount.total == pytest.approx(other.total, rel=0.01, abs=8192)
        assert mount.used == pytest.approx(other.used, rel=0.02, abs=64 * 1024**2)
        if other.inodes_total:
            assert mount.inodes_total == other.inodes_total

    assert {n.name for n in p2.nets} == {n.name for n in l2.nets}
    assert {d.name for d in p2.disks} >= {d.name for d in l2.disks}

    lr, pr = rates(l1, l2), rates(p1, p2)
    assert lr is not None and pr is not None
    assert pr.cpu == pytest.approx(lr.cpu, abs=15)
    assert len(pr.cores) == len(lr.cores)

    assert p2.processes is not None and l2.processes is not None
    proc_pids = {p.pid for p in p2.processes}
    local_pids = {p.pid for p in l2.processes}
    assert len(proc_pids & local_pids) >= 0.8 * len(local_pids)
    local_users = {p.pid: p.user for p in l2.processes}
    same_user = [p for p in p2.processes if local_users.get(p.pid) == p.user]
    assert len(same_user) >= 0.8 * len(proc_pids & local_pids)


async def test_both_samplers_describe_this_host_alike() -> None:
    a = await PsutilSampler().describe()
    b = await ProcSampler(LocalShell()).describe()
    assert (a.hostname, a.os, a.kernel) == (b.hostname, b.os, b.kernel)
    assert b.boot_time == pytest.approx(a.boot_time, abs=5)


async def test_a_host_without_a_shell_gives_a_sample_error_naming_it() -> None:
    broken = ProcSampler(LocalShell("edge-9", env={"PATH": "/nonexistent"}))
    with pytest.raises(SampleError, match=r"edge-9: sh -c .*No such file"):
        await broken.sample()


def test_a_device_mapper_mount_is_matched_to_its_kernel_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """LVM and LUKS mounts name /dev/mapper/... while /proc/diskstats says dm-N: the link
    between them is what the Disks pane needs for read and write rates."""
    from fleetdeck.hosts.samplers import kernel_disk_name

    loop = next(p for p in sorted(__import__("glob").glob("/dev/loop[0-9]*")))
    link = tmp_path / "vg-root"
    link.symlink_to(loop)
    assert kernel_disk_name(loop) == loop.rsplit("/", 1)[1]
    assert kernel_disk_name("tmpfs") == ""
    # A /dev path that is a link resolves to what it points at.
    devlink = f"/dev/fleetdeck-test-{tmp_path.name}"
    import os

    os.symlink(loop, devlink)
    try:
        assert kernel_disk_name(devlink) == loop.rsplit("/", 1)[1]
    finally:
        os.unlink(devlink)


def test_a_hung_mount_is_unknown_and_never_holds_up_the_exit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A hard NFS mount that stops answering blocks statvfs for ever. Here statvfs of one
    mount sleeps far past the timeout: that mount must read as hung within ~2 s, the others
    as usual, and the program must still exit at once (a stuck worker thread may not keep
    `fleetdeck check` or `q` waiting)."""
    import subprocess
    import sys
    import time

    script = tmp_path / "hung.py"
    script.write_text(
        "import asyncio, os, time\n"
        "from fleetdeck.hosts.samplers import PsutilSampler\n"
        "def stat(path):\n"
        "    if path == '/':\n"
        "        time.sleep(60)\n"
        "    return os.statvfs(path)\n"
        "sample = asyncio.run(PsutilSampler(statvfs=stat).sample())\n"
        "for m in sample.mounts:\n"
        "    print(repr(m.mountpoint), m.error)\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 10
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert "did not answer within 2 s" in lines["'/'"]
    assert any(v == "None" for k, v in lines.items() if k != "'/'")


async def test_statvfs_threads_are_kept_for_the_next_sample_and_a_hung_one_is_left_alone() -> None:
    """Each second's statvfs of every mount runs on daemon threads that are kept, not one
    new thread per mount per sample (which cost an idle console more than the calls); a
    mount that hangs keeps its thread, and the others go on without it."""
    import threading

    threads: set[threading.Thread] = set()
    hang = threading.Event()
    release = threading.Event()

    def stat(path: str) -> os.statvfs_result:
        threads.add(threading.current_thread())
        if path == "/" and hang.is_set():
            release.wait(30)
        return os.statvfs(path)

    sampler = PsutilSampler(statvfs=stat)
    try:
        samples = [await sampler.sample() for _ in range(3)]
        mounts = {m.mountpoint for m in samples[0].mounts}
        assert "/" in mounts
        assert len(threads) <= len(mounts), "new threads for each sample"
        hang.set()
        for _ in range(2):  # the hung one's thread stays busy; the others still answer
            sample = await sampler.sample()
            root = next(m for m in sample.mounts if m.mountpoint == "/")
            assert root.error is not None and "2 s" in root.error
            others = [m for m in sample.mounts if m.mountpoint != "/"]
            assert others and all(m.error is None for m in others)
    finally:
        release.set()


@contextlib.contextmanager
def _never_answering_mount(mountpoint: Path, source: str) -> Iterator[None]:
    """A FUSE mount whose daemon never answers the kernel's first request: every statfs of
    it waits, as on a dead NFS server or a stuck s3fs. Closing the device at the end aborts
    the connection, so nothing is left waiting; then it is unmounted."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.fail("this test needs root and /dev/fuse (modprobe fuse) to mount a FUSE fs")
    device = os.open("/dev/fuse", os.O_RDWR)
    try:
        options = f"fd={device},rootmode=40000,user_id=0,group_id=0"
        subprocess.run(
            ["mount", "-t", "fuse", "-o", options, source, str(mountpoint)],
            pass_fds=(device,),
            check=True,
        )
        yield
    finally:
        os.close(device)
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_hung_network_or_fuse_mount_is_named_and_local_filesystems_still_come_back(
    tmp_path: Path,
) -> None:
    """A dead NFS server used to cost the whole df: every filesystem vanished from the space
    data. Now the local ones come back as always, a working network mount too, and each
    hung mount reads as hung, within one df bound."""
    from fleetdeck.hosts.proc_sampler import DF_TIMEOUT

    nfs, fuse, share = tmp_path / "dead nfs", tmp_path / "s3", tmp_path / "share"
    for path in (nfs, fuse, share):
        path.mkdir()
    # tmpfs takes any source: "nas:/share" makes it a network mount to df (-l skips it).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "nas:/share", str(share)], check=True)
    try:
        with _never_answering_mount(nfs, "nfs1:/export"), _never_answering_mount(fuse, "s3fs"):
            started = time.monotonic()
            sample = asyncio.run(ProcSampler(LocalShell()).sample())
            elapsed = time.monotonic() - started
    finally:
        subprocess.run(["umount", str(share)], check=False)
    mounts = {m.mountpoint: m for m in sample.mounts}
    assert "(df)" not in mounts
    assert mounts["/"].error is None and mounts["/"].total > 0 and mounts["/"].inodes_total
    assert mounts[str(share)].total == 8 << 20 and mounts[str(share)].error is None
    for path, source in ((nfs, "nfs1:/export"), (fuse, "s3fs")):
        assert mounts[str(path)].error == (
            f"df did not answer within {DF_TIMEOUT} s: hung mount of {source}"
        )
    assert elapsed < DF_TIMEOUT + 2.5, f"the sample took {elapsed:.1f} s"


async def test_disk_usage_never_waits_on_a_hung_network_mount_to_choose_a_filesystem(
    tmp_path: Path,
) -> None:
    """Without a `usage` path, what uses the space looks for the fullest local filesystem:
    its df is local only (-l), so a dead NFS server cannot stall it."""
    from fleetdeck.checks.config import Config
    from fleetdeck.checks.model import CheckContext
    from fleetdeck.checks.storage.diskusage import DISK_USAGE
    from fleetdeck.hosts.metrics import SampleHistory

    dead = tmp_path / "nfs"
    dead.mkdir()
    params = {"usage_depth": "1", "usage_seconds": "2"}
    ctx = CheckContext(
        "here", SampleHistory(size=2), Config().thresholds, LocalShell(), None, params
    )
    with _never_answering_mount(dead, "nfs1:/export"):
        started = time.monotonic()
        (finding,) = await DISK_USAGE.run(ctx)
        elapsed = time.monotonic() - started
    assert "no answer within" not in finding.summary, finding.summary
    assert not finding.summary.startswith("cannot read"), finding.summary
    assert elapsed < 2 + 3, f"took {elapsed:.1f} s"
