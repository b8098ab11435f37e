"""The resources domain's declaration. Its checks are graded on every sample
(`checks/registry.py`), not on a cadence of their own; its thresholds are `[thresholds.*]`."""

from __future__ import annotations

from fleetdeck.checks.domain import Domain

RESOURCES = Domain("resources", "Resources")
