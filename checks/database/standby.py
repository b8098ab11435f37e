"""A standby's own lag (runbook D4): the WAL it received and has not replayed yet, and how
long that has waited.

PostgreSQL 15 has no "replay stalled since" timestamp, and the usual figure, now minus
`pg_last_xact_replay_timestamp()`, is the age of the last replayed *commit*: on a standby of
a quiet primary, or of one running a long bulk insert (one transaction, no commit for
minutes), it grows while replay keeps up byte for byte. So the check looks twice, a short
`REPLAY_PROBE` apart, when anything is waiting:

- nothing received and not replayed: caught up, whatever the last commit's age;
- the backlog of the first look replayed by the second: replay keeps up (waited less than
  the probe);
- replay moved but not that far: its rate says how long the backlog takes, so how far
  behind it runs;
- replay did not move (paused, or blocked by a query on the standby that conflicts with a
  change it must apply): the backlog has waited at most since the last replayed commit,
  the only timestamp there is; that is the wait graded.

The primary's own view (`pg_stat_replication.replay_lag`, a time measured by the primary
between flushing WAL and hearing it replayed) is read by `db.replication` on the primary.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from fleetdeck.checks.database.queries import RECEIVER, REPLAY_SINCE, Fetcher
from fleetdeck.hosts.units import human_bytes, human_duration

REPLAY_PROBE = 1.0
"""Seconds between the two looks at a standby with a backlog."""


@dataclass(frozen=True, slots=True)
class StandbyLag:
    """What a standby says of its replay (one look, or two `probe` seconds apart)."""

    paused: bool
    receiver: str | None
    """pg_stat_wal_receiver.status (streaming ...); None: no WAL receiver running."""
    sender: str | None
    behind: float
    """Bytes received and not yet replayed, at the first look."""
    last_commit: float | None
    """Seconds since the last replayed transaction committed on the primary."""
    probe: float = 0.0
    """Seconds between the two looks; 0: one look only."""
    advanced: float = 0.0
    """Bytes replayed between the looks."""
    caught: bool = False
    """Whether replay passed, by the second look, what was received at the first."""

    @property
    def wait(self) -> float:
        """Seconds the backlog has waited (or, replay moving, takes to replay): 0 caught up."""
        if self.behind <= 0:
            return 0.0
        if self.caught or self.probe <= 0:
            return self.probe
        if self.advanced > 0:
            return self.probe + (self.behind - self.advanced) / (self.advanced / self.probe)
        return max(self.probe, self.last_commit or 0.0)

    @property
    def stalled_unknown(self) -> bool:
        """Replay did not move with WAL waiting, and no commit was replayed since this
        standby started: nothing bounds how long it has waited (`wait` is then the probe
        only), which is no sign that it is short."""
        stalled = self.behind > 0 and self.probe > 0 and not self.caught and self.advanced <= 0
        return stalled and self.last_commit is None

    def words(self) -> str:
        """The lag as an operator reads it."""
        if self.behind <= 0:
            return "caught up: everything received is replayed"
        backlog = f"{human_bytes(self.behind)} received and not yet replayed"
        if self.probe <= 0:
            return backlog
        if self.caught:
            return f"{backlog}, replayed within {self.probe:.1f} s: replay keeps up"
        if self.advanced > 0:
            rate = human_bytes(self.advanced / self.probe)
            return f"{backlog}; replay runs at {rate}/s: about {human_duration(self.wait)} behind"
        since = (
            f"waiting up to {human_duration(self.wait)} (the last replayed commit's age)"
            if self.last_commit is not None
            else "waiting for how long is not known (no commit replayed since it started)"
        )
        return f"{backlog}; replay has not moved in {self.probe:.1f} s, {since}"


async def read_standby_lag(db: Fetcher, probe: float = REPLAY_PROBE) -> StandbyLag:
    """The standby's lag: a second look `probe` seconds after the first when WAL waits."""
    (row,) = await db.fetch(RECEIVER)
    first = _lag(row)
    if first.behind <= 0 or probe <= 0 or row["replayed"] is None:
        return first
    started = time.monotonic()
    await asyncio.sleep(probe)
    params = {"replayed": row["replayed"], "received": row["received"]}
    (again,) = await db.fetch(REPLAY_SINCE, params)
    elapsed = time.monotonic() - started
    return StandbyLag(
        paused=first.paused,
        receiver=first.receiver,
        sender=first.sender,
        behind=first.behind,
        last_commit=first.last_commit,
        probe=elapsed,
        advanced=max(float(again["advanced"] or 0.0), 0.0),
        caught=(again["past_received"] or 0.0) >= 0,
    )


def _lag(row: dict[str, Any]) -> StandbyLag:
    return StandbyLag(
        paused=bool(row["paused"]),
        receiver=row["receiver"],
        sender=row["sender"],
        behind=float(row["behind_bytes"] or 0.0),
        last_commit=row["last_commit"],
    )
