"""fail2ban in the security review (runbook R09): each jail's banned count and addresses,
and the one fix the review offers, an unban through fail2ban's own client.

`fail2ban-client status` lists the jails, `status JAIL` counts each one's bans. A host
without fail2ban gives no finding. One where it is installed but its server is not running
is a WARN (it protects nothing), unless systemd says the admin disabled or masked it
(installed, not in use: OK, said); one whose answer cannot be had (permission on its
socket, a timeout, output of another shape) is UNKNOWN with the reason. A jail with bans is
OK: banning is fail2ban doing its job, and a busy jail is no fault of the host.

The fix, one per banned address (at most FIXES_PER_JAIL per jail): `fail2ban-client set
JAIL unbanip ADDRESS`, the owner's command from `checks/owners.py`, so fail2ban drops the
address from its own state and its firewall rule together (a rule deleted by hand would
leave it counted as banned). It is pinned on the address still being in the jail's banned
list and verified by that list no longer holding it (`unban_verifier`).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence

from fleetdeck.checks.actions import Verifier
from fleetdeck.checks.hostcheck import evidence as evidence_of
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.hostcheck import why
from fleetdeck.checks.model import Finding, Fix, Pin, PinMatch, Risk, Status, printable
from fleetdeck.checks.owners import FAIL2BAN
from fleetdeck.hosts.shell import CommandResult, CommandTimeout, OutputLost, Shell

FAIL2BAN_ID = "security.fail2ban"
UNBAN_ID = "fail2ban.unban"
SHOWN = 5
"""Banned addresses named in a jail's summary."""
FIXES_PER_JAIL = 10
"""Unbans offered per jail: a jail with hundreds of bans is not a list to click through."""
NOT_RUNNING = ("Failed to access socket path", "Is fail2ban running?")
"""What fail2ban-client says when no server listens on its socket."""
OFF_ON_PURPOSE = ("disabled", "masked")
"""`systemctl is-enabled` for a fail2ban the admin turned off: installed, not in use."""
_JAIL_LIST = re.compile(r"Jail list:[ \t]*(.*)$", re.M)
_BANNED = re.compile(r"Currently banned:\s*(\d+)", re.M)
_BANNED_LIST = re.compile(r"Banned IP list:[ \t]*(.*)$", re.M)
_JAIL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:+-]*$")
"""A jail name fleetdeck puts into a command (fail2ban's own names: sshd, nginx-http-auth)."""


def parse_jails(text: str) -> list[str] | None:
    """The jail names of `fail2ban-client status`; None when it has no jail list at all."""
    match = _JAIL_LIST.search(text)
    if match is None:
        return None
    return [jail.strip() for jail in match.group(1).split(",") if jail.strip()]


def parse_jail(text: str) -> tuple[int, list[str]] | None:
    """(currently banned, the banned addresses) of `fail2ban-client status JAIL`; None when
    the count is missing."""
    count = _BANNED.search(text)
    if count is None:
        return None
    listed = _BANNED_LIST.search(text)
    return int(count.group(1)), (listed.group(1).split() if listed else [])


def banned_argv(jail: str) -> tuple[str, ...]:
    """The jail's banned addresses, one a line (the client turns the separator `\\n` into
    a newline), which a pin reads line by line."""
    return ("fail2ban-client", "get", jail, "banip", "\\n")


def offerable(jail: str, addresses: Sequence[str]) -> list[str]:
    """The banned addresses whose unban can be put in a command as they were read: those of
    a jail named as fail2ban names jails, that are an address or a network, nothing a shell
    or the client would read as something else."""
    if not _JAIL_NAME.match(jail):
        return []
    return [address for address in addresses if _is_address(address)]


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def unban(jail: str, address: str) -> Fix:
    """Unban one address from one jail through fail2ban's own client."""
    command = tuple(shlex.split(FAIL2BAN.unblock.format(jail=jail, address=address)))
    return Fix(
        id=UNBAN_ID,
        title=f"Unban {address} from jail {jail}",
        risk=Risk.DISRUPTIVE,
        commands=(command,),
        target=f"{address} in jail {jail}",
        pin=Pin(f"{address} banned in jail {jail}", banned_argv(jail), address, PinMatch.LINE),
        verify=FAIL2BAN_ID,
        impact=f"lets {address} try again: fail2ban lifts its ban and the firewall rule of "
        f"jail {jail}, so {address} reaches what the jail guards and may try to log in again; "
        "the jail bans it again only after its maxretry failures anew",
        settle=5.0,
    )


