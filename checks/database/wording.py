"""How the PostgreSQL checks word what they found: query text, durations, a backend as
evidence, what the monitoring user cannot see."""

from __future__ import annotations

from collections.abc import Sequence

from fleetdeck.checks.database.base import DbContext
from fleetdeck.checks.database.queries import Activity, Backend, ServerInfo
from fleetdeck.checks.model import Finding, Status, printable
from fleetdeck.checks.secrets import redact
from fleetdeck.hosts.units import human_duration

SHOWN_QUERY = 200
"""Characters of query text a finding shows."""


def shown(text: str, limit: int = SHOWN_QUERY) -> str:
    """Query text on one line, printable, passwords blanked, cut at `limit` characters."""
    flat = printable(" ".join(redact(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def span(seconds: float) -> str:
    """A threshold in seconds as people say it: `0.2 s`, `1m 0s`."""
    return f"{seconds:g} s" if seconds < 60 else human_duration(seconds)


def ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{human_duration(seconds)} ago"


def who(backend: Backend) -> str:
    """`alice@10.0.0.5 (billing)`: the user, the client and the application."""
    text = backend.user or "?"
    text += f"@{backend.client}" if backend.client else ""
    return text + (f" ({printable(backend.application)})" if backend.application else "")


def backend_lines(backend: Backend) -> list[str]:
    """A backend as evidence: its identity first (what a fix pins), then what it does."""
    if backend.hidden:
        return [
            f"pid {backend.pid} user {backend.user} database {backend.database} "
            f"application {printable(backend.application)!r}: details hidden (another user's)"
        ]
    wait = f"{backend.wait_event_type}:{backend.wait_event}" if backend.wait_event else "none"
    xact = human_duration(backend.xact_seconds) if backend.xact_seconds is not None else "none"
    since = human_duration(backend.state_seconds or 0)
    return [
        backend.identity,
        f"  {who(backend)} database {backend.database} state {backend.state} for {since}, "
        f"transaction open {xact}, wait event {wait}",
        f"  query: {shown(backend.query)}",
    ]


def hidden_note(activity: Activity, server: ServerInfo) -> str:
    """What the monitoring user cannot see, and how to let it."""
    count = len(activity.hidden)
    if not count:
        return ""
    sessions = "session" if count == 1 else "sessions"
    return (
        f"{count} {sessions} of other users hide their state and query: "
        f"grant pg_monitor to {server.user} to see them"
    )


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def with_hidden(
    check: str, db: DbContext, found: list[Finding], calm: str, note: str
) -> list[Finding]:
    """The findings, then one on the whole server: OK saying all is calm, or UNKNOWN when
    other users' sessions could not be looked at."""
    if note:
        said = calm if not found else "besides those listed"
        return [*found, Finding(check, Status.UNKNOWN, db.label, f"{said}; {note}")]
    return found or [Finding(check, Status.OK, db.label, calm)]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.0f} ms"
