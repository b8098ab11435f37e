"""The logs view: what a container prints reaches the screen as harmless text, the filter
takes a substring or a /regex/ (and says when a regex is bad), error lines are counted over
the last minutes by the engine's timestamps, the buffer stays bounded and says what it
dropped, and following survives a restart. First the pure parts, then a real container
followed on the local console with Pilot."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.tui.logs_screen import (
    LINE_CHARS,
    ContainerLog,
    ErrorTally,
    LogBuffer,
    LogsScreen,
    LogView,
    parse_filter,
    safe_text,
)
from fleetdeck.widgets import ContainersPane

from dockerd import Dockerd, DockerObjects, docker
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _stamped(at: datetime, text: bytes) -> bytes:
    """A line as the engine sends it with timestamps=True (RFC 3339, nanoseconds)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f").encode() + b"123Z " + text


# -- the pure parts --------------------------------------------------------------------------


def test_invalid_utf8_escapes_and_overrides_become_visible_text() -> None:
    assert safe_text(b"caf\xe9 \x1b[2Jx\r") == "caf\ufffd \\x1b[2Jx\\x0d"
    assert safe_text("\u202eevil\u2066".encode()) == "\\u202eevil\\u2066"
    assert safe_text(b"\x9b1m") == "\ufffd1m"  # a lone C1 byte is invalid UTF-8
    assert safe_text("\u009b31m \x07bell\ttab".encode()) == "\\x9b31m \\x07bell\ttab"
    long = safe_text(b"a" * (LINE_CHARS + 500))
    assert long == "a" * LINE_CHARS + "… (500 more characters)"


def test_filters_are_substrings_or_slashed_regexes_with_smart_case() -> None:
    assert parse_filter("") is None
    plain = parse_filter("a.b")
    assert plain is not None and plain.search("xA.By") and not plain.search("axb")
    regex = parse_filter("/tick [0-9]+5$/")
    assert regex is not None and regex.search("TICK 15") and not regex.search("tick 16")
    cased = parse_filter("Error")
    assert cased is not None and cased.search("an Error") and not cased.search("an error")
    with pytest.raises(ValueError, match=r"^invalid regex: missing \), unterminated subpattern"):
        parse_filter("/tick (/")
    assert parse_filter("/") is not None  # one slash is a substring


def test_error_lines_count_over_the_window_by_their_own_time() -> None:
    buffer = LogBuffer(keep=100, window=300)
    now = NOW.timestamp()
    for minutes, text in [
        (20, b"ERROR: an old one"),
        (4, b"Traceback (most recent call last):"),
        (2, b"all fine"),
        (1, b"panic: runtime error"),
        (0, b"java.lang.IllegalStateException"),
    ]:
        buffer.add(_stamped(NOW - timedelta(minutes=minutes), text), now)
    assert [line.error for line in buffer.lines] == [True, True, False, True, True]
    assert buffer.tally.count(now) == 3
    assert buffer.tally.count(now + 150) == 2  # the 4-minute-old one left the window
    assert buffer.lines[2].at == NOW - timedelta(minutes=2)
    assert buffer.lines[2].text == "all fine"
    tally = ErrorTally(60)
    for second in range(100_000):  # a flood: bounded by the window's seconds
        tally.add(now - second % 60, now)
    assert tally.count(now) == 100_000 and len(tally.seconds) <= 61


def test_the_buffer_keeps_the_last_lines_says_what_it_dropped_and_resumes_without_repeats() -> None:
    buffer = LogBuffer(keep=3)
    for i in range(5):
        buffer.add(_stamped(NOW + timedelta(seconds=i), f"line {i}".encode()))
    assert [line.text for line in buffer.lines] == ["line 2", "line 3", "line 4"]
    assert (buffer.dropped, buffer.received, buffer.last_at) == (2, 5, NOW + timedelta(seconds=4))
    buffer.skip_until = buffer.last_at  # the stream reopened with since = the last line
    assert buffer.add(_stamped(NOW + timedelta(seconds=4), b"line 4")) is None
    assert buffer.add(_stamped(NOW + timedelta(seconds=5), b"line 5")) is not None
    assert buffer.add(b"no timestamp at all") is not None  # shown as it came, time unknown
    assert buffer.lines[-1].at is None and buffer.lines[-1].text == "no timestamp at all"


