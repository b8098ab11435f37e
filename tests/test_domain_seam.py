"""The Domain seam holds: a domain registered in `checks.catalog.DOMAINS` alone, with no
other file touched, has its periodic checks run on the Host screen (findings, alerts) and by
`fleetdeck check` (table, JSON, exit status), gets its `--no-NAME` switch, and reaches the
host through the real local shell `HostAccess` hands out.

The test domain reads a file through the host's shell: "fine" in it is OK, anything else
CRIT, and a file that cannot be read UNKNOWN, so each outcome is seen for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.pilot import Pilot

from fleetdeck.checks import catalog
from fleetdeck.checks.config import Config, parse_config
from fleetdeck.checks.domain import Domain, DomainRun, Periodic
from fleetdeck.checks.model import Finding, Status
from fleetdeck.tui.app import Settings, make_app
from fleetdeck.tui.cli import main
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.widgets import AlertsTable, FindingsTable


def _probe_domain(path: Path, every: float = 0.2) -> Domain:
    async def probe(run: DomainRun) -> list[Finding]:
        assert run.ctx.shell is not None  # it declared that it needs the shell
        result = await run.ctx.shell.run(["cat", str(path)], timeout=5)
        if result.exit_status != 0:
            said = f"cannot read {path}: {result.stderr.strip()}"
            return [Finding("probe.file", Status.UNKNOWN, str(path), said)]
        text = result.stdout.strip()
        status = Status.OK if text == "fine" else Status.CRIT
        return [Finding("probe.file", status, str(path), f"the file says {text!r}")]

    return Domain(
        "probe",
        "Probe",
        periodic=Periodic(probe, every, frozenset({"shell"})),
        switch="leave out the probe (a test domain)",
    )


@pytest.fixture
def probe_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registered test domain, by the one list and nothing else."""
    path = tmp_path / "probe.txt"
    monkeypatch.setattr(catalog, "DOMAINS", (*catalog.DOMAINS, _probe_domain(path)))
    return path


def _check(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, object]]:
    code = main(["check", "--json", "--no-storage", "--interval", "0.1", *extra])
    return code, json.loads(capsys.readouterr().out)


def _probe_findings(doc: dict[str, object]) -> list[dict[str, str]]:
    (host,) = doc["hosts"]  # type: ignore[misc]
    return [f for f in host["findings"] if f["check"] == "probe.file"]


