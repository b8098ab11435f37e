"""`FleetdeckScreen`: a screen whose `app` is typed as the console, `FleetdeckApp`.

Textual types `Screen.app` as any `App`; the screens call the console's own methods (its
`HostAccess` per host, `open_wizard`, `open_audit`), which a type checker then cannot see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from textual.screen import Screen

if TYPE_CHECKING:
    from textual import getters

    from fleetdeck.tui.app import FleetdeckApp

ResultType = TypeVar("ResultType")


class FleetdeckScreen(Screen[ResultType]):
    """A screen of the console: `self.app` is the `FleetdeckApp` that pushed it."""

    if TYPE_CHECKING:  # at run time the inherited property: the same active app, unchecked
        app = getters.app(FleetdeckApp)