# -- a real container, followed on the console -----------------------------------------------

PRINTER = (
    r"printf 'caf\351 \033[2Jx\r\n'; echo 'ERROR: disk full'; echo 'panic: oops';"
    r" echo '[red]markup[/red]'; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"
)


async def _until(pilot: Pilot[None], condition: Callable[[], object], timeout: float) -> None:
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


def _shown(view: LogView) -> list[str]:
    return [line.text for line in view.shown]


def _terminal(view: LogView) -> str:
    """Every visible line as it goes to the terminal (segments' text)."""
    return "\n".join(
        "".join(segment.text for segment in view.render_line(y))
        for y in range(view.scrollable_content_region.height)
    )


async def _open_logs(
    pilot: Pilot[None], container_id: str, name: str, **options: int
) -> LogsScreen:
    """The console's containers pane, the cursor on the container, `l` (or, with options,
    the same screen pushed with them)."""
    app = pilot.app
    screen = app.screen
    assert isinstance(screen, HostScreen)
    pane = screen.query_one(ContainersPane)
    await _until(pilot, lambda: pane.good is not None and pane.good.find(container_id), 30)
    if options:
        link = app.docker_link(screen.host_watch)  # type: ignore[attr-defined]
        app.push_screen(LogsScreen(ContainerLog(link, container_id, name), **options))  # type: ignore[arg-type]
    else:
        pane.table.move_cursor(pane.table.row_keys.index(container_id))
        await pilot.press("7", "l")
    await _until(pilot, lambda: isinstance(app.screen, LogsScreen), 5)
    await _until(pilot, lambda: bool(app.screen.query(LogView)), 5)
    logs = app.screen
    assert isinstance(logs, LogsScreen)
    return logs


