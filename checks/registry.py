"""The table of checks graded on every host's samples (run them with `model.run_checks`)."""

from __future__ import annotations

from fleetdeck.checks.model import Check
from fleetdeck.checks.resources.checks import RESOURCE_CHECKS

CHECKS: tuple[Check, ...] = (*RESOURCE_CHECKS,)


def find_check(check_id: str) -> Check | None:
    return next((c for c in CHECKS if c.id == check_id), None)
