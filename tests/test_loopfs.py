"""The loop filesystems do what the storage stories will lean on, checked with the tools an
operator reads (`df -P`, `df -Pi`, `findmnt`, `losetup`, /proc/mounts, `find`, `gzip -t`),
so a storage test that fails points at fleetdeck, not at its fixtures."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from loopfs import (
    LoopFs,
    LoopFsError,
    MakeLoopFs,
    clean_stale,
    mounts,
    require_loopfs_tools,
)
from loopfs import loopfs as loopfs  # the fixture (until conftest.py imports it for all tests)

TESTS = Path(__file__).resolve().parent

# A run of the fixtures in a child process: "crash" dies by SIGKILL with its filesystem (and a
# process holding a deleted file there) still set up; "live" keeps it until stdin closes.
CHILD = f"""\
import os, sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from loopfs import LoopFs
fs = LoopFs(Path(sys.argv[2]), space_in_name=True)
fs.hold_deleted(1 << 20)
print(fs.device, flush=True)
if sys.argv[1] == "crash":
    os.kill(os.getpid(), 9)
sys.stdin.read()
fs.close()
"""


def df(path: Path, *, inodes: bool = False) -> dict[str, str]:
    """The row of `df -P` (or `df -Pi`) for `path`, keyed by our names for its columns."""
    out = subprocess.run(
        ["df", "-Pi" if inodes else "-P", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    fields = out.splitlines()[1].split(maxsplit=5)
    return dict(zip(["source", "total", "used", "free", "use", "target"], fields, strict=True))


def findmnt(path: Path) -> dict[str, str] | None:
    result = subprocess.run(
        ["findmnt", "-J", "--mountpoint", str(path)], capture_output=True, text=True, timeout=30
    )
    return json.loads(result.stdout)["filesystems"][0] if result.returncode == 0 else None


def loop_devices() -> dict[str, str]:
    """Attached loop devices and their backing files, as `losetup` reports them."""
    out = subprocess.run(
        ["losetup", "-J", "-l"], capture_output=True, text=True, timeout=30, check=True
    )
    devices = json.loads(out.stdout)["loopdevices"] if out.stdout.strip() else []
    return {device["name"]: device["back-file"] for device in devices}


def proc_mounts_line(device: str) -> list[str]:
    """The raw /proc/mounts fields of `device`'s mount."""
    lines = Path("/proc/mounts").read_text().splitlines()
    return next(line.split() for line in lines if line.startswith(f"{device} "))


def test_a_new_loopfs_is_a_mounted_sparse_ext4_of_the_asked_size(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=32)
    assert fs.name.startswith(f"fdt{os.getpid()}-")
    assert fs.image.name.startswith(fs.name) and fs.mountpoint.name.startswith(fs.name)
    assert fs.device is not None and loop_devices()[fs.device] == str(fs.image)
    mount = findmnt(fs.mountpoint)
    assert mount is not None
    assert (mount["source"], mount["fstype"]) == (fs.device, "ext4")
    assert "rw" in mount["options"].split(",")
    assert fs.image.stat().st_size == 32 << 20
    assert fs.image.stat().st_blocks * 512 < 8 << 20, "the image should be sparse"
    row = df(fs.mountpoint)
    assert 0.7 * 32 * 1024 < int(row["total"]) <= 32 * 1024
    assert (row["source"], row["use"]) == (fs.device, "1%")


def test_a_mount_point_with_a_space_is_escaped_only_in_proc_mounts(loopfs: MakeLoopFs) -> None:
    fs = loopfs(space_in_name=True)
    assert " " in fs.mountpoint.name
    assert fs.device is not None
    assert proc_mounts_line(fs.device)[1] == str(fs.mountpoint).replace(" ", "\\040")
    mount = findmnt(fs.mountpoint)
    assert mount is not None and mount["target"] == str(fs.mountpoint)
    assert df(fs.mountpoint)["target"] == str(fs.mountpoint)


@pytest.mark.parametrize("percent", [50, 90])
def test_fill_to_makes_df_show_at_least_that_use(loopfs: MakeLoopFs, percent: int) -> None:
    fs = loopfs()
    path = fs.fill_to(percent)
    use = int(df(fs.mountpoint)["use"].rstrip("%"))
    assert percent <= use <= percent + 2
    assert fs.use_percent() == use
    assert path.parent == fs.mountpoint and path.stat().st_size > 0


