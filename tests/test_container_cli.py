"""The containers wizard's faces, as an operator uses them: `fleetdeck wizard containers` and
`fleetdeck check` (the real command against the real engine, on this machine and on a
namespace host through its SSH connection: it shares this filesystem, so its
/var/run/docker.sock is the test engine), and the console's Wizard screen, driven by keys.
Answers are piped; the wizard is narrowed to this test's own containers (`--container`), so
no other test's container is ever offered a fix."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, OptionList, Static

from fleetdeck.checks.config import Config
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.tui.confirm import ConfirmFix
from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen
from fleetdeck.widgets import ContainersPane

from conftest import fleetdeck_bin
from dockerd import SOCKET, Dockerd, DockerObjects, docker
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd
from recorded import until_wizard_done
from sshd import NetnsLab, SshKeys, write_known_hosts

SERVICE = "trap 'exit 0' TERM; touch /tmp/ok; while :; do sleep 0.2; done"
HEALTH = ["--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without DOCKER_* variables or the developer's home."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    return {**clean, "HOME": str(home), "TERM": "dumb", **extra}


def _run(env: dict[str, str], *args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetdeck_bin(), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        input=answers,
    )


def _name(cid: str) -> str:
    return docker("inspect", "--format", "{{.Name}}", cid).stdout.strip().lstrip("/")


def _wait_health(cid: str, health: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
        if now == health:
            return
        time.sleep(0.2)
    raise AssertionError(f"{cid[:12]} never became {health}")


def _unhealthy(docker_objects: DockerObjects) -> str:
    """A service that was healthy and is not any more (its health file went away)."""
    cid = docker_objects.start("sh", "-c", SERVICE, flags=[*HEALTH, "--stop-timeout", "3"])
    _wait_health(cid, "healthy")
    docker("exec", cid, "rm", "/tmp/ok")
    _wait_health(cid, "unhealthy")
    return cid


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_wizard_restarts_an_unhealthy_container_once_confirmed_and_verifies_its_health(
    dockerd: Dockerd, docker_objects: DockerObjects, tmp_path: Path
) -> None:
    cid = _unhealthy(docker_objects)
    name = _name(cid)
    audit = tmp_path / "audit.jsonl"
    args = ("wizard", "containers", "--container", name, "--audit-log", str(audit))

    declined = _run(_env(tmp_path), *args, answers="n\n")
    assert declined.returncode == 2, declined.stderr + declined.stdout
    assert f"CRIT    {name}: unhealthy: " in declined.stdout
    assert "fix offered: Restart container" in declined.stdout
    assert "→ C1: an unhealthy container is restarted" in declined.stdout
    assert f"  $ docker -H unix://{SOCKET} restart -t 3 {cid}" in declined.stderr
    assert f"declined: Restart container {name}" in declined.stderr

    result = _run(_env(tmp_path), *args, answers="y\n")
    err = result.stderr
    assert f"verified: Restart container {name} on " in err, err + result.stdout
    assert "  after:  OK running, healthy, up " in err
    assert "after the fixes:" in result.stdout
    assert result.returncode == 0, result.stdout  # the step that failed passes now
    now = docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
    assert now == "healthy"
    outcomes = [r["outcome"] for r in _records(audit) if r.get("event") != "started"]
    assert outcomes == ["declined", "verified"]


def test_check_reports_container_trouble_and_a_host_without_docker_stays_ok(
    dockerd: Dockerd, docker_objects: DockerObjects, tmp_path: Path
) -> None:
    sick = docker_objects.start(
        "sleep", "3600", flags=["--health-cmd", "false", "--health-interval", "1s"]
    )
    _wait_health(sick, "unhealthy")
    quiet = tmp_path / "config.toml"
    quiet.write_text("[thresholds.containers]\nloop_probe = 0\n")
    base = ("check", "--json", "--interval", "0.2", "--config", str(quiet))

    result = _run(_env(tmp_path), *base)
    (host,) = json.loads(result.stdout)["hosts"]
    by = {(f["check"], f["target"]): f for f in host["findings"]}
    assert by["container.engine", "docker"]["status"] == "OK"
    assert by["container.state", _name(sick)]["status"] == "CRIT"
    assert result.returncode == 2

    # No engine here (DOCKER_HOST names a socket that is not there): one plain OK.
    nowhere = _env(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/docker.sock")
    bare = _run(nowhere, *base)
    (host,) = json.loads(bare.stdout)["hosts"]
    mine = [f for f in host["findings"] if f["check"].startswith("container.")]
    assert [(f["check"], f["status"]) for f in mine] == [("container.engine", "OK")]
    assert mine[0]["summary"].startswith("no Docker on this host: no Docker socket")
    others = [f["status"] for f in host["findings"] if not f["check"].startswith("container.")]
    worst = 2 if "CRIT" in others else 1 if "WARN" in others else 3 if "UNKNOWN" in others else 0
    assert bare.returncode == worst  # Docker's absence changes nothing

    for skip in ("--no-containers", "--no-storage"):
        left = json.loads(_run(_env(tmp_path), *base, skip).stdout)["hosts"][0]["findings"]
        assert not any(f["check"].startswith("container.") for f in left)


def test_wizard_over_ssh_restarts_through_the_hosts_shell_and_reads_through_its_forward(
    dockerd: Dockerd,
    docker_objects: DockerObjects,
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    tmp_path: Path,
) -> None:
    """The engine is read through the namespace host's SSH connection (a forwarded socket)
    and the restart runs as the docker CLI on that host's shell, as root there."""
    host = netns_lab.add_host("dockwiz")
    try:
        cid = _unhealthy(docker_objects)
        name = _name(cid)
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(
            f'[[host]]\nname = "{host.name}"\naddress = "{host.address}"\nport = {host.port}\n'
            f'user = "root"\nidentity_file = "{ssh_keys.client_key}"\n'
        )
        known = write_known_hosts(tmp_path / "known_hosts", host)
        checked = _run(
            _env(tmp_path),
            *("check", "--json", "--interval", "0.2", "-i", str(inventory)),
            *("--known-hosts", str(known), "--no-containers"),
        )
        (entry,) = json.loads(checked.stdout)["hosts"]
        assert entry["reachable"] and not any(
            f["check"].startswith("container.") for f in entry["findings"]
        )
        checked = _run(
            _env(tmp_path),
            *("check", "--json", "--interval", "0.2", "-i", str(inventory)),
            *("--known-hosts", str(known)),
        )
        (entry,) = json.loads(checked.stdout)["hosts"]
        by = {(f["check"], f["target"]): f for f in entry["findings"]}
        assert by["container.engine", "docker"]["status"] == "OK", entry
        assert by["container.state", name]["status"] == "CRIT"

        audit = tmp_path / "audit.jsonl"
        result = _run(
            _env(tmp_path),
            *("wizard", "containers", "-i", str(inventory), "--host", host.name),
            *("--known-hosts", str(known), "--container", name, "--audit-log", str(audit)),
            "--json",
            answers="y\n",
        )
        assert result.returncode == 0, result.stderr + result.stdout
        doc = json.loads(result.stdout)
        engine = doc["steps"][0]["findings"][0]
        assert engine["status"] == "OK"
        assert engine["evidence"][0]["source"] == (
            f"{host.name}: Docker at unix://{SOCKET} through the host's SSH connection"
        )
        (action,) = doc["actions"]
        assert action["outcome"] == "verified", action
        assert action["before"] == "CRIT" and action["after_summary"].startswith("running, healthy")
        assert action["runs"][0]["command"] == f"docker -H unix://{SOCKET} restart -t 3 {cid}"
        assert f"host:    {host.name} (tier: unset)" in result.stderr
        (finished,) = [r for r in _records(audit) if r.get("event") == "finished"]
        assert finished["host"] == host.name and finished["outcome"] == "verified"
        now = docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
        assert now == "healthy"
    finally:
        netns_lab.remove_host(host)


