"""HTTP health endpoints (runbook R03), asked from the host itself over its shell, so that
`http://127.0.0.1:8080/health` is the host's own loopback.

Tools, in this order: curl (on nearly every host; `-w` gives the status, the time and the
redirect), then python3 with the stdlib probe in `http_probe.py`; a host with neither is
UNKNOWN saying so. Redirects are not followed: a 3xx where another status was expected is
told as a redirect, with where it leads. A TLS failure is told apart from a refused or
timed-out connection. Grading: no answer in time, a 5xx, a status other than the expected,
a body without the expected text, or a time over `crit_ms` is CRIT; over `warn_ms` WARN.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetdeck.checks.hostcheck import ShellCheck
from fleetdeck.checks.hostcheck import run as run_command
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Status, printable
from fleetdeck.checks.services.probe_config import HttpEndpoint, ProbeSettings
from fleetdeck.hosts.shell import CommandResult, Shell

DOMAIN = "services"
HTTP_ID = "http.health"
BODY_LIMIT = 1 << 20
"""curl stops reading a body past this; a health answer is a few bytes."""
EXCERPT = 120
PARALLEL = 4
"""Endpoints asked at once over the host's one connection: sshd allows 10 sessions on a
connection by default (MaxSessions), shared with the other checks and the sampler."""
MARKER = "\n@@fleetdeck-http@@ "
CURL_FORMAT = f"{MARKER}%{{http_code}} %{{time_total}} %{{redirect_url}}"
PROBE_SOURCE = (Path(__file__).parent / "http_probe.py").read_text()
CURL_TLS = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91}
CURL_CONNECT = {7, 52, 55, 56}
"""curl's exit statuses for TLS failures and refused or dropped connections (libcurl-errors)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got: a status, or the kind of failure (timeout, tls, connect,
    resolve, other) and its message."""

    status: int | None
    seconds: float
    location: str = ""
    body: str = ""
    kind: str = ""
    error: str = ""
    tool: str = "curl"


def request_seconds(endpoint: HttpEndpoint) -> float:
    """How long a request may take: past crit_ms it is CRIT anyway, so a little more."""
    return min(endpoint.crit_ms / 1000 + 2, 60.0)


def read_curl(result: CommandResult) -> Answer:
    """curl's output (the body, then the `-w` line) and exit status as an Answer."""
    body, marked, tail = result.stdout.rpartition(MARKER)
    fields = tail.split(" ", 2) if marked else []
    code = result.exit_status
    seconds = float(fields[1]) if len(fields) > 1 and _is_number(fields[1]) else 0.0
    if code != 0:
        said = result.stderr.strip().splitlines()
        error = said[-1].removeprefix("curl: ") if said else f"curl exit status {code}"
        kind = (
            "timeout" if code == 28 else "tls" if code in CURL_TLS else
            "connect" if code in CURL_CONNECT else "resolve" if code == 6 else "other"
        )  # fmt: skip
        return Answer(None, seconds, kind=kind, error=error)
    if len(fields) < 2 or not fields[0].isdecimal():
        return Answer(None, seconds, kind="other", error="curl printed no status")
    location = fields[2].strip() if len(fields) > 2 else ""
    return Answer(int(fields[0]), seconds, location, body)


