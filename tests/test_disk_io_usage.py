"""I/O per device (S3) and what uses the space (S6): the /proc/diskstats parser and the
du/find/df parsers on recorded texts, then both checks on real loop-mounted filesystems,
as root and as nobody, against a du cut off by its time bound, and over SSH."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.storage.diskio import DISK_IO, device_findings, parse_io_seconds
from fleetdeck.checks.storage.diskusage import (
    DISK_USAGE,
    Entry,
    Listing,
    Usage,
    bounded,
    error_lines,
    fullest,
    parse_depth,
    parse_df,
    parse_seconds,
    parse_sized_paths,
    parse_usage_path,
    usage_finding,
)
from fleetdeck.hosts.linux.diskstats import (
    WRAP,
    DiskStat,
    counter_step,
    device_rates,
    io_rates,
    parse_diskstats,
    parse_reading,
    partition_parent,
)
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import LocalShell, Shell
from fleetdeck.hosts.units import human_bytes

from conftest import require_binary, require_root
from loopfs import LoopFs, MakeLoopFs
from loopfs import loopfs as loopfs
from shells import prefixed
from sshd import NetnsLab, SshKeys, write_known_hosts

DATA = Path(__file__).parent / "data" / "diskstats"
HOST = socket.gethostname()
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, params or {})


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# -- /proc/diskstats: every layout ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "devices", "disk", "expected"),
    [
        ("debian12-kernel6.18.txt", 10, "vda", {"reads": 311808, "flushes": 11230,
          "flush_ms": 492}),
        ("ubuntu20.04-kernel5.4-18fields.txt", 4, "nvme0n1",
         {"discards": 1234, "sectors_discarded": 987654, "discard_ms": 321, "flushes": 0}),
        ("centos7-kernel3.10-14fields.txt", 6, "sda",
         {"reads": 1928374, "io_ms": 2345678, "queue_ms": 8901234, "discards": 0}),
        ("rhel5-kernel2.6.18-7field-partitions.txt", 3, "sda2",
         {"reads": 3474939, "sectors_read": 120932273, "writes": 16980063,
          "sectors_written": 135840952, "read_ms": 0}),
    ],
)  # fmt: skip
def test_every_kernel_layout_is_read(
    name: str, devices: int, disk: str, expected: dict[str, int]
) -> None:
    stats = {d.name: d for d in parse_diskstats(recorded(name))}
    assert len(stats) == devices
    for field, value in expected.items():
        assert getattr(stats[disk], field) == value, field
    assert stats[disk].raw.split()[2] == disk


def test_lines_the_kernel_did_not_print_are_skipped_and_nothing_usable_raises() -> None:
    text = (
        "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n"
        "   8       1 sda1 1 2 3\n"  # too short
        "   8       2 sda2 1 2 -3 4 5 6 7 8 9 10 11\n"  # negative
        "   8       3 sda3 1 2 x 4 5 6 7 8 9 10 11\n"
        "   8       4 sda4 ¹ 2 3 4 5 6 7 8 9 10 11\n"  # a digit to str.isdigit, not to int()
        "   8      16 sdb 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n"  # a future field
    )
    assert [d.name for d in parse_diskstats(text)] == ["sda", "sdb"]
    for nothing in ("", "cat: /proc/diskstats: No such file or directory\n", "\0\0\n"):
        with pytest.raises(ParseError):
            parse_diskstats(nothing)


def test_partitions_are_told_from_disks_by_the_kernels_naming_rule() -> None:
    names = {"sda", "sda1", "sdaa", "nvme0n1", "nvme0n1p2", "loop1", "loop10", "mmcblk0",
             "mmcblk0p1", "mmcblk0boot0", "md127", "dm-0", "sdp", "sdp3"}  # fmt: skip
    parents = {name: partition_parent(name, names) for name in sorted(names)}
    assert parents == {
        "dm-0": None, "loop1": None, "loop10": None, "md127": None, "mmcblk0": None,
        "mmcblk0boot0": None, "mmcblk0p1": "mmcblk0", "nvme0n1": None, "nvme0n1p2": "nvme0n1",
        "sda": None, "sda1": "sda", "sdaa": None, "sdp": None, "sdp3": "sdp",
    }  # fmt: skip


def test_the_hand_checked_pair_gives_iostats_figures() -> None:
    before = parse_diskstats(recorded("pair-2s-before.txt"))
    after = parse_diskstats(recorded("pair-2s-after.txt"))
    rates = {r.name: r for r in io_rates(before, after, 2.0)}
    assert "nbd9" not in rates  # attached between the readings
    sda = rates["sda"]
    assert (sda.reads_per_s, sda.writes_per_s) == (300, 100)
    assert (sda.read_bytes_per_s, sda.write_bytes_per_s) == (6 << 20, 1 << 20)
    assert (sda.read_await_ms, sda.write_await_ms, sda.await_ms) == (5, 45, 15)
    assert sda.util_percent == pytest.approx(97) and sda.queue_depth == pytest.approx(3.2)
    nvme = rates["nvme0n1"]
    assert nvme.util_percent == 100 and nvme.await_ms == pytest.approx(0.2)
    assert nvme.queue_depth == pytest.approx(0.5)
    sdd = rates["sdd"]  # write_ms and io_ms wrapped past 2**32
    assert sdd.write_await_ms == 5 and sdd.util_percent == pytest.approx(85)
    assert sdd.queue_depth == pytest.approx(2.0)
    assert rates["sde"].reset and rates["sde"].util_percent == 0 and rates["sde"].ios == 0
    assert rates["sr0"].idle and rates["sr0"].await_ms is None


def test_findings_from_the_pair_warn_on_busy_and_slow_disks_only() -> None:
    before = parse_reading(recorded("pair-2s-before.txt"))
    after = parse_reading(recorded("pair-2s-after.txt"))
    found = {f.target: f for f in device_findings("db-01", before, after, 2.0)}
    assert set(found) == {"sda", "nvme0n1", "sdb", "sdc", "sdd", "sde", "sr0", "loop1"}
    status = {name: f.status for name, f in found.items()}
    assert status == {"sda": Status.WARN, "nvme0n1": Status.WARN, "sdb": Status.WARN,
                      "sdc": Status.OK, "sdd": Status.OK, "sde": Status.OK, "sr0": Status.OK,
                      "loop1": Status.OK}  # fmt: skip
    assert found["sda"].summary.startswith(
        "sda: 97 % busy, await 15 ms, queue 3.2, 6.0 MiB/s read (300/s), 1.0 MiB/s written (100/s)"
    )
    assert "SSD or NVMe" in found["nvme0n1"].summary
    assert "await 250 ms" in found["sdb"].summary and "over 100 ms" in found["sdb"].summary
    assert "no figures" in found["sde"].summary and "idle" in found["sr0"].summary
    (evidence,) = found["sda"].evidence
    assert evidence.output.splitlines() == [
        line.strip() for n in ("before", "after")
        for line in recorded(f"pair-2s-{n}.txt").splitlines() if " sda " in line
    ]  # fmt: skip


def test_a_real_pair_with_uptime_reads_the_interval_from_the_host() -> None:
    first, second = (
        parse_reading(recorded("uptime-pair-1.txt")),
        parse_reading(recorded("uptime-pair-2.txt")),
    )
    assert first.uptime is not None and second.uptime is not None
    assert 0.9 <= second.uptime - first.uptime <= 1.2
    assert [d.name for d in first.disks] == [d.name for d in second.disks]
    findings = device_findings(HOST, first, second, second.uptime - first.uptime)
    assert "vda" in {f.target for f in findings}


def test_counters_that_go_down_wrap_or_reset_never_go_negative() -> None:
    assert counter_step(10, 15) == 5
    assert counter_step(WRAP - 5, 10) == 15  # a 32-bit wrap
    assert counter_step(5_000_000, 10) is None  # reset: a wrap would be absurdly large
    assert counter_step(WRAP + 100, 3) is None  # a 64-bit counter does not wrap at 2**32


counters = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=300)
@given(st.lists(counters, min_size=17, max_size=17), st.lists(counters, min_size=17, max_size=17),
       st.floats(min_value=0.01, max_value=3600))  # fmt: skip
def test_rates_are_never_negative_and_util_never_over_100(
    before: list[int], after: list[int], seconds: float
) -> None:
    names = [f for f in DiskStat.__dataclass_fields__ if f not in ("major", "minor", "name", "raw")]
    rates = device_rates(
        DiskStat(8, 0, "sda", **dict(zip(names, before, strict=True))),
        DiskStat(8, 0, "sda", **dict(zip(names, after, strict=True))),
        seconds,
    )
    assert 0 <= rates.util_percent <= 100
    figures = (rates.reads_per_s, rates.writes_per_s, rates.read_bytes_per_s,
               rates.write_bytes_per_s, rates.queue_depth, rates.await_ms or 0)  # fmt: skip
    assert all(value >= 0 for value in figures)


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_any_text_parses_or_raises_parse_error(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_reading(text)


def test_io_seconds_parameter() -> None:
    assert parse_io_seconds("1") == "1" and parse_io_seconds("0.5") == "0.5"
    for bad in ("0", "-1", "21", "soon", "nan"):
        with pytest.raises(ValueError):
            parse_io_seconds(bad)


# -- du, find and df output -----------------------------------------------------------------


def test_du_and_find_records_keep_spaces_tabs_and_newlines_in_names() -> None:
    du = parse_sized_paths((DATA / "du-odd-names.bin").read_bytes().decode())
    assert [e.path for e in du] == ["srv/locked", "srv/with space", "srv/tab\tbed",
                                    "srv/new\nline", "srv/big/inner", "srv/big", "srv"]  # fmt: skip
    assert du[-1] == Entry(5038080, "srv")
    find = parse_sized_paths((DATA / "find-odd-names.bin").read_bytes().decode())
    assert sorted(find, key=lambda e: e.size) == [
        Entry(2000000, "srv/new\nline/two MiB.bin"),
        Entry(3000000, "srv/big/inner/blob.bin"),
    ]


def test_a_record_cut_off_by_a_kill_is_dropped() -> None:
    text = "4096\t/srv/a\0" + "8192\t/srv/b\0" + "12288\t/srv/c-cut-he"
    assert parse_sized_paths(text) == (Entry(4096, "/srv/a"), Entry(8192, "/srv/b"))
    assert parse_sized_paths("") == () and parse_sized_paths("garbage\0\0x\ty\0") == ()


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 2**63), st.text(min_size=1).filter(
    lambda p: "\0" not in p)), max_size=20))  # fmt: skip
def test_any_paths_come_back_whole(records: list[tuple[int, str]]) -> None:
    text = "".join(f"{size}\t{path}\0" for size, path in records)
    assert parse_sized_paths(text) == tuple(Entry(size, path) for size, path in records)


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_any_df_or_du_text_parses_without_raising(text: str) -> None:
    assert all(row.mountpoint.startswith("/") for row in parse_df(text))
    assert all(entry.size >= 0 for entry in parse_sized_paths(text))


def test_du_permission_errors_are_counted() -> None:
    errors = error_lines(recorded("du-stderr-nobody.txt") + "find: noise\n", "du")
    assert errors == ("du: cannot read directory 'srv/locked': Permission denied",)


def test_df_rows_mount_points_with_spaces_and_the_fullest() -> None:
    rows = parse_df(recorded("df-local.txt"))
    assert [r.mountpoint for r in rows] == [
        "/", "/tmp/pytest-of-root/pytest-7/test_x0/fdt1234-1 mnt", "/srv/spare",
        "/var/lib/docker"]  # fmt: skip
    chosen = fullest(rows)
    assert chosen is not None and chosen.percent == 97 and chosen.mountpoint.endswith(" mnt")
    assert fullest(()) is None


def test_usage_parameters() -> None:
    assert parse_usage_path(" /var/log/ ") == "/var/log" and parse_usage_path("/") == "/"
    assert parse_depth("3") == "3" and parse_seconds("20") == "20"
    for parse, bad in ((parse_usage_path, "var/log"), (parse_depth, "0"), (parse_depth, "11"),
                       (parse_seconds, "26"), (parse_seconds, "1.5")):  # fmt: skip
        with pytest.raises(ValueError):
            parse(bad)


def _listing(entries: Sequence[Entry], stopped: bool = False, status: int = 0) -> Listing:
    return Listing("du", "du ...", tuple(entries), (), -9 if stopped else status, stopped, 20)


def test_a_du_stopped_before_it_printed_anything_is_unknown_and_says_which_bound() -> None:
    usage = Usage("/srv", None, _listing([], stopped=True), _listing([], stopped=True), 2)
    finding = usage_finding(usage, 80)
    assert finding.status is Status.UNKNOWN
    assert "within 20 s (its time bound)" in finding.summary
    # advice an operator can follow: no setting or flag gives a depth or a time bound
    assert finding.summary.endswith("ask for a smaller directory below it (--usage DIR, or "
                                    "`usage` in [storage])")  # fmt: skip
    assert "usage_depth" not in finding.summary and "usage_seconds" not in finding.summary


def test_a_du_stopped_halfway_shows_what_it_had_and_says_partial() -> None:
    entries = [Entry(4096, "/srv/a/x"), Entry(1 << 30, "/srv/a"), Entry(8192, "/srv/b/y")]
    usage = Usage("/srv", None, _listing(entries, stopped=True), _listing([]), 2)
    finding = usage_finding(usage, 80)
    assert finding.status is Status.OK
    assert finding.summary == (
        "/srv: total unknown (partial: du stopped after 20 s); largest: a 1.0 GiB"
    )
    assert finding.evidence[0].output.startswith("PARTIAL: killed after 20 s")


# -- disk.io on real loop devices -----------------------------------------------------------


def _loop_name(fs: LoopFs) -> str:
    assert fs.device is not None
    return fs.device.removeprefix("/dev/")


def _unmount(fs: LoopFs) -> None:
    subprocess.run(["umount", str(fs.mountpoint)], check=True)


def _wait_quiet(name: str, timeout: float = 15.0) -> None:
    """Until a device's counters stand still for 0.5 s."""

    def line() -> str:
        return next(x for x in Path("/proc/diskstats").read_text().splitlines() if f" {name} " in x)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        first = line()
        time.sleep(0.5)
        if line() == first:
            return
    pytest.fail(f"{name} never went quiet: {line()}")


