"""The headless commands' output stream (tui.terminal): what reaches the terminal is text,
and Rich, which Textual uses for its report of an error on exit, writes it plain."""

from __future__ import annotations

import io
import os
import pty
import sys

import pytest
from rich.console import Console

from fleetdeck.tui.terminal import escaped_output


def test_rich_writes_plain_escaped_text_on_a_real_terminal() -> None:
    """On a real terminal (a pty), a Rich console on stderr writes no colour codes through
    the escaping stream, and an escape sequence in the text arrives as text."""
    leader, follower = pty.openpty()
    saved = sys.stderr
    try:
        with os.fdopen(follower, "w", closefd=True) as terminal:
            sys.stderr = terminal
            assert sys.stderr.isatty()
            with escaped_output():
                Console(stderr=True).print("[bold red]failed[/] on \x1b]0;owned\x07")
                sys.stderr.flush()
            shown = os.read(leader, 4096).decode()
    finally:
        sys.stderr = saved
        os.close(leader)
    # No colour codes (as text, `\x1b[1;31m`); the OSC as text (Rich drops the BEL itself).
    assert shown == "failed on \\x1b]0;owned\r\n", repr(shown)


def test_text_is_escaped_and_json_is_unchanged() -> None:
    saved = sys.stdout
    sys.stdout = buffer = io.StringIO()
    try:
        with escaped_output():
            print("name \x1b[2J\x9b\u202e end")
            print('{"name": "\\u001b[2J"}')
    finally:
        sys.stdout = saved
    assert buffer.getvalue() == 'name \\x1b[2J\\x9b\\u202e end\n{"name": "\\u001b[2J"}\n'


def test_a_crash_is_reported_escaped_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug that lets an exception out, its message holding a host's text: the traceback
    goes through the escaping stream, not raw after it is put back."""
    from fleetdeck.tui import cli

    def crash(argv: list[str] | None) -> int:
        raise RuntimeError("no such host: evil\x1b]0;owned\x07")

    monkeypatch.setattr(cli, "_main", crash)
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "RuntimeError: no such host: evil\\x1b]0;owned\\x07" in err, err
