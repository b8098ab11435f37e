"""Refresh the war room's screenshots/ from the state tests/war_room_data.py writes (in a
temporary data directory) over the recorded fleet, the same data the snapshot tests use.

    .venv/bin/python scripts/export_war_room_screenshots.py

The browser's screenshot (serve-war-room-chromium.png) comes from the test that takes it:
FLEETDECK_WRITE_SCREENSHOTS=1 ./scripts/test -k chromium
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

SHOTS = [
    ("war-room-200x60", (200, 60), ()),
    ("war-room-120x40", (120, 40), ()),
    ("war-room-fleet-120x40", (120, 40), ("n",)),
]


async def shoot(name: str, size: tuple[int, int], keys: tuple[str, ...], audit: Path) -> Path:
    from test_war_room import until_board
    from war_room_data import war_room_app

    app = war_room_app(audit)
    async with app.run_test(size=size) as pilot:
        await until_board(pilot)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.2)
        return Path(app.save_screenshot(f"{name}.svg", path=str(ROOT / "screenshots")))


def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-war-room-") as tmp:
        os.environ["XDG_DATA_HOME"] = tmp  # the state database goes here, not in yours
        from war_room_data import build_state

        audit = Path(tmp) / "audit.jsonl"
        build_state(audit)
        for name, size, keys in SHOTS:
            print(asyncio.run(shoot(name, size, keys, audit)).relative_to(ROOT))


if __name__ == "__main__":
    main()