def test_fill_to_100_writes_into_roots_reserve_until_enospc(loopfs: MakeLoopFs) -> None:
    fs = loopfs()
    fs.fill_to(100)
    row = df(fs.mountpoint)
    assert (row["use"], row["free"]) == ("100%", "0")
    with pytest.raises(OSError) as caught, (fs.mountpoint / "more.bin").open("wb") as file:
        file.write(bytes(1 << 20))
        file.flush()
        os.fsync(file.fileno())
    assert caught.value.errno == errno.ENOSPC


def test_exhausted_inodes_fail_new_files_while_blocks_are_left(loopfs: MakeLoopFs) -> None:
    fs = loopfs(inodes=64)
    before = df(fs.mountpoint, inodes=True)
    assert 64 <= int(before["total"]) < 128  # mkfs rounds up to whole inode table blocks
    made = fs.exhaust_inodes()
    assert made == int(before["free"]) - 1  # the `inodes/` directory took one
    after = df(fs.mountpoint, inodes=True)
    assert (after["free"], after["use"]) == ("0", "100%")
    assert int(df(fs.mountpoint)["use"].rstrip("%")) < 10
    with pytest.raises(OSError) as caught:
        (fs.mountpoint / "one-more").touch()
    assert caught.value.errno == errno.ENOSPC


def test_remount_ro_makes_writes_fail_and_remount_rw_brings_them_back(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs(space_in_name=True)
    assert fs.device is not None
    fs.remount_ro()
    assert proc_mounts_line(fs.device)[3].split(",")[0] == "ro"
    mount = findmnt(fs.mountpoint)
    assert mount is not None and mount["options"].startswith("ro,")
    with pytest.raises(OSError) as caught:
        (fs.mountpoint / "note.txt").write_text("x")
    assert caught.value.errno == errno.EROFS
    fs.remount_rw()
    assert proc_mounts_line(fs.device)[3].split(",")[0] == "rw"
    (fs.mountpoint / "note.txt").write_text("x")


def test_a_deleted_file_held_open_keeps_its_space_until_its_process_dies(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs()
    used_before = int(df(fs.mountpoint)["used"])
    process = fs.hold_deleted(4 << 20)
    fd_dir = Path(f"/proc/{process.pid}/fd")
    held = [fd for fd in fd_dir.iterdir() if os.readlink(fd).endswith(" (deleted)")]
    assert len(held) == 1
    target = os.readlink(held[0]).removesuffix(" (deleted)")
    assert target.startswith(f"{fs.mountpoint}/") and not Path(target).exists()
    assert held[0].stat().st_size == 4 << 20
    assert int(df(fs.mountpoint)["used"]) - used_before >= 4096  # KiB
    with pytest.raises(LoopFsError, match="busy"):
        fs.remount_ro()  # the kernel refuses while an unlinked inode is still open
    process.kill()
    process.wait(timeout=5)
    deadline = time.monotonic() + 5
    while int(df(fs.mountpoint)["used"]) - used_before > 64 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(df(fs.mountpoint)["used"]) - used_before <= 64


def test_make_logs_sets_mtimes_that_find_sees(loopfs: MakeLoopFs) -> None:
    fs = loopfs()
    logs = fs.make_logs(10, 2, 3, 1000)

    def find(*test: str) -> list[str]:
        argv = ["find", str(logs.directory), "-type", "f", *test]
        return sorted(
            subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.split()
        )

    assert find("-mtime", "+9") == sorted(map(str, logs.old))
    assert find("-mtime", "-1") == sorted(map(str, logs.fresh))
    assert len(logs.old) == 3 and len(logs.fresh) == 2
    assert {path.stat().st_size for path in [*logs.old, *logs.fresh]} == {1000}
    assert logs.old[0].read_text().startswith("Jan 01 00:00:00 web01 app[4242]: GET /health")


def test_make_backups_gives_real_gzip_fresh_stale_shrunken_and_corrupt(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs()
    backups = fs.make_backups(size=64 << 10)
    good = [backups.fresh, backups.stale, backups.shrunken, backups.previous]
    checked = subprocess.run(
        ["gzip", "-t", *map(str, good)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    corrupt = subprocess.run(
        ["gzip", "-t", str(backups.corrupt)], capture_output=True, text=True, timeout=30
    )
    assert corrupt.returncode != 0 and "unexpected end of file" in corrupt.stderr

    def age_hours(path: Path) -> float:
        return (time.time() - path.stat().st_mtime) / 3600

    assert 29.9 < age_hours(backups.stale) < 30.1
    assert 0.9 < age_hours(backups.fresh) < 1.1
    assert 24.9 < age_hours(backups.previous) < 25.1
    assert backups.shrunken.stat().st_size < backups.previous.stat().st_size / 5
    assert backups.shrunken.name.startswith("users-") and backups.previous.name.startswith("users-")
    assert sorted(p.name for p in backups.directory.iterdir()) == sorted(
        p.name for p in [*good, backups.corrupt]
    )


def test_close_kills_holders_and_leaves_no_device_mount_or_file(tmp_path: Path) -> None:
    fs = LoopFs(tmp_path, space_in_name=True)
    device = fs.device
    sleeper = subprocess.Popen(["sleep", "300"], cwd=fs.mountpoint)
    held = fs.hold_deleted(1 << 20)
    fs.close()
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert held.poll() is not None
    assert device not in loop_devices()
    assert findmnt(fs.mountpoint) is None
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(fs.name)]
    fs.close()  # a second close is harmless


def test_close_unmounts_lazily_while_this_process_holds_a_file(tmp_path: Path) -> None:
    fs = LoopFs(tmp_path)
    device = fs.device
    with (fs.mountpoint / "open.txt").open("w"):
        fs.close()
        assert findmnt(fs.mountpoint) is None
    # losetup --detach on a busy device only marks it autoclear: it goes with the last file.
    deadline = time.monotonic() + 5
    while device in loop_devices() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert device not in loop_devices()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"options": "no_such_option"}, "mount"), ({"inodes": 10**9}, "mkfs.ext4")],
    ids=["mount-fails", "mkfs-fails"],
)
def test_a_failed_setup_leaves_no_device_or_file(
    tmp_path: Path, kwargs: dict[str, Any], error: str
) -> None:
    before = loop_devices()
    with pytest.raises(LoopFsError, match=f"`{error} "):
        LoopFs(tmp_path, **kwargs)
    assert loop_devices().keys() <= before.keys()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("fdt")]


