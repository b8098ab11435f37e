"""`fleetdeck wizard DOMAIN` and `fleetdeck audit`: the headless faces of the wizards and the
audit log. No Textual here.

The wizard prints its steps, then asks `Apply <title> on <host>? [y/N]` for each fix offered.
Prompts and confirmations go to stderr, so `--json` output on stdout stays one document.
When stdin is not a terminal the answers are read a line at a time; a missing answer is no.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import re
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TextIO

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import (
    AuditLog,
    AuditReading,
    default_audit_path,
    parse_time,
    read_audit,
)
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Fix, Status, aligned
from fleetdeck.checks.wizards import StepResult, StepState, WizardRun, step_icon, to_json
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.tui.terminal import Printable

EVIDENCE_LINES = 12
OK_LINES = 4


async def _read_line(stdin: TextIO) -> str:
    """One line from stdin on a daemon thread: Ctrl-C at the prompt must not wait for it
    (asyncio's own executor threads are joined at exit)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def read() -> None:
        try:
            line = stdin.readline()
        except (OSError, ValueError):
            line = ""

        def give() -> None:
            if not answer.done():
                answer.set_result(line)

        with contextlib.suppress(RuntimeError):  # the console stopped waiting
            loop.call_soon_threadsafe(give)

    threading.Thread(target=read, name="fleetdeck-answer", daemon=True).start()
    return await answer


class Answers:
    """Reads the operator's answers: a prompt on a terminal, one line each from a pipe."""

    def __init__(self, stdin: TextIO, out: Printable) -> None:
        self._stdin = stdin
        self._out = out
        self._eof = False

    async def ask(self, prompt: str) -> str:
        self._out.write(prompt)
        self._out.flush()
        if self._eof:
            self._out.write("\n(no answer: no)\n")
            return ""
        line = await _read_line(self._stdin)
        if not line:
            self._eof = True
            self._out.write("\n(no answer: no)\n")
            return ""
        if not self._stdin.isatty():
            self._out.write(line if line.endswith("\n") else line + "\n")
        return line.strip()

    async def confirm(self, request: ConfirmRequest) -> Decision:
        self._out.write("\n" + "\n".join(request.summary_lines()) + "\n")
        answer = await self.ask(f"{request.question} [y/N] ")
        if answer.lower() not in ("y", "yes"):
            return Decision(False)
        if not request.needs_typed_name:
            return Decision(True)
        why = "destructive fix" if request.fix.risk.value == "destructive" else "production host"
        typed = await self.ask(f"{why}: type the host name ({request.host.name}) to confirm: ")
        return Decision(True, typed)


def _wizard_options(wizard: argparse.ArgumentParser) -> None:
    """The domain argument and every wizard's parameters, from the catalog."""
    from fleetdeck.checks.catalog import WIZARDS

    wizard.add_argument("domain", choices=sorted(WIZARDS), help="which wizard")
    seen: set[str] = set()
    for domain, each in sorted(WIZARDS.items()):
        for param in each.params:
            if param.name not in seen:
                seen.add(param.name)
                wizard.add_argument(
                    f"--{param.name.replace('_', '-')}",
                    dest=param.name,
                    metavar=param.name.upper(),
                    action="append" if param.many else "store",
                    help=f"{domain}: {param.help}" + (" (repeat for more)" if param.many else ""),
                )


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    fleet_options: Callable[[argparse.ArgumentParser], None],
    wizards: bool = True,
) -> None:
    """The `wizard` and `audit` commands. `wizards=False` leaves out the wizard's domains
    and options, which build every wizard (importing asyncssh, the docker SDK, psycopg:
    half a second), for a command line that does not run a wizard."""
    wizard = commands.add_parser(
        "wizard",
        help="run a guided troubleshooting wizard; fixes only after you confirm",
        description="Run a wizard's steps on one host (this machine, or --host from -i), print "
        "the evidence, and offer each fix with a y/N prompt (answers are read line by line "
        "when stdin is not a terminal; no answer means no). Exit status is the worst step "
        "left at the end: 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN.",
    )
    fleet_options(wizard)
    if not wizards:
        wizard.add_argument("domain", help="which wizard")
    else:
        _wizard_options(wizard)
    wizard.add_argument("--json", action="store_true", help="print the result as JSON")
    tier_option(wizard, defaults=False)
    wizard.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="offer no fix: the gate refuses every one (and audits the refusal)",
    )
    audit_option(wizard, defaults=False)
    audit = commands.add_parser(
        "audit",
        help="print the audit log of fix attempts",
        description="Print every fix attempt in the audit log, oldest first.",
    )
    audit.add_argument(
        "--since",
        type=since_time,
        metavar="WHEN",
        help="only attempts since WHEN: an ISO time (2026-11-23T10:00Z) or an age (30m, 2h, 7d)",
    )
    audit.add_argument("--json", action="store_true", help="print JSON lines")
    audit_option(audit, defaults=False)


