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
record: only when the events do not reach back to the exit at all (`exit_recorded`) do the
checks fall back on what the restart policy implies (`checks.container_intent.implied_stop`).

Pure functions over the decoded event dicts; the link (`hosts.docker.link.DockerLink.events`)
fetches them.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["HAND_ACTIONS", "HandStop", "event_filters", "exit_recorded", "hand_stop_from_events"]

HAND_ACTIONS = ("kill", "stop")
"""The actions an API client (`docker stop`, `docker kill`, compose, an orchestrator) causes."""
STOP_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
"""Signals that ask a process to end: a `docker kill` with one of them is a stop."""
PROMPT_NANOS = 10 * 1_000_000_000
"""How soon after a kill with another signal (`docker kill -s HUP` to reload, USR1 ...) an
exit counts as its doing: Docker's own stop timeout. A crash days after a reload is not."""


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
    kills = [
        e
        for e in ordered[previous + 1 : last]
        if _action(e) == "kill" and _ended_it(e, ordered[last])
    ]
    stops = [e for e in ordered[last + 1 :] if _action(e) == "stop"]
    if not kills and not stops:
        return None
    # No kill before the exit: stopped while it waited to be restarted, at its `stop`.
    first = kills[0] if kills else stops[0]
    stopped = bool(stops)
    signals = tuple(str(_attributes(e).get("signal", "")) for e in kills if _attributes(e))
    how = "docker stop" if stopped else "docker kill"
    return HandStop(how, datetime.fromtimestamp(_nanos(first) / 1e9, UTC), signals)


def _ended_it(kill: Mapping[str, Any], die: Mapping[str, Any]) -> bool:
    """Whether a `kill` is what ended the run: a signal that asks a process to end, an exit
    status that says the signal ended it (128 + its number), or an exit promptly after it.
    A signal sent to reload (HUP, USR1), long before an exit of its own, did not."""
    sent = str(_attributes(kill).get("signal", ""))
    if not sent.isdecimal() or int(sent) in STOP_SIGNALS:
        return True
    code = str(_attributes(die).get("exitCode", ""))
    if code.isdecimal() and int(code) == 128 + int(sent):
        return True
    return _nanos(die) - _nanos(kill) <= PROMPT_NANOS


def exit_recorded(events: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the events reach back to the exit (its `die`): then they tell the whole story,
    and no kill or stop among them means it ended on its own, whatever the restart policy."""
    return any(_action(e) == "die" for e in events)


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
