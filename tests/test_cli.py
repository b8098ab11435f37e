"""`fleetdeck` as cron, CI and Nagios call it: real processes, real exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import fleetdeck_bin, require_binary, require_root


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetdeck_bin(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TERM": "dumb"},
    )


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    return str(path)


def test_version_and_help() -> None:
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("fleetdeck 0.")
    helped = _run("--help")
    assert helped.returncode == 0
    for words in ("--interval", "--config", "--read-only", "check"):
        assert words in helped.stdout
    assert "Nagios" in _run("check", "--help").stdout


def test_check_on_a_calm_machine_prints_every_check_and_exits_by_the_worst() -> None:
    result = _run("check", "--interval", "0.5")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["HOST", "STATUS", "CHECK", "TARGET", "SUMMARY"]
    checks = {line.split()[2] for line in lines[1:]}
    assert checks >= {"cpu.usage", "mem.usage", "mem.swap", "load.per_core", "disk.space"}
    statuses = {line.split()[1] for line in lines[1:]}
    expected = (
        2 if "CRIT" in statuses else 1 if "WARN" in statuses else 3 if "UNKNOWN" in statuses else 0
    )
    assert result.returncode == expected


def test_check_json_has_the_documented_shape() -> None:
    result = _run("check", "--json", "--interval", "0.5")
    data = json.loads(result.stdout)
    (host,) = data["hosts"]
    assert host["reachable"] is True and host["name"]
    root = next(f for f in host["findings"] if f["check"] == "disk.space" and f["target"] == "/")
    assert set(root) == {"check", "status", "target", "summary"}
    assert root["status"] in {"OK", "WARN", "CRIT", "UNKNOWN"}


@pytest.mark.parametrize(
    ("thresholds", "code", "status"),
    [("warn = 0\ncrit = 100", 1, "WARN"), ("warn = 0\ncrit = 0", 2, "CRIT")],
)
def test_exit_status_follows_nagios_when_thresholds_are_crossed(
    tmp_path: Path, thresholds: str, code: int, status: str
) -> None:
    # Only the disk decides: the other figures are this machine's, whatever else runs on it.
    # That includes its Docker engine, which may be down with its socket left behind (CRIT).
    quiet = "".join(
        f"[thresholds.{name}]\nwarn = {top}\ncrit = {top}\n"
        for name, top in (("memory", 100), ("swap", 100), ("inodes", 100), ("load", 1000))
    )
    config = _config(tmp_path, f"[thresholds.disk]\n{thresholds}\n{quiet}")
    result = _run("check", "--json", "--no-containers", "--interval", "0.2", "--config", config)
    findings = json.loads(result.stdout)["hosts"][0]["findings"]
    loud = [f for f in findings if f["status"] != "OK"]
    assert result.returncode == code, loud
    assert {f["status"] for f in findings if f["check"] == "disk.space" and f["target"] == "/"} == {
        status
    }


def test_options_before_the_command_count_too(tmp_path: Path) -> None:
    """`fleetdeck --config X check` is how many cron lines are written: X must apply."""
    config = _config(tmp_path, "[thresholds.disk]\nwarn = 0\ncrit = 0\n")
    result = _run("--config", config, "--interval", "0.2", "check", "--json")
    assert result.returncode == 2, result.stderr
    broken = _config(tmp_path, "[thresholds.disk]\nwarn = 'x'\n")
    assert _run("--config", broken, "check").returncode == 3


@pytest.mark.parametrize("args", [["check", "--interval", "0"], ["check", "--bogus"]])
def test_a_mistyped_check_command_is_unknown_not_critical(args: list[str]) -> None:
    result = _run(*args)
    assert result.returncode == 3
    assert "error:" in result.stderr


def test_a_broken_config_stops_check_with_exit_3_naming_file_line_and_key(tmp_path: Path) -> None:
    config = _config(tmp_path, "[thresholds.disk]\nwarn = 80\ncrit = 'ninety'\n")
    result = _run("check", "--config", config)
    assert result.returncode == 3
    assert result.stdout == ""
    assert f"{config}:3: thresholds.disk.crit: expected a number" in result.stderr


def test_the_console_refuses_to_start_on_a_broken_config(tmp_path: Path) -> None:
    config = _config(tmp_path, "[thresholds]\ncpu = [1, 2]\n")
    result = _run("--config", config, timeout=20)
    assert result.returncode == 2
    assert f"{config}:2: thresholds.cpu: expected a table" in result.stderr
    assert "not starting" in result.stderr


@pytest.fixture
def shadowed_mount(tmp_path: Path) -> Iterator[str]:
    """A mount hidden under another mount: listed in /proc/mounts, but its path no longer
    resolves to it, so it cannot be statted (as after a mistaken mount over /var)."""
    require_root("mount tmpfs filesystems")
    require_binary("mount", "mount")
    top = tmp_path / "shadow"
    inner = top / "data"
    top.mkdir()
    mounted: list[Path] = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(top)], check=True)
        mounted.append(top)
        inner.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(inner)], check=True)
        mounted.append(inner)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(top)], check=True)
        mounted.append(top)
        yield str(inner)
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_mount_that_cannot_be_statted_is_unknown_not_a_crash(shadowed_mount: str) -> None:
    result = _run("check", "--json", "--interval", "0.2")
    findings = json.loads(result.stdout)["hosts"][0]["findings"]
    (hidden,) = [f for f in findings if f["target"] == shadowed_mount]
    assert hidden["status"] == "UNKNOWN"
    assert hidden["check"] == "disk.space"
    assert "No such file or directory" in hidden["summary"]
    statuses = {f["status"] for f in findings}
    assert result.returncode == (2 if "CRIT" in statuses else 1 if "WARN" in statuses else 3)
    assert "Traceback" not in result.stderr
