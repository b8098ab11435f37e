"""Real small filesystems on loop devices, for the storage stories: a full disk, no inodes
left, read-only, space held by deleted files, old logs, bad backups; and the other kinds a
server mounts (XFS, btrfs, and the read-only images erofs and squashfs).

`LoopFs` is a sparse image, `mkfs.ext4`'d (or another kind's mkfs), attached with `losetup
--find --show` and mounted (optionally on a path with a space, which /proc/mounts shows as
`\\040`); its methods put it into those states, and `close()` always kills holders, unmounts
every mount of its device (bind mounts too; lazily if busy) and detaches. The `loopfs`
fixture makes them for a test; `clean_stale()` removes a crashed run's leftovers.
Everything made here is named `fdt<pid>-<n>...`, so leftovers can be told from a live run's.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import gzip
import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from conftest import require_binary, require_root
from sshd import NAME_PREFIX, _is_live_python

_STALE_IMAGE = re.compile(rf"^{NAME_PREFIX}(\d+)-(\d+)\.img(?: \(deleted\))?$")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
_counter = itertools.count(1)
_live: set[str] = set()
# `cat` keeps fd 3 (the deleted file) and waits for EOF on stdin: it lives until the test
# (or the test's crash) closes the pipe.
_HOLDER = 'exec 3>"$0" && head -c "$1" /dev/zero >&3 && rm "$0" && echo held && exec cat'


MAKERS = {
    "ext4": ("mkfs.ext4", "e2fsprogs"),
    "xfs": ("mkfs.xfs", "xfsprogs"),
    "btrfs": ("mkfs.btrfs", "btrfs-progs"),
    "erofs": ("mkfs.erofs", "erofs-utils"),
    "squashfs": ("mksquashfs", "squashfs-tools"),
}
"""The filesystems a `LoopFs` can be, with the binary that makes each and its package."""
FROM_TREE = frozenset({"erofs", "squashfs"})
"""Image filesystems: made whole from a directory (a few small files), read-only for ever."""
TREE_FILES = 5


class LoopFsError(RuntimeError):
    """A loop filesystem could not be set up or removed; the message says what and why."""


def require_loopfs_tools(fstype: str = "ext4") -> None:
    """Fail (never skip) with the way to set things up when root or a binary is missing."""
    for binary, package in (MAKERS[fstype], ("losetup", "mount"), ("mount", "mount")):
        require_binary(binary, package)
    require_root("attach loop devices and mount filesystems")


def _make_image(image: Path, fstype: str, size_mib: int, inodes: int | None) -> None:
    """A new filesystem of `fstype` in `image`: an empty one of `size_mib` (sparse), or for
    an image filesystem one made from a tree of `TREE_FILES` small files."""
    if fstype in FROM_TREE:
        tree = image.with_suffix(".tree")
        tree.mkdir()
        for n in range(1, TREE_FILES + 1):
            (tree / f"file-{n}.txt").write_text(f"file {n}\n")
        make = {
            "erofs": ("mkfs.erofs", "--quiet", str(image), str(tree)),
            "squashfs": ("mksquashfs", str(tree), str(image), "-quiet", "-noappend"),
        }
        try:
            _run(*make[fstype])
        finally:
            shutil.rmtree(tree)
        return
    with image.open("xb") as file:
        file.truncate(size_mib << 20)  # sparse
    n = ["-N", str(inodes)] if inodes else []
    quiet = {"ext4": ("-q", "-F", *n), "xfs": ("-q", "-f"), "btrfs": ("-q", "-f")}
    _run(MAKERS[fstype][0], *quiet[fstype], str(image))


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise LoopFsError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result


def mounts() -> list[tuple[str, str, str]]:
    """(source, target, options) of this mount namespace, with /proc's octal escapes undone."""
    rows = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    unescape = _OCTAL_ESCAPE.sub
    return [(row[0], unescape(lambda m: chr(int(m[1], 8)), row[1]), row[3]) for row in rows]


