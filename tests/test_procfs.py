"""The parsers of host output read real formats exactly and never crash on odd ones."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.hosts.linux import procfs
from fleetdeck.hosts.linux.diskstats import disk_counters
from fleetdeck.hosts.linux.procfs import ParseError

# --- recorded texts, as hosts print them -----------------------------------------------------

PROC_STAT = """cpu  5904 10 1803 124613 563 0 104 6 0 0
cpu0 1969 0 669 63743 33 0 42 4 0 0
cpu1 3935 10 1133 60870 529 0 62 2 0 0
intr 170892 0 0
ctxt 310250
btime 1795431263
"""

MEMINFO = """MemTotal:       24684096 kB
MemFree:        24092384 kB
MemAvailable:   24268732 kB
Buffers:            7380 kB
Cached:           344932 kB
SwapTotal:       2097148 kB
SwapFree:        1048574 kB
HugePages_Total:       0
"""

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 18446744073709551615 12 3 4 0 0 0 0 999 10 5 6 0 0 0 0
wg-vpn0:1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0
"""

DISKSTATS = """ 252       0 vda 500000 100 90000000 300000 900000 500 70000000 900000 0 3000000 1200000 0 0 0 0
 252       1 vda1 10 0 8 0 4 0 16 0 0 7 0
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"""

DF_PKT = """Filesystem     Type  1024-blocks      Used  Available Capacity Mounted on
/dev/vda1      ext4     41152736  36400000    2636736      94% /
/dev/vdc       xfs    1073217536 482947891  590269645      45% /srv/backup disk
//nas/share    cifs         1000       900        -5      100% /mnt/nas  two  spaces
df: /mnt/nfs-archive: Stale file handle
df: ‘/mnt/private’: Permission denied
"""

DF_PI = """Filesystem       Inodes   IUsed    IFree IUse% Mounted on
/dev/vda1       2621440  314572  2306868   12% /
/dev/vda15            0       0        0     - /boot/efi
btrfs                 -       -        -     - /data
/dev/vdc      536870912   81234 536789678    1% /srv/backup disk
"""


def test_proc_stat_gives_total_and_each_core_in_seconds() -> None:
    total, cores = procfs.parse_proc_stat(PROC_STAT)
    assert total.user == pytest.approx(59.04)
    assert total.nice == pytest.approx(0.10)
    assert total.idle == pytest.approx(1246.13)
    assert total.steal == pytest.approx(0.06)
    assert [c.user for c in cores] == pytest.approx([19.69, 39.35])


def test_proc_stat_of_an_old_kernel_with_four_fields_still_reads() -> None:
    total, cores = procfs.parse_proc_stat("cpu 10 20 30 40\ncpu0 10 20 30 40\n")
    assert (total.user, total.idle, total.iowait) == (0.1, 0.4, 0.0)
    assert len(cores) == 1


def test_meminfo_reads_available_and_swap_in_bytes() -> None:
    mem = procfs.parse_meminfo(MEMINFO)
    assert mem.total == 24684096 * 1024
    assert mem.available == 24268732 * 1024
    assert mem.swap_used == (2097148 - 1048574) * 1024
    assert mem.swap_percent == pytest.approx(50.0, abs=0.01)


def test_meminfo_without_memavailable_estimates_it_like_free_does() -> None:
    mem = procfs.parse_meminfo(
        "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
    )
    assert mem.available == 400 * 1024


def test_net_dev_reads_every_interface_even_huge_counters_and_odd_names() -> None:
    nets = {n.name: n for n in procfs.parse_net_dev(NET_DEV)}
    assert set(nets) == {"lo", "eth0", "wg-vpn0"}
    assert nets["eth0"].rx_bytes == 2**64 - 1
    assert (nets["eth0"].rx_errors, nets["eth0"].rx_drops) == (3, 4)
    assert (nets["eth0"].tx_errors, nets["eth0"].tx_drops) == (5, 6)
    assert nets["wg-vpn0"].rx_bytes == 1 and nets["wg-vpn0"].tx_bytes == 3


def test_diskstats_reads_bytes_and_busy_time_of_old_and_new_kernels() -> None:
    disks = {d.name: d for d in disk_counters(DISKSTATS)}
    assert disks["vda"].read_bytes == 90000000 * 512
    assert disks["vda"].write_bytes == 70000000 * 512
    assert disks["vda"].busy_ms == 3000000
    assert disks["vda1"].busy_ms == 7  # 2.6 kernels print 11 fields only
    assert "loop0" in disks
    (old,) = disk_counters("   3    1 hda1 10 20 30 40\n")  # a partition before 2.6.25
    assert (old.reads, old.read_bytes, old.writes, old.write_bytes) == (10, 20 * 512, 30, 40 * 512)


