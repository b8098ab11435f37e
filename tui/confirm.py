"""ConfirmFix: the modal the action gate shows before any fix runs.

It shows what the CLI prompt shows (host, tier, finding, the exact commands, risk, impact,
pinned target) and answers with a `Decision`. A destructive fix, or any fix on a production
host, needs the host name typed into the box; everything else is `y` or `n`.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from fleetdeck.checks.actions import ConfirmRequest, Decision
from fleetdeck.checks.model import Risk


class ConfirmFix(ModalScreen[Decision]):
    """Ask before a fix runs; `n` or escape is always no."""

    DEFAULT_CSS = """
    ConfirmFix {
        align: center middle;
    }
    ConfirmFix #dialog {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    ConfirmFix.-destructive #dialog {
        border: thick $error;
    }
    ConfirmFix #question {
        text-style: bold;
        margin-bottom: 1;
    }
    ConfirmFix #details {
        height: auto;
        max-height: 14;
    }
    ConfirmFix #hint {
        color: $text-muted;
        margin-top: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "yes", "Apply"),
        Binding("n", "no", "Cancel"),
        Binding("escape", "no", "Cancel"),
    ]

    def __init__(self, request: ConfirmRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(id="dialog"):
            yield Static(Text(request.question), id="question")
            with VerticalScroll(id="details"):
                yield Static(Text("\n".join(request.summary_lines())))
            if request.needs_typed_name:
                why = (
                    "destructive fix" if request.fix.risk is Risk.DESTRUCTIVE else "production host"
                )
                yield Input(placeholder=f"{why}: type {request.host.name} to confirm", id="typed")
                hint = "type the host name and press enter to apply · escape cancels"
            else:
                hint = "y applies · n or escape cancels"
            yield Static(hint, id="hint")

    def on_mount(self) -> None:
        self.set_class(self.request.fix.risk is Risk.DESTRUCTIVE, "-destructive")
        self.query_one("#dialog").border_title = f"Confirm fix on {self.request.host.name}"
        if self.request.needs_typed_name:
            self.query_one("#typed", Input).focus()

    @on(Input.Submitted, "#typed")
    def _typed(self, event: Input.Submitted) -> None:
        # The gate compares the name; a wrong one is declined and audited there.
        self.dismiss(Decision(True, event.value))

    def action_yes(self) -> None:
        if self.request.needs_typed_name:
            self.query_one("#typed", Input).focus()
            self.notify("Type the host name to confirm this fix.", severity="warning")
            return
        self.dismiss(Decision(True))

    def action_no(self) -> None:
        self.dismiss(Decision(False))
