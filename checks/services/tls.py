"""TLS certificates (runbook R07): of endpoints, asked from the host with `openssl s_client`,
and of PEM files on the host (paths or globs), read with `cryptography` here.

For each: days left (WARN under `warn_days`, CRIT under `crit_days`, CRIT when expired),
subject and issuer, the names it covers against the name asked for, and its chain: an
intermediate that has expired, or a chain that does not reach a trusted root (the server
sends no certificate for its leaf's issuer: a missing intermediate). Every `https://` health
endpoint is checked too, with the defaults. openssl is the one tool used for endpoints (the
chain as sent is what matters, and python3's ssl shows it only from 3.13); a host without it
is UNKNOWN saying so.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed, host_time
from fleetdeck.checks.hostcheck import evidence as evidence_of
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.model import CheckContext, Finding, Status, printable
from fleetdeck.checks.services.probe_config import ProbeSettings, TlsTarget, parse_endpoint
from fleetdeck.hosts.certs import Certificate, read_certificates
from fleetdeck.hosts.shell import Shell

DOMAIN = "services"
TLS_ID = "tls.expiry"
HANDSHAKE_TIMEOUT = 10.0
FILE_LIMIT = 1 << 20
_VERIFY = re.compile(r"Verify return code: (\d+) \(([^)]*)\)")
INCOMPLETE = {2, 20, 21}
"""openssl's verify codes for a chain that stops short of a trusted root (verify(1))."""

# Expands the glob on the host (IFS empty: no word splitting, a space in a name stays) and
# prints each regular file it names after a `==> PATH` line, bounded in size.
_READ_FILES = (
    "IFS=; limit=$1; shift; for pattern; do for f in $pattern; do "
    '[ -f "$f" ] || continue; printf "==> %s\\n" "$f"; head -c "$limit" -- "$f"; echo; '
    "done; done"
)


def tls_targets(settings: ProbeSettings) -> list[TlsTarget]:
    """The configured targets, then one per `https://` health endpoint not already named."""
    found = list(settings.tls)
    named = {(t.endpoint, t.name) for t in found}
    for endpoint in settings.http:
        parts = urlsplit(endpoint.url)
        if parts.scheme != "https" or parts.hostname is None:
            continue
        host = parts.hostname
        where = f"[{host}]:{parts.port or 443}" if ":" in host else f"{host}:{parts.port or 443}"
        if (where, host) not in named:
            named.add((where, host))
            found.append(TlsTarget(endpoint=where, name=host))
    return found


