"""The Wizard, ConfirmFix and Audit screens, driven with Pilot as an operator would.

Recorded network state (tests/data/net) gives the same steps every run for the screen's
behaviour and for read-only mode; the confirmed fix runs for real on a namespace host over
SSH, through the console's own SSH link.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from textual.widgets import Input, OptionList, ProgressBar, Static

from fleetdeck.checks.config import Config
from fleetdeck.hosts.shell import CommandResult
from fleetdeck.tui.app import Settings, make_fleet_app
from fleetdeck.tui.audit_screen import AuditScreen
from fleetdeck.tui.confirm import ConfirmFix
from fleetdeck.tui.wizard_screen import WizardForm, WizardScreen

from conftest import require_root
from recorded import (
    RecordedNetShell,
    open_recorded_wizard,
    recorded_wizard_app,
    until_shown,
    until_wizard_done,
)
from sshd import NetnsLab, SshKeys, write_known_hosts


def _detail(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#detail-text", Static).render())


async def test_steps_show_live_icons_progress_evidence_and_fixes(tmp_path: Path) -> None:
    app = recorded_wizard_app(audit_log=tmp_path / "audit.jsonl")
    async with app.run_test(size=(100, 40)) as pilot:
        await until_shown(pilot)
        await open_recorded_wizard(pilot)
        screen = app.screen
        assert isinstance(screen, WizardScreen) and screen.run is not None
        steps = screen.query_one("#steps", OptionList)
        prompts = [str(steps.get_option_at_index(i).prompt) for i in range(steps.option_count)]
        assert prompts[0] == "✖ Link: carrier and admin state"
        assert prompts[4] == "✖ Firewall rules on the port"
        assert prompts[6] == "✔ Loss, latency and throughput to the target"
        assert prompts[7] == "▲ Listening socket of the service"
        assert prompts[8] == "✔ Interface errors and drops"
        assert screen.query_one(ProgressBar).progress == 9
        await pilot.press("down", "down", "down", "down")
        detail = _detail(app)
        # the rule that decides, in rule order: not every rule that names the port
        assert "DROP by iptables filter/INPUT #2:" in detail
        assert "[1] delete the iptables rule that drops tcp/8080 (disruptive)" in detail
        assert "$ iptables -t filter -D INPUT -p tcp -m tcp --dport 8080 -j DROP" in detail
        assert "iptables filter/INPUT #2: -A INPUT -p tcp -m tcp --dport 8080 -j DROP" in detail

        before = screen.run.results[4]
        await pilot.press("r")  # re-run the selected step
        await until_wizard_done(pilot)
        assert screen.run.results[4] is not before
        assert screen.run.results[4].status == before.status


async def test_read_only_refuses_every_way_to_reach_a_fix(tmp_path: Path) -> None:
    """Keys f and 2, and the palette's "Apply fix": none asks, none runs, each is audited."""
    audit = tmp_path / "audit.jsonl"
    shell = RecordedNetShell()
    app = recorded_wizard_app(read_only=True, audit_log=audit)
    async with app.run_test(size=(100, 40)) as pilot:
        await until_shown(pilot)
        await open_recorded_wizard(pilot, shell)
        assert "[read-only: fixes are refused]" in str(
            app.screen.query_one("#wizard-title", Static).render()
        )
        await pilot.press("down", "down", "down", "down")  # the firewall step: 2 fixes
        asked_before = len(shell.ran)
        await pilot.press("f")
        await pilot.pause(0.3)
        await pilot.press("2")
        await pilot.pause(0.3)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"Apply fix", "enter")
        await pilot.pause(0.5)
        await pilot.press("up", "up", "up", "up")  # the link step: bring spare0 up
        await pilot.press("f")
        await pilot.pause(0.3)
        assert not any(isinstance(s, ConfirmFix) for s in app.screen_stack)
        assert isinstance(app.screen, WizardScreen)
        assert shell.ran[asked_before:] == []  # not even a pin was read
        assert "read-only mode" in _detail(app)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["event"] for r in records] == ["refused"] * 4
    assert [r["fix"] for r in records] == ["net.firewall.delete-rule"] * 3 + ["net.link.up"]
    assert all(r["read_only"] is True and r["host"] == "web-01" for r in records)


async def test_form_checks_the_target_and_escape_cancels(tmp_path: Path) -> None:
    app = recorded_wizard_app(audit_log=tmp_path / "audit.jsonl")
    async with app.run_test(size=(80, 24)) as pilot:
        await until_shown(pilot)
        await pilot.press("w")
        assert isinstance(app.screen, WizardForm)
        await pilot.press(*"api:99999", "enter")
        error = str(app.screen.query_one("#form-error", Static).render())
        assert "--target 'api:99999'" in error and "65535" in error
        assert isinstance(app.screen, WizardForm)
        await pilot.press("escape")
        assert not isinstance(app.screen, (WizardForm, WizardScreen))


