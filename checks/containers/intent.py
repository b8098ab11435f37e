"""What an operator meant by a container that is not running: stopped by hand (the engine's
record of a `docker stop` or `docker kill`), a job that may end (a label or a setting), and
the last log lines that say why one that was not meant to end did.

`container.state` asks these only for containers that exited with a failure or against
their restart policy, so a healthy host costs no events or log reads; and an exited
container's answers cannot change until it runs again, so each link keeps them by container
id and FinishedAt (`_Kept`): a host with many old failed jobs is read once, not every run.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetdeck.checks.containers.config import ContainerThresholds
from fleetdeck.checks.model import Evidence, printable
from fleetdeck.hosts.docker.link import (
    Container,
    DockerError,
    DockerLink,
    HandStop,
    State,
    exit_recorded,
    hand_stop_from_events,
)

ONESHOT_LABEL = "fleetdeck.oneshot"
"""`--label fleetdeck.oneshot=true`: a job whose failed exit is no news (see `job`)."""
LOG_LINES = 10
"""Lines of a crashed container's log its finding shows."""
STOP_SETTLE = 2.0
"""Seconds after FinishedAt the engine's `stop` event may still come (it follows the `die`)."""
RESTART_BACKOFF = 60.0
"""The engine's longest wait before a restart (100 ms, doubled each time, at most a minute):
a `docker stop` during it comes that long after the last exit at most."""
RESTARTED_BY_ENGINE = ("always", "unless-stopped")
"""Policies under which the engine restarts every exit but one asked for through Docker."""


KEPT = 1000
"""Answers a link keeps (container id and exit): the oldest go first."""
_kept: weakref.WeakKeyDictionary[DockerLink, OrderedDict[tuple[str, str, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def _recall(link: DockerLink, what: str, c: Container) -> tuple[bool, Any]:
    kept = _kept.setdefault(link, OrderedDict())
    key = (what, c.id, c.finished_at.isoformat() if c.finished_at else "")
    return (key in kept, kept.get(key))


def _keep(link: DockerLink, what: str, c: Container, answer: Any) -> None:
    kept = _kept.setdefault(link, OrderedDict())
    kept[(what, c.id, c.finished_at.isoformat() if c.finished_at else "")] = answer
    while len(kept) > KEPT:
        kept.popitem(last=False)


def job(c: Container, limits: ContainerThresholds) -> str:
    """Why `c` counts as a job whose failed exit is no news: its `fleetdeck.oneshot=true`
    label or a `oneshot` name or glob in the settings; "" when it is not one."""
    if c.labels.get(ONESHOT_LABEL, "").strip().lower() in ("true", "yes", "1"):
        return f"label {ONESHOT_LABEL}={c.labels[ONESHOT_LABEL]}"
    for pattern in limits.oneshot:
        if fnmatch.fnmatchcase(c.name, pattern):
            return f"oneshot {pattern!r} in [thresholds.containers]"
    return ""


async def hand_stop(link: DockerLink, c: Container) -> HandStop | None:
    """How an exited container was stopped by hand: the engine's kill or stop before its
    last exit (its events), else what an always or unless-stopped policy implies
    (`implied_stop`); None when it ended on its own."""
    if c.state is not State.EXITED or c.finished_at is None:
        return None
    known, kept = _recall(link, "stop", c)
    if not known:
        # Up to now, not to the exit: a `docker stop` while it waited to be restarted comes
        # after its last exit (up to RESTART_BACKOFF later) and leaves FinishedAt as it was.
        now = datetime.now(UTC)
        settled = now >= c.finished_at + timedelta(seconds=STOP_SETTLE + RESTART_BACKOFF)
        # Settled, whole seconds will do, and the engine does not hold the answer until
        # the next one; a recent exit's events are read to the moment.
        until = now.replace(microsecond=0) if settled else now
        try:
            events = await link.events(c.id, c.started_at or c.created_at or c.finished_at, until)
        except DockerError:
            return implied_stop(c, recorded=False)
        kept = (hand_stop_from_events(events), exit_recorded(events))
        if settled:
            _keep(link, "stop", c, kept)  # no stop of it can come any more
    # What the policy implies is read afresh (docker update), the events' answer kept.
    found, recorded = kept
    return implied_stop(c, recorded) if found is None else found


def implied_stop(c: Container, recorded: bool) -> HandStop | None:
    """What an always or unless-stopped policy implies of an exit with no kill or stop in
    its events: where they do not reach back to the exit (`recorded` False), one left
    exited with no start error was stopped through Docker, as the engine restarts every
    other exit. Where they do show the exit, with no kill or stop, it ended on its own under
    another policy, set since (`docker update --restart always` starts nothing): it crashed.
    (A `docker stop` while it waits to be restarted records `stop` after its last `die`,
    which `hand_stop` reads up to now.)"""
    if c.restart_policy not in RESTARTED_BY_ENGINE or c.error or recorded:
        return None
    how = (
        "through Docker: the engine would have started it again otherwise (its events "
        "no longer reach back to the stop)"
    )
    return HandStop(how, None)


async def log_tail(link: DockerLink, c: Container) -> tuple[Evidence, str]:
    """The container's last log lines, printable, as evidence (or why they are missing),
    and the last of them ("" when there is none)."""
    known, kept = _recall(link, "log", c)
    if known:  # an exited container's log ends where it ended
        return kept
    source = f"docker logs --tail {LOG_LINES} {c.name}"
    try:
        data = await link.log_tail(c.id, LOG_LINES)
    except DockerError as error:
        said = f"cannot read its log: {error.failure.value}: {error.detail}"
        return Evidence(source, said), ""
    lines = [printable(line) for line in data.decode(errors="replace").splitlines()[-LOG_LINES:]]
    found = (
        (Evidence(source, "\n".join(lines)), lines[-1])
        if lines
        else (Evidence(source, "(the log is empty)"), "")
    )
    _keep(link, "log", c, found)
    return found