@contextlib.contextmanager
def writing(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Direct, fsync'ed writes of 4 MiB at a time, over and over, until the block ends."""
    script = ('while :; do dd if=/dev/zero of="$0/load.bin" bs=64k count=64 oflag=direct '
              "conv=fsync status=none || exit 1; done")  # fmt: skip
    process = subprocess.Popen(["sh", "-c", script, str(directory)], stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield process
    finally:
        process.kill()
        process.wait(5)


async def test_a_loop_device_under_writes_shows_traffic_and_an_idle_one_none(
    loopfs: MakeLoopFs,
) -> None:
    require_binary("dd", "coreutils")
    busy, idle = loopfs(size_mib=64), loopfs(size_mib=16)
    # Attached but not mounted: a mounted ext4 goes on initialising its inode tables in the
    # background for a while, in pauses longer than any wait here would be sure to see.
    _unmount(idle)
    _wait_quiet(_loop_name(idle))
    with writing(busy.mountpoint):
        findings = await DISK_IO.run(context(LocalShell(HOST)))
    by_device = {f.target: f for f in findings}
    loaded = by_device.get(_loop_name(busy))
    assert loaded is not None, [f.summary for f in findings]
    assert loaded.status in (Status.OK, Status.WARN)
    (evidence,) = loaded.evidence
    first, second = (parse_diskstats(line)[0] for line in evidence.output.splitlines())
    rates = device_rates(first, second, 1.0)
    assert rates.writes_per_s > 0 and rates.write_bytes_per_s >= 1 << 20, loaded.summary
    assert rates.util_percent > 0, loaded.summary
    assert " % busy" in loaded.summary and "written" in loaded.summary
    idle_line = by_device.get(_loop_name(idle))
    assert idle_line is None, idle_line  # an idle loop device is not worth a line
    assert any(not f.target.startswith(("loop", "zram", "dm-")) for f in findings)  # disks


@pytest.mark.parametrize(
    ("over", "words"),
    [("/dev/null", "no device lines"), ("locked", "Permission denied")],
)
async def test_unreadable_diskstats_is_unknown_with_the_reason(
    over: str, words: str, tmp_path: Path
) -> None:
    require_root("bind-mount over /proc/diskstats in a private mount namespace")
    source = over
    if over == "locked":
        locked = tmp_path / "diskstats"
        locked.write_text("")
        locked.chmod(0)
        tmp_path.chmod(0o755)
        source = str(locked)
    # A private mount namespace: this machine's /proc/diskstats is never touched.
    script = 'mount --bind "$0" /proc/diskstats && exec "$@"'
    shell = prefixed("unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                        source, *NOBODY)  # fmt: skip
    (finding,) = await DISK_IO.run(context(shell))
    assert finding.status is Status.UNKNOWN and words in finding.summary, finding.summary


# -- disk.usage on real loop filesystems ------------------------------------------------------


def _write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        file.write(os.urandom(size))
    return path


def _blocks(top: Path) -> int:
    """What du -B1 counts: the blocks of the directory and everything below it."""
    paths = [top, *top.rglob("*")]
    return sum(p.lstat().st_blocks * 512 for p in paths)


async def test_the_biggest_directories_come_first_with_their_sizes(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=64)
    root = fs.mountpoint / "srv"
    _write(root / "big" / "data" / "blob.bin", 20 << 20)
    _write(root / "big" / "notes.txt", 1000)
    _write(root / "medium" / "part.bin", 3 << 20)
    for n in range(3):
        _write(root / f"small-{n}" / "a.txt", 100)
    (finding,) = await DISK_USAGE.run(context(LocalShell(HOST), {"usage": str(root)}))
    assert finding.status is Status.OK and finding.target == str(root)
    assert finding.summary.startswith(f"{root}: 23.")
    sizes = [human_bytes(_blocks(root / name)) for name in ("big", "medium", "small-0")]
    assert sizes[:2] == ["20.0 MiB", "3.0 MiB"]  # du -B1 counts blocks, as _blocks does
    assert "largest: big {}, medium {}, small-0 {}, small-1".format(*sizes) in finding.summary
    assert "largest file: big/data/blob.bin 20.0 MiB" in finding.summary
    assert "filesystem " in finding.summary and "% full" in finding.summary
    du, find, df = finding.evidence
    listed = [line.split(maxsplit=2) for line in du.output.splitlines()[1:]]
    assert [row[2] for row in listed[:3]] == [f"{root}/big", f"{root}/big/data", f"{root}/medium"]
    assert du.source.startswith("timeout -s KILL 20 ") and " du -H -x -0 -d 2 -B1 " in du.source
    assert find.output.splitlines()[1:] == [
        f"  20.0 MiB  {root}/big/data/blob.bin",
        f"   3.0 MiB  {root}/medium/part.bin",
    ]
    assert df.output.startswith(f"{fs.device}: ")


async def test_a_filesystem_over_the_warning_level_makes_it_a_warning(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=16)
    fs.fill_to(95)
    (finding,) = await DISK_USAGE.run(context(LocalShell(HOST), {"usage": str(fs.mountpoint)}))
    assert finding.status is Status.WARN, finding.summary
    assert "warn at 80 %" in finding.summary and "largest file: fill-1.bin" in finding.summary


async def test_without_a_path_the_fullest_local_filesystem_is_chosen_and_said_so(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs(size_mib=16, space_in_name=True)
    fs.fill_to(100)
    shell = LocalShell(HOST)
    (finding,) = await DISK_USAGE.run(context(shell, {"usage_seconds": "5"}))
    assert "(chosen: the fullest local filesystem, 100 % used)" in finding.summary, finding
    if finding.target == str(fs.mountpoint):  # another test's full filesystem may tie
        assert finding.status is Status.WARN and "fill-1.bin" in finding.summary


async def test_names_with_a_space_and_a_newline_come_out_whole(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=32)
    odd = fs.mountpoint / "with space" / "new\nline"
    _write(odd / "two MiB.bin", 2 << 20)
    _write(fs.mountpoint / "tab\there" / "x", 10)
    (finding,) = await DISK_USAGE.run(context(LocalShell(HOST), {"usage": str(fs.mountpoint)}))
    assert "largest: with space 2.0 MiB" in finding.summary
    assert "largest file: with space/new\\nline/two MiB.bin 2.0 MiB" in finding.summary
    du = finding.evidence[0].output
    assert f"{fs.mountpoint}/with space/new\\nline" in du and "tab\\there" in du
    assert "\n" not in finding.summary


async def test_a_usage_path_that_is_a_symbolic_link_is_measured_at_its_target(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """/var/log/app -> /data/applogs: du and find follow the link they are given (-H)."""
    fs = loopfs(size_mib=32)
    _write(fs.mountpoint / "applogs" / "big.log", 3 << 20)
    link = tmp_path / "applogs"
    link.symlink_to(fs.mountpoint / "applogs")
    (finding,) = await DISK_USAGE.run(context(LocalShell(HOST), {"usage": str(link)}))
    assert finding.status is Status.OK, finding.summary
    assert finding.summary.startswith(f"{link}: 3.0 MiB under it"), finding.summary
    assert "largest file: big.log 3.0 MiB" in finding.summary


async def test_a_missing_path_is_unknown_with_the_reason(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=16)
    missing = f"{fs.mountpoint}/no such dir"
    (finding,) = await DISK_USAGE.run(context(LocalShell(HOST), {"usage": missing}))
    assert finding.status is Status.UNKNOWN and finding.target == missing
    assert finding.summary == f"cannot read {missing}: df: '{missing}': No such file or directory"


@pytest.fixture
def open_loopfs() -> Iterator[LoopFs]:
    """A loop filesystem nobody can reach: made under a world-traversable directory (pytest's
    own temporary directories are root's only)."""
    require_root("mount a filesystem and run du as nobody")
    require_binary("setpriv", "util-linux")
    with tempfile.TemporaryDirectory(prefix="fdt-usage-") as directory:
        os.chmod(directory, 0o755)
        with LoopFs(Path(directory), size_mib=16) as fs:
            fs.mountpoint.chmod(0o755)
            yield fs


async def test_unreadable_directories_are_counted_not_fatal_for_nobody(
    open_loopfs: LoopFs,
) -> None:
    root = open_loopfs.mountpoint
    _write(root / "open" / "data.bin", 2 << 20)
    _write(root / "locked" / "secret.bin", 1 << 20)
    (root / "locked").chmod(0)
    nobody = prefixed(*NOBODY)
    (finding,) = await DISK_USAGE.run(context(nobody, {"usage": str(root)}))
    assert finding.status is Status.OK, finding.summary
    # lost+found is root's (mode 700) as well as locked/
    assert "du could not read 2 paths (see the evidence)" in finding.summary
    du = finding.evidence[0].output
    assert f"du: cannot read directory '{root}/locked': Permission denied" in du
    assert "largest: open 2.0 MiB" in finding.summary

    (denied,) = await DISK_USAGE.run(context(nobody, {"usage": str(root / "locked")}))
    assert denied.status is Status.UNKNOWN
    assert denied.summary.startswith(f"cannot read {root}/locked: du: cannot read directory")


def _many_files(top: Path, dirs: int, per_dir: int) -> None:
    for d in range(dirs):
        directory = top / f"d{d:03d}"
        directory.mkdir(parents=True)
        for f in range(per_dir):
            os.close(os.open(directory / f"f{f:03d}.log", os.O_CREAT | os.O_WRONLY, 0o644))


def _drop_caches(fs: LoopFs) -> None:
    """Unmount and mount again: the next du reads every inode from the device."""
    assert fs.device is not None
    _unmount(fs)
    subprocess.run(["mount", fs.device, str(fs.mountpoint)], check=True)


@contextlib.contextmanager
def slow_reads(device: str, iops: int) -> Iterator[tuple[str, ...]]:
    """A command prefix that runs in a blkio cgroup allowed `iops` reads a second from
    `device`: a slow disk, for real. (Unthrottled, du stats 200,000 cold inodes here in
    1.0 to 1.7 s: too close to a 1 s bound to tell a test anything.)"""
    require_root("make a blkio cgroup")
    blkio = Path("/sys/fs/cgroup/blkio")
    if not (blkio / "blkio.throttle.read_iops_device").exists():
        pytest.fail("this test needs the cgroup v1 blkio controller at /sys/fs/cgroup/blkio")
    rdev = os.stat(device).st_rdev
    group = blkio / f"fdt{os.getpid()}-slow"
    group.mkdir()
    try:
        limit = f"{os.major(rdev)}:{os.minor(rdev)} {iops}"
        (group / "blkio.throttle.read_iops_device").write_text(limit)
        yield ("sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"))
    finally:
        deadline = time.monotonic() + 10
        while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        group.rmdir()


async def test_a_du_past_its_time_bound_gives_what_it_had_and_says_partial(
    loopfs: MakeLoopFs,
) -> None:
    """400 directories of 50 files on a device that serves 1,000 reads a second: du needs
    many seconds from a cold cache and is killed at 1 s."""
    fs = loopfs(size_mib=64, inodes=30_000)
    assert fs.device is not None
    _many_files(fs.mountpoint / "tree" / "logs", dirs=400, per_dir=50)
    with slow_reads(fs.device, iops=1000) as prefix:
        shell = prefixed(*prefix)
        _drop_caches(fs)
        started = time.monotonic()
        tree = {"usage": str(fs.mountpoint / "tree"), "usage_depth": "1", "usage_seconds": "1"}
        (nothing,) = await DISK_USAGE.run(context(shell, tree))
        took = time.monotonic() - started
        assert nothing.status is Status.UNKNOWN, nothing.summary
        assert "printed nothing" in nothing.summary
        assert "within 1 s (its time bound)" in nothing.summary
        assert took < 3, f"took {took:.1f} s"

        _drop_caches(fs)
        started = time.monotonic()
        logs = {"usage": str(fs.mountpoint / "tree" / "logs"), "usage_seconds": "1"}
        (partial,) = await DISK_USAGE.run(context(shell, logs))
        took = time.monotonic() - started
    assert partial.status is Status.OK, partial.summary
    assert "total unknown (partial: du stopped after 1 s)" in partial.summary
    assert "largest: d0" in partial.summary
    du = partial.evidence[0].output.splitlines()
    assert du[0].startswith("PARTIAL: killed after 1 s (its time bound)")
    assert 2 <= len(du) - 2 <= 20, f"{len(du) - 2} directories listed"
    assert took < 3, f"took {took:.1f} s"


# -- over SSH -------------------------------------------------------------------------------


async def test_both_checks_work_over_ssh_on_a_namespace_host(
    netns_lab: NetnsLab, ssh_keys: SshKeys, loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """The namespace host sees this machine's /proc/diskstats, but not loop mounts made after
    its sshd started (its mount namespace does not receive them): the usage tree is a plain
    directory."""
    from fleetdeck.hosts.inventory.load import load_inventory
    from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host

    require_root("run sshd in a network namespace")
    host = netns_lab.add_host("diskio")
    fs = loopfs(size_mib=64)
    tree = tmp_path / "srv tree"
    _write(tree / "data" / "blob.bin", 3 << 20)
    try:
        inventory = tmp_path / "lab.toml"
        inventory.write_text(
            f'[[host]]\nname = "diskio"\naddress = "{host.address}"\nuser = "root"\n'
            f'identity_file = "{ssh_keys.client_key}"\n'
        )
        (spec,) = load_inventory([inventory]).select("diskio")  # fmt: skip
        known = write_known_hosts(tmp_path / "known_hosts", host)
        connection = await connect_host(spec, SSHOptions(known_hosts=known))
        try:
            shell = SSHShell("diskio", connection)
            with writing(fs.mountpoint):
                io = await DISK_IO.run(context(shell, {"io_seconds": "1"}))
            loaded = [f for f in io if f.target == _loop_name(fs)]
            assert loaded and "written" in loaded[0].summary, [f.summary for f in io]
            (usage,) = await DISK_USAGE.run(context(shell, {"usage": str(tree)}))
            assert usage.status is Status.OK, usage.summary
            assert "largest: data 3.0 MiB" in usage.summary
            assert "largest file: data/blob.bin 3.0 MiB" in usage.summary
            # The host's timeout(1) kills inside SSHShell's own: the kill is seen as a bound.
            cut = await bounded(shell, ("sh", "-c", "printf '1\\t/a\\0'; sleep 5"), 1)
            assert cut.stopped and cut.entries == (Entry(1, "/a"),), cut
        finally:
            connection.close()
    finally:
        netns_lab.remove_host(host)


async def test_the_io_interval_is_the_hosts_own(loopfs: MakeLoopFs) -> None:
    """A slow shell round trip does not stretch the interval: it is read from /proc/uptime."""
    findings = await DISK_IO.run(context(LocalShell(HOST), {"io_seconds": "0.5"}))
    sources = {e.source for f in findings for e in f.evidence}
    assert sources and all(" apart" in s for s in sources)
    seconds = [float(s.split("readings ")[1].split(" s")[0]) for s in sources]
    assert all(0.45 <= s <= 0.7 for s in seconds), seconds
