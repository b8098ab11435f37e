"""Diagnostics: checks, findings, alert rules, fixes and the settings they read.

No Textual and no Rich here: the CLI's `check` command and the tests use this headless.
"""

from fleetdeck.checks.alerts import Alert, AlertState, AlertTracker, Transition
from fleetdeck.checks.config import (
    Config,
    ConfigError,
    Level,
    Thresholds,
    load_config,
    parse_config,
)
from fleetdeck.checks.model import (
    Check,
    CheckContext,
    Evidence,
    Finding,
    Fix,
    Risk,
    Status,
    run_checks,
    worst_exit_code,
)
from fleetdeck.checks.registry import CHECKS, find_check
from fleetdeck.checks.resources.checks import RESOURCE_CHECKS, Reading, SampleCheck, grade

__all__ = [
    "CHECKS",
    "RESOURCE_CHECKS",
    "Alert",
    "AlertState",
    "AlertTracker",
    "Check",
    "CheckContext",
    "Config",
    "ConfigError",
    "Evidence",
    "Finding",
    "Fix",
    "Level",
    "Reading",
    "Risk",
    "SampleCheck",
    "Status",
    "Thresholds",
    "Transition",
    "find_check",
    "grade",
    "load_config",
    "parse_config",
    "run_checks",
    "worst_exit_code",
]