async def test_console_wizard_restarts_an_unhealthy_container_through_the_hosts_docker_link(
    dockerd: Dockerd,
    docker_objects: DockerObjects,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local console's containers wizard, by keys: `7` to the pane, the cursor onto the
    unhealthy container, `o` opens the form with its name filled in; the steps run through
    the app's link to this machine's engine, and the restart is applied from the screen
    once confirmed; the step turns green."""
    for variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    cid = _unhealthy(docker_objects)
    name = _name(cid)
    settings = Settings(interval=1.0, audit_log=tmp_path / "audit.jsonl", storage_every=0)
    app = make_app(settings, Config(), "box")
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.screen.query_one(ContainersPane)
        for _ in range(100):  # the pane's first reading
            if any(line.name == name for line in pane.table.lines.values()):
                break
            await pilot.pause(0.1)
        await pilot.press("7")
        for _ in range(len(pane.table.lines) + 1):
            if pane.selected is not None and pane.selected.name == name:
                break
            await pilot.press("down")
        assert pane.selected is not None and pane.selected.name == name
        await pilot.press("o")
        await pilot.pause(0.3)
        assert isinstance(app.screen, WizardForm)
        assert app.screen.query_one("#param-container", Input).value == name
        await pilot.press("enter")
        await pilot.pause(0.3)
        await until_wizard_done(pilot)
        screen = app.screen
        assert isinstance(screen, WizardScreen) and screen.run is not None
        index = screen.run.index_of("container.state")
        steps = screen.query_one("#steps", OptionList)
        assert str(steps.get_option_at_index(0).prompt) == "✔ Docker engine answers"
        await pilot.press(*["down"] * index)
        detail = str(screen.query_one("#detail-text", Static).render())
        assert f"{name}: unhealthy: " in detail
        assert f"[1] Restart container {name} (disruptive)" in detail
        assert f"$ docker -H unix://{SOCKET} restart -t 3 {cid}" in detail

        await pilot.press("f")
        await pilot.pause(0.5)
        assert isinstance(app.screen, ConfirmFix)
        await pilot.press("y")
        for _ in range(300):
            await pilot.pause(0.1)
            if "last action: verified" in str(screen.query_one("#detail-text", Static).render()):
                break
        detail = str(screen.query_one("#detail-text", Static).render())
        assert "last action: verified" in detail, detail
        assert str(steps.get_option_at_index(index).prompt).startswith("✔")
        await app.docker_link(app.watches[0]).close()
    now = docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
    assert now == "healthy"
