"""The container checks' thresholds (`[thresholds.containers]`), with their defaults and why.

    [thresholds.containers]
    memory = { warn = 80, crit = 90 }     # % of a container's memory limit in use
    restarts = 3                          # this many restarts ...
    restart_window = 600                  # ... within this many seconds: a restart loop
    loop_probe = 3                        # seconds between two readings when none are kept
    leak_rate = 1.0                       # MiB per minute of steady growth: a leak suspicion
    leak_samples = 6                      # a trend needs this many samples ...
    leak_span = 300                       # ... over at least this many seconds
    leak_fit = 0.9                        # and a straight line must explain it this well (R²)
    time_to_limit = { warn = 24, crit = 4 }  # hours until a growing container hits its limit
    verify_wait = 60                      # seconds a fix's verification waits for health
    oneshot = ["backup-*", "migrate"]     # names (globs) of jobs whose failed exit is no news

Durations are seconds, percentages 0-100; warn is never above crit, except for
`time_to_limit`, where fewer hours is worse. `parse_container_thresholds` checks a table the
way `checks.database.config` does: `fail(dotted_key, problem)` builds the error to raise, so the
settings file names the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fleetdeck.checks.settings import Fail, Limit, SettingsTable, finite, parse_pair, value_error


@dataclass(frozen=True, slots=True)
class ContainerThresholds:
    """What the container checks compare against. The defaults, and where they come from:"""

    memory: Limit = field(default_factory=lambda: Limit(80, 90))
    """% of the memory limit in use (usage less inactive page cache, as `docker stats`):
    the same levels as the host's own memory check; at 100 % the kernel's OOM killer acts."""
    restarts: int = 3
    restart_window: float = 600.0
    """Three restarts in ten minutes is a loop: the engine waits 0.1 s, 0.2 s, 0.4 s ... (at
    most a minute) between attempts, so a container that cannot start makes that in seconds,
    while a service that crashed once and came back does not."""
    loop_probe: float = 3.0
    """When no readings are kept (the command line), the restart-loop step reads a suspect
    container twice this far apart, to see whether it is restarting right now."""
    leak_rate: float = 1.0
    """MiB per minute of steady growth (anonymous memory: heap, not page cache) that makes a
    leak suspicion: 1.4 GiB a day."""
    leak_samples: int = 6
    leak_span: float = 300.0
    """A trend needs this many samples over this many seconds (the Host screen's pane reads
    every few seconds; a single run of the wizard has one reading and says so)."""
    leak_fit: float = 0.9
    """R² of the least-squares line: growth that a straight line explains this well is
    steady, not a cache warming up and settling or a garbage collector's saw-tooth."""
    time_to_limit: Limit = Limit(24, 4, falling=True)
    """Hours until a steadily growing container reaches its memory limit at its slope."""
    verify_wait: float = 60.0
    """Seconds a restart or start is given to come back healthy (or running) before the
    gate calls it unverified: a healthcheck's start period and first probes take a while."""
    oneshot: tuple[str, ...] = ()
    """Names or globs of containers that are jobs: their exit with a non-zero status, when
    nothing restarts them, is not a finding (as the label `fleetdeck.oneshot=true`)."""


LIMITS = ("memory", "time_to_limit")
PERCENT = frozenset({"memory"})
WHOLE = {"restarts": (1, 1000), "leak_samples": (3, 10_000)}
SECONDS = {
    "restart_window": (1.0, 7 * 86400.0),
    "loop_probe": (0.0, 60.0),
    "leak_span": (1.0, 7 * 86400.0),
    "verify_wait": (0.0, 3600.0),
}
RATIOS = {"leak_rate": (0.0, 1e6), "leak_fit": (0.0, 1.0)}
NAMES = ("oneshot",)
KNOWN = (*LIMITS, *WHOLE, *SECONDS, *RATIOS, *NAMES)


def parse_container_thresholds(
    table: object, fail: Fail = value_error, where: str = "thresholds.containers"
) -> ContainerThresholds:
    """The thresholds a `[thresholds.containers]` table sets over the defaults; raises
    `fail(dotted_key, problem)` at the first key it cannot use."""
    if not isinstance(table, Mapping):
        raise fail(where, f"expected a table such as [{where}]")
    found = ContainerThresholds()
    changes: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if key in LIMITS:
            percent = key in PERCENT
            changes[key] = parse_pair(getattr(found, key), value, dotted, fail, percent=percent)
        elif key in WHOLE:
            low, high = WHOLE[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise fail(dotted, f"expected a whole number from {low} to {high}, got {value!r}")
            changes[key] = value
        elif key in SECONDS or key in RATIOS:
            low_f, high_f = SECONDS.get(key) or RATIOS[key]
            if not finite(value) or not low_f <= value <= high_f:
                raise fail(dotted, f"expected a number from {low_f:g} to {high_f:g}, got {value!r}")
            changes[key] = float(value)
        elif key in NAMES:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise fail(dotted, f"expected a list of names or globs, got {value!r}")
            changes[key] = tuple(value)
        else:
            raise fail(dotted, f"unknown key (known: {', '.join(KNOWN)})")
    return replace(found, **changes)


TABLE = SettingsTable("containers", ("thresholds", "containers"), parse_container_thresholds)
"""`[thresholds.containers]`: the container domain's settings (a `ContainerThresholds`)."""
