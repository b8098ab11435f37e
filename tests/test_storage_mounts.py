"""Read-only and missing mounts (storage wizard, runbook S1), with the kernel log and ext4's
error record as hints: the parsers on recorded texts (tests/data/kernlog, tests/data/dumpe2fs),
then real loop-mounted ext4s, remounted through the gate locally and over SSH."""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.storage.expected_mounts import MOUNTS
from fleetdeck.checks.storage.mounts import READONLY
from fleetdeck.hosts.linux.kernlog import (
    BlockDevice,
    device_log,
    escape,
    is_error,
    mentions,
    message,
    normalise,
    parse_block_device,
    parse_dumpe2fs,
    parse_fstab,
    parse_mounts,
)
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import CommandResult, LocalShell, Shell

from loopfs import LoopFs, MakeLoopFs, mounts
from loopfs import loopfs as loopfs
from shells import LocalWith, answered, with_file
from sshd import NetnsLab, SshKeys, write_known_hosts

DATA = Path(__file__).parent / "data"
HOST = socket.gethostname()


def kernlog(name: str, until: str | None = None) -> str:
    """A recorded kernel log, cut after the line that holds `until`."""
    lines = (DATA / "kernlog" / name).read_text().splitlines(keepends=True)
    if until is not None:
        lines = lines[: next(i for i, line in enumerate(lines) if until in line) + 1]
    return "".join(lines)


def dumpe2fs(name: str) -> str:
    return (DATA / "dumpe2fs" / name).read_text()


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, params or {})


async def yes(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


def here(*argv: str) -> None:
    """Change this machine's mounts behind fleetdeck's back, as another operator would."""
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def fstab_line(fs: LoopFs) -> str:
    """An /etc/fstab line that mounts `fs` read-write: what says it was meant to be."""
    return f"{fs.device} {escape(str(fs.mountpoint))} ext4 defaults 0 2\n"


def options_of(mountpoint: Path) -> list[str]:
    """The top mount's options on `mountpoint`, as this runner sees them."""
    found = [opts for _, target, opts in mounts() if target == str(mountpoint)]
    assert found, f"{mountpoint} is not mounted"
    return found[-1].split(",")


async def readonly_on(shell: Shell, mountpoint: Path) -> Finding:
    found = [f for f in await READONLY.run(context(shell)) if f.target == str(mountpoint)]
    assert len(found) == 1, found
    return found[0]


# -- the kernel log, recorded -----------------------------------------------------------------


def test_a_reused_loop_device_counts_only_what_came_after_it_was_attached() -> None:
    loop1 = BlockDevice("loop1")
    # A fresh ext4 on loop1, just mounted: the errors of the ext4 before it are not its own.
    fresh = device_log(kernlog("loop1-reused.txt", until="9240.769965"), loop1)
    assert fresh.errors == () and fresh.stale == 8
    assert fresh.since and "loop1: detected capacity change from 0" in fresh.since

    # The same ext4 after its image ran out of room: block-layer and ext4 errors, read-only.
    broken = device_log(kernlog("loop1-reused.txt", until="9246.604173"), loop1)
    assert broken.io_errors and len(broken.errors) == 27
    assert "Remounting filesystem read-only" in broken.errors[-1]
    assert any("Buffer I/O error on device loop1" in line for line in broken.errors)
    assert not any("9220." in line for line in broken.lines)  # the first ext4's error

    # An XFS shut down by hand, then the one whose unmount failed to write its metadata.
    shut = device_log(kernlog("loop1-reused.txt", until="9251.371853"), loop1)
    assert [message(line)[:25] for line in shut.errors] == [
        "XFS (loop1): User initiat",
        "XFS (loop1): Log I/O Erro",
        "XFS (loop1): Please unmou",
    ]
    last = device_log(kernlog("loop1-reused.txt"), loop1)
    assert last.since and "Unmounting Filesystem 852dfdf7" in last.since
    assert len(last.errors) == 13 and "metadata I/O error" in message(last.errors[5])


def test_a_whole_device_name_never_matches_a_longer_one() -> None:
    text = kernlog("noise-loop3.txt")
    loop3 = device_log(text, BlockDevice("loop3"))
    assert loop3.errors == ()
    assert [message(line).split(":")[0] for line in loop3.lines] == [
        "EXT4-fs (loop3)",
        "EXT4-fs (loop3)",
        "EXT4-fs (loop3)",
        "EXT4-fs (loop3)",
    ]
    assert len(device_log(text, BlockDevice("loop30")).errors) == 3  # journal loop30-8 too
    assert len(device_log(text, BlockDevice("loop33")).errors) == 1
    assert len(device_log(text, BlockDevice("loop13")).errors) == 1


@pytest.mark.parametrize(
    ("text", "name", "named"),
    [
        ("Aborting journal on device loop3-8.", "loop3", True),
        ("Aborting journal on device loop30-8.", "loop3", False),
        ("EXT4-fs (loop3): mounted filesystem", "loop3", True),
        ("I/O error, dev sda, sector 8 op 0x0:(READ)", "sda", True),
        ("Buffer I/O error on dev sda1, logical block 0", "sda", False),
        ("sd 0:0:0:0: [sda] tag#18 FAILED Result", "sda", True),
        ("XFS (dm-10): Ending clean mount", "dm-1", False),
        ("XFS (dm-1): Ending clean mount", "dm-1", True),
        ("md-sda grew", "sda", False),
    ],
)
def test_device_names_match_whole(text: str, name: str, named: bool) -> None:
    assert mentions(text, name) is named


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("EXT4-fs (loop3): mounted filesystem 2d7c r/w. Opts: errors=remount-ro.", False),
        ("EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro", False),
        ("EXT4-fs (loop3): re-mounted 2d7c5a19 ro.", False),
        ("EXT4-fs (loop3): unmounting filesystem 2d7c5a19.", False),
        ("loop3: detected capacity change from 0 to 32768", False),
        ("EXT4-fs (sda1): warning: mounting fs with errors, running e2fsck is recommended", True),
        ("EXT4-fs (sda1): error count since last fsck: 3", True),
        ("JBD2: Detected IO errors while flushing file data on sda1-8", True),
        ("BTRFS info (device sdb1): forced readonly", True),
        ("critical medium error, dev sdb, sector 81920 op 0x1:(WRITE)", True),
    ],
)
def test_mount_options_and_ordinary_mounts_are_not_errors(text: str, error: bool) -> None:
    assert is_error(text) is error


