"""HTTP health and TLS certificates, asked from a namespace host over real SSH: a real web
server (tests/webd.py) in the host's namespace answers 200, 503, slowly, with a redirect,
and over TLS with certificates made by openssl (valid, expiring in 5 days, expired, for
another name, sent without their intermediate). 127.0.0.1 in the settings is the namespace
host's own loopback, reached only through its shell."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.services.http import http_check
from fleetdeck.checks.services.probe_config import (
    HttpEndpoint,
    ProbeSettings,
    SecuritySettings,
    TlsTarget,
)
from fleetdeck.checks.services.probes import probe_findings
from fleetdeck.checks.services.tls import tls_check
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import LocalShell, Shell

from sshd import NetnsHost, SshKeys, ssh_shell
from tlscerts import Authority, Leaf

WEBD = Path(__file__).parent / "webd.py"
HTTP_PORT = 8080
TLS_PORTS = {"valid": 8443, "expiring": 8444, "expired": 8445, "other-name": 8446, "bare": 8447}
NAME = "svc.test"


def context(shell: Shell) -> CheckContext:
    return CheckContext(shell.host, SampleHistory(size=2), Config().thresholds, shell)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def leaves(authority: Authority) -> dict[str, Leaf]:
    san = f"DNS:{NAME},IP:127.0.0.1"
    return {
        "valid": authority.sign("valid", NAME, san=san),
        "expiring": authority.sign("expiring", NAME, san=san, days=(-80, 5)),
        "expired": authority.sign("expired", NAME, san=san, days=(-90, -2)),
        "other-name": authority.sign("other", "other.test", san="DNS:other.test"),
        "bare": authority.sign("bare", NAME, san=san),
    }


def _start_webd(netns: str | None, args: list[str]) -> subprocess.Popen[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    process = subprocess.Popen(
        [*prefix, sys.executable, str(WEBD), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        pytest.fail(f"tests/webd.py did not start: {process.communicate()[1]}")
    return process


@pytest.fixture(scope="module")
def web_host(
    netns_hosts: Callable[[int], list[NetnsHost]], leaves: dict[str, Leaf]
) -> Iterator[NetnsHost]:
    """A namespace host running tests/webd.py on its loopback: plain HTTP and one TLS port
    per certificate story ("bare" serves its leaf without the intermediate)."""
    (host,) = netns_hosts(1)
    tls = [
        f"{TLS_PORTS[story]}:{leaf.cert if story == 'bare' else leaf.chain}:{leaf.key}"
        for story, leaf in leaves.items()
    ]
    process = _start_webd(
        host.netns, ["--http", str(HTTP_PORT), *(arg for t in tls for arg in ("--tls", t))]
    )
    try:
        yield host
    finally:
        process.kill()
        process.wait(timeout=5)


@contextlib.asynccontextmanager
async def shell_on(host: NetnsHost, keys: SshKeys, tmp: Path) -> AsyncIterator[Shell]:
    async with ssh_shell(host, keys, tmp / "known_hosts", host.name) as shell:
        yield shell


def by_target(found: list[Finding]) -> dict[str, Finding]:
    return {finding.target: finding for finding in found}


async def test_health_endpoints_are_graded_from_the_hosts_own_loopback(
    web_host: NetnsHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{HTTP_PORT}"
    settings = ProbeSettings(http=(
        HttpEndpoint(f"{base}/ok", body="ok"),
        HttpEndpoint(f"{base}/fail"),
        HttpEndpoint(f"{base}/slow", warn_ms=500, crit_ms=5000),
        HttpEndpoint(f"{base}/slow", expect=200, warn_ms=100, crit_ms=800),
        HttpEndpoint(f"{base}/moved"),
        HttpEndpoint(f"{base}/ok", body="healthy"),
        HttpEndpoint("http://127.0.0.1:8099/nobody-listens"),
        HttpEndpoint(f"https://127.0.0.1:{TLS_PORTS['valid']}/ok"),
    ))  # fmt: skip
    async with shell_on(web_host, ssh_keys, tmp_path) as shell:
        found = await http_check(settings).run(context(shell))
    assert [f.status for f in found] == [
        Status.OK, Status.CRIT, Status.WARN, Status.CRIT, Status.WARN, Status.CRIT, Status.CRIT,
        Status.CRIT,
    ], found  # fmt: skip
    ok, fail, slow, too_slow, moved, wrong_body, refused, untrusted = found
    assert ok.summary.startswith("200 in ") and ok.summary.endswith(": ok")
    # The 503's body holds an escape sequence: it is shown escaped, never sent to a terminal.
    assert fail.summary.endswith(": database unavailable\\x1b[31m; expected 200"), fail.summary
    assert "slow (over 500 ms)" in slow.summary
    assert "slower than 800 ms" in too_slow.summary
    assert moved.summary == "redirects (302) to http://127.0.0.1:8080/ok; expected 200"
    assert "the body lacks 'healthy'" in wrong_body.summary
    assert refused.summary.startswith("connection failed: "), refused.summary
    # The private CA is not in the host's trust store: a TLS error, not a refusal.
    assert untrusted.summary.startswith("TLS error: "), untrusted.summary


async def test_without_curl_python3_asks_and_without_either_it_is_unknown(
    tmp_path: Path,
) -> None:
    port = _free_port()
    process = _start_webd(None, ["--http", str(port)])
    only_python = tmp_path / "bin"
    only_python.mkdir()
    os.symlink(sys.executable, only_python / "python3")
    url = f"http://127.0.0.1:{port}"
    settings = ProbeSettings(http=(HttpEndpoint(f"{url}/ok"), HttpEndpoint(f"{url}/fail"),
                                   HttpEndpoint(f"{url}/moved")))  # fmt: skip
    try:
        shell = LocalShell("no-curl", env={"PATH": str(only_python)})
        found = await http_check(settings).run(context(shell))
        bare = LocalShell("bare", env={"PATH": str(tmp_path / "empty")})
        (unknown, *_) = await http_check(settings).run(context(bare))
    finally:
        process.kill()
        process.wait(timeout=5)
    assert [f.status for f in found] == [Status.OK, Status.CRIT, Status.WARN], found
    assert "python3" in found[0].evidence[0].source
    assert found[2].summary == "redirects (302) to /ok; expected 200"
    assert unknown.status is Status.UNKNOWN
    assert unknown.summary == "neither curl nor python3 is on the host to ask it"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_certificates_of_endpoints_are_graded_by_days_name_and_chain(
    web_host: NetnsHost, ssh_keys: SshKeys, tmp_path: Path, authority: Authority
) -> None:
    targets = tuple(
        TlsTarget(endpoint=f"127.0.0.1:{port}", name=NAME, ca_file=str(authority.root))
        for port in TLS_PORTS.values()
    )
    async with shell_on(web_host, ssh_keys, tmp_path) as shell:
        found = by_target(await tls_check(ProbeSettings(tls=targets)).run(context(shell)))
    valid, expiring, expired, other, bare = (found[f"127.0.0.1:{p}"] for p in TLS_PORTS.values())
    assert valid.status is Status.OK, valid
    assert valid.summary.startswith("89 days left") or valid.summary.startswith("90 days left")
    assert "CN=svc.test (issuer CN=Test Intermediate CA)" in valid.summary
    assert expiring.status is Status.CRIT and "expires in 5.0 days" in expiring.summary
    assert expired.status is Status.CRIT and "expired 2 days ago" in expired.summary
    assert other.status is Status.CRIT
    assert "is not for svc.test (it covers other.test)" in other.summary
    assert bare.status is Status.CRIT, bare
    assert "chain incomplete: no certificate for issuer CN=Test Intermediate CA" in bare.summary


async def test_https_health_endpoints_get_the_tls_check_and_files_are_read_by_glob(
    web_host: NetnsHost, ssh_keys: SshKeys, tmp_path: Path, leaves: dict[str, Leaf]
) -> None:
    where = leaves["valid"].cert.parent
    settings = ProbeSettings(
        http=(HttpEndpoint(f"https://127.0.0.1:{TLS_PORTS['expiring']}/ok"),),
        tls=(
            TlsTarget(files=(str(leaves["valid"].cert), f"{where}/exp*d.pem")),
            TlsTarget(files=("/nonexistent/*.pem",)),
        ),
    )  # fmt: skip
    async with shell_on(web_host, ssh_keys, tmp_path) as shell:
        found = by_target(await tls_check(settings).run(context(shell)))
    # The glob: expired.pem matches, expiring.pem does not.
    assert f"{where}/expiring.pem" not in found
    assert found[str(leaves["valid"].cert)].status is Status.OK
    assert found[str(leaves["expired"].cert)].status is Status.CRIT
    assert found["/nonexistent/*.pem"].status is Status.UNKNOWN
    # No ca_file for the health URL's automatic check: the host does not trust the private
    # CA, which is said, beside the days that make it CRIT.
    automatic = found[f"127.0.0.1:{TLS_PORTS['expiring']}"]
    assert automatic.status is Status.CRIT and "expires in 5.0 days" in automatic.summary


async def test_one_sweep_runs_every_probe_and_a_healthy_host_has_nothing_to_say(
    web_host: NetnsHost, ssh_keys: SshKeys, tmp_path: Path, authority: Authority
) -> None:
    auth_log = tmp_path / "auth.log"
    auth_log.write_text("")
    settings = ProbeSettings(
        http=(HttpEndpoint(f"http://127.0.0.1:{HTTP_PORT}/ok", body="ok"),),
        tls=(
            TlsTarget(
                endpoint=f"127.0.0.1:{TLS_PORTS['valid']}", name=NAME, ca_file=str(authority.root)
            ),
        ),
        security=SecuritySettings(auth_logs=(str(auth_log),)),
    )
    async with shell_on(web_host, ssh_keys, tmp_path) as shell:
        found = await probe_findings(context(shell), settings)
    checks = {f.check for f in found}
    assert {"http.health", "tls.expiry", "security.ssh_logins", "limits.files",
            "limits.conntrack", "limits.listen"} <= checks, found  # fmt: skip
    mine = [f for f in found if f.check != "limits.fds"]  # the fds are the whole machine's
    assert all(f.status is Status.OK for f in mine), [f for f in mine if f.status is not Status.OK]
