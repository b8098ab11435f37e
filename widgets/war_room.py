"""The war-room screen's boards: the open incidents against their targets, the alerts of
every source, and the latest fix attempts from the audit log. They render data handed to
them; the screen reads the state database and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from fleetdeck.checks.audit import AuditRecord
from fleetdeck.checks.incidents.board import BoardAlert
from fleetdeck.checks.incidents.overview import OpenIncident
from fleetdeck.checks.model import Status
from fleetdeck.hosts.units import human_duration
from fleetdeck.widgets.cells import Cell, num
from fleetdeck.widgets.findings_tables import SeverityTable
from fleetdeck.widgets.row_table import Column

OUTCOME_SEVERITY = {
    "verified": Status.OK,
    "failed": Status.CRIT,
    "aborted": Status.CRIT,
    "unverified": Status.WARN,
    "cancelled": Status.WARN,
    "interrupted": Status.WARN,
    "refused": Status.WARN,
    "declined": Status.WARN,
}
"""The colour of each ending of a fix attempt: a failure red, nothing run yellow."""


def _span(seconds: float) -> str:
    """A duration for a wall display: "15m" rather than "15m 0s"."""
    return human_duration(seconds).removesuffix(" 0s").removesuffix(" 0m")


BOARD_CSS = """
{name} > .rowtable--cursor {{ background: transparent; }}
"""
"""A wall board has no cursor: a highlighted row would read as a selection nobody made."""


class IncidentBand(Static):
    """Each open incident on two lines: its severity, number, title and hosts; then its
    status, how long it has been open and where it stands against its acknowledge and
    resolve targets, a missed target in red. None open says so, plainly."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "incident--p1",
        "incident--p2",
        "incident--p3",
        "incident--p4",
        "incident--late",
        "incident--none",
    }
    DEFAULT_CSS = """
    IncidentBand { height: auto; border: heavy $primary-muted; padding: 0 1; }
    IncidentBand.-open { border: heavy $error; }
    IncidentBand.-error { border: heavy $warning; }
    IncidentBand > .incident--p1 { background: $error; color: $text; text-style: bold; }
    IncidentBand > .incident--p2 { background: $warning; color: $background; text-style: bold; }
    IncidentBand > .incident--p3 { background: $primary; color: $text; text-style: bold; }
    IncidentBand > .incident--p4 { background: $secondary; color: $text; text-style: bold; }
    IncidentBand > .incident--late { color: $error; text-style: bold; }
    IncidentBand > .incident--none { color: $success; text-style: bold; }
    """

    def show(self, incidents: Sequence[OpenIncident], error: str | None = None) -> None:
        """The incidents (most severe first), or why the state database cannot be read."""
        self.set_class(bool(incidents), "-open")
        self.set_class(error is not None, "-error")
        self.border_title = f"Open incidents: {len(incidents)}" if error is None else "Incidents"
        if error is not None:
            self.update(Text(f"UNKNOWN: the state database cannot be read: {error}"))
            return
        if not incidents:
            none = self.get_component_rich_style("incident--none", partial=True)
            self.update(Text("No open incident", style=none))
            return
        ordered = sorted(incidents, key=lambda o: (o.incident.severity, o.incident.opened_at))
        self.update(Group(*(line for o in ordered for line in self._lines(o))))

    def _lines(self, item: OpenIncident) -> tuple[Text, Text]:
        incident, target = item.incident, item.target
        late = self.get_component_rich_style("incident--late", partial=True)
        badge = self.get_component_rich_style(
            f"incident--{incident.severity.lower()}", partial=True
        )
        head = Text(f" {incident.severity} ", style=badge)
        head.append(f"  #{incident.id} ")
        head.append_text(Cell(incident.title))
        if incident.hosts:
            head.append("  ·  ")
            head.append_text(Cell(", ".join(incident.hosts)))
        state = Text(f"     {incident.status.value.upper()}  ·  open {_span(item.age)}")
        if incident.owner:
            state.append("  ·  owner ")
            state.append_text(Cell(incident.owner))
        state.append("  ·  ")
        if incident.acknowledged_at is not None:
            took = incident.acknowledged_at - incident.opened_at
            state.append(
                f"acknowledged in {_span(took)} (target {_span(target.acknowledge)})",
                style=late if took > target.acknowledge else "",
            )
        elif item.acknowledge_late:
            state.append(
                f"NOT ACKNOWLEDGED, {_span(item.age - target.acknowledge)} past the "
                f"{_span(target.acknowledge)} target",
                style=late,
            )
        else:
            state.append(f"acknowledge within {_span(target.acknowledge - item.age)}")
        state.append("  ·  ")
        if item.resolve_left >= 0:
            state.append(
                f"resolve within {_span(item.resolve_left)} (target {_span(target.resolve)})"
            )
        else:
            state.append(f"RESOLVE TARGET MISSED by {_span(-item.resolve_left)}", style=late)
        return head, state


class AlertBoard(SeverityTable):
    """Alerts from every source: severity, age, source, host, what fires, its state."""

    can_focus = False
    COMPONENT_CLASSES: ClassVar[set[str]] = SeverityTable.COMPONENT_CLASSES | {"state--stale"}
    DEFAULT_CSS = (
        BOARD_CSS.format(name="AlertBoard")
        + """
    AlertBoard > .state--stale { color: $warning; text-style: italic; }
    """
    )
    COLUMNS = (
        Column("severity", "Sev"),
        Column("age", "Age", "right"),
        Column("source", "Source", max_width=20),
        Column("host", "Host", max_width=24),
        Column("alert", "Alert", max_width=40),
        Column("state", "State"),
        Column("summary", "Summary", max_width=80),
    )

    def show(self, alerts: Sequence[BoardAlert], now: float) -> None:
        rows = {}
        for n, a in enumerate(alerts):
            status = Status(a.severity) if a.severity in Status.__members__ else Status.UNKNOWN
            state = Cell(a.state)
            state.stylize(self.get_component_rich_style(f"state--{a.state}", partial=True))
            rows[f"{n}|{a.source}|{a.host}|{a.name}"] = (
                self.status_cell(status),
                num(_span(now - a.since), a.since),
                Cell(a.source),
                Cell(a.host),
                Cell(a.name),
                state,
                Cell(a.summary),
            )
        self.set_rows(rows)


class ActionBoard(SeverityTable):
    """The latest fix attempts, newest first: how long ago, who, on which host, which fix,
    and how it ended."""

    can_focus = False
    DEFAULT_CSS = BOARD_CSS.format(name="ActionBoard")
    COLUMNS = (
        Column("when", "When", "right"),
        Column("who", "Who", max_width=28),
        Column("host", "Host", max_width=24),
        Column("fix", "Fix", max_width=48),
        Column("outcome", "Outcome"),
        Column("message", "Message", max_width=80),
    )

    def show(self, records: Sequence[AuditRecord], now: float) -> None:
        rows = {}
        for record in records:
            data = record.data
            at = record.time.timestamp()
            outcome = record.outcome
            cell = Cell(outcome)
            severity = OUTCOME_SEVERITY.get(outcome, Status.UNKNOWN).value.lower()
            cell.stylize(self.get_component_rich_style(f"severity--{severity}", partial=True))
            rows[record.id] = (
                num(f"{_span(now - at)} ago", -at),
                Cell(record.operator),
                Cell(str(data.get("host", "?"))),
                Cell(str(data.get("title") or data.get("fix") or "?")),
                cell,
                Cell(str(data.get("message", ""))),
            )
        self.set_rows(rows)