def test_a_bad_sector_on_the_disk_blocks_every_partition_on_it() -> None:
    text = kernlog("sata-sda1.txt")
    sda1 = device_log(text, BlockDevice("sda1", disks=("sda",)))
    assert sda1.io_errors and sda1.stale == 0 and sda1.since is None
    assert "Remounting filesystem read-only" in "".join(sda1.errors)
    assert not any("(sda10)" in line for line in sda1.lines)
    sda10 = device_log(text, BlockDevice("sda10", disks=("sda",)))
    assert not any("(sda1)" in line for line in sda10.lines)
    assert any("Unrecovered read error" in line for line in sda10.errors)  # the same disk
    alone = device_log(text, BlockDevice("sda10"))  # without its disk: its own lines only
    assert alone.errors == ()


def test_journalctl_lines_for_a_mapper_device_and_the_disk_below_it() -> None:
    text = kernlog("journal-dm-0.txt")
    assert message(text.splitlines()[2]).startswith("XFS (dm-0): Mounting")
    dm0 = device_log(text, BlockDevice("dm-0", aliases=("vg0-data",), disks=("sdb",)))
    assert len(dm0.errors) == 4 and dm0.io_errors
    assert "critical medium error, dev sdb" in dm0.errors[0]
    dm10 = device_log(text, BlockDevice("dm-10", disks=("sdc",)))
    assert len(dm10.errors) == 1 and "force_shutdown" in dm10.errors[0]


def test_the_device_resolver_output_is_read_strictly() -> None:
    said = parse_block_device("device dm-0\nalias vg0-data\ndisk sdb1\ndisk sdb\ndisk sdb\n")
    assert said == BlockDevice("dm-0", ("vg0-data",), ("sdb1", "sdb"))
    assert said.own_names == ("dm-0", "vg0-data")
    with pytest.raises(ParseError):
        parse_block_device("no block device for /proc (proc)\n")