async def test_audit_screen_lists_attempts_newest_first(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    app = recorded_wizard_app(read_only=True, audit_log=audit)
    async with app.run_test(size=(100, 30)) as pilot:
        await until_shown(pilot)
        await open_recorded_wizard(pilot)
        await pilot.press("f")  # link step: refused, audited
        await pilot.pause(0.3)
        await pilot.press("a")
        await pilot.pause(0.5)
        assert isinstance(app.screen, AuditScreen)
        assert len(app.screen.records) == 1
        detail = str(app.screen.query_one("#audit-detail", Static).render())
        assert "bring spare0 up on web-01" in detail and "$ ip link set dev spare0 up" in detail
        await pilot.press("escape")
        assert isinstance(app.screen, WizardScreen)


async def test_fix_on_a_prod_host_is_applied_after_the_name_is_typed(
    netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    """Host screen → w → enter → wizard over SSH → f → ConfirmFix: a wrong name is declined,
    the right one brings the link up and the step turns green."""
    require_root("make an interface inside a namespace")
    host = netns_lab.add_host("tuiprod")
    assert host.netns
    try:

        def ns(*argv: str) -> str:
            return subprocess.run(
                ["ip", "netns", "exec", host.netns, *argv],
                check=True,
                capture_output=True,
                text=True,
            ).stdout

        ns("ip", "link", "add", "lnk0", "type", "veth", "peer", "name", "lnk0p")
        ns("ip", "link", "set", "lnk0p", "up")
        ns("ip", "addr", "add", "198.51.100.20/24", "dev", "lnk0")
        inventory = tmp_path / "prod.toml"
        inventory.write_text(
            f'[[host]]\nname = "tuiprod"\naddress = "{host.address}"\nuser = "root"\n'
            f'identity_file = "{ssh_keys.client_key}"\ntier = "prod"\n'
        )
        from fleetdeck.hosts.inventory.load import load_inventory
        from fleetdeck.hosts.ssh import SSHOptions

        loaded = load_inventory([inventory])
        options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known", host))
        audit = tmp_path / "audit.jsonl"
        settings = Settings(interval=1.0, audit_log=audit)
        app = make_fleet_app(settings, Config(), loaded, loaded.hosts, options)
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("w")
            assert isinstance(app.screen, WizardForm)
            await pilot.press("enter")
            await pilot.pause(0.5)
            await until_wizard_done(pilot)
            screen = app.screen
            assert isinstance(screen, WizardScreen) and screen.run is not None
            assert screen.run.results[0].status is not None
            assert screen.run.results[0].status.value == "CRIT"

            await pilot.press("f")
            await pilot.pause(0.5)
            assert isinstance(app.screen, ConfirmFix)
            shown = str(app.screen.query_one("#details Static", Static).render())
            assert "tuiprod (tier: prod)" in shown and "$ ip link set dev lnk0 up" in shown
            await pilot.press(*"tuiprd", "enter")  # a typo
            await pilot.pause(1.0)
            assert isinstance(app.screen, WizardScreen)
            assert '"UP"' not in ns("ip", "-j", "link", "show", "lnk0")

            await pilot.press("f")
            await pilot.pause(0.5)
            assert isinstance(app.screen.query_one("#typed", Input), Input)
            await pilot.press(*"tuiprod", "enter")
            for _ in range(100):
                await pilot.pause(0.1)
                if "last action: verified" in _detail(app):
                    break
            assert "last action: verified" in _detail(app)
            assert "before: CRIT" in _detail(app) and "after:  OK" in _detail(app)
            assert '"UP"' in ns("ip", "-j", "link", "show", "lnk0")
            assert (
                str(screen.query_one("#steps", OptionList).get_option_at_index(0).prompt)[0] == "✔"
            )
        events = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [e["event"] for e in events] == ["declined", "started", "finished"]
        assert "host name typed ('tuiprd') is not 'tuiprod'" in events[0]["message"]
        assert events[2]["outcome"] == "verified" and events[2]["tier"] == "prod"
    finally:
        netns_lab.remove_host(host)


class SlowFixShell(RecordedNetShell):
    """The recorded host, where bringing spare0 up takes 1.5 s (its pin reads as shown)."""

    async def run(self, argv, *, timeout=10.0, stdin=None):  # type: ignore[no-untyped-def]
        if tuple(argv) == ("cat", "/sys/class/net/spare0/ifindex"):
            self.ran.append(tuple(argv))
            return CommandResult(tuple(argv), 0, "9\n", "", 0.01)
        if tuple(argv) == ("ip", "link", "set", "dev", "spare0", "up"):
            self.ran.append(tuple(argv))
            await asyncio.sleep(1.5)
            return CommandResult(tuple(argv), 0, "", "", 1.5)
        return await super().run(argv, timeout=timeout, stdin=stdin)


async def test_keys_pressed_while_a_fix_runs_neither_cancel_nor_repeat_it(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    shell = SlowFixShell()
    app = recorded_wizard_app(audit_log=audit)
    async with app.run_test(size=(100, 40)) as pilot:
        await until_shown(pilot)
        await open_recorded_wizard(pilot, shell)
        await pilot.press("f")
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmFix)
        await pilot.press(*"web-01", "enter")  # the recorded host is prod
        await pilot.pause(0.5)
        await pilot.press("r", "R", "f", "escape")
        await pilot.pause(0.3)
        assert isinstance(app.screen, WizardScreen)  # escape did not leave mid-fix
        assert not any(isinstance(s, ConfirmFix) for s in app.screen_stack)
        for _ in range(300):  # the recorded link never comes up: 10 s of verification
            await pilot.pause(0.1)
            if "last action:" in _detail(app):
                break
        assert "last action: unverified" in _detail(app)
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines()]
    assert events == ["started", "finished"]
    assert shell.ran.count(("ip", "link", "set", "dev", "spare0", "up")) == 1
