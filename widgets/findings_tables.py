"""Tables of the Host screen that list what is wrong: findings and alerts."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from fleetdeck.checks.alerts import Alert
from fleetdeck.checks.model import Finding, Status
from fleetdeck.hosts.units import human_duration
from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.row_table import Column, RowTable

if TYPE_CHECKING:
    from fleetdeck.checks.incidents.board import BoardAlert


def headline(target: str, summary: str, host: str = "") -> str:
    """A finding's summary as a row says it: with its target in front where the summary does
    not start with it ("shop-db-1: unhealthy ...", "/: read-write"), since a row that only
    says "unhealthy" leaves the operator asking what; a target that is the host is left out."""
    if not target or target == host or summary.casefold().startswith(target.casefold()):
        return summary
    return f"{target}: {summary}"


class SeverityTable(RowTable):
    """A table with a severity column coloured from TCSS component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = RowTable.COMPONENT_CLASSES | {
        "severity--ok",
        "severity--warn",
        "severity--crit",
        "severity--unknown",
        "state--firing",
        "state--pending",
        "state--resolved",
        "state--acknowledged",
        "state--silenced",
        "state--flapping",
    }
    DEFAULT_CSS = """
    SeverityTable > .severity--ok { color: $success; }
    SeverityTable > .severity--warn { color: $warning; }
    SeverityTable > .severity--crit { color: $error; text-style: bold; }
    SeverityTable > .severity--unknown { color: $secondary; }
    SeverityTable > .state--firing { text-style: bold; }
    SeverityTable > .state--pending { text-style: italic; }
    SeverityTable > .state--resolved { color: $text-muted; }
    SeverityTable > .state--acknowledged { text-style: none; }
    SeverityTable > .state--silenced { color: $text-muted; text-style: italic; }
    SeverityTable > .state--flapping { text-style: bold italic; }
    """

    def status_cell(self, status: Status) -> Cell:
        cell = Cell(status.value, -status.rank)
        cell.stylize(
            self.get_component_rich_style(f"severity--{status.value.lower()}", partial=True)
        )
        return cell


class FindingsTable(SeverityTable):
    """Every finding of the last run, the worst first."""

    COLUMNS = (
        Column("status", "Status"),
        Column("summary", "Summary", max_width=72),
        Column("check", "Check"),
    )

    def show(self, findings: Sequence[Finding], host: str = "") -> None:
        """The findings of `host` (whose name is left out where it is a finding's target)."""
        ordered = sorted(findings, key=lambda f: (-f.status.rank, f.check, f.target))
        self.set_rows(
            {
                f"{f.check}|{f.target}": (
                    self.status_cell(f.status),
                    Cell(headline(f.target, f.summary, host)),
                    Cell(f.check),
                )
                for f in ordered
            }
        )


AlertKey = tuple[str, str, str]


def alerts_subtitle(alerts: Sequence[Alert], marks: Mapping[AlertKey, str]) -> str:
    """The alert list's border title: how many, and how many of them are silenced or
    acknowledged ("4, 3 silenced"): a silenced alert is counted and listed, never hidden."""
    if not alerts:
        return "none"
    said = [str(len(alerts))]
    for state in ("silenced", "acknowledged"):
        count = sum(1 for a in alerts if marks.get(a.key) == state)
        if count:
            said.append(f"{count} {state}")
    return ", ".join(said)


class AlertsTable(SeverityTable):
    """Alerts: severity, state (pending, firing, resolved; acknowledged, silenced or flapping
    from the state database), since when, and what."""

    COLUMNS = (
        Column("severity", "Sev"),
        Column("state", "State"),
        Column("since", "Since", "right"),
        Column("summary", "Summary", max_width=72),
        Column("check", "Check"),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cells: dict[str, tuple[tuple[object, ...], tuple[Cell, ...]]] = {}
        self.shown: dict[str, Alert | BoardAlert] = {}
        """Each row's alert, by row key."""

    def show(
        self,
        alerts: Sequence[Alert],
        now: float | None = None,
        marks: Mapping[AlertKey, str] | None = None,
        others: Sequence[BoardAlert] = (),
        runbooks: Mapping[AlertKey, str] | None = None,
    ) -> None:
        """Show alerts in the order given (the tracker sorts firing first); `marks` says
        what people made of them (`AlertRecorder.marks`), which the State column shows.
        `others` are other engines' alerts about the host (Alertmanager's, by row key), after
        fleetdeck's, their source in the Check column; a source that could not be read is one
        UNKNOWN row naming it. `runbooks` are the runbook ids of the alerts' rules, shown
        after the check ("disk.space · S2"; Enter opens its wizard).
        Cells are built only for alerts whose shown text moved (an age past a minute moves
        once a minute): with thousands of alerts, building every row each second was most
        of the console's CPU, and a row handed over unchanged is not compared again."""
        now = time.time() if now is None else now
        marks = marks or {}
        rows: dict[str, tuple[Cell, ...]] = {}
        cache: dict[str, tuple[tuple[object, ...], tuple[Cell, ...]]] = {}
        for a in alerts:
            key = "|".join(a.key)
            said = a.state.value if a.state.value == "resolved" else marks.get(a.key, a.state.value)
            since = human_duration(now - a.active_since)
            runbook = (runbooks or {}).get(a.key)
            check = f"{a.check} · {runbook}" if runbook else a.check
            shown = (a.severity, said, since, a.active_since, a.target, a.summary, a.host, check)
            cached = self._cells.get(key)
            if cached is None or cached[0] != shown:
                state = Cell(said)
                state.stylize(self.get_component_rich_style(f"state--{said}", partial=True))
                cells = (
                    self.status_cell(a.severity),
                    state,
                    num(since, a.active_since),
                    Cell(headline(a.target, a.summary, a.host)),
                    Cell(check),
                )
                cached = (shown, cells)
            cache[key] = cached
            rows[key] = cached[1]
        by_key: dict[str, Alert | BoardAlert] = {"|".join(a.key): a for a in alerts}
        for b in others:
            key = f"{b.source}|{b.name}|{b.host}|{b.since}"
            by_key[key] = b
            since = human_duration(now - b.since)
            state = Cell(b.state)
            if f"state--{b.state}" in self.COMPONENT_CLASSES:
                state.stylize(self.get_component_rich_style(f"state--{b.state}", partial=True))
            rows[key] = (
                self.status_cell(Status(b.severity)),
                state,
                num(since, b.since),
                Cell(headline(b.name, b.summary)),
                Cell(b.source),
            )
        self._cells = cache
        self.shown = by_key
        self.set_rows(rows)

    def under_cursor(self) -> Alert | BoardAlert | None:
        """The alert the cursor is on: fleetdeck's own, or another engine's."""
        keys = self.row_keys
        return self.shown.get(keys[self.cursor_row]) if self.cursor_row < len(keys) else None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cells.clear()  # the state and severity colours come from TCSS
