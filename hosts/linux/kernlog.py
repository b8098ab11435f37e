"""What the kernel says about filesystems, as pure parsers: its mount table (/proc/mounts,
/proc/self/mountinfo, and /etc/fstab, which escapes paths the same way), its log lines about
one block device, and the error record ext2/3/4 keep in their superblock (`dumpe2fs -h`).

The kernel names a device in its own words: `EXT4-fs error (device loop3)`, `XFS (dm-0)`,
`I/O error, dev sda, sector ...`, `Buffer I/O error on dev sda1`, `[sdb]`, `loop3-8` (the
journal). A name matches only as a whole name, so `loop3` never matches `loop30` and `sda`
never matches `sda1`.

Device numbers are reused (loop devices above all), so lines about the device itself count
only after its last unmount or re-attach; lines about the disks underneath it (the `sda` of
`sda1`, the slaves of `dm-0`) count for the whole log, because the disk is the same one.
A loop device's attach line ("detected capacity change from 0") is always printed; ext4's
mount and unmount lines are rate-limited on a busy host, and a missing one only means more
lines count, never fewer. An unmount and mount again without fsck drops the device's older
lines, which is why ext2/3/4's own error record (`dumpe2fs`) is read as well.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError

KERNEL_STOPPED = ("emergency_ro", "shutdown")
"""Options newer kernels show (instead of `ro`) on an ext4 they stopped after an error."""
_OCTAL = re.compile(r"\\([0-3][0-7]{2})")
_STAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
_JOURNAL_HOST = re.compile(r"^\S+ kernel: ")
_ERROR = re.compile(
    r"\berrors?\b(?!=)|\bfailed\b|Remounting filesystem read-only|Aborting journal|"
    r"\bcorrupt|shut(?:ting)? ?down|forced readonly|potential data loss|rectify the problem",
    re.IGNORECASE,
)
_IO = re.compile(r"I/O error|IO error|medium error|space allocation error", re.IGNORECASE)
_RESET = re.compile(
    r"\b[Uu]nmounting [Ff]ilesystem\b|last unmount of filesystem|"
    r"detected capacity change from 0 to"
)


# -- the mount table -------------------------------------------------------------------------


def unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal (\\040)."""
    return _OCTAL.sub(lambda m: chr(int(m[1], 8)), field)


def escape(path: str) -> str:
    """A path as /proc/mounts and /etc/fstab write it."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def normalise(path: str) -> str:
    """An absolute mount point with no trailing slash (`/srv/data/` is `/srv/data`)."""
    if not path.startswith("/"):
        raise ValueError("not an absolute path")
    return "/" + posixpath.normpath(path).lstrip("/")


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/mounts, its fields unescaped; `line` as the kernel wrote it."""

    source: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]
    line: str

    @property
    def identity(self) -> str:
        """Device and options as /proc/mounts writes them: what the remount fix pins."""
        fields = self.line.split(" ")
        return f"{fields[0]} {fields[3]}"

    @property
    def stopped_by_kernel(self) -> str | None:
        return next((flag for flag in KERNEL_STOPPED if flag in self.options), None)

    @property
    def read_only(self) -> bool:
        return "ro" in self.options or self.stopped_by_kernel is not None


def parse_mounts(text: str) -> dict[str, Mount]:
    """Mounts by mount point; of mounts stacked on one path, the top (last) one. The kernel
    separates fields by one space and escapes only space, tab, newline and backslash, so a
    mount point may hold any other character (a carriage return, a form feed)."""
    found: dict[str, Mount] = {}
    for line in text.split("\n"):
        fields = line.split(" ")
        if len(fields) >= 4:
            mount = Mount(
                unescape(fields[0]),
                unescape(fields[1]),
                fields[2],
                tuple(fields[3].split(",")),
                line,
            )
            found[mount.mountpoint] = mount
    return found


def parse_fstab(text: str) -> dict[str, str]:
    """/etc/fstab lines by (normalised) mount point."""
    entries: dict[str, str] = {}
    for line in text.split("\n"):
        fields = [field for field in re.split(r"[ \t]+", line) if field]
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1].startswith("/"):
            entries.setdefault(normalise(unescape(fields[1])), line.strip())
    return entries


@dataclass(frozen=True, slots=True)
class MountView:
    """One mount point as /proc/self/mountinfo shows it: the directory of its filesystem
    mounted there (`/` for a whole filesystem, a subdirectory for a bind mount), and whether
    the mount itself and the filesystem under it are read-only. The kernel never makes a
    mount read-only on its own (after an error it stops the filesystem), so a read-only
    mount of a read-write filesystem is someone's `mount --bind -o ro`."""

    root: str
    mount_ro: bool
    super_ro: bool


def parse_mountinfo(mountinfo: str) -> dict[str, MountView]:
    """Mount point -> its `MountView`; the top mount of a stacked mount point wins."""
    views = {}
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, after = head.split(" "), tail.split(" ")
        if len(fields) < 6:
            continue
        # A line cut short of its superblock options says nothing of the filesystem: it
        # counts as read-only, so a read-only mount on it is never taken for a bind mount.
        super_ro = "ro" in after[2].split(",") if sep and len(after) > 2 else True
        views[unescape(fields[4])] = MountView(
            unescape(fields[3]), "ro" in fields[5].split(","), super_ro
        )
    return views


# -- the kernel log --------------------------------------------------------------------------


