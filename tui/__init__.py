"""The Textual app, its screens and the `fleetdeck` command line."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# asyncssh names cryptography's DSA classes at import, and cryptography warns about each
# name (ten lines on stderr, where the wizard's prompts go and what cron mails for `check`).
# Only that warning, only from asyncssh: any other, ours above all, still shows. This runs
# before any of the package's modules, so before anything can import asyncssh.
warnings.filterwarnings(
    "ignore",
    message="DSA is deprecated",
    category=CryptographyDeprecationWarning,
    module="asyncssh",
)

__all__ = ["FleetdeckApp", "HostScreen", "Settings", "make_app"]


def __getattr__(name: str) -> object:
    # Lazy, so `fleetdeck check` never pays for importing Textual.
    if name in {"FleetdeckApp", "Settings", "make_app"}:
        from fleetdeck.tui import app

        return getattr(app, name)
    if name == "HostScreen":
        from fleetdeck.tui.host_screen import HostScreen

        return HostScreen
    raise AttributeError(name)