def test_df_keeps_mount_points_with_spaces_and_reports_unreadable_mounts() -> None:
    mounts = {m.mountpoint: m for m in procfs.parse_df_usage(DF_PKT)}
    assert mounts["/srv/backup disk"].fstype == "xfs"
    assert mounts["/srv/backup disk"].used == 482947891 * 1024
    assert mounts["/mnt/nas  two  spaces"].free == 0  # negative Available (over-quota) is none
    assert mounts["/mnt/nfs-archive"].error == "Stale file handle"
    assert mounts["/mnt/private"].error == "Permission denied"
    assert mounts["/"].percent == pytest.approx(93.25, abs=0.01)


def test_df_inodes_skip_filesystems_without_inode_tables() -> None:
    inodes = procfs.parse_df_inodes(DF_PI)
    assert inodes["/"] == (2621440, 314572)
    assert inodes["/srv/backup disk"] == (536870912, 81234)
    assert "/boot/efi" not in inodes and "/data" not in inodes


def test_pid_stat_reads_command_names_with_spaces_and_parentheses() -> None:
    line = "31337 (evil) (name) S 1 2 3 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 4242 1 77 0"
    assert procfs.parse_pid_stat(line) == (31337, "evil) (name", 200, 4242, 77)
    assert procfs.parse_pid_stat("12 (short) S 1") is None


def test_loadavg_uptime_and_os_release() -> None:
    assert procfs.parse_loadavg("0.28 0.14 0.05 2/93 4877\n").five == 0.14
    assert procfs.parse_uptime("666.17 1246.13\n") == 666.17
    assert procfs.parse_os_release('NAME="Alpine Linux"\nVERSION=3.19\n') == "Alpine Linux 3.19"
    with pytest.raises(ParseError, match="loadavg"):
        procfs.parse_loadavg("")


def test_sections_are_split_on_markers_only() -> None:
    text = "noise\n@@m:a\n1\n2\n@@m:b\n\n@@m:c"
    assert procfs.split_sections(text, "@@m:") == {"a": "1\n2", "b": "", "c": ""}


# --- properties: odd but legal input never crashes a parser ----------------------------------

counters = st.integers(min_value=0, max_value=2**64 - 1)
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs"), blacklist_characters=":|"),
    min_size=1,
    max_size=15,
)


def _never_crashes(parser, text: str) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(ParseError):
        parser(text)


@given(st.lists(st.lists(counters, min_size=0, max_size=12), max_size=8))
def test_proc_stat_any_counts_of_any_size(rows: list[list[int]]) -> None:
    text = "\n".join(
        ["cpu " + " ".join(map(str, r)) for r in rows[:1]]
        + [f"cpu{i} " + " ".join(map(str, r)) for i, r in enumerate(rows[1:])]
    )
    try:
        total, cores = procfs.parse_proc_stat(text)
    except ParseError:
        assert not rows or not rows[0]
        return
    assert total.total >= 0
    assert len(cores) <= len(rows)


@given(st.dictionaries(names, counters, max_size=20), st.booleans())
def test_meminfo_any_fields(fields: dict[str, int], with_total: bool) -> None:
    lines = [f"{k}: {v} kB" for k, v in fields.items() if k != "MemTotal"]
    if with_total:
        lines.insert(0, f"MemTotal: {fields.get('MemTotal', 1024)} kB")
    try:
        mem = procfs.parse_meminfo("\n".join(lines))
    except ParseError:
        assert not with_total
        return
    assert 0 <= mem.available <= mem.total
    assert 0 <= mem.percent <= 100
    assert 0 <= mem.swap_percent <= 100


@given(st.lists(st.tuples(names, st.lists(counters, max_size=18)), max_size=10))
def test_net_dev_unknown_interfaces_and_short_rows(rows: list[tuple[str, list[int]]]) -> None:
    text = "Inter-| header\n face |bytes\n" + "\n".join(
        f"{name}: {' '.join(map(str, values))}" for name, values in rows
    )
    nets = procfs.parse_net_dev(text)
    assert all(n.rx_bytes >= 0 and n.tx_bytes >= 0 for n in nets)
    assert {n.name for n in nets} <= {name.strip() for name, _ in rows}


@given(st.lists(st.tuples(names, st.lists(counters, min_size=0, max_size=17)), max_size=10))
def test_diskstats_any_field_count(rows: list[tuple[str, list[int]]]) -> None:
    text = "\n".join(f"  8 0 {name} {' '.join(map(str, v))}" for name, v in rows)
    for disk in disk_counters(text):
        assert disk.read_bytes >= 0 and disk.write_bytes >= 0


mount_points = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r"),
    min_size=1,
    max_size=30,
).map(lambda s: "/" + s)