def tier_option(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    from fleetdeck.hosts.inventory.records import TIERS

    parser.add_argument(
        "--tier",
        choices=TIERS,
        default=None if defaults else argparse.SUPPRESS,
        help="this machine's environment tier (inventory hosts carry their own); on prod "
        "every fix needs the host name typed",
    )


def audit_option(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    parser.add_argument(
        "--audit-log",
        type=Path,
        default=None if defaults else argparse.SUPPRESS,
        metavar="FILE",
        help=f"the audit log (default {default_audit_path()})",
    )


def since_time(text: str) -> dt.datetime:
    match = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    try:
        return parse_time(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time or an age: {text!r} (try 2h or 2026-11-23T10:00Z)"
        ) from None


# -- audit -----------------------------------------------------------------------------------


def run_audit(args: argparse.Namespace) -> int:
    path = (getattr(args, "audit_log", None) or default_audit_path()).expanduser()
    if not path.exists():
        print(f"fleetdeck: no audit log at {path}: nothing has been attempted yet")
        return 0
    try:
        reading = read_audit(path, args.since)
    except OSError as error:
        print(f"fleetdeck: cannot read the audit log {path}: {error.strerror}", file=sys.stderr)
        return 2
    for warning in reading.warnings():
        print(f"fleetdeck: warning: {path}: {warning}", file=sys.stderr)
    if args.json:
        for record in reading.records:
            print(json.dumps({**record.data, "outcome": record.outcome}))
        return 0
    print(format_audit(reading))
    return 0


def format_audit(reading: AuditReading) -> str:
    rows = [("TIME (UTC)", "HOST", "OUTCOME", "FIX", "TARGET", "OPERATOR")]
    details: list[list[str]] = [[]]
    for record in reading.records:
        d = record.data
        who = record.operator
        rows.append(
            (
                record.time.strftime("%Y-%m-%d %H:%M:%S"),
                str(d.get("host", "?")),
                record.outcome,
                str(d.get("fix", "?")),
                str(d.get("target", "?")),
                who,
            )
        )
        more = [f"$ {c}" for c in d.get("commands", [])]
        if record.interrupted:
            more.append("no result recorded: fleetdeck stopped while the fix ran")
        elif d.get("message"):
            more.append(str(d["message"]))
        details.append(more)
    if len(rows) == 1:
        return "no fix attempts recorded"
    out = []
    for line, more in zip(aligned(rows), details, strict=True):
        out += [line, *(f"    {text}" for text in more)]
    return "\n".join(out)


# -- wizard ----------------------------------------------------------------------------------


def run_wizard(args: argparse.Namespace, config: Config) -> int:
    from fleetdeck.checks.catalog import WIZARDS

    wizard = WIZARDS[args.domain]
    try:
        params = wizard.parse_params({p.name: _given(args, p.name) for p in wizard.params})
    except ValueError as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return 3
    try:
        return asyncio.run(_wizard(args, config, params))
    except KeyboardInterrupt:
        # The gate has audited an attempt it was in the middle of as cancelled.
        print("\nfleetdeck: interrupted", file=sys.stderr)
        return 3


def _given(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return "\n".join(value) if isinstance(value, list) else value


async def _wizard(args: argparse.Namespace, config: Config, given: dict[str, str]) -> int:
    from fleetdeck.checks.catalog import WIZARDS, configured_params, equip_host

    async with AsyncExitStack() as stack:
        access = await _open_host(args, stack)
        if isinstance(access, int):
            return access
        stack.push_async_callback(access.close)  # before the SSH connection it forwards over
        name, shell = access.name, await access.fix_host()
        try:  # the command line wins over the settings file, parameter by parameter
            wizard = WIZARDS[args.domain]
            params = {**configured_params(wizard, config, name, access.labels), **given}
            host = equip_host(args.domain, shell, access, config, params)
        except ValueError as error:
            print(f"fleetdeck: {error}", file=sys.stderr)
            return 3
        close = getattr(host.database, "close", None)  # a link the wizard opened
        if close is not None:
            stack.push_async_callback(close)
        ctx = CheckContext(
            name,
            SampleHistory(size=2),
            config.thresholds,
            host.shell,
            host.tier,
            params,
            host.database,
            host.docker,
        )
        run = WizardRun(WIZARDS[args.domain], ctx)
        out = Printable(sys.stdout)
        if not args.json:
            shown = "; ".join(f"{k} {', '.join(v.splitlines())}" for k, v in params.items())
            out.write(f"{run.wizard.domain} wizard on {name}" + (f" ({shown})" if shown else ""))
            out.write("\n")

        def show(index: int, result: StepResult) -> None:
            if not args.json and _final(result):
                _print_step(out, result)

        run.listeners.append(show)
        await run.run()
        run.listeners.remove(show)  # re-runs after fixes are summed up at the end instead
        answers = Answers(sys.stdin, Printable(sys.stderr))
        gate = ActionGate(
            audit=AuditLog(getattr(args, "audit_log", None)),
            confirm=answers.confirm,
            read_only=getattr(args, "read_only", False),
        )
        actions = await _offer_fixes(run, gate, host, Printable(sys.stderr))
        if args.json:
            doc = to_json(run)
            doc["actions"] = [_action_json(a) for a in actions]
            print(json.dumps(doc, indent=2))
        elif any(a.runs for a in actions):
            out.write("\nafter the fixes:\n")
            for result in run.results:
                _print_step(out, result, brief=True)
        return run.exit_code


async def _open_host(args: argparse.Namespace, stack: AsyncExitStack) -> HostAccess | int:
    """The host to work on: this machine, or one host of the inventory over SSH."""
    if not args.inventory:
        if args.host:
            print("fleetdeck: --host needs an inventory (-i FILE)", file=sys.stderr)
            return 3
        return HostAccess.local(socket.gethostname(), getattr(args, "tier", None))
    from fleetdeck.hosts.inventory.load import load_inventory
    from fleetdeck.hosts.inventory.records import InventoryError
    from fleetdeck.hosts.ssh import ConnectError, SSHOptions, connect_host

    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as error:
        for problem in error.problems:
            print(f"fleetdeck: {problem}", file=sys.stderr)
        return 3
    hosts = inventory.select(args.host, args.tag)
    if len(hosts) != 1:
        names = ", ".join(h.name for h in hosts[:8]) or "none"
        wanted = f"host {args.host!r}" if args.host else "one host"
        print(
            f"fleetdeck: the wizard runs on one host; pick {wanted} with --host "
            f"(the inventory gives: {names})",
            file=sys.stderr,
        )
        return 3
    spec = hosts[0]
    options = SSHOptions(known_hosts=args.known_hosts, accept_new=args.accept_new)
    try:
        connection = await connect_host(spec, options, inventory)
    except ConnectError as error:
        print(f"fleetdeck: {error}", file=sys.stderr)
        return Status.CRIT.exit_code
    stack.callback(connection.close)
    return HostAccess.over_ssh(spec, connection)


async def _offer_fixes(
    run: WizardRun, gate: ActionGate, host: FixHost, out: Printable
) -> list[ActionResult]:
    """Offer every fix of every failing step once, in step order, until none is new."""
    offered: set[tuple[str, str]] = set()  # a restart's pin changes with every restart
    results: list[ActionResult] = []
    while True:
        pending = [
            (index, finding, fix)
            for index, result in enumerate(run.results)
            for finding, fix in result.fixes
            if (fix.id, fix.target) not in offered
        ]
        if not pending:
            return results
        index, finding, fix = pending[0]
        offered.add((fix.id, fix.target))
        result = await gate.apply(host, finding, fix, run.verifier(index, finding))
        results.append(result)
        out.write(_describe(result, finding, fix) + "\n")
        if result.outcome in (Outcome.VERIFIED, Outcome.UNVERIFIED, Outcome.FAILED):
            await run.run(index + 1)  # what came after may depend on what just changed


def _describe(result: ActionResult, before: Finding, fix: Fix) -> str:
    lines = [f"{result.outcome.value}: {fix.title} on {result.host}: {result.message}"]
    for run in result.runs:
        lines.append(f"  $ {run.command}  -> {run.describe()} in {run.duration:.2f} s")
        lines += [f"    {line}" for line in run.output.strip().splitlines()[-EVIDENCE_LINES:]]
    if result.outcome not in (Outcome.REFUSED, Outcome.DECLINED, Outcome.ABORTED):
        lines.append(f"  before: {before.status.value} {before.summary}")
        after = result.after
        lines.append(
            f"  after:  {after.status.value} {after.summary}" if after else "  after:  (no finding)"
        )
    return "\n".join(lines)


def _action_json(result: ActionResult) -> dict[str, object]:
    return {
        "fix": result.fix.id,
        "title": result.fix.title,
        "target": result.fix.target,
        "outcome": result.outcome.value,
        "message": result.message,
        "attempt": result.attempt,
        "before": result.before.status.value,
        "before_summary": result.before.summary,
        "after": result.after.status.value if result.after else None,
        "after_summary": result.after.summary if result.after else None,
        "runs": [run.to_json() for run in result.runs],
    }


def _final(result: StepResult) -> bool:
    return result.state in (StepState.DONE, StepState.SKIPPED)


def _print_step(out: Printable, result: StepResult, brief: bool = False) -> None:
    icon = step_icon(result)
    if result.state is StepState.SKIPPED:
        out.write(f" {icon} {result.step.title}: skipped: {result.reason}\n")
        out.flush()
        return
    status = result.status.value if result.status else "-"
    out.write(f" {icon} {result.step.title}  [{status}, {result.duration:.1f} s]\n")
    ok_shown = 0
    for finding in sorted(result.findings, key=lambda f: -f.status.rank):
        if finding.status is Status.OK:
            ok_shown += 1
            if ok_shown > OK_LINES:  # eight held-open files of 0 B say nothing each
                continue
        out.write(f"     {finding.status.value:<7} {finding.target}: {finding.summary}\n")
        if brief or finding.status is Status.OK:
            continue
        for evidence in finding.evidence:
            lines = evidence.output.splitlines()
            out.write(f"       $ {evidence.source}\n")
            for line in lines[:EVIDENCE_LINES]:
                out.write(f"         {line}\n")
            if len(lines) > EVIDENCE_LINES:
                out.write(f"         … {len(lines) - EVIDENCE_LINES} more lines\n")
        for fix in finding.fixes:
            out.write(f"       fix offered: {fix.title} [{fix.risk.value}]\n")
    if ok_shown > OK_LINES:
        out.write(f"     … and {ok_shown - OK_LINES} more OK (--json lists them all)\n")
    if not brief and result.status not in (None, Status.OK):
        out.write(f"     → {result.step.guidance}\n")
    out.flush()
