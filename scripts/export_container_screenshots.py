"""Refresh the container screenshots in screenshots/ from a real Docker engine in an incident.

It uses the engine that answers on /var/run/docker.sock, or starts one the way the tests do
(tests/dockerd.py, as root with docker.io and busybox-static installed), runs a small compose
project in trouble (a web service twice, a database whose healthcheck fails, a worker in a
restart loop), a nightly job that exited, and a cache near its memory limit, all from the
test image made with `docker import`, and drives the console on this machine to the
containers pane, a container's log, the containers wizard and a restart's confirmation. The
containers are removed at the end. Ids and times differ on every run, which is why these
are screenshots, not snapshots.

    .venv/bin/python scripts/export_container_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fleetdeck.checks.config import Config  # noqa: E402
from fleetdeck.tui.app import Settings, make_app  # noqa: E402
from fleetdeck.widgets import ContainersPane  # noqa: E402

from dockerd import TEST_IMAGE, _answers, _Engine, busybox_tar, docker, import_image  # noqa: E402
from recorded import until_wizard_done  # noqa: E402

HOST = "app-01"
MARK = "fleetdeck.screenshot=1"
"""The label on every container this script makes: they are removed at the end."""
WEB_LOG = (
    'i=0; while :; do i=$((i+1)); echo "GET /orders/$i 200 $((RANDOM % 90))ms"; '
    'if [ $((i % 4)) = 0 ]; then echo "ERROR payment gateway timeout after 5000ms order=$i"; fi; '
    "if [ $i = 3 ]; then printf 'upload name=\\377\\376.csv \\033[2J\\033[31mred\\033[0m\\n'; fi; "
    "sleep 0.5; done"
)
SHOP = ("--label", "com.docker.compose.project=shop")
WEB = (*SHOP, "--label", "com.docker.compose.service=web")
DB = (*SHOP, "--label", "com.docker.compose.service=db", "--restart", "unless-stopped")
UNHEALTHY = ("--health-cmd", "test -e /tmp/ready", "--health-interval", "1s")
WORKER = (*SHOP, "--label", "com.docker.compose.service=worker", "--restart", "always")
CRASH = "echo 'worker: connecting to amqp://queue:5672'; echo 'ERROR queue unreachable'; exit 1"
CONTAINERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # name: (flags, command)
    "shop-web-1": (WEB, ("sh", "-c", WEB_LOG)),
    "shop-web-2": (WEB, ("sh", "-c", WEB_LOG)),
    "shop-db-1": ((*DB, *UNHEALTHY, "--health-retries", "1"), ("sleep", "86400")),
    "shop-worker-1": (WORKER, ("sh", "-c", CRASH)),
    "nightly-report": ((), ("sh", "-c", "echo 'report: 0 rows'; exit 3")),
    "cache": (
        ("--memory", "32m", "--restart", "unless-stopped"),
        ("sh", "-c", "head -c 28m /dev/zero > /dev/shm/fill; sleep 86400"),
    ),
}
# (name, size, what to do first, then keys)
SHOTS = [
    ("containers-pane-80x24", (80, 24), "pane", ("7",)),
    ("containers-pane-160x50", (160, 50), "pane", ("7",)),
    ("containers-logs-100x30", (100, 30), "logs", ()),
    ("containers-wizard-80x24", (80, 24), "wizard", ("down",)),
    ("containers-wizard-160x45", (160, 45), "wizard", ("down",)),
    ("containers-confirm-100x30", (100, 30), "wizard", ("down", "f")),
]


def remove() -> None:
    ours = docker("ps", "-aq", "--filter", f"label={MARK}", check=False).stdout.split()
    if ours:
        docker("rm", "-f", *ours, check=False)


def incident() -> None:
    for name, (flags, command) in CONTAINERS.items():
        docker("run", "-d", "--name", name, "--label", MARK, "--network", "none", *flags,
               TEST_IMAGE, *command)  # fmt: skip
    deadline = time.monotonic() + 60
    while True:  # the database unhealthy, the worker restarted a few times, the cache full
        health = docker("inspect", "-f", "{{.State.Health.Status}}", "shop-db-1")
        restarts = docker("inspect", "-f", "{{.RestartCount}}", "shop-worker-1")
        if health.stdout.strip() == "unhealthy" and int(restarts.stdout) >= 3:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the incident did not settle: {health.stdout} {restarts.stdout}")
        time.sleep(0.5)


def select(pane: ContainersPane, name: str) -> None:
    table = pane.table
    for index, key in enumerate(table.row_keys):
        line = table.lines.get(key)
        if line is not None and line.name == name and not key.startswith("service:"):
            table.move_cursor(index)
            return
    raise SystemExit(f"{name} is not in the pane")


async def shoot(name: str, size: tuple[int, int], first: str, keys: tuple[str, ...]) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(interval=1.0, storage_every=0, audit_log=Path(tmp) / "audit.jsonl")
        app = make_app(settings, Config(), HOST)
        async with app.run_test(size=size) as pilot:
            pane = app.screen.query_one(ContainersPane)
            for _ in range(100):  # readings with CPU figures (they need two)
                good = pane.good
                if good is not None and all(
                    line.cpu_percent is not None for line in good.lines if line.state == "running"
                ):
                    break
                await pilot.pause(0.1)
            for _ in range(150):  # the first run of the container checks: their alerts
                if app.watches[0].domain_findings.get("containers"):
                    break
                await pilot.pause(0.1)
            await pilot.pause(1.0)
            if first == "logs":
                await pilot.press("7")
                select(pane, "shop-web-1")
                await pilot.press("l")
                await pilot.pause(3.0)
            elif first == "wizard":
                await pilot.press("7")
                select(pane, "shop-db-1")
                await pilot.press("o")
                await pilot.pause(0.3)
                await pilot.press("enter")
                await until_wizard_done(pilot)
            await pilot.press(*keys)
            await pilot.pause(0.8)
            return Path(app.save_screenshot(f"{name}.svg", path=str(ROOT / "screenshots")))


def main() -> None:
    for variable in ("DOCKER_HOST", "DOCKER_CONTEXT"):
        os.environ.pop(variable, None)
    engine = _Engine() if _answers() is None else None
    try:
        if docker("image", "inspect", TEST_IMAGE, check=False).returncode != 0:
            import_image(TEST_IMAGE, busybox_tar())
        remove()
        incident()
        for name, size, first, keys in SHOTS:
            shot = asyncio.run(shoot(name, size, first, keys))
            print(shot.relative_to(ROOT))
    finally:
        remove()
        if engine is not None:
            engine.stop()


if __name__ == "__main__":
    main()
