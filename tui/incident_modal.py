"""OpenIncident: the small modal the Host screen asks an incident's title and severity with.

Prefilled from the alert under the cursor (its headline; CRIT as P2, anything else P3), so
at 3 a.m. Enter is enough; the operator changes either first if the alert undersells it.
Answers (title, severity), or None when cancelled. Keys only: Tab between the fields,
Enter opens, Escape cancels.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static

from fleetdeck.checks.incidents.config import SEVERITIES

PRIORITY_OF = {"CRIT": "P2"}
"""An alert's severity as an incident's first guess; anything else is P3 (runbook I1: P1
is for whole-service outages, a decision the operator makes, not an alert)."""


def priority_of(severity: str) -> str:
    return PRIORITY_OF.get(severity, "P3")


class OpenIncident(ModalScreen[tuple[str, str] | None]):
    """Ask the title and severity of a new incident."""

    DEFAULT_CSS = """
    OpenIncident {
        align: center middle;
    }
    OpenIncident #dialog {
        width: 90%;
        max-width: 80;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    OpenIncident #hint {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, host: str, title: str, severity: str) -> None:
        super().__init__()
        self.host = host
        self.title_given = title
        self.severity = severity if severity in SEVERITIES else "P3"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Open an incident on {self.host}", markup=False)
            yield Input(self.title_given, placeholder="title", id="title")
            yield Select(
                [(s, s) for s in SEVERITIES], value=self.severity, allow_blank=False, id="severity"
            )
            yield Static("Enter opens it, Tab moves, Escape cancels", id="hint")

    def on_mount(self) -> None:
        # The start of a long title says what it is about: show it, not its tail.
        self.query_one("#title", Input).cursor_position = 0

    @on(Input.Submitted)
    def _submit(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        if not title:
            self.notify("an incident needs a title", severity="warning")
            return
        self.dismiss((title, str(self.query_one("#severity", Select).value)))

    def action_cancel(self) -> None:
        self.dismiss(None)
