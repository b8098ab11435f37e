"""A unit's health endpoints, and whether they answer: what a restart or start of the unit is
verified by, beside the unit staying active (runbook R02's fixes, the service wizard's
"Start and verify").

An endpoint belongs to a unit when its `[[services.http]]` entry says `unit = "NAME"`; the
entries come from the same per-group and per-host merging as every other endpoint, and the
`http.health` sweep keeps probing them as before. The units check and the wizard read them
from the `health` parameter (the host's entries that name a unit, as a JSON list, which the
settings give and `--health` takes: `health_config.py`), so they need no settings of their
own.

Each endpoint is asked with the http probe (`http.ask`, curl or python3 on the host) and
graded as `http.health` grades it. The check is re-run by the gate every second of its
verification window (`units.SETTLE`), so a service that needs a moment to listen is asked
again until it answers or the window ends: there is no fixed sleep here. A unit with no
endpoint is verified by its state alone, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.model import Evidence, Status
from fleetdeck.checks.services.http import ask, grade
from fleetdeck.checks.services.probe_config import HttpEndpoint
from fleetdeck.hosts.shell import Shell


@dataclass(frozen=True, slots=True)
class Health:
    """How a unit's endpoints answered: the worst status, each one's answer, the evidence."""

    status: Status
    said: str
    evidence: tuple[Evidence, ...]

    @property
    def failing(self) -> bool:
        """Not answering as configured, or not known to (a slow answer is only WARN)."""
        return self.status in (Status.CRIT, Status.UNKNOWN)

    def joined(self, state: tuple[Status, str]) -> tuple[Status, str]:
        """The unit's graded state with its endpoints' answers: the worse status wins, and
        the summary names each endpoint and what it answered."""
        status = max(state[0], self.status, key=lambda s: s.rank)
        word = "; " if self.status is Status.OK else ", but "
        return status, f"{state[1]}{word}{self.said}"


async def answering(shell: Shell, endpoints: Sequence[HttpEndpoint]) -> Health:
    """Ask each endpoint from the host and grade its answer (an endpoint that could not be
    asked, neither curl nor python3 being there, is UNKNOWN: silence is not health)."""
    answers: list[tuple[Status, str]] = []
    evidence: list[Evidence] = []
    for endpoint in endpoints:
        answer, proof = await ask(shell, endpoint)
        evidence += proof
        if answer is None:
            status, summary = Status.UNKNOWN, "not asked: neither curl nor python3 is on the host"
        else:
            status, summary = grade(endpoint, answer)
        answers.append((status, f"{endpoint.url}: {summary}"))
    answers.sort(key=lambda a: -a[0].rank)  # the endpoints that fail first
    worst = answers[0][0] if answers else Status.OK
    return Health(worst, "; ".join(said for _, said in answers), tuple(evidence))
