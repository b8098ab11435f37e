"""The real console in a real terminal (tmux), read back with capture-pane, as a person sees it."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import fleetdeck_bin, require_binary


class Tmux:
    """One private tmux server running one program in one pane."""

    def __init__(self, socket_name: str) -> None:
        self.tmux = require_binary("tmux", "tmux")
        self.socket = socket_name
        self.exit_file: Path | None = None  # where the program's exit status is written

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            [self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "console")

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if condition(shown):
                return shown
            if time.monotonic() > deadline:
                pytest.fail(f"the console never showed what was expected; it showed:\n{shown}")
            time.sleep(0.2)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Tmux]:
    tmux = Tmux(f"fleetdeck-test-{os.getpid()}")
    tmux.exit_file = tmp_path / "exit-status"
    # A shell runs the console and writes down how it ended: it waits for its own child,
    # where tmux, which learns a pane's exit status from SIGCHLD, was seen on this machine to
    # leave a console that had quit unreaped for good (also before fleetdeck changed).
    program = f"TERM=xterm-256color COLUMNS=80 LINES=24 {fleetdeck_bin()} --interval 0.5"
    command = f"{program}; echo $? > {shlex.quote(str(tmux.exit_file))}"
    tmux("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", command)
    tmux("set-option", "-t", "console", "remain-on-exit", "on")
    try:
        yield tmux
    finally:
        tmux("kill-server")


def test_console_in_a_real_terminal_at_80x24_then_200x60_then_quit(console: Tmux) -> None:
    host = socket.gethostname()
    # Wait for a whole frame: a capture can catch the first one half drawn.
    shown = console.wait_for(
        lambda s: (
            " up " in s
            and "Processes" in s
            and "%" in s
            and len(s.splitlines()) > 1
            and all(t in s.splitlines()[1] for t in ("CPU", "Memory", "Load"))
            and "palette" in s.splitlines()[-1]
        )
    )
    lines = shown.splitlines()
    assert lines[0].lstrip().startswith(host)
    assert "CPU" in lines[1] and "Memory" in lines[1] and "Load" in lines[1]
    assert "Sort CPU" in lines[-1] and "palette" in lines[-1]
    # The right edge is drawn: the panes end at column 80, nothing runs past unseen.
    assert lines[1].rstrip().endswith("╮") and len(lines[1].rstrip()) == 80
    assert "Traceback" not in shown

    # The pane exports COLUMNS=80 LINES=24, as some shells and pytest do: the console must
    # still follow the terminal when it grows.
    console("resize-window", "-t", "console", "-x", "200", "-y", "60")
    wide = console.wait_for(
        lambda s: any("Alerts" in ln and "Disks" in ln for ln in s.splitlines())
    )
    # Side by side: the processes on the left, network and findings in the right column.
    assert any(0 < ln.find("2 Processes") < 100 for ln in wide.splitlines())
    assert any(ln.find("4 Network") > 100 for ln in wide.splitlines())
    assert any(ln.find("5 Findings") > 100 for ln in wide.splitlines())
    assert len(wide.splitlines()) >= 55

    console("send-keys", "-t", "console", "m")
    console.wait_for(lambda s: "by memory" in s)

    console("send-keys", "-t", "console", "q")
    deadline = time.monotonic() + 20  # generous: a loaded CI machine once needed more than 10
    assert console.exit_file is not None
    while not console.exit_file.exists() or not console.exit_file.read_text().strip():
        assert time.monotonic() < deadline, "q did not quit the console"
        time.sleep(0.1)
    status = console.exit_file.read_text().strip()
    assert status == "0", f"the console did not exit cleanly: exit status {status}"