def _date(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def grade_chain(
    chain: Sequence[Certificate], target: TlsTarget, now: float, verify: tuple[int, str] | None
) -> tuple[Status, str]:
    """The status of a certificate chain (leaf first) and the sentence that says why."""
    leaf = chain[0]
    days = leaf.days_left(now)
    who = printable(f"{leaf.subject} (issuer {leaf.issuer})", one_line=True)
    problems: list[tuple[Status, str]] = []
    if days < 0:
        problems.append((Status.CRIT, f"expired {-days:.0f} days ago ({_date(leaf.not_after)})"))
    elif days < target.crit_days:
        problems.append((Status.CRIT, f"expires in {days:.1f} days ({_date(leaf.not_after)})"))
    elif days < target.warn_days:
        problems.append((Status.WARN, f"expires in {days:.0f} days ({_date(leaf.not_after)})"))
    if target.name and not leaf.covers(target.name):
        names = printable(", ".join(leaf.names) or "no name", one_line=True)
        problems.append((Status.CRIT, f"is not for {target.name} (it covers {names})"))
    for cert in chain[1:]:
        if cert.days_left(now) < 0:
            subject = printable(cert.subject, one_line=True)
            problems.append(
                (Status.CRIT, f"intermediate {subject} expired {_date(cert.not_after)}")
            )
    if verify is not None and verify[0] != 0:
        code, text = verify
        if code in INCOMPLETE and not leaf.self_signed:
            issuer = printable(chain[-1].issuer, one_line=True)
            problems.append((
                Status.CRIT,
                f"chain incomplete: no certificate for issuer {issuer} (a missing intermediate,"
                " or a CA this host does not trust: give ca_file)",
            ))  # fmt: skip
        elif code != 10:  # an expired certificate is told above, with its date
            problems.append((Status.WARN, f"not trusted: {printable(text, one_line=True)}"))
    if not problems:
        return Status.OK, f"{days:.0f} days left ({_date(leaf.not_after)}): {who}"
    worst = max((s for s, _ in problems), key=lambda s: s.rank)
    return worst, "; ".join(text for _, text in problems) + f": {who}"


async def _endpoint(shell: Shell, target: TlsTarget, now: float) -> Finding:
    host, port = parse_endpoint(target.endpoint)
    connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # stdin is /dev/null, so s_client ends after the handshake (an empty stdin over SSH
    # may never read as closed).
    argv = ["sh", "-c", 'exec openssl s_client "$@" </dev/null', "sh"]
    argv += ["-connect", connect, "-showcerts"]
    argv += ["-noservername"] if _is_address(target.name) else ["-servername", target.name]
    argv += ["-CAfile", target.ca_file] if target.ca_file else []
    result = await shell.run(argv, timeout=HANDSHAKE_TIMEOUT)
    proof = (evidence_of(result),)
    if result.exit_status == 127:
        return Finding(TLS_ID, Status.UNKNOWN, target.endpoint, "openssl is not on the host", proof)
    try:
        chain = read_certificates(result.stdout)
    except ValueError as error:
        return Finding(TLS_ID, Status.UNKNOWN, target.endpoint, f"unreadable: {error}", proof)
    if not chain:
        said = (result.stderr or result.stdout).strip().splitlines()
        why = printable(said[-1] if said else f"exit status {result.exit_status}", one_line=True)
        return Finding(TLS_ID, Status.CRIT, target.endpoint, f"no TLS handshake: {why}", proof)
    match = _VERIFY.search(result.stdout)
    verify = (int(match.group(1)), match.group(2)) if match else None
    status, summary = grade_chain(chain, target, now, verify)
    return Finding(TLS_ID, status, target.endpoint, summary, proof)


async def _files(shell: Shell, target: TlsTarget, now: float) -> list[Finding]:
    argv = ("sh", "-c", _READ_FILES, "sh", str(FILE_LIMIT), *target.files)
    result = await run_command(shell, argv, timeout=HANDSHAKE_TIMEOUT)
    proof = (evidence_of(result),)
    sections = result.exact_stdout.split("==> ")[1:]
    if not sections:
        patterns = printable(", ".join(target.files), one_line=True)
        return [Finding(TLS_ID, Status.UNKNOWN, patterns, "no certificate file matches", proof)]
    found: list[Finding] = []
    for section in sections:
        path, _, text = section.partition("\n")
        try:
            chain = read_certificates(text)
        except ValueError as error:
            found.append(Finding(TLS_ID, Status.UNKNOWN, path, f"unreadable: {error}", proof))
            continue
        if not chain:
            found.append(Finding(TLS_ID, Status.UNKNOWN, path, "no certificate in it", proof))
            continue
        status, summary = grade_chain(chain, target, now, None)
        found.append(Finding(TLS_ID, status, path, summary, proof))
    return found


async def tls_findings(
    ctx: CheckContext, shell: Shell, targets: Sequence[TlsTarget]
) -> list[Finding]:
    """One finding per endpoint and per certificate file, days counted by the host's clock."""
    if not targets:
        return []
    try:
        now = await host_time(shell)
    except StepFailed:  # the host's clock unread: ours; the findings still show the dates
        now = time.time()
    found: list[Finding] = []
    for target in targets:
        if target.endpoint:
            found.append(await _endpoint(shell, target, now))
        else:
            found.extend(await _files(shell, target, now))
    return found


def tls_check(settings: ProbeSettings) -> ShellCheck:
    """The `tls.expiry` check over this host's endpoints, files and https:// health URLs."""

    async def body(ctx: CheckContext, shell: Shell) -> list[Finding]:
        return await tls_findings(ctx, shell, tls_targets(settings))

    return ShellCheck(TLS_ID, "TLS certificates", body, DOMAIN)
