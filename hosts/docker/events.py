"""Whether a stopped container was stopped by hand: the engine's own record of it, read from
its events.

The engine keeps the fact (`HasBeenManuallyStopped`, set by `docker stop` and `docker kill`
unless the engine itself is shutting down, and the reason an `unless-stopped` container stays
down) in its on-disk container config only: inspect's `State` has no such field (Docker 20.10,
API 1.41, up to today's releases). What the API does give is the events stream: `docker stop`
records `kill` (signal 15, then 9 after the timeout), `die` (with the exit code), then `stop`;
`docker kill` records `kill` then `die`; a process that ends on its own, or is OOM-killed,
records `die` alone (and `oom`). `GET /events?since=&until=` replays them from the engine's
memory, which is bounded and empty after the engine restarts, so a stop long ago may have no
record: the checks then fall back on what the restart policy implies (`hand_stop_implied`).

Pure functions over the decoded event dicts; the link (`hosts.docker.link.DockerLink.events`)
fetches them.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["HAND_ACTIONS", "HandStop", "event_filters", "hand_stop_from_events"]

HAND_ACTIONS = ("kill", "stop")
"""The actions an API client (`docker stop`, `docker kill`, compose, an orchestrator) causes."""


@dataclass(frozen=True, slots=True)
class HandStop:
    """A stop the engine was asked for: how (`docker stop` or `docker kill`), when, with
    which signals; `at` is None when it is implied by the restart policy, not recorded."""

    how: str
    at: datetime | None
    signals: tuple[str, ...] = ()

    def words(self) -> str:
        """`docker stop at 18:41:33 UTC (SIGTERM, then SIGKILL)` for a summary."""
        if self.at is None:
            return self.how
        sent = ", then ".join(_signal_name(s) for s in self.signals)
        return f"{self.how} at {self.at:%Y-%m-%d %H:%M:%S} UTC" + (f" ({sent})" if sent else "")


def event_filters(container_id: str) -> dict[str, list[str]]:
    """The `filters` of an events query for one container's stops and exits."""
    return {"type": ["container"], "container": [container_id], "event": [*HAND_ACTIONS, "die"]}


def hand_stop_from_events(events: Sequence[Mapping[str, Any]]) -> HandStop | None:
    """The stop by hand that ended the container's last run, from its events since that run
    started: a `kill` before its last `die`, or a `stop` after it; None when the last `die`
    came on its own (or there was none to read)."""
    ordered = sorted(events, key=_nanos)
    dies = [i for i, e in enumerate(ordered) if _action(e) == "die"]
    if not dies:
        return None
    last = dies[-1]
    previous = dies[-2] if len(dies) > 1 else -1
    kills = [e for e in ordered[previous + 1 : last] if _action(e) == "kill"]
    stopped = any(_action(e) == "stop" for e in ordered[last + 1 :])
    if not kills and not stopped:
        return None
    first = kills[0] if kills else ordered[last]
    signals = tuple(str(_attributes(e).get("signal", "")) for e in kills if _attributes(e))
    how = "docker stop" if stopped else "docker kill"
    return HandStop(how, datetime.fromtimestamp(_nanos(first) / 1e9, UTC), signals)


def _action(event: Mapping[str, Any]) -> str:
    return str(event.get("Action") or event.get("status") or "")


def _attributes(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return (event.get("Actor") or {}).get("Attributes") or {}


def _nanos(event: Mapping[str, Any]) -> int:
    nanos = event.get("timeNano")
    if isinstance(nanos, int):
        return nanos
    seconds = event.get("time")
    return int(seconds) * 1_000_000_000 if isinstance(seconds, int) else 0


def _signal_name(number: str) -> str:
    try:
        return signal.Signals(int(number)).name
    except ValueError:
        return f"signal {number}" if number else "a signal"
