"""The storage domain's declaration: its wizard, its checks on every host, its settings."""

from __future__ import annotations

from fleetdeck.checks.domain import Domain, DomainRun, Periodic, WizardRef
from fleetdeck.checks.model import Finding
from fleetdeck.checks.storage.config import TABLE
from fleetdeck.checks.wizards import Wizard

STORAGE_EVERY = 300.0
"""Seconds between runs on an open Host screen (the console's `storage_every` overrides)."""


def _wizard() -> Wizard:
    from fleetdeck.checks.storage.wizard import STORAGE_WIZARD

    return STORAGE_WIZARD


async def _periodic(run: DomainRun) -> list[Finding]:
    from fleetdeck.checks.storage.wizard import storage_findings

    return await storage_findings(run.ctx)


STORAGE = Domain(
    "storage",
    "Storage",
    wizard=WizardRef("storage", _wizard),
    periodic=Periodic(
        _periodic,
        STORAGE_EVERY,
        frozenset({"shell", "samples", "params"}),
        every_setting="storage_every",
    ),
    settings=TABLE,
    switch="only the checks graded from samples: leave out the storage checks that ask the "
    "host (RAID, mounts, held-open files, I/O, SMART, what uses the space, backups...) "
    "and the container checks",
)
