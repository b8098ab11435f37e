"""`DockerSettings`: the limits of one Docker link, in seconds and counts.

A module of its own because the link, its dialling (`hosts.docker.dial`) and its log
streams (`hosts.docker.logs`) all read them, and the link imports the other two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DockerSettings"]


@dataclass(frozen=True, slots=True)
class DockerSettings:
    """Limits of a link (seconds, counts)."""

    timeout: float = 5.0
    """Each API call: the SDK's socket timeout, and (plus GRACE) the outer limit."""
    workers: int = 4
    """Threads for API calls: all a dead daemon can ever hold."""
    log_streams: int = 4
    """Log streams open at once (each holds a thread of its own while it follows)."""
    stats_concurrency: int = 32
    """One-shot stats requests at once, for containers whose cgroup files are out of reach:
    each waits for the engine's next 1 s collection, so N containers take about N/32 s."""
    inspect_max_age: float = 60.0
    """Re-inspect an unchanged container after this long (health streaks, `docker update`)."""
    oom_settle: float = 10.0
    """Re-inspect a container listed as exited by SIGKILL (137), not marked OOM-killed, at
    each refresh for this long after the list first showed it so: the engine may record the
    OOM kill a moment after the exit (see `hosts.docker.link._oom_may_follow`)."""
    stats_from: Literal["auto", "cgroup", "api"] = "auto"
    """"auto" (cgroup files, else the engine), "cgroup" or "api": for tests and benchmarks."""