def test_fleetdeck_check_runs_a_registered_domain_and_grades_it(
    probe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_file.write_text("fine\n")
    code, doc = _check(capsys)
    (healthy,) = _probe_findings(doc)
    assert healthy["status"] == "OK" and healthy["target"] == str(probe_file)

    probe_file.write_text("on fire\n")
    code, doc = _check(capsys)
    (broken,) = _probe_findings(doc)
    assert broken["status"] == "CRIT" and "on fire" in broken["summary"]
    assert code == 2

    probe_file.unlink()
    code, doc = _check(capsys)
    (unread,) = _probe_findings(doc)
    assert unread["status"] == "UNKNOWN" and "cannot read" in unread["summary"]


def test_the_domain_gets_its_switch_and_the_switch_leaves_it_out(
    probe_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe_file.write_text("on fire\n")
    _, doc = _check(capsys, "--no-probe")
    assert _probe_findings(doc) == []
    _, doc = _check(capsys)
    assert [f["status"] for f in _probe_findings(doc)] == ["CRIT"]


async def _until(pilot: Pilot[None], condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    waited = 0.0
    while not condition():
        assert waited < timeout, "the screen did not get there in time"
        await pilot.pause(0.05)
        waited += 0.05


async def test_the_host_screen_runs_a_registered_domain_on_its_cadence(probe_file: Path) -> None:
    probe_file.write_text("fine\n")
    app = make_app(Settings(interval=0.3, storage_every=0), Config(alert_for=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        watch = screen.host_watch

        def probe() -> list[Finding]:
            return watch.domain_findings.get("probe", [])

        await _until(pilot, lambda: [f.status for f in probe()] == [Status.OK])
        assert not any(a.check == "probe.file" for a in watch.alerts.alerts())

        probe_file.write_text("on fire\n")  # the next run, on the domain's own cadence
        await _until(pilot, lambda: [f.status for f in probe()] == [Status.CRIT])
        await _until(pilot, lambda: any(a.check == "probe.file" for a in watch.alerts.alerts()))
        await _until(
            pilot,
            lambda: f"probe.file|{probe_file}" in screen.query_one(FindingsTable).row_keys,
        )
        await _until(pilot, lambda: screen.query_one(AlertsTable).row_count > 0)
    # Nobody refreshes them once the screen is gone: they must not keep alerts firing.
    assert watch.domain_findings == {}


def test_every_registered_settings_table_is_read_by_the_settings_file() -> None:
    """The two halves of a registration agree: each domain's settings table is one
    `checks/config.py` reads, and each table read belongs to a registered domain."""
    from fleetdeck.checks.config import DOMAIN_TABLES

    declared = {d.settings for d in catalog.DOMAINS if d.settings is not None}
    assert declared == set(DOMAIN_TABLES)
    assert {t.domain for t in DOMAIN_TABLES} <= {d.name for d in catalog.DOMAINS}
    config = parse_config(
        "[thresholds.database]\nconnections = {warn = 50, crit = 60}\n", Path("x")
    )
    assert config.database.connections.warn == 50
    assert set(config.domains) == {t.domain for t in DOMAIN_TABLES}


def test_every_declared_inventory_key_is_one_the_inventory_reads() -> None:
    """A domain's `inventory_keys` name keys of an inventory host's entry that the TOML
    reader knows (hosts/ sits below checks/ and cannot read the declarations itself)."""
    from fleetdeck.hosts.inventory.toml_file import HOST_KEYS

    declared = {key for d in catalog.DOMAINS for key in d.inventory_keys}
    assert declared == {"postgres", "docker"}
    assert declared <= HOST_KEYS


LIGHT = """
import sys
from fleetdeck.checks import catalog
from fleetdeck.tui.cli import build_parser

build_parser(["check", "--help"])
clients = {"asyncssh", "docker", "psycopg", "aiohttp"}
assert not clients & set(sys.modules), sorted(clients & set(sys.modules))
for name in catalog.WIZARDS:
    assert catalog.WIZARDS[name].domain == name, name
assert {"asyncssh", "psycopg", "fleetdeck.hosts.docker.link"} <= set(sys.modules)
"""


def test_the_declarations_import_no_client_library_until_a_wizard_is_built() -> None:
    """The Host screen's `compose` reads the registered domains before the first frame, and
    every start builds the command line: neither imports asyncssh, the Docker SDK, psycopg
    or aiohttp. Building the wizards by name does (each `WizardRef` builds the wizard its
    name says), so the check above is not vacuous; the containers wizard loads the Docker
    link, which imports the SDK only when it dials (`hosts.docker.dial`). In a fresh
    interpreter: this one has them all loaded by the other tests."""
    done = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


SWEEP_PARAMS = """
import sys
from pathlib import Path
from fleetdeck.checks import catalog
from fleetdeck.checks.config import load_config

path = Path(sys.argv[1])
path.write_text('[services]\\nunits = ["nginx.service"]\\n')
services = next(d for d in catalog.DOMAINS if d.name == "services")
swept = catalog.domain_params(services, load_config(path, required=True), "web-01", [])
assert swept["units"] == "nginx.service\\n", swept
assert "fleetdeck.checks.network.wizard" not in sys.modules, "the service wizard was built"
assert services.wizard is not None
declared = services.wizard.params()
assert catalog.WIZARDS["service"].params == declared  # built, and the same parameters
assert "fleetdeck.checks.network.wizard" in sys.modules
"""


def test_the_sweeps_settings_are_checked_without_building_the_service_wizard(
    tmp_path: Path,
) -> None:
    """The services sweep checks the `[services]` parameters for its host each run; the
    service wizard's declaration names its parameters, so that does not build the wizard
    (nor the network wizard whose steps it borrows), and they are the built wizard's."""
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_PARAMS, str(tmp_path / "settings.toml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