def _holders(dev: int) -> set[int]:
    """Processes (other than this one) with a cwd, root, binary or open file on device `dev`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        links = [entry / "cwd", entry / "root", entry / "exe"]
        with contextlib.suppress(OSError):
            links += list((entry / "fd").iterdir())
        for link in links:
            with contextlib.suppress(OSError):
                if os.stat(link).st_dev == dev:
                    found.add(int(entry.name))
                    break
    return found


def _release(device: str) -> list[str]:
    """Kill holders, unmount every mount of `device` (lazily if busy) and detach it."""
    errors = []
    dev = os.stat(device).st_rdev
    deadline = time.monotonic() + 5
    while (pids := _holders(dev)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    for source, target, _ in reversed(mounts()):
        if source == device and _run("umount", target, check=False).returncode != 0:
            lazy = _run("umount", "--lazy", target, check=False)
            if lazy.returncode != 0:
                errors.append(f"umount {target}: {lazy.stderr.strip()}")
    detach = _run("losetup", "--detach", device, check=False)
    # "No such device or address": already detached, by an autoclear loop's last unmount
    # or by another run cleaning the same leftovers; what matters is that it is gone.
    gone = not Path(f"/sys/block/{Path(device).name}/loop/backing_file").exists()
    if detach.returncode != 0 and not gone:
        errors.append(f"losetup --detach {device}: {detach.stderr.strip()}")
    return errors


def clean_stale() -> list[str]:
    """Unmount and detach loop filesystems of crashed runs; returns the devices removed.

    An image named `fdt<pid>-<n>.img` is stale unless `<pid>` is a live Python process (a run
    in parallel) or, for this process, `fdt<pid>-<n>` is an open `LoopFs`.
    """
    removed = []
    for backing in sorted(Path("/sys/block").glob("loop*/loop/backing_file")):
        try:
            path = backing.read_text().strip()
        except OSError:  # detached meanwhile
            continue
        match = _STALE_IMAGE.match(Path(path).name)
        if match is None:
            continue
        pid, name = int(match[1]), f"{NAME_PREFIX}{match[1]}-{match[2]}"
        if name in _live or (pid != os.getpid() and _is_live_python(pid)):
            continue
        device = f"/dev/{backing.parent.parent.name}"
        if errors := _release(device):
            raise LoopFsError(f"cleaning up stale {device} ({path}): " + "; ".join(errors))
        image = Path(path.removesuffix(" (deleted)"))
        image.unlink(missing_ok=True)
        for mountpoint in image.parent.glob(f"{glob.escape(name)}[ -]mnt"):
            with contextlib.suppress(OSError):
                mountpoint.rmdir()
        removed.append(device)
    return removed


def _write_aged(path: Path, data: bytes, seconds: float) -> Path:
    """Write `path` with its mtime (and atime) `seconds` in the past."""
    path.write_bytes(data)
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


def _until_enospc(step: Callable[[int], object], more: Callable[[], bool] = lambda: True) -> int:
    """Call step(0), step(1), ... while `more()`, until one fails with ENOSPC; the count done."""
    done = 0
    while more():
        try:
            step(done)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            break
        done += 1
    return done


@dataclass(frozen=True, slots=True)
class LogFiles:
    """`fresh` ones have mtime now, `old` ones `old_days` ago."""

    directory: Path
    fresh: tuple[Path, ...]
    old: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class Backups:
    """One series per story, each file `<db>-<YYYYmmdd-HHMM>.sql.gz` after its mtime: `fresh`
    (orders, 1 h old), `stale` (billing, newest 30 h old), `shrunken` (users, 1 h old, a tenth
    the size of `previous`, 25 h old), `corrupt` (crm, 1 h old, cut off halfway)."""

    directory: Path
    fresh: Path
    stale: Path
    shrunken: Path
    previous: Path
    corrupt: Path


class LoopFs:
    """One mounted filesystem (ext4 unless `fstype` says otherwise, see `MAKERS`) on a loop
    device, made in `directory`, removed by `close()`. XFS needs `size_mib` of 300 or more,
    btrfs 128; an image filesystem (`FROM_TREE`) is as large as its files."""

    def __init__(
        self,
        directory: Path,
        *,
        size_mib: int = 16,
        inodes: int | None = None,
        space_in_name: bool = False,
        options: str | None = None,
        fstype: str = "ext4",
    ) -> None:
        require_loopfs_tools(fstype)
        self.name = f"{NAME_PREFIX}{os.getpid()}-{next(_counter)}"
        self.image = directory / f"{self.name}.img"
        self.mountpoint = directory / (f"{self.name} mnt" if space_in_name else f"{self.name}-mnt")
        self.device: str | None = None
        self._held: list[subprocess.Popen[bytes]] = []
        self._files = itertools.count(1)
        self._closed = False
        _live.add(self.name)
        try:
            clean_stale()
            _make_image(self.image, fstype, size_mib, inodes)
            # In a container this needs /dev/loop-control and /dev/loop* (--privileged).
            self.device = _run("losetup", "--find", "--show", str(self.image)).stdout.strip()
            self.mountpoint.mkdir()
            o = ["-o", options] if options else []
            _run("mount", "-t", fstype, *o, self.device, str(self.mountpoint))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> LoopFs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoopFs {self.device} on {str(self.mountpoint)!r}>"

    def close(self) -> None:
        """Kill holders, unmount, detach, delete image and mount point; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        errors = []
        try:
            for process in self._held:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):  # _release kills it again
                    process.communicate(timeout=5)  # and closes its pipes
            if self.device is not None:
                errors = _release(self.device)
            with contextlib.suppress(OSError):
                self.mountpoint.rmdir()
            self.image.unlink(missing_ok=True)
        finally:
            _live.discard(self.name)  # so that clean_stale() can retry what failed here
        if errors:
            raise LoopFsError(f"closing {self.name}: " + "; ".join(errors))

    # -- states

    def use_percent(self) -> int:
        """`df`'s Capacity: used / (used + available to non-root), rounded up."""
        st = os.statvfs(self.mountpoint)
        used, avail = st.f_blocks - st.f_bfree, st.f_bavail
        return -(-used * 100 // (used + avail)) if used + avail else 100

    def fill_to(self, percent: int) -> Path:
        """Write one file until `df` shows at least `percent` use (100: until ENOSPC, root's
        reserved blocks included)."""
        path = self.mountpoint / f"fill-{next(self._files)}.bin"
        chunk = bytes(64 << 10)

        def short() -> bool:
            return percent >= 100 or self.use_percent() < percent

        with path.open("xb", buffering=0) as file:
            _until_enospc(lambda _: file.write(chunk), short)
            os.fsync(file.fileno())
        return path

    def exhaust_inodes(self) -> int:
        """Create empty files in `inodes/` until ENOSPC; returns how many were made."""
        directory = self.mountpoint / "inodes"
        directory.mkdir(exist_ok=True)
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
        return _until_enospc(lambda _: os.close(os.open(directory / f"{next(self._files)}", flags)))

    def remount_ro(self) -> None:
        """Remount read-only; fails (EBUSY) while a file is open for writing or deleted-open."""
        _run("mount", "-o", "remount,ro", str(self.mountpoint))

    def remount_rw(self) -> None:
        _run("mount", "-o", "remount,rw", str(self.mountpoint))

    def corrupt_inode(self, path: Path, options: str = "errors=remount-ro") -> None:
        """Clear `path`'s inode behind ext4's back (debugfs `clri` on the unmounted device),
        then mount again with `options`. Its directory entry stays, so the next lookup of
        `path` is a real filesystem error ("deleted inode referenced"): the kernel logs it,
        counts it in the superblock and, with errors=remount-ro, stops writes."""
        require_binary("debugfs", "e2fsprogs")
        assert self.device is not None
        inode = path.stat().st_ino
        _run("umount", str(self.mountpoint))
        _run("debugfs", "-w", "-R", f"clri <{inode}>", self.device)
        _run("mount", "-t", "ext4", "-o", options, self.device, str(self.mountpoint))

    def hold_deleted(self, size_bytes: int, timeout: float = 30) -> subprocess.Popen[bytes]:
        """A live process holding a deleted file of `size_bytes` open (its space stays used)."""
        path = self.mountpoint / f"held-{next(self._files)}.bin"
        process = subprocess.Popen(
            ["sh", "-c", _HOLDER, str(path), str(size_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
        )
        self._held.append(process)
        assert process.stdout is not None and process.stderr is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        if not ready or process.stdout.readline() != b"held\n":
            process.kill()
            raise LoopFsError(f"holder of {path} failed: {process.stderr.read().decode()}")
        return process

    def make_logs(
        self, old_days: float = 7, fresh: int = 3, old: int = 3, size: int = 4096
    ) -> LogFiles:
        """`log/fresh-NN.log` (mtime now) and `log/old-NN.log` (mtime `old_days` days ago),
        each `size` bytes of log lines."""
        directory = self.mountpoint / "log"
        directory.mkdir(exist_ok=True)
        line = b"Jan 01 00:00:00 web01 app[4242]: GET /health 200 1.2ms\n"
        text = (line * (size // len(line) + 1))[:size]

        def logs(kind: str, count: int, days: float) -> tuple[Path, ...]:
            paths = [directory / f"{kind}-{n:02d}.log" for n in range(1, count + 1)]
            return tuple(_write_aged(path, text, days * 86400) for path in paths)

        return LogFiles(directory, fresh=logs("fresh", fresh, 0), old=logs("old", old, old_days))

    def make_backups(self, size: int = 256 << 10) -> Backups:
        """Real gzip files in `backup/` (see `Backups`); contents are random, so a full backup
        is about `size` bytes on disk."""
        directory = self.mountpoint / "backup"
        directory.mkdir(exist_ok=True)

        def backup(db: str, hours: float, data: bytes) -> Path:
            taken = time.strftime("%Y%m%d-%H%M", time.gmtime(time.time() - hours * 3600))
            return _write_aged(directory / f"{db}-{taken}.sql.gz", data, hours * 3600)

        def full(n: int = size) -> bytes:
            return gzip.compress(os.urandom(n), compresslevel=1)

        whole = full()
        return Backups(
            directory=directory,
            fresh=backup("orders", 1, whole),
            stale=backup("billing", 30, full()),
            shrunken=backup("users", 1, full(size // 10)),
            previous=backup("users", 25, full()),
            corrupt=backup("crm", 1, whole[: len(whole) // 2]),
        )


class MakeLoopFs(Protocol):
    def __call__(
        self,
        size_mib: int = 16,
        inodes: int | None = None,
        space_in_name: bool = False,
        fstype: str = "ext4",
    ) -> LoopFs: ...


@pytest.fixture
def loopfs(tmp_path: Path) -> Iterator[MakeLoopFs]:
    """`loopfs(size_mib=16, inodes=None, space_in_name=False, fstype="ext4")`: a mounted
    filesystem of this test's own; every one made is closed after the test."""
    # ExitStack closes them all, newest first, even when one close() raises.
    with contextlib.ExitStack() as made:

        def make(
            size_mib: int = 16,
            inodes: int | None = None,
            space_in_name: bool = False,
            fstype: str = "ext4",
        ) -> LoopFs:
            fs = LoopFs(
                tmp_path,
                size_mib=size_mib,
                inodes=inodes,
                space_in_name=space_in_name,
                fstype=fstype,
            )
            return made.enter_context(fs)

        yield make
