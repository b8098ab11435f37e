"""The Wizard screen: a wizard's steps with live status icons, the selected step's evidence,
guidance and fixes, progress while steps run, and re-running any step.

Fixes go through the app's `ActionGate` (confirmation modal, pin, audit, verification);
this screen only asks for them. In read-only mode the gate refuses, and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, ProgressBar, Static

from fleetdeck.checks.actions import ActionGate, FixHost, Outcome
from fleetdeck.checks.config import Thresholds
from fleetdeck.checks.model import CheckContext, Status, printable
from fleetdeck.checks.wizards import StepResult, StepState, Wizard, WizardRun, step_icon
from fleetdeck.hosts.metrics import SampleHistory

EVIDENCE_LINES = 40
STATUS_STYLES = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.CRIT: "bold red",
    Status.UNKNOWN: "magenta",
}
OUTCOME_SEVERITY: dict[Outcome, SeverityLevel] = {
    Outcome.VERIFIED: "information",
    Outcome.REFUSED: "warning",
    Outcome.DECLINED: "information",
    Outcome.ABORTED: "warning",
    Outcome.UNVERIFIED: "warning",
    Outcome.FAILED: "error",
}


class WizardForm(ModalScreen[dict[str, str] | None]):
    """The wizard's parameters (all optional); enter runs it, escape cancels."""

    DEFAULT_CSS = """
    WizardForm { align: center middle; }
    WizardForm #form { width: 90%; max-width: 100; height: auto; max-height: 100%;
                       border: thick $accent;
                       background: $surface; padding: 0 1; }
    WizardForm Input { border: none; height: 1; padding: 0 1; margin-bottom: 1;
                       background: $boost; }
    WizardForm Input:focus { border: none; background: $accent 30%; }
    WizardForm #form-error { color: $error; height: auto; }
    WizardForm .hint { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, wizard: Wizard, host: str, initial: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.wizard = wizard
        self.host = host
        self.initial = dict(initial or {})

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form"):
            yield Label(Text(f"on {self.host}; every field is optional"), classes="hint")
            for param in self.wizard.params:
                yield Label(Text(param.name + (" (several: a, b)" if param.many else "")))
                value = ", ".join(self.initial.get(param.name, "").splitlines())
                yield Input(value, id=f"param-{param.name}", placeholder=param.help)
            yield Static(id="form-error")
            yield Label("enter runs the wizard · tab: next field · escape cancels", classes="hint")

    def on_mount(self) -> None:
        form = self.query_one("#form")
        form.border_title = f"{self.wizard.domain} wizard"
        form.can_focus = False  # it scrolls when a field below the fold takes focus
        self.query(Input).first().focus()

    @on(Input.Submitted)
    def _submit(self) -> None:
        given = {
            p.name: self.query_one(f"#param-{p.name}", Input).value for p in self.wizard.params
        }
        try:
            self.dismiss(self.wizard.parse_params(given))
        except ValueError as error:
            self.query_one("#form-error", Static).update(Text(str(error)))

    def action_cancel(self) -> None:
        self.dismiss(None)


OpenHost = Callable[[], Awaitable[FixHost]]
_CLOSING: set[asyncio.Task[None]] = set()
"""Sessions being closed after their screen went (kept so the tasks are not collected)."""


class WizardScreen(Screen[None]):
    """One wizard run on one host."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "apply_fix(1)", "Apply fix"),
        Binding("r", "rerun_step", "Re-run step"),
        Binding("R", "rerun_all", "Re-run all"),
        Binding("a", "audit", "Audit log"),
        Binding("escape", "back", "Back"),
        *(Binding(str(n), f"apply_fix({n})", f"Apply fix {n}", show=False) for n in range(2, 10)),
    ]

    def __init__(
        self,
        wizard: Wizard,
        params: dict[str, str],
        host: str,
        open_host: OpenHost,
        gate: ActionGate,
        thresholds: Thresholds,
        history: SampleHistory | None = None,
    ) -> None:
        super().__init__()
        # Under 120 columns the steps sit above the detail; from 120, beside it (app.tcss).
        self.HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
        self.wizard = wizard
        self.params = params
        self.host_name = host
        self._open_host = open_host
        self.gate = gate
        self._thresholds = thresholds
        self._history = history if history is not None else SampleHistory(size=2)
        """The host's samples so far: steps that predict (time to full) read them."""
        self.fix_host: FixHost | None = None
        self.run: WizardRun | None = None
        self.error: str | None = None
        self.last_action: str = ""
        self.fixing = False

    def compose(self) -> ComposeResult:
        given = "; ".join(f"{k} {', '.join(v.splitlines())}" for k, v in self.params.items())
        mode = "  [read-only: fixes are refused]" if self.gate.read_only else ""
        title = f"{self.wizard.domain} wizard on {self.host_name}"
        yield Static(Text(title + (f" ({given})" if given else "") + mode), id="wizard-title")
        with Container(id="wizard-body"):
            with Vertical(id="wizard-left"):
                yield OptionList(id="steps")
                yield ProgressBar(total=len(self.wizard.steps), show_eta=False, id="progress")
            with VerticalScroll(id="detail"):
                yield Static(id="detail-text")
        yield Footer()

    def on_mount(self) -> None:
        steps = self.query_one("#steps", OptionList)
        steps.border_title = "Steps"
        steps.add_options(Text(f"· {s.title}") for s in self.wizard.steps)
        steps.highlighted = 0
        steps.focus()
        self.query_one("#detail").border_title = "Step"
        self.start()

    @work(exclusive=True, group="wizard", exit_on_error=False)
    async def start(self) -> None:
        """Reach the host, then run every step."""
        self._show_detail()
        try:
            self.fix_host = await self._open_host()
        except Exception as error:  # the screen says why the host cannot be reached
            self.error = f"cannot reach {self.host_name}: {error}"
            self._show_detail()
            return
        ctx = CheckContext(
            self.host_name,
            self._history,
            self._thresholds,
            self.fix_host.shell,
            self.fix_host.tier,
            self.params,
            self.fix_host.database,
            self.fix_host.docker,
        )
        self.run = WizardRun(self.wizard, ctx)
        self.run.listeners.append(self._step_changed)
        await self.run.run()

    def _step_changed(self, index: int, result: StepResult) -> None:
        steps = self.query_one("#steps", OptionList)
        prompt = Text(f"{step_icon(result)} {result.step.title}")
        if result.status is not None:
            prompt.stylize(STATUS_STYLES[result.status], 0, 1)
        if result.state is StepState.SKIPPED:
            prompt.stylize("dim")
        elif result.state is StepState.RUNNING:
            prompt.append("  running…", style="italic")
        steps.replace_option_prompt_at_index(index, prompt)
        if self.run is not None:
            done = sum(r.state in (StepState.DONE, StepState.SKIPPED) for r in self.run.results)
            self.query_one(ProgressBar).update(progress=done)
        if steps.highlighted == index:
            self._show_detail()

    @on(OptionList.OptionHighlighted, "#steps")
    def _highlighted(self) -> None:
        self._show_detail()

    @property
    def selected(self) -> int:
        return self.query_one("#steps", OptionList).highlighted or 0

    def _show_detail(self) -> None:
        text = Text()
        if self.error:
            text.append(self.error, style="bold red")
        elif self.run is None:
            text.append(f"connecting to {self.host_name}…")
        else:
            text = detail_text(self.run.results[self.selected], self.gate.read_only)
        if self.last_action:
            text.append("\n\nlast action: ", style="bold")
            text.append(printable(self.last_action))
        self.query_one("#detail-text", Static).update(text)

    @property
    def busy(self) -> str | None:
        """Why nothing else may start now: a fix in flight, or steps still running."""
        if self.fixing:
            return "A fix is in progress: wait for its result."
        if self.run is None or self.run.running:
            return "The steps are still running."
        return None

    def action_rerun_step(self) -> None:
        if self._refuse_if_busy():
            return
        self._rerun(self.selected)

    def action_rerun_all(self) -> None:
        if self._refuse_if_busy():
            return
        self._rerun(None)

    def _refuse_if_busy(self) -> bool:
        reason = self.busy
        if reason:
            self.notify(reason, severity="warning")
        return reason is not None

    @work(exclusive=True, group="wizard", exit_on_error=False)
    async def _rerun(self, index: int | None) -> None:
        assert self.run is not None
        await (self.run.run() if index is None else self.run.rerun(index))

    def action_apply_fix(self, number: int) -> None:
        if self._refuse_if_busy() or self.run is None or self.fix_host is None:
            return
        index = self.selected
        fixes = self.run.results[index].fixes
        if not 1 <= number <= len(fixes):
            self.notify("This step offers no such fix.", severity="warning")
            return
        self.fixing = True  # set now, not in the worker: a second key press must see it
        self._apply(index, number - 1)

    # Its own group, never exclusive with anything: a key press must not cancel a fix.
    @work(group="fix", exit_on_error=False)
    async def _apply(self, index: int, which: int) -> None:
        try:
            await self._apply_fix(index, which)
        finally:
            self.fixing = False

    async def _apply_fix(self, index: int, which: int) -> None:
        assert self.run is not None and self.fix_host is not None
        finding, fix = self.run.results[index].fixes[which]
        result = await self.gate.apply(
            self.fix_host, finding, fix, self.run.verifier(index, finding)
        )
        self.last_action = f"{result.outcome.value}: {fix.title}: {result.message}"
        if result.after is not None and result.runs:
            self.last_action += (
                f"\n  before: {result.before.status.value} {result.before.summary}"
                f"\n  after:  {result.after.status.value} {result.after.summary}"
            )
        self.notify(
            printable(result.message),  # host output (stderr) in it: plain, never markup
            title=f"{fix.title}: {result.outcome.value}",
            severity=OUTCOME_SEVERITY[result.outcome],
            markup=False,
        )
        self._show_detail()
        if result.runs:
            await self.run.run(index + 1)  # later steps may depend on what just changed

    def action_audit(self) -> None:
        from fleetdeck.tui.audit_screen import AuditScreen

        self.app.push_screen(AuditScreen(self.gate.audit.path))

    def on_unmount(self) -> None:
        """A database wizard's sessions end with the screen."""
        close = getattr(self.fix_host.database, "close", None) if self.fix_host else None
        if close is not None:
            task = asyncio.get_running_loop().create_task(close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    def action_back(self) -> None:
        if self.fixing:
            self.notify("A fix is in progress: wait for its result.", severity="warning")
            return
        self.app.pop_screen()


def detail_text(result: StepResult, read_only: bool) -> Text:
    """The selected step: state, guidance, findings with evidence, and numbered fixes.
    Host output is plain text, never markup."""
    text = Text()
    text.append(result.step.title, style="bold")
    if result.state is StepState.SKIPPED:
        text.append(f"\nskipped: {result.reason}", style="dim")
        text.append(f"\n\n{result.step.guidance}", style="italic")
        return text
    if result.state is not StepState.DONE:
        text.append(f"\n{result.state.value}…")
        return text
    status = result.status or Status.UNKNOWN
    text.append(f"  {status.value}", style=STATUS_STYLES[status])
    text.append(f"  ({result.duration:.1f} s)\n", style="dim")
    text.append(result.step.guidance + "\n", style="italic")
    ordered = sorted(result.findings, key=lambda f: -f.status.rank)
    for finding in ordered:
        text.append(f"\n{finding.status.value:<7} ", style=STATUS_STYLES[finding.status])
        text.append(printable(f"{finding.target}: {finding.summary}"))
    fixes = result.fixes
    if fixes:
        text.append("\n\nFixes", style="bold")
        text.append(" (read-only: refused)" if read_only else " (press the number; f = 1)")
        for number, (_finding, fix) in enumerate(fixes, start=1):
            text.append(printable(f"\n  [{number}] {fix.title} ({fix.risk.value})"))
            for line in fix.prompt_lines:
                text.append(printable(f"\n      {line}"), style="dim")
    shown: set[tuple[str, str]] = set()
    for finding in ordered:
        if finding.status is Status.OK:
            continue
        for evidence in finding.evidence:
            if (evidence.source, evidence.output) in shown:
                continue  # several findings of a step often share one command's output
            shown.add((evidence.source, evidence.output))
            text.append(printable(f"\n\n$ {evidence.source}"), style="bold")
            lines = evidence.output.splitlines()
            for line in lines[:EVIDENCE_LINES]:
                text.append(printable(f"\n  {line}"))
            if len(lines) > EVIDENCE_LINES:
                text.append(f"\n  … {len(lines) - EVIDENCE_LINES} more lines", style="dim")
    return text
