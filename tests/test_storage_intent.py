"""Storage reads intent, on real loop filesystems: images read-only by design (erofs,
squashfs) and read-only btrfs snapshots are OK, so are read-only bind mounts of a directory
or of a whole filesystem; a filesystem mounted `ro` by hand with nothing behind it is a
question (WARN), and only what /etc/fstab or the kernel shows was meant to be writable is
CRIT, with the remount offered where no error stands in the way."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.resources.checks import RESOURCE_CHECKS
from fleetdeck.checks.storage.mounts import READONLY
from fleetdeck.hosts.linux.kernlog import escape, parse_mountinfo
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.sample import Mount
from fleetdeck.hosts.samplers import PsutilSampler, inode_counts
from fleetdeck.hosts.shell import LocalShell, Shell

from loopfs import LoopFs, MakeLoopFs
from loopfs import loopfs as loopfs
from shells import with_file

HOST = socket.gethostname()
SPACE_CHECKS = [c for c in RESOURCE_CHECKS if c.id in ("disk.space", "disk.inodes")]


def here(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


async def readonly_on(shell: Shell, mountpoint: Path) -> Finding:
    ctx = CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, {})
    (found,) = [f for f in await READONLY.run(ctx) if f.target == str(mountpoint)]
    return found


async def space_findings(mountpoint: Path) -> dict[str, list[Finding]]:
    """disk.space and disk.inodes for `mountpoint`, by sampler (psutil here, /proc and df
    through a shell as over SSH)."""
    found: dict[str, list[Finding]] = {}
    for name, sampler in (("psutil", PsutilSampler()), ("proc", ProcSampler(LocalShell(HOST)))):
        history = SampleHistory(size=2)
        history.add(await sampler.sample())
        ctx = CheckContext(HOST, history, Config().thresholds, LocalShell(HOST), None, {})
        found[name] = [
            f for c in SPACE_CHECKS for f in await c.run(ctx) if f.target == str(mountpoint)
        ]
    return found


def fstab_with(fs: LoopFs, options: str = "defaults") -> Shell:
    """This machine, with an /etc/fstab that mounts `fs` with `options`."""
    line = f"{fs.device} {escape(str(fs.mountpoint))} ext4 {options} 0 2\n"
    return with_file("/etc/fstab", "# /etc/fstab\n" + line)


# -- read-only by design ----------------------------------------------------------------------


@pytest.mark.parametrize("fstype", ["erofs", "squashfs"])
async def test_an_image_filesystem_is_full_by_design_and_a_full_ext4_is_critical(
    loopfs: MakeLoopFs, fstype: str
) -> None:
    image, full = loopfs(fstype=fstype), loopfs()
    full.fill_to(100)

    finding = await readonly_on(LocalShell(HOST), image.mountpoint)
    assert finding.status is Status.OK, finding
    assert finding.summary == (
        f"read-only by design ({fstype} image of {image.device}): full by design, "
        "so no space or inode verdict"
    )
    for sampler, found in (await space_findings(image.mountpoint)).items():
        assert found == [], (sampler, found)  # no space in it to run out of
    for sampler, found in (await space_findings(full.mountpoint)).items():
        space = next(f for f in found if f.check == "disk.space")
        assert space.status is Status.CRIT and "100% used" in space.summary, (sampler, space)


async def test_an_erofs_without_an_inode_limit_has_no_inode_figures(loopfs: MakeLoopFs) -> None:
    """erofs reports -1 inodes in all (`df -i` shows `-`): no count, never a negative share."""
    image = loopfs(fstype="erofs")
    st = os.statvfs(image.mountpoint)
    assert st.f_files <= 0 or st.f_ffree > st.f_files, st  # what the kernel says
    assert inode_counts(st) == (None, None)
    assert Mount(str(image.mountpoint), inodes_total=-1, inodes_used=5).inodes_percent is None
    assert Mount("/", inodes_total=100, inodes_used=5).inodes_percent == 5.0


async def test_a_read_only_btrfs_snapshot_is_ok_and_a_btrfs_remounted_ro_by_hand_is_asked_about(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(fstype="btrfs", size_mib=128)
    here("btrfs", "subvolume", "create", str(fs.mountpoint / "data"))
    (fs.mountpoint / "data" / "orders.csv").write_text("1,2,3\n")
    snapshot = fs.mountpoint / "snap-2026-12-07"
    here("btrfs", "subvolume", "snapshot", "-r", str(fs.mountpoint / "data"), str(snapshot))
    view = tmp_path / "snapshot view"
    view.mkdir()
    assert fs.device is not None
    here("mount", "-o", f"subvol={snapshot.name}", fs.device, str(view))
    with pytest.raises(OSError, match="Read-only file system"):
        (view / "new.csv").write_text("x\n")

    shell = LocalShell(HOST)
    assert (await readonly_on(shell, view)).status is Status.OK
    for sampler, found in (await space_findings(fs.mountpoint)).items():
        assert found and all(f.status is Status.OK for f in found), (sampler, found)

    fs.remount_ro()
    asked = await readonly_on(shell, fs.mountpoint)
    assert asked.status is Status.WARN and asked.fixes == (), asked
    assert "is read-only, not in fstab: intended?" in asked.summary


# -- read-only bind mounts ---------------------------------------------------------------------


async def test_read_only_bind_mounts_of_a_whole_xfs_and_of_a_directory_are_ok(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    xfs, ext4 = loopfs(fstype="xfs", size_mib=300), loopfs()
    (ext4.mountpoint / "exports").mkdir()
    whole, part = tmp_path / "xfs read-only", tmp_path / "exports read-only"
    for target in (whole, part):
        target.mkdir()
    here("mount", "--bind", "-o", "ro", str(xfs.mountpoint), str(whole))
    here("mount", "--bind", "-o", "ro", str(ext4.mountpoint / "exports"), str(part))
    shell = LocalShell(HOST)

    bound = await readonly_on(shell, whole)
    assert bound.status is Status.OK and bound.fixes == (), bound
    assert bound.summary == (
        "read-only on purpose: a read-only bind mount of the whole filesystem, which is "
        "itself read-write"
    )
    assert (await readonly_on(shell, xfs.mountpoint)).summary == "read-write"
    directory = await readonly_on(shell, part)
    assert directory.status is Status.OK
    assert directory.summary.startswith("read-only on purpose: a read-only bind mount of /exports")

    # The faulty twin: the XFS itself made read-only, where /etc/fstab mounts it read-write.
    xfs.remount_ro()
    line = f"{xfs.device} {escape(str(xfs.mountpoint))} xfs defaults 0 2\n"
    stopped = await readonly_on(with_file("/etc/fstab", line), xfs.mountpoint)
    assert stopped.status is Status.CRIT, stopped
    assert "/etc/fstab mounts it read-write" in stopped.summary
    (fix,) = stopped.fixes
    assert fix.commands == (("mount", "-o", "remount,rw", str(xfs.mountpoint)),)


def test_mountinfo_tells_a_read_only_mount_from_a_read_only_filesystem() -> None:
    text = (
        "66 27 7:1 / /srv/a ro,relatime - ext4 /dev/loop1 ro\n"
        "77 27 7:1 / /srv/b ro,relatime - ext4 /dev/loop1 rw\n"
        "78 27 7:1 /exports /srv/my\\040c ro,relatime shared:5 - ext4 /dev/loop1 rw\n"
        "60 27 7:0 / /srv/d rw,relatime - erofs /dev/loop0 ro,user_xattr\n"
        "61 27 7:2 / /srv/e ro,relatime - ext4\n"
        "garbage\n"
    )
    views = parse_mountinfo(text)
    assert [(v.root, v.mount_ro, v.super_ro) for v in views.values()] == [
        ("/", True, True),
        ("/", True, False),
        ("/exports", True, False),
        ("/", False, True),
        ("/", True, True),  # cut short: not taken for a read-only bind of a writable one
    ]
    assert list(views) == ["/srv/a", "/srv/b", "/srv/my c", "/srv/d", "/srv/e"]


# -- mounted read-only by hand -----------------------------------------------------------------


async def test_an_ext4_mounted_ro_by_hand_is_a_question_and_with_an_fstab_entry_critical(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs()
    fs.remount_ro()

    asked = await readonly_on(LocalShell(HOST), fs.mountpoint)
    assert asked.status is Status.WARN and asked.fixes == (), asked
    assert asked.summary == (
        f"{fs.mountpoint} ({fs.device}, ext4) is read-only, not in fstab: intended? The "
        f"kernel log shows no errors for {Path(fs.device or '').name} and dumpe2fs records "
        "none, and nothing says it should be writable, so no remount is offered"
    )

    unread = await readonly_on(with_file("/etc/fstab", None), fs.mountpoint)
    assert unread.status is Status.UNKNOWN and unread.fixes == (), unread  # not "not in fstab"
    assert "but /etc/fstab could not be read (/etc/fstab: Permission denied)" in unread.summary

    meant = await readonly_on(fstab_with(fs), fs.mountpoint)
    assert meant.status is Status.CRIT and len(meant.fixes) == 1, meant
    assert "but /etc/fstab mounts it read-write" in meant.summary
    assert any(e.source == "/etc/fstab" for e in meant.evidence)

    on_purpose = await readonly_on(fstab_with(fs, "defaults,ro"), fs.mountpoint)
    assert on_purpose.status is Status.OK
    assert on_purpose.summary == "read-only on purpose: /etc/fstab mounts it read-only"


def test_images_this_kernel_cannot_mount_are_left_out_of_a_remote_sample_too() -> None:
    """iso9660 and cramfs as a host's `df -PkT` and `df -Pi` print them (this test machine's
    kernel has neither module): no space figures, while an ext4 beside them keeps its own."""
    from fleetdeck.hosts.proc_sampler import parse_mounts

    df = (
        "Filesystem     Type     1024-blocks    Used Available Capacity Mounted on\n"
        "/dev/vda1      ext4        41152736 9212344  29827908      24% /\n"
        "/dev/sr0       iso9660       658432  658432         0     100% /media/cdrom\n"
        "/dev/loop3     cramfs          4096    4096         0     100% /opt/firmware\n"
        "/dev/loop4     erofs              4       4         0     100% /opt/app\n"
    )
    dfi = (
        "Filesystem      Inodes  IUsed   IFree IUse% Mounted on\n"
        "/dev/vda1      2621440 112233 2509207    5% /\n"
        "/dev/sr0             0      0       0     - /media/cdrom\n"
        "/dev/loop4           -      - 18446744073709551609 - /opt/app\n"
    )
    (root,) = parse_mounts({"df": df, "dfi": dfi})
    assert (root.mountpoint, root.inodes_total, root.inodes_used) == ("/", 2621440, 112233)