def test_leftovers_of_a_crashed_run_are_cleaned_and_live_ones_kept(
    tmp_path: Path, loopfs: MakeLoopFs
) -> None:
    ours = loopfs()
    (tmp_path / "parallel").mkdir()
    (tmp_path / "crashed").mkdir()
    parallel = subprocess.Popen(
        [sys.executable, "-c", CHILD, "live", str(tmp_path / "parallel")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parallel.stdout is not None and parallel.stdin is not None
        parallel_device = parallel.stdout.readline().strip()
        # After the parallel run's setup: a LoopFs cleans stale ones when it starts.
        crashed = subprocess.run(
            [sys.executable, "-c", CHILD, "crash", str(tmp_path / "crashed")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        crashed_device = crashed.stdout.strip()
        assert crashed_device in loop_devices() and parallel_device in loop_devices()
        assert any(target.startswith(str(tmp_path / "crashed")) for _, target, _ in mounts())

        removed = clean_stale()

        assert crashed_device in removed and crashed_device not in loop_devices()
        assert not any(target.startswith(str(tmp_path / "crashed")) for _, target, _ in mounts())
        assert not list((tmp_path / "crashed").iterdir()), "image or mount point remains"
        assert ours.device not in removed and findmnt(ours.mountpoint) is not None
        assert parallel_device not in removed and parallel_device in loop_devices()
        parallel.stdin.close()
        assert parallel.wait(timeout=30) == 0
        assert parallel_device not in loop_devices()
    finally:
        if parallel.poll() is None:
            parallel.kill()
            parallel.wait()
            clean_stale()  # what it left is stale now that it is dead


def test_missing_root_or_tools_fail_with_how_to_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mkfs.ext4" else name)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install e2fsprogs"):
        require_loopfs_tools()
    monkeypatch.setattr(shutil, "which", lambda name: name)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match=r"run ./scripts/test as root"):
        require_loopfs_tools()
