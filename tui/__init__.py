"""The Textual app, its screens and the `fleetdeck` command line."""

__all__ = ["FleetdeckApp", "HostScreen", "Settings", "make_app"]


def __getattr__(name: str) -> object:
    # Lazy, so `fleetdeck check` never pays for importing Textual.
    if name in {"FleetdeckApp", "Settings", "make_app"}:
        from tui import app

        return getattr(app, name)
    if name == "HostScreen":
        from tui.host_screen import HostScreen

        return HostScreen
    raise AttributeError(name)