# A kernel log of random lines about loop<N>: the lines counted for one device are exactly
# the lines about that device number since its last attach.
LINES = [
    "loop{n}: detected capacity change from 0 to 32768",
    "EXT4-fs (loop{n}): mounted filesystem 2d7c r/w. Opts: errors=remount-ro.",
    "EXT4-fs error (device loop{n}): ext4_lookup:1789: inode #12: comm cat: deleted inode",
    "Aborting journal on device loop{n}-8.",
    "Buffer I/O error on device loop{n}, logical block 20481",
    "I/O error, dev loop{n}, sector 40962 op 0x1:(WRITE) flags 0x4800 phys_seg 20 prio class 2",
    "EXT4-fs (loop{n}): unmounting filesystem 2d7c.",
    "ext4: Unknown parameter 'emergency_ro'",
]


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.sampled_from(LINES), st.sampled_from([3, 30, 13, 33])), max_size=40),
    st.sampled_from([3, 30, 13]),
)
def test_lines_counted_are_the_devices_own_since_its_last_reset(
    events: list[tuple[str, int]], n: int
) -> None:
    text = "".join(
        f"[{i:>5}.000000] {template.format(n=k)}\n" for i, (template, k) in enumerate(events)
    )
    found = device_log(text, BlockDevice(f"loop{n}"))
    ours = [i for i, (t, k) in enumerate(events) if k == n and "{n}" in t]  # lines about loop<n>
    resets = [i for i in ours if "capacity change" in events[i][0] or "unmounting" in events[i][0]]
    expected = [i for i in ours if not resets or i > resets[-1]]
    assert [int(line[1:6]) for line in found.lines] == expected
    assert found.stale == len([i for i in ours if resets and i < resets[-1]])
    assert all(is_error(message(line)) for line in found.errors)


@settings(max_examples=300)
@given(st.text(max_size=300), st.sampled_from(["loop3", "sda", "dm-0", "md0"]))
def test_the_kernel_log_parser_never_crashes(text: str, name: str) -> None:
    found = device_log(text, BlockDevice(name))
    assert set(found.errors) <= set(found.lines)


# -- dumpe2fs, recorded ------------------------------------------------------------------------


def test_dumpe2fs_clean_and_with_errors() -> None:
    clean = parse_dumpe2fs(dumpe2fs("ext4-clean.txt"))
    assert (clean.state, clean.count, clean.has_errors) == ("clean", 0, False)
    assert clean.describe() == "state clean, no errors recorded"

    corrupted = parse_dumpe2fs(dumpe2fs("ext4-deleted-inode-referenced.txt"))
    assert corrupted.has_errors and corrupted.count == 1 and corrupted.journal_errno == -5
    assert corrupted.last == "Mon Nov 23 15:59:34 2026 in ext4_lookup (EFSCORRUPTED)"

    eio = parse_dumpe2fs(dumpe2fs("ext4-journal-aborted-eio.txt"))
    assert eio.last and eio.last.endswith("in ext4_journal_check_start (EIO)")

    edited = parse_dumpe2fs(dumpe2fs("ext4-not-clean-with-errors.txt"))
    assert edited.describe() == (
        "state not clean with errors, 3 errors recorded, last Tue Nov 24 02:11:09 2026 "
        "in ext4_find_entry (EFSCORRUPTED)"
    )
    with pytest.raises(ParseError):
        parse_dumpe2fs("dumpe2fs: Bad magic number in super-block while trying to open /dev/sda")


# -- the mount table ---------------------------------------------------------------------------

