"""What a Services pane shows: one `ServicesSnapshot` of a host's systemd units per refresh.

A reading is the units check's own (`checks.services.units.read_units`: three systemctl
calls whatever the number of units), graded the same way, so the pane and `services.units`
never disagree. The snapshot keeps the units that need a look (failed, flapping, important
and not running) first, then the important ones that are fine; the rest are counted.

Nothing here raises for what the host does: a reading that fails is a snapshot with `error`
(the host and the cause); `absent` says "no systemd here", which is not an error. Text from
the host (names, descriptions) is made printable here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import StepFailed
from fleetdeck.checks.model import Status, printable
from fleetdeck.checks.services.units import Limits, grade, has_systemd, read_units
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.shell import Shell, ShellError


@dataclass(frozen=True, slots=True)
class UnitLine:
    """One unit as a line of the pane (text already printable)."""

    name: str
    active: str
    sub: str
    restarts: int | None
    since: float | None
    """Seconds in its current state, when systemd says."""
    description: str
    important: bool
    status: Status
    trouble: str
    """Why it needs a look, in the units check's words; "" when it is fine."""


@dataclass(frozen=True, slots=True)
class ServicesSnapshot:
    host: str
    at: float
    """time.monotonic() of the reading, for its age."""
    taken: float
    """time.time() of the reading, to show."""
    lines: tuple[UnitLine, ...] = ()
    listed: int = 0
    failed: int = 0
    flapping: int = 0
    important_down: int = 0
    important: int = 0
    absent: bool = False
    error: str | None = None


async def read_services(host: str, shell: Shell, params: Mapping[str, str]) -> ServicesSnapshot:
    """One reading of the host's units; never raises for what the host does."""
    at, taken = time.monotonic(), time.time()
    try:
        limits = Limits.from_params(params)
        if not await has_systemd(shell):
            return ServicesSnapshot(host, at, taken, absent=True)
        reading = await read_units(shell, sorted(limits.important))
    except (ShellError, StepFailed, ParseError, ValueError) as error:
        return ServicesSnapshot(host, at, taken, error=f"{host}: {printable(str(error))}")
    lines = []
    for state in reading.states.values():
        graded = grade(state, reading.now, limits)
        important = state.id in limits.important
        if graded is None and not important:
            continue
        status, trouble = graded or (Status.OK, "")
        changed = state.active_since if state.active == "active" else state.inactive_since
        lines.append(
            UnitLine(
                name=printable(state.id, one_line=True),
                active=printable(state.active, one_line=True),
                sub=printable(state.sub, one_line=True),
                restarts=state.restarts,
                since=reading.now - changed if changed is not None else None,
                description=printable(state.description, one_line=True),
                important=important,
                status=status,
                trouble=trouble,
            )
        )
    lines.sort(key=lambda line: (-line.status.rank, not line.important, line.name))
    return ServicesSnapshot(
        host,
        at,
        taken,
        tuple(lines),
        listed=reading.listed,
        failed=sum(1 for line in lines if line.active == "failed"),
        flapping=sum(1 for line in lines if line.trouble.startswith("flapping")),
        important_down=sum(1 for line in lines if line.important and line.status is Status.CRIT),
        important=len(limits.important),
    )
