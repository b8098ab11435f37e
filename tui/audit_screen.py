"""The Audit screen: every fix attempt in the audit log, newest first, with its details."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from fleetdeck.checks.audit import AuditReading, AuditRecord, read_audit
from fleetdeck.checks.model import printable

OUTCOME_STYLES = {
    "verified": "green",
    "unverified": "yellow",
    "failed": "red",
    "aborted": "yellow",
    "interrupted": "red",
    "refused": "dim",
    "declined": "dim",
}


class AuditScreen(Screen[None]):
    """Read-only view of the audit log; `r` reads it again."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.records: list[AuditRecord] = []
        self.note = ""
        """Why lines of the log were skipped: shown above every record's details."""

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Audit log: {self.path}"), id="audit-title")
        yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="audit-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Time (UTC)", "Host", "Outcome", "Fix", "Target", "Operator")
        table.focus()
        self.action_reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    @work(exclusive=True, group="audit", exit_on_error=False)
    async def action_reload(self) -> None:
        if not self.path.exists():
            self._show(AuditReading(), "No audit log yet: no fix has been attempted.")
            return
        try:
            reading = await asyncio.to_thread(read_audit, self.path)
        except OSError as error:
            self._show(AuditReading(), f"Cannot read {self.path}: {error.strerror}")
            return
        self._show(reading, "\n".join(f"Warning: {w}" for w in reading.warnings()))

    def _show(self, reading: AuditReading, note: str) -> None:
        self.records = list(reversed(reading.records))
        table = self.query_one(DataTable)
        table.clear()
        for record in self.records:
            d = record.data
            who = record.operator
            outcome = Text(record.outcome, style=OUTCOME_STYLES.get(record.outcome, ""))
            table.add_row(
                record.time.strftime("%m-%d %H:%M:%S"),
                Text(str(d.get("host", "?"))),
                outcome,
                Text(str(d.get("fix", "?"))),
                Text(str(d.get("target", "?"))),
                Text(who),
            )
        title = f"Audit log: {self.path} ({len(self.records)} attempts)"
        self.query_one("#audit-title", Static).update(Text(title))
        detail = self.query_one("#audit-detail", Static)
        self.note = printable(note)
        detail.update(Text(self.note or ("" if self.records else "No fix attempts recorded.")))
        if self.records:
            self._detail(0)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, row: int) -> None:
        if not 0 <= row < len(self.records):
            return
        record = self.records[row]
        d = record.data
        lines = [f"{d.get('title', d.get('fix', '?'))} on {d.get('host', '?')}"]
        lines += [f"  $ {command}" for command in d.get("commands", [])]
        if record.interrupted:
            lines.append("no result recorded: fleetdeck stopped while the fix ran")
        elif d.get("message"):
            lines.append(str(d["message"]))
        for run in d.get("runs", []):
            lines.append(
                f"  {run.get('command')}: {run.get('result')} in {run.get('duration_s')} s"
            )
        verification = d.get("verification") or {}
        before, after = verification.get("before"), verification.get("after")
        if before:
            lines.append(f"  before: {before.get('status')} {before.get('summary')}")
        if after:
            lines.append(f"  after:  {after.get('status')} {after.get('summary')}")
        for undo in d.get("undo", []):
            lines.append(f"  undo: $ {undo}")
        if self.note:
            lines = [self.note, "", *lines]
        self.query_one("#audit-detail", Static).update(Text(printable("\n".join(lines))))