def read_probe(result: CommandResult) -> Answer:
    """The python3 probe's JSON line as an Answer."""
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
        return Answer(
            data["status"], float(data["seconds"]), data["location"], data["body"],
            data["kind"], data["error"], tool="python3",
        )  # fmt: skip
    except (IndexError, ValueError, KeyError, TypeError):
        said = (result.stderr or result.stdout).strip().splitlines()
        return Answer(
            None, 0.0, kind="other", error=said[-1] if said else "no output", tool="python3"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def ask(shell: Shell, endpoint: HttpEndpoint) -> tuple[Answer | None, list[Evidence]]:
    """Ask the endpoint from the host: curl, else python3; None when it has neither."""
    seconds = request_seconds(endpoint)
    curl = (
        "curl", "-sS", "-o", "-", "--max-time", f"{seconds:g}", "--max-filesize",
        str(BODY_LIMIT), "-H", "User-Agent: fleetdeck-probe", "-w", CURL_FORMAT,
        "--", endpoint.url,
    )  # fmt: skip
    result = await run_command(shell, curl, timeout=seconds + 5)
    if result.exit_status != 127:
        return read_curl(result), [_evidence(result)]
    probe = ("python3", "-c", PROBE_SOURCE, endpoint.url, f"{seconds:g}")
    fallback = await run_command(shell, probe, timeout=seconds + 5)
    if fallback.exit_status == 127:
        return None, [_evidence(result), _evidence(fallback)]
    return read_probe(fallback), [_evidence(fallback)]


def _evidence(result: CommandResult) -> Evidence:
    """The command, shown without the probe's source, and what it said (bounded)."""
    argv = [a if a != PROBE_SOURCE else "<checks/services/http_probe.py>" for a in result.argv]
    text = (result.stdout[:2000] + "\n" + result.stderr[:1000]).strip()
    return Evidence(" ".join(argv), f"exit status {result.exit_status}\n{text}")


def grade(endpoint: HttpEndpoint, answer: Answer) -> tuple[Status, str]:
    """The status of one answer and the sentence that says why."""
    ms = answer.seconds * 1000
    if answer.status is None:
        what = {
            "timeout": f"no answer within {request_seconds(endpoint):g} s",
            "tls": f"TLS error: {answer.error}",
            "connect": f"connection failed: {answer.error}",
            "resolve": f"name not resolved: {answer.error}",
        }.get(answer.kind, f"request failed: {answer.error}")
        return Status.CRIT, printable(what, one_line=True)
    excerpt = printable(answer.body.strip()[:EXCERPT], one_line=True)
    said = f"{answer.status} in {ms:.0f} ms" + (f": {excerpt}" if excerpt else "")
    if answer.status != endpoint.expect:
        if 300 <= answer.status < 400:
            where = printable(answer.location, one_line=True) or "no Location"
            return (
                Status.WARN,
                f"redirects ({answer.status}) to {where}; expected {endpoint.expect}",
            )
        return Status.CRIT, f"{said}; expected {endpoint.expect}"
    if endpoint.body and endpoint.body not in answer.body:
        return Status.CRIT, f"{said}; the body lacks {printable(endpoint.body, one_line=True)!r}"
    if ms >= endpoint.crit_ms:
        return Status.CRIT, f"{said}; slower than {endpoint.crit_ms:g} ms"
    if ms >= endpoint.warn_ms:
        return Status.WARN, f"{said}; slow (over {endpoint.warn_ms:g} ms)"
    return Status.OK, said


async def http_findings(
    ctx: CheckContext, shell: Shell, endpoints: Sequence[HttpEndpoint]
) -> list[Finding]:
    """One finding per endpoint, targeted at its URL, in the settings' order. PARALLEL are
    asked at once: one after the other, 20 endpoints that all time out (a partition) would
    outlast the sweep's timeout and hide every CRIT behind one UNKNOWN."""
    room = asyncio.Semaphore(PARALLEL)

    async def one(endpoint: HttpEndpoint) -> Finding:
        async with room:
            answer, evidence = await ask(shell, endpoint)
        if answer is None:
            reason = "neither curl nor python3 is on the host to ask it"
            return Finding(HTTP_ID, Status.UNKNOWN, endpoint.url, reason, tuple(evidence))
        status, summary = grade(endpoint, answer)
        return Finding(HTTP_ID, status, endpoint.url, summary, tuple(evidence))

    return list(await asyncio.gather(*(one(endpoint) for endpoint in endpoints)))


def http_check(settings: ProbeSettings) -> ShellCheck:
    """The `http.health` check over this host's endpoints."""

    async def body(ctx: CheckContext, shell: Shell) -> list[Finding]:
        return await http_findings(ctx, shell, settings.http)

    return ShellCheck(HTTP_ID, "HTTP health endpoints", body, DOMAIN)