def message(line: str) -> str:
    """A log line without its `[ 123.456]` stamp and journalctl's `host kernel: ` prefix."""
    stamp = _STAMP.match(line)
    if stamp is None:
        return line.strip()
    return _JOURNAL_HOST.sub("", line[stamp.end() :], count=1).strip()


def has_entries(text: str) -> bool:
    """Whether a kernel log has stamped lines (`journalctl` says `-- No entries --`)."""
    return any(_STAMP.match(line) for line in text.splitlines())


def mentions(text: str, name: str) -> bool:
    """Whether `text` names the device `name` as a whole name (`loop3-8` is loop3's
    journal; `loop30` and `sda1` are other devices than `loop3` and `sda`)."""
    return name in text and re.search(rf"(?<![\w-]){re.escape(name)}(?!\w)", text) is not None


def is_error(text: str) -> bool:
    """Whether a kernel message reports an error, not a mount option such as
    `errors=remount-ro` or an ordinary mount or unmount."""
    return _ERROR.search(text) is not None


def is_io_error(text: str) -> bool:
    return _IO.search(text) is not None


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """A mounted filesystem's device as the kernel names it (`loop3`, `sda1`, `dm-0`), its
    other names (the device-mapper name) and the disks underneath (`sda` of `sda1`)."""

    name: str
    aliases: tuple[str, ...] = ()
    disks: tuple[str, ...] = ()

    @property
    def own_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def parse_block_device(text: str) -> BlockDevice:
    """The output of the device-resolving script: `device NAME`, then `alias NAME` and
    `disk NAME` lines."""
    name, aliases, disks = "", [], []
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if not value or "/" in value or any(c.isspace() for c in value):
            continue
        if key == "device" and not name:
            name = value
        elif key == "alias" and value not in aliases:
            aliases.append(value)
        elif key == "disk" and value not in disks:
            disks.append(value)
    if not name:
        raise ParseError(f"no device name in {text.strip()[:200]!r}")
    return BlockDevice(name, tuple(aliases), tuple(d for d in disks if d != name))


@dataclass(frozen=True, slots=True)
class DeviceLog:
    """The kernel log lines about one device: those that count, the errors among them, and
    how many older lines about the device were left out (before its last unmount or
    re-attach, so about another filesystem that used the same device number)."""

    device: BlockDevice
    lines: tuple[str, ...]
    errors: tuple[str, ...]
    stale: int = 0
    since: str | None = None
    """The unmount or attach line the counted lines follow, if there was one."""

    @property
    def io_errors(self) -> bool:
        return any(is_io_error(message(line)) for line in self.errors)


def device_log(text: str, device: BlockDevice) -> DeviceLog:
    """The lines of a kernel log (dmesg, or `journalctl -k -o short-monotonic`) about
    `device`, oldest first."""
    about: list[tuple[str, bool]] = []  # (line, about the device itself, not a disk below)
    for line in text.splitlines():
        said = message(line)
        if any(mentions(said, name) for name in device.own_names):
            about.append((line, True))
        elif any(mentions(said, name) for name in device.disks):
            about.append((line, False))
    resets = [i for i, (line, own) in enumerate(about) if own and _RESET.search(message(line))]
    cut = resets[-1] if resets else -1
    counted = tuple(line for i, (line, own) in enumerate(about) if i > cut or not own)
    stale = sum(1 for i, (_, own) in enumerate(about) if own and i < cut)
    errors = tuple(line for line in counted if is_error(message(line)))
    return DeviceLog(device, counted, errors, stale, about[cut][0] if resets else None)


# -- dumpe2fs -h ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ext4Errors:
    """What ext2/3/4 keep about errors in the superblock until fsck clears them."""

    state: str
    """`clean`, `clean with errors`, `not clean`, `not clean with errors`."""
    count: int = 0
    first: str | None = None
    """`Mon Nov 23 15:59:34 2026 in ext4_lookup (EFSCORRUPTED)`."""
    last: str | None = None
    journal_errno: int = 0

    @property
    def has_errors(self) -> bool:
        return self.count > 0 or "error" in self.state or self.journal_errno != 0

    def describe(self) -> str:
        """One line for a person: the state and, with errors, the count and the last."""
        if not self.has_errors:
            return f"state {self.state}, no errors recorded"
        said = f"state {self.state}, {self.count} error{'s' if self.count != 1 else ''} recorded"
        if self.last:
            said += f", last {self.last}"
        if self.journal_errno:
            said += f", journal errno {self.journal_errno}"
        return said


def parse_dumpe2fs(text: str) -> Ext4Errors:
    """The superblock fields of `dumpe2fs -h` that tell about errors."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    state = fields.get("Filesystem state")
    if not state:
        raise ParseError(f"no 'Filesystem state' in dumpe2fs output {text.strip()[:200]!r}")

    def number(key: str) -> int:
        try:
            return int(fields.get(key, "0"))
        except ValueError:
            raise ParseError(f"{key}: {fields[key]!r} is not a number") from None

    def when(which: str) -> str | None:
        time = fields.get(f"{which} error time")
        if not time:
            return None
        function = fields.get(f"{which} error function")
        err = fields.get(f"{which} error err")
        return time + (f" in {function}" if function else "") + (f" ({err})" if err else "")

    return Ext4Errors(
        state=state,
        count=number("FS Error count"),
        first=when("First"),
        last=when("Last"),
        journal_errno=number("Journal errno"),
    )