PROC_MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
/dev/loop3 /srv/big\\040data ext4 ro,relatime 0 0
/dev/loop4 /srv/stacked ext4 ro,relatime 0 0
/dev/loop5 /srv/stacked ext4 rw,relatime 0 0
/dev/loop1 /tmp/e4/mnt ext4 rw,relatime,errors=remount-ro,emergency_ro 0 0
"""


def test_the_mount_table_unescapes_names_and_keeps_the_top_of_a_stack() -> None:
    table = parse_mounts(PROC_MOUNTS)
    assert table["/srv/big data"].read_only and table["/srv/big data"].identity == (
        "/dev/loop3 ro,relatime"
    )
    assert table["/srv/stacked"].source == "/dev/loop5" and not table["/srv/stacked"].read_only
    stopped = table["/tmp/e4/mnt"]
    assert stopped.read_only and stopped.stopped_by_kernel == "emergency_ro"
    assert escape("/srv/big data\\x") == "/srv/big\\040data\\134x"
    fstab = parse_fstab("# /srv/old\nUUID=1 /srv/big\\040data/ ext4 defaults 0 2\nswap none\n")
    assert list(fstab) == ["/srv/big data"]


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=40).map(lambda s: "/" + s), st.text(max_size=200))
def test_any_mount_point_reads_back_as_written_and_no_table_crashes_the_parser(
    path: str, noise: str
) -> None:
    line = f"/dev/loop3 {escape(path)} ext4 ro,relatime 0 0"
    table = parse_mounts(f"{noise}\n{line}\n")
    assert table[path].line == line and table[path].read_only
    assert parse_fstab(noise + "\n" + line) is not None


def test_expected_mounts_are_absolute_and_trailing_slashes_do_not_count() -> None:
    assert normalise("/srv/data/") == normalise("/srv//data") == "/srv/data"
    assert normalise("/") == "/"
    with pytest.raises(ValueError, match="not an absolute path"):
        normalise("srv/data")


# -- read-only mounts on real loop filesystems --------------------------------------------------


@pytest.mark.parametrize("space_in_name", [False, True])
async def test_read_only_mount_fstab_has_read_write_is_remounted_after_confirm(
    loopfs: MakeLoopFs, tmp_path: Path, space_in_name: bool
) -> None:
    fs = loopfs(space_in_name=space_in_name)
    fs.remount_ro()
    shell = with_file("/etc/fstab", fstab_line(fs))
    finding = await readonly_on(shell, fs.mountpoint)
    assert finding.status is Status.CRIT, finding
    assert "but /etc/fstab mounts it read-write" in finding.summary
    assert "the kernel log shows no errors for loop" in finding.summary
    sources = {e.source: e.output for e in finding.evidence}
    assert "Filesystem state:         clean" in sources[f"dumpe2fs -h {fs.device}"]
    assert any(s.startswith("kernel log (dmesg) about loop") for s in sources)
    (fix,) = finding.fixes
    assert fix.commands == (("mount", "-o", "remount,rw", str(fs.mountpoint)),)
    assert fix.risk.value == "disruptive" and fix.pin.value == f"{fs.device} ro,relatime"

    audit = tmp_path / "audit.jsonl"
    gate = ActionGate(audit=AuditLog(audit), confirm=yes)

    async def verify() -> Finding:
        return await readonly_on(shell, fs.mountpoint)

    result = await gate.apply(FixHost(HOST, shell), finding, fix, verify)
    assert result.outcome is Outcome.VERIFIED, result.message
    assert options_of(fs.mountpoint)[0] == "rw"
    (fs.mountpoint / "written-after-remount").write_text("ok\n")
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["undo"] == [shlex.join(("mount", "-o", "remount,ro", str(fs.mountpoint)))]


@pytest.mark.parametrize("change", ["unmounted", "remounted with other options"])
async def test_remount_is_aborted_when_the_mount_changed_since_it_was_offered(
    loopfs: MakeLoopFs, tmp_path: Path, change: str
) -> None:
    fs = loopfs(space_in_name=True)
    fs.remount_ro()
    shell = with_file("/etc/fstab", fstab_line(fs))
    finding = await readonly_on(shell, fs.mountpoint)
    (fix,) = finding.fixes
    if change == "unmounted":
        here("umount", str(fs.mountpoint))
    else:
        here("mount", "-o", "remount,ro,noexec", str(fs.mountpoint))

    async def verify() -> Finding:
        raise AssertionError("nothing ran, so nothing is verified")

    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
    result = await gate.apply(FixHost(HOST, shell), finding, fix, verify)
    assert result.outcome is Outcome.ABORTED, result.message
    assert result.runs == ()
    if change == "unmounted":
        assert "nothing is mounted there" in result.message
        assert not any(target == str(fs.mountpoint) for _, target, _ in mounts())
    else:
        assert "ro,noexec,relatime" in result.message
        assert options_of(fs.mountpoint)[0] == "ro"


async def wait_read_only(fs: LoopFs, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        options = options_of(fs.mountpoint)
        if "ro" in options or "emergency_ro" in options:
            return options
        await asyncio.sleep(0.05)
    raise AssertionError(f"{fs} did not turn read-only: {options_of(fs.mountpoint)}")


async def wait_error_recorded(fs: LoopFs, seconds: float = 10) -> str:
    """ext4 writes its error record to the superblock from a work queue: wait for it."""
    assert fs.device
    deadline = time.monotonic() + seconds
    while True:
        out = (await LocalShell(HOST).run(("dumpe2fs", "-h", fs.device))).stdout
        if "FS Error count" in out or time.monotonic() > deadline:
            return out
        await asyncio.sleep(0.1)


async def test_a_filesystem_with_a_real_error_is_not_offered_a_remount(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs()
    victim = fs.mountpoint / "data" / "orders.db"
    victim.parent.mkdir()
    victim.write_text("rows\n")
    fs.corrupt_inode(victim)
    with pytest.raises(OSError, match="Structure needs cleaning"):
        victim.read_text()
    options = await wait_read_only(fs)
    assert "FS Error count:           1" in await wait_error_recorded(fs)

    finding = await readonly_on(LocalShell(HOST), fs.mountpoint)
    assert finding.status is Status.CRIT and finding.fixes == ()
    name = Path(fs.device or "").name
    assert "no remount is offered" in finding.summary
    assert f"the kernel log shows errors on {name}" in finding.summary
    assert "dumpe2fs: state clean with errors, 1 error recorded" in finding.summary
    assert "Run fsck (or replace the disk) first" in finding.summary
    if "emergency_ro" in options:  # kernels since 6.x say so instead of `ro`
        assert "the kernel stopped writes after an error (emergency_ro)" in finding.summary
    log = next(e.output for e in finding.evidence if e.source.startswith("kernel log"))
    assert "deleted inode referenced" in log and "Remounting filesystem read-only" in log


def restricted_dmesg(journal: str | None, fstab: str = "") -> LocalWith:
    """This machine, where dmesg may not be read (dmesg_restrict) and journalctl answers
    `journal`: None for no entries, or the kernel log in `-o short-monotonic` form; and
    /etc/fstab, where given, is `fstab`."""

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if fstab and argv == ("cat", "/etc/fstab"):
            return answered(argv, 0, fstab)
        if argv[0] == "dmesg":
            return answered(
                argv, 1, "", "dmesg: read kernel buffer failed: Operation not permitted\n"
            )
        if argv[0] == "journalctl":
            return answered(argv, 0, journal or "-- No entries --\n")
        return None

    return LocalWith(answer)


def as_journal(dmesg: str) -> str:
    """dmesg's lines as `journalctl -k -o short-monotonic` prints them."""
    return "".join(
        line.replace("] ", f"] {HOST} kernel: ", 1) + "\n" for line in dmesg.splitlines()
    )


