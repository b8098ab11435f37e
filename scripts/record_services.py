"""Record what real hosts answer to the service wizard and the TLS check, for the snapshot
tests and the README's screenshots (tests/recorded.py replays them):

- `wizard-commands.json`: every command the service wizard ran on the systemd lab
  (tests/systemd_host.py: a Debian root booted with systemd-nspawn, reached over SSH) once
  its boot settled with fd-recover failed on its stale lock, with the recovery entry
  `recorded.SERVICE_RECOVERY`.
- `tls-commands.json`: every command the TLS check ran with `recorded.TLS_SETTINGS` on a
  namespace host (tests/sshd.py) serving tests/tlscerts.py's certificates with
  tests/webd.py: one valid, one expiring in 5 days, one sent without its intermediate.

Needs root, debootstrap and systemd-nspawn (./scripts/test installs them); it makes its own
namespace lab and removes it, and touches nothing of this machine's systemd.

    sudo .venv/bin/python scripts/record_services.py [wizard] [tls]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fleetdeck.checks.catalog import WIZARDS  # noqa: E402
from fleetdeck.checks.config import Config, parse_config  # noqa: E402
from fleetdeck.checks.model import CheckContext  # noqa: E402
from fleetdeck.checks.services.config import ServicesConfig  # noqa: E402
from fleetdeck.checks.services.tls import tls_check  # noqa: E402
from fleetdeck.checks.wizards import WizardRun  # noqa: E402
from fleetdeck.hosts.metrics import SampleHistory  # noqa: E402
from fleetdeck.hosts.shell import CommandResult, Shell  # noqa: E402

from recorded import (  # noqa: E402
    DATA,
    SERVICE_RECOVERY,
    SERVICE_WIZARD_UNIT,
    TLS_CA,
    TLS_SETTINGS,
)
from sshd import NetnsLab, SshKeys, ssh_shell  # noqa: E402
from systemd_host import SystemdHost  # noqa: E402
from tlscerts import Authority  # noqa: E402

SETTLE_TIMEOUT = 120.0
"""From the lab's sshd answering to its boot done (`systemctl is-system-running --wait`)."""
FAILED_FOR = 20.0
"""Seconds the unit has been down when the wizard looks, as when someone is paged for it."""


class RecordingShell:
    """A `Shell` that passes each command to `shell` and keeps its first answer, keyed as
    tests/recorded.py looks them up (argv joined by NUL)."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell
        self.answers: dict[str, dict[str, object]] = {}

    @property
    def host(self) -> str:
        return self._shell.host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        result = await self._shell.run(argv, timeout=timeout, stdin=stdin)
        answer = {"status": result.exit_status, "stdout": result.stdout, "stderr": result.stderr}
        self.answers.setdefault("\0".join(argv), answer)
        return result


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    return CheckContext(
        shell.host, SampleHistory(size=2), Config().thresholds, shell, None, params or {}
    )


async def record_wizard(lab: NetnsLab, keys: SshKeys, work: Path) -> dict[str, object]:
    host = SystemdHost(lab, keys, work / "sysd")
    try:
        async with ssh_shell(host, keys, work / "known_hosts_sysd", "sysd") as shell:  # type: ignore[arg-type]
            argv = ("systemctl", "is-system-running", "--wait")
            await shell.run(argv, timeout=SETTLE_TIMEOUT)
            unit = f"{SERVICE_WIZARD_UNIT}.service"
            state = await shell.run(("systemctl", "is-failed", unit))
            if state.stdout.strip() != "failed":
                raise SystemExit(f"{unit} is {state.stdout.strip()!r} on the lab, not failed")
            await asyncio.sleep(FAILED_FOR)
            recording = RecordingShell(shell)
            wizard = WIZARDS["service"]
            params = wizard.parse_params({"unit": unit, "recovery": SERVICE_RECOVERY})
            await WizardRun(wizard, context(recording, params)).run()
            return dict(recording.answers)
    finally:
        host.close()


async def record_tls(lab: NetnsLab, keys: SshKeys, work: Path) -> dict[str, object]:
    authority_dir = Path(TLS_CA).parent
    shutil.rmtree(authority_dir, ignore_errors=True)
    authority = Authority(authority_dir)
    assert str(authority.root) == TLS_CA
    san = "DNS:svc.test,IP:127.0.0.1"
    valid = authority.sign("valid", "svc.test", san=san)
    expiring = authority.sign("expiring", "svc.test", san=san, days=(-80, 5))
    bare = authority.sign("bare", "svc.test", san=san)
    served = {8443: valid.chain, 8444: expiring.chain, 8447: bare.cert}
    keys_of = {8443: valid.key, 8444: expiring.key, 8447: bare.key}
    web = lab.add_host()
    tls = [f"{port}:{chain}:{keys_of[port]}" for port, chain in served.items()]
    command = ["ip", "netns", "exec", str(web.netns), sys.executable, str(ROOT / "tests/webd.py")]
    command += ["--http", "8080", *(arg for served_tls in tls for arg in ("--tls", served_tls))]
    webd = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    try:
        assert webd.stdout is not None
        if (await webd.stdout.readline()).strip() != b"ready":
            raise SystemExit("tests/webd.py did not start")
        async with ssh_shell(web, keys, work / "known_hosts_web", web.name) as shell:
            recording = RecordingShell(shell)
            config = parse_config(TLS_SETTINGS, Path("recorded.toml"))
            services = config.domains["services"]
            assert isinstance(services, ServicesConfig)
            await tls_check(services.probes.for_host(web.name)).run(context(recording))
            return dict(recording.answers)
    finally:
        webd.kill()
        await webd.wait()
        shutil.rmtree(authority_dir, ignore_errors=True)


async def record(what: Sequence[str], work: Path) -> None:
    keys = SshKeys.create(work / "keys")
    with NetnsLab(work / "lab", keys) as lab:
        for name, recorder in (("wizard", record_wizard), ("tls", record_tls)):
            if name in what:
                answers = await recorder(lab, keys, work)
                path = DATA / "services" / f"{name}-commands.json"
                path.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
                print(f"{path.relative_to(ROOT)}: {len(answers)} commands")


def main() -> None:
    what = sys.argv[1:] or ["wizard", "tls"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fd-record-") as work:
        asyncio.run(record(what, Path(work)))
    print(f"recorded in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
