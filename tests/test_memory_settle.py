"""The console tunes Python's collector once it has started (`tui.app.settle_gc`): what
exists after its first screens are drawn is frozen out of full collections. A screen the
operator opens and closes later must still be collected, or every host opened from the
Fleet screen and every audit log read would stay in memory for good."""

from __future__ import annotations

import gc
import weakref

from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.tui.app import GC_SETTLE_AFTER, GC_YOUNG, Settings, make_app
from fleetdeck.tui.host_screen import HostScreen


async def _until(pilot: Pilot[None], condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    waited = 0.0
    while not condition():
        assert waited < timeout, "the console did not get there in time"
        await pilot.pause(0.1)
        waited += 0.1


async def test_a_screen_opened_after_the_settle_is_collected_once_closed() -> None:
    app = make_app(Settings(interval=1.0), Config())
    async with app.run_test(size=(100, 30)) as pilot:
        assert isinstance(app.screen, HostScreen)
        await pilot.pause(GC_SETTLE_AFTER)
        await _until(pilot, lambda: gc.get_freeze_count() > 0)
        assert gc.get_threshold()[0] == GC_YOUNG
        host = app.screen
        await pilot.press("a")  # the audit log, a screen of its own
        await _until(pilot, lambda: app.screen is not host)
        opened = weakref.ref(app.screen)
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen is host)
        for _ in range(50):  # Textual drops its last references over the next turns
            gc.collect()
            if opened() is None:
                break
            await pilot.pause(0.1)
        assert opened() is None, gc.get_referrers(opened())