def unban_verifier(shell: Shell, fix: Fix) -> Verifier:
    """The gate's verification of an unban: the jail's banned list, read again, no longer
    holds the address (the fix's pin, read once more, no longer holding)."""
    jail, address = fix.pin.argv[2], fix.pin.value

    async def verify() -> Finding:
        result = await run_command(shell, fix.pin.argv)
        proof = (evidence_of(result),)
        if not result.ok:
            said = f"jail {jail}'s banned list cannot be read: {why(result)}"
            return Finding(FAIL2BAN_ID, Status.UNKNOWN, fix.target, printable(said), proof)
        if fix.pin.holds(result.stdout):
            said = f"{address} is still banned in jail {jail}"
            return Finding(FAIL2BAN_ID, Status.WARN, fix.target, said, proof)
        said = f"{address} is no longer banned in jail {jail}"
        return Finding(FAIL2BAN_ID, Status.OK, fix.target, said, proof)

    return verify


async def _unanswered(shell: Shell, status: CommandResult) -> Finding:
    """`fail2ban-client status` failed: its server is not running (WARN, unless systemd says
    the service is disabled or masked: installed and not in use, OK), or why is not known
    (UNKNOWN, with the client's own words)."""
    said = printable(why(status), one_line=True)
    proof = (evidence_of(status),)
    if not any(words in status.stdout + status.stderr for words in NOT_RUNNING):
        summary = f"fail2ban is installed but its state cannot be read: {said}"
        return Finding(FAIL2BAN_ID, Status.UNKNOWN, "fail2ban", summary, proof)
    enabled = await run_command(shell, ("systemctl", "is-enabled", "fail2ban.service"))
    state = enabled.stdout.strip()
    if state in OFF_ON_PURPOSE:
        summary = f"fail2ban is installed but {state} here (systemctl is-enabled): not in use"
        return Finding(FAIL2BAN_ID, Status.OK, "fail2ban", summary, (*proof, evidence_of(enabled)))
    summary = (
        "fail2ban is installed but its server is not running: it bans nobody "
        f"(systemctl start fail2ban); the client said: {said}"
    )
    return Finding(FAIL2BAN_ID, Status.WARN, "fail2ban", summary, proof)


async def _jail(shell: Shell, jail: str) -> Finding:
    result = await run_command(shell, ("fail2ban-client", "status", jail))
    name = printable(jail, one_line=True)
    read = parse_jail(result.stdout) if result.ok else None
    if read is None:
        said = f"status cannot be read: {printable(why(result), one_line=True)}"
        if result.ok:
            said = "status cannot be read: no `Currently banned` count in its answer"
        return Finding(FAIL2BAN_ID, Status.UNKNOWN, f"jail {name}", said, (evidence_of(result),))
    count, addresses = read
    summary = f"{count} banned"
    if addresses:
        shown = printable(", ".join(addresses[:SHOWN]), one_line=True)
        by_hand = FAIL2BAN.unblock.format(jail=name, address="ADDRESS")
        summary += f" ({shown}{', ...' if len(addresses) > SHOWN else ''}); to unban: {by_hand}"
    offered = offerable(jail, addresses)
    if len(offered) > FIXES_PER_JAIL:
        summary += f"; an unban is offered for the first {FIXES_PER_JAIL} only"
    fixes = tuple(unban(jail, a) for a in offered[:FIXES_PER_JAIL])
    return Finding(FAIL2BAN_ID, Status.OK, f"jail {name}", summary, (evidence_of(result),), fixes)


async def fail2ban_findings(shell: Shell) -> list[Finding]:
    """Each jail's banned count and addresses with their unbans; nothing when fail2ban is
    not installed."""
    try:
        status = await run_command(shell, ("fail2ban-client", "status"))
        if status.exit_status == 127:
            return []
        if not status.ok:
            return [await _unanswered(shell, status)]
        jails = parse_jails(status.stdout)
        if jails is None:
            said = "fail2ban-client status gave no jail list: its answer is not understood"
            return [Finding(FAIL2BAN_ID, Status.UNKNOWN, "fail2ban", said, (evidence_of(status),))]
        if not jails:
            said = "fail2ban runs with no jail enabled: it bans nobody"
            return [Finding(FAIL2BAN_ID, Status.OK, "fail2ban", said, (evidence_of(status),))]
        return [await _jail(shell, jail) for jail in jails]
    except (CommandTimeout, OutputLost) as error:
        said = f"fail2ban-client did not answer: {error.reason}"
        return [Finding(FAIL2BAN_ID, Status.UNKNOWN, "fail2ban", printable(said, one_line=True))]