@given(st.lists(st.tuples(mount_points, counters, counters, counters), max_size=8))
def test_df_any_mount_point_round_trips(rows: list[tuple[str, int, int, int]]) -> None:
    header = "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n"
    text = header + "\n".join(
        f"/dev/x ext4 {size} {used} {avail} 50% {mount}" for mount, size, used, avail in rows
    )
    mounts = procfs.parse_df_usage(text)
    assert [m.mountpoint for m in mounts if m.error is None] == [m.strip() or m for m, *_ in rows]
    assert all(0 <= m.percent <= 100 for m in mounts)
    inode_text = "Filesystem Inodes IUsed IFree IUse% Mounted on\n" + "\n".join(
        f"/dev/x {size} {used} {avail} 5% {mount}" for mount, size, used, avail in rows
    )
    for total, used in procfs.parse_df_inodes(inode_text).values():
        assert 0 <= used <= total


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_no_parser_crashes_on_garbage(text: str) -> None:
    for parser in (
        procfs.parse_proc_stat,
        procfs.parse_meminfo,
        procfs.parse_loadavg,
        procfs.parse_uptime,
        procfs.parse_net_dev,
        disk_counters,
        procfs.parse_df_usage,
        procfs.parse_df_inodes,
        procfs.parse_os_release,
        procfs.parse_pid_stat,
        procfs.parse_ps_users,
    ):
        _never_crashes(parser, text)


# --- the sampling script's df sections (hosts.proc_sampler.parse_mounts) ----------------------

SAMPLER_DATA = Path(__file__).parent / "data" / "proc-sampler"


def test_a_hung_nfs_mount_is_named_and_the_local_and_healthy_network_mounts_are_kept() -> None:
    """Recorded on a host with a never-answering mount of nfs1:/export at `/tmp/mywork/dead
    nfs` and a working tmpfs mounted as `nfs2:/healthy` (df -l leaves it to its own df)."""
    from fleetdeck.hosts.proc_sampler import MARKER, parse_mounts

    text = (SAMPLER_DATA / "hung-nfs.txt").read_text()
    mounts = {m.mountpoint: m for m in parse_mounts(procfs.split_sections(text, MARKER))}
    assert "(df)" not in mounts
    assert mounts["/"].total == 264212084 * 1024 and mounts["/"].inodes_total == 16777216
    healthy = mounts["/tmp/mywork/healthy"]
    assert (healthy.error, healthy.total, healthy.inodes_total) == (None, 16 << 20, 3085511)
    dead = mounts["/tmp/mywork/dead nfs"]  # /proc/mounts wrote the space as \040
    assert dead.error == "df did not answer within 3 s: hung mount of nfs1:/export"
    assert dead.device == "nfs1:/export"


def test_a_local_df_stopped_at_its_bound_says_so_and_keeps_what_answered() -> None:
    """Recorded with busybox's sh and df (no -l): its df of everything was killed (143)."""
    from fleetdeck.hosts.proc_sampler import MARKER, parse_mounts

    text = (SAMPLER_DATA / "busybox-hung-nfs.txt").read_text()
    mounts = {m.mountpoint: m for m in parse_mounts(procfs.split_sections(text, MARKER))}
    assert set(mounts) == {"(df)", "/tmp/mywork/healthy", "/tmp/mywork/dead nfs"}
    assert "did not finish within 3 s" in (mounts["(df)"].error or "")
    assert mounts["/tmp/mywork/healthy"].total == 16 << 20


def test_separate_df_rows_never_double_a_mount_nor_report_what_df_passes_over() -> None:
    from fleetdeck.hosts.proc_sampler import parse_mounts

    row = "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n"
    sections = {
        "df": row + "/dev/vda1 ext4 100 50 50 50% /\n",
        "dfstatus": "0",
        "netdf": row + "srv:/a nfs4 100 10 90 10% /\n"  # the local row wins
        "df: /run/user/1000/gvfs: Permission denied\n"
        "df: /mnt/gone: No such file or directory\n"
        "df: /mnt/sshfs: Transport endpoint is not connected\n",
        "dfhung": "/mnt/a\\134b\\012c srv:/x\n",
    }
    mounts = {m.mountpoint: m for m in parse_mounts(sections)}
    assert set(mounts) == {"/", "/mnt/sshfs", "/mnt/a\\b\nc"}
    assert mounts["/"].fstype == "ext4"
    assert mounts["/mnt/sshfs"].error == "Transport endpoint is not connected"


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["df", "dfi", "dfstatus", "netdf", "dfhung"]), st.text()))
def test_parse_mounts_never_crashes(sections: dict[str, str]) -> None:
    from fleetdeck.hosts.proc_sampler import parse_mounts

    assert all(m.mountpoint for m in parse_mounts(sections))