async def test_no_remount_is_offered_when_the_kernel_log_cannot_be_read(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs()
    fs.remount_ro()
    finding = await readonly_on(restricted_dmesg(None), fs.mountpoint)
    assert finding.status is Status.CRIT and finding.fixes == ()
    assert (
        "the kernel log could not be read (dmesg: read kernel buffer failed: Operation not "
        "permitted; journalctl -k: no entries)" in finding.summary
    )


async def test_the_journal_is_read_when_dmesg_is_restricted(loopfs: MakeLoopFs) -> None:
    clean, broken = loopfs(), loopfs()
    clean.remount_ro()
    victim = broken.mountpoint / "index.db"
    victim.write_text("rows\n")
    broken.corrupt_inode(victim)
    with pytest.raises(OSError, match="Structure needs cleaning"):
        victim.read_text()
    await wait_read_only(broken)
    dmesg = (await LocalShell(HOST).run(("dmesg",))).stdout
    shell = restricted_dmesg(as_journal(dmesg), fstab_line(clean) + fstab_line(broken))

    offered = await readonly_on(shell, clean.mountpoint)
    assert len(offered.fixes) == 1, offered.summary
    log = next(e for e in offered.evidence if e.source.startswith("kernel log"))
    assert log.source.startswith("kernel log (journalctl -k -b) about loop")
    assert log.output.startswith(
        "read with journalctl -k -b, because dmesg: read kernel buffer failed"
    )
    refused = await readonly_on(shell, broken.mountpoint)
    assert refused.fixes == () and "deleted inode referenced" in refused.summary + "".join(
        e.output for e in refused.evidence
    )


# -- expected mounts ---------------------------------------------------------------------------


async def test_expected_mounts_mounted_missing_and_never_made(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(space_in_name=True)
    plain = tmp_path / "not mounted"
    plain.mkdir()
    gone = tmp_path / "gone"
    expected = [str(fs.mountpoint), str(plain), str(gone), f"{fs.mountpoint}/", "srv/relative"]
    fstab = f"/dev/sdz1 {escape(str(plain))} ext4 defaults,noauto 0 2\n"
    ctx = context(with_file("/etc/fstab", fstab), {"mounts": "\n".join(expected)})
    found = {f.target: f for f in await MOUNTS.run(ctx)}
    holder = next(target for _, target, _ in reversed(mounts()) if str(plain).startswith(target))
    assert list(found) == [str(fs.mountpoint), str(plain), str(gone), "srv/relative"]

    mounted = found[str(fs.mountpoint)]
    assert mounted.status is Status.OK
    assert mounted.summary == f"{fs.mountpoint} is mounted: {fs.device} (ext4, read-write)"
    assert found[str(plain)].status is Status.CRIT
    assert found[str(plain)].summary == (
        f"expected mount {plain} is not mounted; /etc/fstab has it, so `mount {plain}` would "
        "mount it (it is noauto: not mounted at boot); the directory exists, so what is written "
        f"there now goes to the filesystem on {holder}"
    )
    assert found[str(gone)].status is Status.CRIT
    assert found[str(gone)].summary == (
        f"expected mount {gone} is not mounted; it is not in /etc/fstab, so nothing mounts it "
        "at boot; the directory does not exist"
    )
    assert found[str(gone)].fixes == ()  # `mount` is said, never offered
    assert found["srv/relative"].status is Status.UNKNOWN

    unreadable = context(with_file("/etc/fstab", None), {"mounts": str(gone)})
    (finding,) = await MOUNTS.run(unreadable)
    assert "/etc/fstab could not be read (/etc/fstab: Permission denied)" in finding.summary


async def test_a_stacked_mount_point_reports_the_top_mount(loopfs: MakeLoopFs) -> None:
    lower, upper = loopfs(), loopfs()
    lower.remount_ro()
    here("mount", "--bind", str(upper.mountpoint), str(lower.mountpoint))
    try:
        ctx = context(LocalShell(HOST), {"mounts": str(lower.mountpoint)})
        (finding,) = await MOUNTS.run(ctx)
        assert finding.summary == (
            f"{lower.mountpoint} is mounted: {upper.device} (ext4, read-write)"
        )
        assert (await readonly_on(LocalShell(HOST), lower.mountpoint)).status is Status.OK
    finally:
        here("umount", str(lower.mountpoint))


async def test_no_expected_mounts_says_how_to_configure_them() -> None:
    (finding,) = await MOUNTS.run(context(LocalShell(HOST)))
    assert finding.status is Status.OK and finding.target == HOST
    assert "set mounts in the storage configuration or pass --mounts" in finding.summary


# -- over SSH ----------------------------------------------------------------------------------


async def test_read_only_mount_on_a_namespace_host_is_remounted_over_ssh(
    loopfs: MakeLoopFs, netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    """The namespace host's mounts are a copy of ours made when its sshd started, so the
    filesystem is made first; its operator remounted it read-only on that host. Until that
    host's /etc/fstab has it (a copy bound over it there, in its own mount namespace only),
    nothing says it was meant to be writable: a question, no remount."""
    from fleetdeck.hosts.inventory.records import HostSpec
    from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host

    fs = loopfs(space_in_name=True)
    host = netns_lab.add_host("mountsrv")
    try:
        spec = HostSpec(host.name, host.address, host.port, user="root",
                        identity_files=(str(ssh_keys.client_key),))  # fmt: skip
        options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known", host))
        connection = await connect_host(spec, options)
        try:
            shell = SSHShell(host.name, connection)
            table = (await shell.run(("cat", "/proc/mounts"))).stdout
            assert escape(str(fs.mountpoint)) in table, "the loop mount is not seen on the host"
            done = await shell.run(("mount", "-o", "remount,ro", str(fs.mountpoint)))
            assert done.ok, done.stderr
            assert options_of(fs.mountpoint)[0] == "ro"  # one filesystem, seen from here too
            asked = await readonly_on(shell, fs.mountpoint)
            assert asked.status is Status.WARN and asked.fixes == (), asked

            fstab = tmp_path / "fstab"
            fstab.write_text((await shell.run(("cat", "/etc/fstab"))).stdout + fstab_line(fs))
            bound = await shell.run(("mount", "--bind", str(fstab), "/etc/fstab"))
            assert bound.ok, bound.stderr
            assert Path("/etc/fstab").read_text() != fstab.read_text()  # not ours: its own
            finding = await readonly_on(shell, fs.mountpoint)
            assert finding.status is Status.CRIT and "no errors" in finding.summary
            (fix,) = finding.fixes

            async def verify() -> Finding:
                return await readonly_on(shell, fs.mountpoint)

            gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
            result = await gate.apply(FixHost(host.name, shell), finding, fix, verify)
            assert result.outcome is Outcome.VERIFIED, result.message
            wrote = await shell.run(("touch", str(fs.mountpoint / "from-the-host")))
            assert wrote.ok, wrote.stderr
        finally:
            connection.close()
        assert options_of(fs.mountpoint)[0] == "rw"
        assert (fs.mountpoint / "from-the-host").exists()
    finally:
        netns_lab.remove_host(host)
