"""The /proc/mdstat parser reads arrays as the kernel prints them and never crashes.

The texts in tests/data/mdstat follow the kernel's own layout (see its README); the
property tests render arrays the way `md_seq_show()` does and read them back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.hosts.linux.mdstat import MdArray, MdMember, parse_mdstat
from fleetdeck.hosts.linux.procfs import ParseError

DATA = Path(__file__).parent / "data" / "mdstat"
RECORDED = sorted(p.name for p in DATA.glob("*.txt"))


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def arrays_in(name: str) -> dict[str, MdArray]:
    return {a.name: a for a in parse_mdstat(recorded(name))}


# --- recorded texts --------------------------------------------------------------------------


def test_clean_mirrors_are_healthy_with_their_spare_and_write_mostly_member() -> None:
    arrays = parse_mdstat(recorded("clean-raid1.txt"))
    assert [a.name for a in arrays] == ["md1", "md0"]
    md1, md0 = arrays
    assert (md0.state, md0.level, md0.superblock, md0.blocks) == (
        "active",
        "raid1",
        "1.2",
        976630464,
    )
    assert md0.members == (MdMember("sdb1", 1, False, False), MdMember("sda1", 0, False, False))
    assert (md0.devices_expected, md0.devices_working, md0.status_map) == (2, 2, "UU")
    assert (md0.operation, md0.progress, md0.finish_minutes, md0.speed_kib_s) == (None,) * 4
    assert md1.state == "active (auto-read-only)"
    assert [(m.name, m.spare, m.write_mostly) for m in md1.members] == [
        ("sdc2", True, False),
        ("sdb2", False, True),
        ("sda2", False, False),
    ]
    assert not any(a.degraded or a.failed_members for a in arrays)


def test_mirror_with_a_failed_disk_is_degraded_and_names_the_failed_member() -> None:
    arrays = arrays_in("degraded-raid1.txt")
    md0 = arrays["md0"]
    assert md0.degraded
    assert (md0.devices_expected, md0.devices_working, md0.status_map) == (2, 1, "U_")
    assert md0.failed_members == (MdMember("sdb1", 1, failed=True, spare=False),)
    assert md0.operation is None
    md1 = arrays["md1"]  # a 0.90 superblock: no "super" in the line
    assert md1.degraded and md1.superblock is None and md1.blocks == 8385856
    assert [m.name for m in md1.failed_members] == ["sdb2"]


def test_raid5_resync_reports_progress_finish_estimate_and_speed() -> None:
    (md,) = parse_mdstat(recorded("raid5-resync.txt"))
    assert (md.name, md.level, md.blocks) == ("md127", "raid5", 11720658432)
    assert len(md.members) == 4 and md.status_map == "UUUU"
    assert not md.degraded  # a resync checks parity; every disk is still in service
    assert md.operation == "resync"
    assert md.progress == pytest.approx(17.6)
    assert md.finish_minutes == pytest.approx(289.6)
    assert md.speed_kib_s == 185243


def test_rebuild_onto_a_new_disk_is_recovery_and_the_array_waiting_its_turn_is_delayed() -> None:
    arrays = arrays_in("raid1-recovery.txt")
    md0 = arrays["md0"]
    assert md0.degraded  # redundancy comes back only when recovery finishes
    assert md0.operation == "recovery"
    assert (md0.progress, md0.finish_minutes, md0.speed_kib_s) == (38.4, 52.3, 191592)
    assert md0.members[0] == MdMember("sdc1", 2, failed=False, spare=False)
    assert md0.failed_members == ()
    md1 = arrays["md1"]
    assert (md1.operation, md1.operation_state, md1.progress) == ("resync", "DELAYED", None)
    assert md1.degraded


def test_raid10_reads_its_layout_line_and_hot_spare() -> None:
    (md,) = parse_mdstat(recorded("raid10.txt"))
    assert (md.level, md.devices_expected, md.devices_working, md.status_map) == (
        "raid10",
        4,
        4,
        "UUUU",
    )
    assert [m.name for m in md.members if m.spare] == ["sde1"]
    assert sorted(m.index for m in md.members) == [0, 1, 2, 3, 4]
    assert not md.degraded and md.blocks == 1953257472


def test_inactive_array_has_no_level_and_its_members_show_as_spares() -> None:
    arrays = parse_mdstat(recorded("inactive.txt"))
    assert [a.name for a in arrays] == ["md127", "md0"]
    md127 = arrays[0]
    assert (md127.state, md127.level, md127.status_map) == ("inactive", None, None)
    assert [(m.name, m.index, m.spare) for m in md127.members] == [
        ("sdc", 1, True),
        ("sdb", 0, True),
    ]
    assert md127.blocks == 7813774024 and not md127.degraded
    assert arrays[1].status_map == "UU"  # the seven-space line did not swallow md0


def test_no_arrays_is_an_empty_list_and_other_text_is_a_parse_error() -> None:
    assert parse_mdstat(recorded("no-arrays.txt")) == []
    assert parse_mdstat("Personalities : \nunused devices: <none>\n") == []
    not_mdstat = (
        "",
        "cat: /proc/mdstat: No such file or directory\n",
        "mdadm: cannot open /dev/md0: No such file or directory\n",
        "MemTotal: 1 kB\n",
    )
    for text in not_mdstat:
        with pytest.raises(ParseError, match="mdstat"):
            parse_mdstat(text)


def test_check_reshape_and_old_kernel_layouts_read_too() -> None:
    text = (
        "Personalities : [raid6] [raid5] [raid4] \n"
        "md2 : active raid6 sdf1[5] sde1[4] sdd1[3] sdc1[2] sdb1[1] sda1[0]\n"
        "      7813525504 blocks super 1.2 level 6, 512k chunk, algorithm 2 [6/6] [UUUUUU]\n"
        "      [>....................]  check =  0.4% (8034816/1953381376)"
        " finish=201.7min speed=160696K/sec\n"
        "      \n"
        "md3 : active raid5 sdj1[3] sdi1[2] sdh1[1] sdg1[0](J) sdk1[4](R)\n"
        "      5860270080 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/4] [UUUU]\n"
        "      [==========>..........]  reshape = 52.0% (1015807488/1953423360)"
        " finish=1003.0min speed=15580K/sec\n"
        "      \n"
        "unused devices: <none>\n"
    )
    md2, md3 = parse_mdstat(text)
    assert (md2.operation, md2.progress, md2.speed_kib_s) == ("check", 0.4, 160696)
    assert (md3.operation, md3.finish_minutes) == ("reshape", 1003.0)
    assert [(m.journal, m.replacement) for m in md3.members[-2:]] == [(True, False), (False, True)]
    # Linux 2.4 printed a read_ahead line and no blank line between arrays.
    (old,) = parse_mdstat(
        "Personalities : [raid1] \nread_ahead 1024 sectors\n"
        "md0 : active raid1 hdd1[2] hda1[1]\n"
        "      243537216 blocks [2/1] [_U]\n"
        "      [=>...................]  recovery =  6.6% (16304448/243537216)"
        " finish=308.6min speed=12266K/sec\n"
        "unused devices: <none>\n"
    )
    assert (old.operation, old.progress, old.status_map, old.degraded) == (
        "recovery",
        6.6,
        "_U",
        True,
    )


# --- properties ------------------------------------------------------------------------------

FLAGS = ["", "(F)", "(S)", "(W)", "(W)(F)", "(R)", "(J)", "(W)(S)"]
device_names = st.from_regex(r"\A(sd[a-z]{1,2}[0-9]{0,2}|nvme[0-9]n[0-9]p[0-9]|dm-[0-9]{1,3})\Z")
members = st.lists(
    st.tuples(device_names, st.integers(0, 10**6), st.sampled_from(FLAGS)), max_size=8
)


def _bar(per_milli: int) -> str:
    done = per_milli // 50
    return "[" + "=" * done + ">" + "." * (20 - done) + "] "


@dataclass(frozen=True)
class Want:
    """What the parser should read from one rendered array."""

    name: str
    state: str
    level: str | None
    blocks: int
    members: list[tuple[str, int, bool, bool]]
    status: tuple[int | None, int | None, str | None] = (None, None, None)
    op: tuple[str | None, float | None, float | None, int | None] = (None, None, None, None)


@st.composite
def arrays(draw: st.DrawFn) -> tuple[str, Want]:
    """One array rendered as md_seq_show() prints it, and what the parser should read."""
    name = f"md{draw(st.integers(0, 1023))}"
    parts = draw(members)
    tokens = " ".join(f"{dev}[{index}]{flags}" for dev, index, flags in parts)
    read = [(dev, index, "(F)" in flags, "(S)" in flags) for dev, index, flags in parts]
    blocks = draw(st.integers(0, 2**63))
    if draw(st.booleans()):  # inactive: no personality, no status, a seven-space line
        text = f"{name} : inactive {tokens}\n      {blocks} blocks super 1.2\n       \n"
        return text, Want(name, "inactive", None, blocks, read)
    level = draw(st.sampled_from(["raid1", "raid4", "raid5", "raid6", "raid10"]))
    state = draw(st.sampled_from(["active", "active (auto-read-only)", "active (read-only)"]))
    slots = draw(st.integers(1, 30))
    status_map = "".join(draw(st.lists(st.sampled_from("U_"), min_size=slots, max_size=slots)))
    working = status_map.count("U")
    text = (
        f"{name} : {state} {level} {tokens}\n"
        f"      {blocks} blocks super 1.2 [{slots}/{working}] [{status_map}]\n      "
    )
    want = Want(name, state, level, blocks, read, (slots, working, status_map))
    if draw(st.booleans()):
        operation = draw(st.sampled_from(["resync", "recovery", "reshape", "check"]))
        per_milli = draw(st.integers(0, 1000))
        left = draw(st.integers(0, 10**9))  # seconds, printed as minutes and tenths
        speed = draw(st.integers(0, 10**9))
        finish = f"{left // 60}.{(left % 60) // 6}"
        text += (
            f"{_bar(per_milli)} {operation} ={per_milli // 10:3d}.{per_milli % 10}% (1/2)"
            f" finish={finish}min speed={speed}K/sec\n      "
        )
        want = replace(want, op=(operation, per_milli / 10, float(finish), speed))
    if draw(st.booleans()):
        text += "bitmap: 1/8 pages [4KB], 65536KB chunk\n"
    return text + "\n", want


@given(st.lists(arrays(), max_size=5), st.sampled_from(["", "[raid1] [raid10] "]))
def test_any_arrays_the_kernel_could_print_read_back_exactly(
    rendered: list[tuple[str, Want]], personalities: str
) -> None:
    text = f"Personalities : {personalities}\n" + "".join(t for t, _ in rendered)
    parsed = parse_mdstat(text + "unused devices: <none>\n")
    assert len(parsed) == len(rendered)
    for array, (_, want) in zip(parsed, rendered, strict=True):
        assert (array.name, array.state, array.level, array.blocks) == (
            want.name,
            want.state,
            want.level,
            want.blocks,
        )
        assert [(m.name, m.index, m.failed, m.spare) for m in array.members] == want.members
        assert (array.devices_expected, array.devices_working, array.status_map) == want.status
        assert (
            array.operation,
            array.progress,
            array.finish_minutes,
            array.speed_kib_s,
        ) == want.op
        assert array.degraded == ("_" in (want.status[2] or ""))
        assert all(m.failed for m in array.failed_members)


def _parses_or_refuses(text: str) -> None:
    try:
        arrays = parse_mdstat(text)
    except ParseError:
        return
    assert isinstance(arrays, list)
    for array in arrays:
        assert isinstance(array, MdArray)
        assert isinstance(array.degraded, bool)
        assert array.progress is None or 0 <= array.progress <= 999.999


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_arbitrary_text_gives_arrays_or_a_parse_error(text: str) -> None:
    _parses_or_refuses(text)


@settings(max_examples=300)
@given(st.sampled_from(RECORDED), st.data())
def test_recorded_texts_cut_and_spliced_with_junk_never_crash(
    name: str, data: st.DataObject
) -> None:
    text = recorded(name)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    junk = data.draw(st.text(alphabet=st.sampled_from("md0 :[]()/_U=>.%\n\t1FSWK"), max_size=40))
    _parses_or_refuses(text[:start] + junk + text[end:])


def test_operations_that_wait_say_why_and_a_remote_recovery_is_a_recovery() -> None:
    def waiting(line: str) -> tuple[str | None, str | None]:
        (md,) = parse_mdstat(
            "Personalities : [raid1] \n"
            "md0 : active raid1 sdb1[1] sda1[0]\n"
            f"      1046528 blocks super 1.2 [2/2] [UU]\n      \t{line}\n      \n"
        )
        return md.operation, md.operation_state

    assert waiting("resync=PENDING") == ("resync", "PENDING")
    assert waiting("recover=REMOTE") == ("recovery", "REMOTE")
    assert waiting("reshape=REMOTE") == ("reshape", "REMOTE")
