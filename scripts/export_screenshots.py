"""Refresh screenshots/ from the recorded host (tests/data/web-01, and its network and
storage state in tests/data/net and tests/data/storage, its systemd, service wizard and TLS
endpoints in tests/data/services), the same data the snapshot tests use, so the README
shows exactly what the console draws.

    .venv/bin/python scripts/export_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from recorded import (  # noqa: E402
    open_recorded_wizard,
    recorded_app,
    recorded_fleet_app,
    recorded_wizard_app,
    until_fleet_shown,
    until_shown,
)

SHOTS = [
    ("host-80x24", (80, 24), ()),
    ("host-120x40-by-memory", (120, 40), ("m",)),
    ("host-200x60", (200, 60), ()),
    ("too-small-50x12", (50, 12), ()),
    ("fleet-100x24-grouped", (100, 24), ("g",)),
    ("wizard-80x24-firewall", (80, 24), ("down", "down", "down", "down")),
    ("wizard-160x45", (160, 45), ()),
    ("wizard-confirm-100x30", (100, 30), ("down", "down", "down", "down", "f")),
    ("storage-80x24-readonly", (80, 24), ("down",)),
    ("storage-160x45", (160, 45), ()),
    ("storage-confirm-100x30", (100, 30), ("down",) * 7 + ("f",)),
    ("services-pane-80x24", (80, 24), ("r", "8")),
    ("services-pane-160x50", (160, 50), ("r", "8")),
    ("service-wizard-80x24-clean-state", (80, 24), ("down",) * 4),
    ("service-wizard-160x45", (160, 45), ()),
    ("service-wizard-160x45-start", (160, 45), ("down",) * 5),
    ("tls-findings-80x24", (80, 24), ("5", "down", "down")),
    ("tls-findings-200x60", (200, 60), ()),
]


async def shoot(name: str, size: tuple[int, int], keys: tuple[str, ...]) -> Path:
    fleet, storage = name.startswith("fleet"), name.startswith("storage")
    service = name.startswith("service-wizard")
    wizard = storage or service or name.startswith("wizard")
    systemd = name.startswith("services")  # the host answers as the systemd lab did
    tls = name.startswith("tls")  # and to the TLS check as the namespace host did
    app = (
        recorded_fleet_app()
        if fleet
        else recorded_wizard_app()
        if wizard
        else recorded_app(systemd=systemd, tls=tls)
    )
    async with app.run_test(size=size) as pilot:
        await (until_fleet_shown if fleet else until_shown)(pilot)
        if wizard:
            domain = "storage" if storage else "service" if service else "network"
            await open_recorded_wizard(pilot, domain=domain)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.2)
        return Path(app.save_screenshot(f"{name}.svg", path=str(ROOT / "screenshots")))


def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    for name, size, keys in SHOTS:
        print(asyncio.run(shoot(name, size, keys)).relative_to(ROOT))


if __name__ == "__main__":
    main()
