"""LocalShell runs argv lists with a timeout, and says which host and what went wrong."""

from __future__ import annotations

import asyncio
import time

import pytest

from fleetdeck.hosts.shell import CommandTimeout, LocalShell, ShellError


async def test_argv_is_passed_as_is_never_through_a_shell() -> None:
    result = await LocalShell("db-1").run(["printf", "%s|", "$(id)", "a b", "; rm -rf /"])
    assert result.ok
    assert result.stdout == "$(id)|a b|; rm -rf /|"
    assert result.command == "printf '%s|' '$(id)' 'a b' '; rm -rf /'"


async def test_exit_status_and_stderr_are_kept() -> None:
    result = await LocalShell().run(["sh", "-c", "echo oops >&2; exit 3"])
    assert (result.exit_status, result.stderr.strip()) == (3, "oops")
    assert result.duration >= 0


async def test_a_command_that_overruns_is_killed_with_its_children(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"web-7: .*no answer within 0.3 s"):
        await LocalShell("web-7").run(
            ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout=0.3
        )
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    for _ in range(50):
        if _gone(child):
            break
        await asyncio.sleep(0.05)
    assert _gone(child)


def _gone(pid: int) -> bool:
    """The process is gone, or a zombie waiting for a parent that no longer reads it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def test_a_missing_command_names_the_host_and_the_command() -> None:
    with pytest.raises(ShellError) as caught:
        await LocalShell("cache-3").run(["no-such-tool-here", "--flag"])
    assert "cache-3" in str(caught.value)
    assert "no-such-tool-here --flag" in str(caught.value)
    assert "No such file" in str(caught.value)


async def test_output_in_any_locale_is_read_as_c() -> None:
    result = await LocalShell().run(["sh", "-c", "echo $LC_ALL"])
    assert result.stdout.strip() == "C"