async def test_following_a_container_shows_raw_bytes_safely_filters_and_counts_errors(
    dockerd: Dockerd, docker_objects: DockerObjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    cid = docker_objects.start("sh", "-c", PRINTER, what="printer")
    name = docker("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")
    app = make_app(Settings(interval=0.5, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        logs = await _open_logs(pilot, cid, name)
        view = logs.query_one(LogView)
        await _until(pilot, lambda: any(t.startswith("tick 5") for t in _shown(view)), 20)
        title = str(logs.query_one("#logs-title").render())
        assert title.startswith(f"Logs of {name} ({cid[:12]}) on localhost · following")
        lines = _shown(view)
        # json-file keeps lines as JSON strings: invalid UTF-8 arrives as U+FFFD already.
        assert lines[:4] == [
            "caf\ufffd \\x1b[2Jx\\x0d",
            "ERROR: disk full",
            "panic: oops",
            "[red]markup[/red]",
        ]
        await pilot.press("home")  # scrolling back stops following
        await pilot.pause(0.2)
        assert not view.follow and view.scroll_offset.y == 0
        top = _terminal(view)
        assert "\x1b" not in top and "\r" not in top
        assert "caf\ufffd \\x1b[2Jx\\x0d" in top and "[red]markup[/red]" in top
        assert re.match(r"\d\d:\d\d:\d\d caf", top)  # the engine's time, local
        await pilot.press("end")
        status = lambda: str(logs.query_one("#logs-status").render())  # noqa: E731
        await _until(pilot, lambda: "2 error lines in the last 5m 0s" in status(), 5)
        assert logs.query_one("#logs-status").has_class("-errors")

        # Following: more ticks arrive and the view stays at the end.
        count = len(_shown(view))
        await _until(pilot, lambda: len(_shown(view)) >= count + 5, 10)
        # The view scrolls after the refresh that follows the new lines (LogView.add): on a
        # loaded machine that refresh may not have run yet when the lines are counted.
        await _until(pilot, lambda: view.scroll_offset.y == view.max_scroll_y, 5)
        assert view.follow

        # A substring filter, a regex, and a bad regex that keeps the last good filter.
        await pilot.press("slash", *"TICK 1".lower())
        await pilot.pause(0.3)
        assert logs.focused is logs.query_one("#logs-filter")
        assert _shown(view) and all(t.startswith("tick 1") for t in _shown(view))
        assert re.search(r" · \d+ matching · ", status())
        filter_input = logs.query_one("#logs-filter")
        filter_input.value = "/^tick [0-9]*7$/"  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        assert _shown(view) and all(re.fullmatch(r"tick \d*7", t) for t in _shown(view))
        shown = _shown(view)
        filter_input.value = "/tick (/"  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        error = str(logs.query_one("#logs-error").render())
        assert error.startswith("invalid regex: missing ), unterminated subpattern")
        assert error.endswith("(the last good filter stays)")
        assert filter_input.has_class("-invalid") and _shown(view)[: len(shown)] == shown
        filter_input.value = ""  # type: ignore[attr-defined]
        await pilot.pause(0.3)
        assert not filter_input.has_class("-invalid") and _shown(view)[0].startswith("caf")

        # Paused, the view stays where it is while lines go on arriving.
        await pilot.press("escape", "f")
        assert not view.follow and "paused (End or f follows)" in str(
            logs.query_one("#logs-title").render()
        )
        await pilot.press("home")
        count = len(_shown(view))
        await _until(pilot, lambda: len(_shown(view)) >= count + 5, 10)
        assert view.scroll_offset.y == 0
        await pilot.press("end")
        assert view.follow and view.scroll_offset.y == view.max_scroll_y

        # A restart ends the stream; the view follows the new run, nothing shown twice.
        docker("restart", "-t", "0", cid)
        await _until(pilot, lambda: _shown(view).count("panic: oops") == 2, 20)
        await _until(pilot, lambda: _shown(view).count("tick 3") == 2, 10)
        ticks = [t for t in _shown(view) if t.startswith("tick ")]
        runs = [t for t in ticks if t == "tick 0"]
        assert len(runs) == 2  # each run's first tick once: no line repeated on resuming
        source = logs.source
        assert isinstance(source, ContainerLog)
        assert len(source.link.streams) == 1
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, HostScreen), 5)
        await _until(pilot, lambda: not source.link.streams, 5)  # leaving closed the stream


async def test_a_flood_keeps_the_last_lines_and_says_how_many_were_dropped(
    dockerd: Dockerd, docker_objects: DockerObjects, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    cid = docker_objects.start("sh", "-c", "seq 1 3000; echo done; sleep 3600", what="flood")
    for _ in range(100):  # every line is written before the view opens (the tail reads them)
        if docker("logs", "--tail", "1", cid).stdout.strip() == "done":
            break
        await asyncio.sleep(0.1)
    app = make_app(Settings(interval=0.5, storage_every=0), Config())
    async with app.run_test(size=(80, 24)) as pilot:
        logs = await _open_logs(pilot, cid, "flood", tail=2500, keep=1000)
        view = logs.query_one(LogView)
        await _until(pilot, lambda: _shown(view) and _shown(view)[-1] == "done", 20)
        assert len(view.shown) == 1000 and _shown(view)[0] == "2002"
        status = str(logs.query_one("#logs-status").render())
        assert status.startswith("1,000 lines (1,500 older dropped, the last 1,000 kept) · ")
        # Following: at the end once the screen has drawn what came in.
        await _until(pilot, lambda: view.scroll_offset.y == view.max_scroll_y > 0, 5)
