"""The security review (runbook R09): failed SSH logins of the last hour with their top
sources and users, bursts of 401 and 403 answers in the access logs the settings name, and
fail2ban's jails with their banned addresses where fail2ban runs.

Failed logins come from the journal when the host keeps one (`journalctl -t sshd`), else
from the auth logs (`auth_logs`, by default /var/log/auth.log and /var/log/secure). A host
with neither is UNKNOWN saying so, never "no failures", unless no SSH server runs there at
all (no `sshd` in the host's network namespace, and the shell did not come in over SSH):
then there are no logins to review, and it says that. Only the last 8 MiB of a log is read.
fail2ban's jails are `fail2ban.py`'s, with the review's one fix, an unban through
fail2ban's own client and the gate; nothing else here changes anything. The database's
connections by client address belong to the database domain, which this domain does not
import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from fleetdeck.checks.hostcheck import ShellCheck, host_time
from fleetdeck.checks.hostcheck import evidence as evidence_of
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status, printable
from fleetdeck.checks.services.fail2ban import fail2ban_findings
from fleetdeck.checks.services.probe_config import AUTH_LOGS, DENIED, FAILED_LOGINS, ProbeSettings
from fleetdeck.checks.settings import Limit
from fleetdeck.hosts.linux.accesslog import parse_access_log
from fleetdeck.hosts.linux.authlog import parse_failed_logins
from fleetdeck.hosts.shell import Shell

DOMAIN = "services"
LOGINS_ID, DENIED_ID = "security.ssh_logins", "security.denied"
WINDOW = 3600.0
TAIL_BYTES = 8 << 20
TOP = 5
_READ_TAILS = (
    'limit=$1; shift; for f; do [ -r "$f" ] || continue; printf "==> %s\\n" "$f"; '
    'tail -c "$limit" -- "$f"; echo; done'
)
_SSHD_HERE = (
    '[ -n "$SSH_CONNECTION" ] && { echo yes; exit 0; }; '
    "me=$(readlink /proc/self/ns/net) || { echo unknown; exit 0; }; seen=no; "
    "for d in /proc/[0-9]*; do "
    '{ IFS= read -r comm < "$d/comm"; } 2>/dev/null && [ "$comm" = sshd ] || continue; '
    'ns=$(readlink "$d/ns/net" 2>/dev/null) || { grep -qs "^State:.*[ZX]" "$d/status" '
    '|| { [ -e "$d" ] && seen=unknown; }; continue; }; '
    '[ "$ns" = "$me" ] && { echo yes; exit 0; }; done; echo "$seen"'
)
"""Whether an SSH server runs in the host's network namespace: yes, no, or unknown (an
sshd whose namespace this user may not read). One that exited meanwhile, or a zombie (which
has no namespaces left to read), is passed over. Each process's name is read with the shell's
own `read`: a `cat` per process, every sweep, cost a console 0.1 s of CPU each time."""
_PRESENT = 'for f; do [ -e "$f" ] && echo "$f"; done; true'
"""Which of the logs named exist, one a line."""


def top(values: Iterable[str], count: int = TOP) -> str:
    """`a (3), b (1)`: the most frequent values, each made printable."""
    return ", ".join(
        f"{printable(value, one_line=True)} ({n})"
        for value, n in Counter(values).most_common(count)
    )


async def _tails(shell: Shell, paths: Sequence[str]) -> tuple[dict[str, str], Evidence]:
    result = await run_command(shell, ("sh", "-c", _READ_TAILS, "sh", str(TAIL_BYTES), *paths), 20)
    found: dict[str, str] = {}
    for section in result.stdout.split("==> ")[1:]:
        path, _, text = section.partition("\n")
        found[path] = text
    return found, Evidence(result.command, f"read: {', '.join(found) or 'none of them'}")


async def login_findings(shell: Shell, settings: ProbeSettings, now: float) -> list[Finding]:
    """Failed SSH logins since an hour ago, by the journal or the auth logs."""
    since = now - WINDOW
    probe = await run_command(shell, ("journalctl", "-q", "--no-pager", "-n", "1"))
    if probe.ok and probe.stdout.strip():
        argv = (
            "journalctl", "-q", "--no-pager", "-o", "short-iso", f"--since=@{since:.0f}",
            "-t", "sshd", "-t", "sshd-session",
        )  # fmt: skip
        result = await run_command(shell, argv, timeout=20)
        text, proof = result.stdout, evidence_of(result, 2000)
        source = "the journal"
    else:
        paths = settings.security.auth_logs or AUTH_LOGS
        tails, proof = await _tails(shell, paths)
        if not tails:
            return await _no_log(shell, paths, settings.security.auth_logs is not None, proof)
        text, source = "\n".join(tails.values()), ", ".join(tails)
    failures = parse_failed_logins(text, since, now)
    status = (settings.security.failed_logins or FAILED_LOGINS).grade(len(failures))
    summary = f"{len(failures)} failed SSH logins in the last hour ({source})"
    if failures:
        summary += (
            f"; sources: {top(f.address for f in failures)}; users: {top(f.user for f in failures)}"
        )
    return [Finding(LOGINS_ID, status, "ssh logins", summary, (proof,))]


async def _no_log(
    shell: Shell, paths: Sequence[str], named: bool, proof: Evidence
) -> list[Finding]:
    """No journal and no auth log to read. UNKNOWN where a log is there but cannot be read,
    or where the settings name one that is missing; quiet, saying why, where no SSH server
    runs, or where none of the usual logs exists (sshd's logins are recorded nowhere here:
    a fact about the host, said in the finding, not output that could not be read)."""
    found = await run_command(shell, ("sh", "-c", f"({_SSHD_HERE}); {_PRESENT}", "sh", *paths))
    sshd, *present = found.stdout.splitlines() or ["unknown"]
    looked = Evidence(found.command, f"an SSH server here: {sshd}; logs there: {present}")
    evidence = (proof, looked)
    if present:
        reason = f"no journal, and {', '.join(present)} cannot be read"
        return [Finding(LOGINS_ID, Status.UNKNOWN, "ssh logins", reason, evidence)]
    if found.ok and sshd == "no":
        said = "no SSH server runs on this host: no logins to review"
        return [Finding(LOGINS_ID, Status.OK, "ssh logins", said, evidence)]
    if named or not found.ok:
        reason = f"no journal, and none of {', '.join(paths)} can be read"
        return [Finding(LOGINS_ID, Status.UNKNOWN, "ssh logins", reason, evidence)]
    said = (
        f"sshd's logins are recorded nowhere here (no journal, no {' or '.join(paths)}): "
        "nothing to review; name its log in [services.security] auth_logs if it has one"
    )
    return [Finding(LOGINS_ID, Status.OK, "ssh logins", said, evidence)]


async def denied_findings(
    shell: Shell, paths: Sequence[str], limit: Limit, now: float
) -> list[Finding]:
    """401 and 403 answers of the last hour in each access log, with their top sources."""
    if not paths:
        return []
    tails, proof = await _tails(shell, paths)
    found: list[Finding] = []
    for path in paths:
        if path not in tails:
            found.append(Finding(DENIED_ID, Status.UNKNOWN, path, "cannot be read", (proof,)))
            continue
        requests = parse_access_log(tails[path], now - WINDOW)
        denied = [r for r in requests if r.status in (401, 403)]
        summary = f"{len(denied)} of {len(requests)} requests answered 401/403 in the last hour"
        if denied:
            summary += f"; sources: {top(r.address for r in denied)}"
        found.append(Finding(DENIED_ID, limit.grade(len(denied)), path, summary, (proof,)))
    return found


async def security_findings(
    ctx: CheckContext, shell: Shell, settings: ProbeSettings
) -> list[Finding]:
    """The whole review on one host, times by the host's clock."""
    now = await host_time(shell)
    found = await login_findings(shell, settings, now)
    limit = settings.security.denied or DENIED
    found += await denied_findings(shell, settings.security.access_logs, limit, now)
    found += await fail2ban_findings(shell)
    return found


def security_check(settings: ProbeSettings) -> ShellCheck:
    """The security review (`security.ssh_logins`, `security.denied`, `security.fail2ban`)."""

    async def body(ctx: CheckContext, shell: Shell) -> list[Finding]:
        return await security_findings(ctx, shell, settings)

    return ShellCheck("security", "Security review", body, DOMAIN)
