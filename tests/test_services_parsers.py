"""The services parsers on text recorded from the systemd lab (tests/data/services), and
their properties on any text: they return or raise ParseError/ValueError, never anything
else, and the message folding puts occurrences of one error in one group."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fleetdeck.checks.model import Status
from fleetdeck.checks.services.logs import group
from fleetdeck.checks.services.units import Limits, grade
from fleetdeck.hosts.linux.journal import fold, parse_json_lines
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.linux.systemd import (
    SUFFIXES,
    parse_list_units,
    parse_show,
    parse_unit_name,
)

DATA = Path(__file__).parent / "data" / "services"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_recorded_failed_units() -> None:
    units = parse_list_units(recorded("list-units-failed.txt"))
    assert [(u.name, u.active, u.sub) for u in units] == [
        ("fd-broken.service", "failed", "failed"),
        ("fd-recover.service", "failed", "failed"),
    ]
    assert (
        units[1].description == "fleetdeck lab: a service that starts once its stale lock is gone"
    )
    services = {u.name for u in parse_list_units(recorded("list-units-services.txt"))}
    assert {"ssh.service", "fd-healthy.service", "systemd-journald.service"} <= services


def test_recorded_show_blocks_graded() -> None:
    states = {s.id: s for s in parse_show(recorded("show.txt"))}
    assert list(states) == [
        "fd-healthy.service", "fd-broken.service", "fd-flappy.service",
        "fd-recover.service", "nosuch.service",
    ]  # fmt: skip
    broken, missing = states["fd-broken.service"], states["nosuch.service"]
    assert broken.result == "exit-code" and broken.inactive_since is not None
    assert missing.missing and missing.load == "not-found"
    assert len(states["fd-flappy.service"].invocation) == 32
    now = (states["fd-flappy.service"].main_started or 0) + 2
    limits = Limits(frozenset({"fd-healthy.service", "nosuch.service"}), 3, 600)
    assert grade(broken, now, limits) == (Status.CRIT, broken_summary(broken.inactive_since, now))
    assert grade(states["fd-healthy.service"], now, limits) is None
    assert grade(missing, now, limits) == (Status.CRIT, "is not-found (no unit file loaded)")
    assert grade(missing, now, Limits(frozenset(), 3, 600)) is None


def broken_summary(since: float | None, now: float) -> str:
    from fleetdeck.hosts.units import human_duration

    assert since is not None
    return f"failed (result: exit-code), {human_duration(now - since)} ago"


def test_recorded_journal_groups_systemd_lines_under_the_unit_they_are_about() -> None:
    parsed = parse_json_lines(recorded("journal-err.json"))
    assert parsed.unreadable == 0 and parsed.entries
    sources = {g.source for g in group(parsed.entries)}
    assert "fd-broken.service" in sources and "init.scope" not in sources
    assert all(e.priority is not None and e.priority <= 3 for e in parsed.entries)


def test_bytes_and_oversized_messages_are_read_not_lost() -> None:
    lines = [
        json.dumps({"MESSAGE": [104, 105, 255], "_SYSTEMD_UNIT": "a.service", "PRIORITY": "3"}),
        json.dumps({"MESSAGE": None, "SYSLOG_IDENTIFIER": "kernel"}),
        '{"MESSAGE": "cut in the mid',
        "[1, 2]",
    ]
    parsed = parse_json_lines("\n".join(lines))
    assert parsed.entries[0].message == "hi\ufffd"
    assert parsed.entries[1].message.startswith("(message too large")
    assert parsed.entries[1].unit == "kernel"
    assert parsed.unreadable == 2


@given(st.text())
def test_parsers_take_any_text(text: str) -> None:
    parse_json_lines(text)
    for parse in (parse_show, parse_list_units):
        with contextlib.suppress(ParseError):
            parse(text)


@given(st.text(max_size=80))
def test_unit_names_are_checked(text: str) -> None:
    try:
        name = parse_unit_name(text)
    except ValueError:
        return
    assert not name.startswith("-") and name.rsplit(".", 1)[-1] in SUFFIXES
    assert parse_unit_name(name) == name


@given(
    st.integers(0, 10**12), st.integers(0, 10**12), st.ip_addresses(), st.ip_addresses(),
    st.uuids(), st.uuids(),
)  # fmt: skip
def test_occurrences_of_one_error_fold_into_one_kind(
    a: int, b: int, addr_a: object, addr_b: object, id_a: object, id_b: object
) -> None:
    def message(n: int, addr: object, ident: object) -> str:
        return f"request {ident} from {addr} failed after {n} ms (code 0x{n:x})"

    assert fold(message(a, addr_a, id_a)) == fold(message(b, addr_b, id_b))
    assert fold(fold(message(a, addr_a, id_a))) == fold(message(a, addr_a, id_a))


def test_different_errors_stay_apart() -> None:
    assert fold("disk /dev/sda1 full") != fold("connection refused by 10.0.0.1:5432")
    assert fold("lost connection to 10.0.0.7 after 31 ms") == "lost connection to <addr> after # ms"


LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""What str.splitlines splits at: never inside a value systemctl prints on one line."""


@given(
    st.dictionaries(
        st.from_regex(r"[A-Z][A-Za-z]{0,12}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_characters=LINE_BREAKS), max_size=30),
        max_size=6,
    )
)
def test_show_blocks_round_trip(props: dict[str, str]) -> None:
    block = {**props, "Id": "x.service"}
    text = "\n".join(f"{k}={v}" for k, v in block.items()) + "\n\n"
    (state,) = parse_show(text)
    assert state.id == "x.service"


@given(st.text(), st.one_of(st.none(), st.floats(0, 4e9)))
def test_any_journal_message_becomes_a_log_view_line(message: str, at: float | None) -> None:
    from fleetdeck.hosts.linux.journal import Entry

    line = Entry(at, "a.service", 3, message, "").line()
    assert line.startswith(b"- ") if at is None else line[:4].isdigit() and line[10:11] == b"T"
    parsed = parse_json_lines(json.dumps({"MESSAGE": message, "__REALTIME_TIMESTAMP": "1"}))
    assert parsed.entries[0].message == message
