"""Recorded host output, replayed through the real `ProcSampler` for deterministic screens.

Snapshot tests and the screenshot script need the same picture every run, so they read
texts recorded as a host printed them (tests/data/HOST/) instead of this machine. The
parsers, rates, checks and widgets all run for real on that text; only the clock and the
host are fixed. Everything that talks to a live system is tested elsewhere against one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.pilot import Pilot

from checks.config import Config
from hosts.proc_sampler import DESCRIBE_SCRIPT, PROCESS_SCRIPT, SAMPLE_SCRIPT, ProcSampler
from hosts.shell import CommandResult
from tui.app import FleetdeckApp, Settings, make_app

DATA = Path(__file__).parent / "data"
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the recorded samples' wall clock


class RecordedShell:
    """A `Shell` that answers fleetdeck's three scripts with recorded output, in turn."""

    def __init__(self, host: str) -> None:
        self._host = host
        folder = DATA / host
        self._answers = {
            DESCRIBE_SCRIPT: [(folder / "describe.txt").read_text()],
            SAMPLE_SCRIPT: [p.read_text() for p in sorted(folder.glob("sample-*.txt"))],
            PROCESS_SCRIPT: [p.read_text() for p in sorted(folder.glob("processes-*.txt"))],
        }
        self._calls = {script: 0 for script in self._answers}

    @property
    def samples_taken(self) -> int:
        return self._calls[SAMPLE_SCRIPT]

    @property
    def samples_recorded(self) -> int:
        return len(self._answers[SAMPLE_SCRIPT])

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        script = argv[-1]
        answers = self._answers[script]
        index = min(self._calls[script], len(answers) - 1)
        self._calls[script] += 1
        return CommandResult(tuple(argv), 0, answers[index], "", 0.01)


def recorded_sampler(host: str = "web-01") -> ProcSampler:
    """A sampler that sees the recorded host: one sample a second on the recorded clock; past
    the last recording it repeats it at the same time, which adds nothing to the history."""
    shell = RecordedShell(host)

    def clock() -> float:
        return START + min(shell.samples_taken, shell.samples_recorded - 1)

    return ProcSampler(shell, processes=True, clock=clock)


def recorded_app(host: str = "web-01") -> FleetdeckApp:
    """The console on a recorded host, refreshing only when asked: the same picture each run."""
    # The recording holds no storage commands' output: the Host screen shows the sampled
    # checks only (the storage checks are tested on real filesystems).
    settings = Settings(interval=3600, storage_every=0)
    return make_app(settings, Config(), host, recorded_sampler(host))


async def until_shown(pilot: Pilot[None]) -> None:
    """Wait until both recorded samples are on the screen."""
    for _ in range(200):
        if getattr(pilot.app.screen, "polls", 0) >= 2:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def recorded_fleet_app() -> FleetdeckApp:
    """A fleet of recorded hosts and one that cannot be sampled (its shell is missing)."""
    from checks.watch import HostWatch
    from hosts.shell import LocalShell

    settings, config = Settings(interval=3600, storage_every=0), Config()
    broken = ProcSampler(LocalShell("edge-9", env={"PATH": "/nonexistent"}))
    watches = [
        HostWatch("big-64", recorded_sampler("big-64"), config, settings.interval),
        HostWatch("edge-9", broken, config, settings.interval),
        HostWatch("web-01", recorded_sampler("web-01"), config, settings.interval),
    ]
    tags = {"big-64": ("batch",), "edge-9": ("edge",), "web-01": ("web", "nginx")}
    groups = {"big-64": ("prod",), "edge-9": ("staging",), "web-01": ("prod",)}
    return FleetdeckApp(settings, config, watches, tags, groups)


async def until_fleet_shown(pilot: Pilot[None]) -> None:
    """Wait until every recorded host has both samples and the table has caught up."""
    for _ in range(200):
        watches = getattr(pilot.app.screen, "watches", {})
        if watches and all(w.polls >= 2 or w.error for w in watches.values()):
            break
        await pilot.pause(0.05)
    await pilot.pause(1.2)


NET = DATA / "net"
WIZARD_PARAMS = {"target": "10.0.0.5:8080", "listen": "8080"}
"""The recorded wizard's story: a service that should answer on 8080 listens on 127.0.0.1
only, and a DROP rule (and two REJECTs) on INPUT would stop it anyway."""


class RecordedNetShell:
    """A `Shell` that answers the network wizard's commands with recorded output
    (tests/data/net): the real parsers and checks run on it, only the host is fixed."""

    def __init__(self, host: str = "web-01") -> None:
        self._host = host
        self.ran: list[tuple[str, ...]] = []

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        self.ran.append(tuple(argv))
        files = {
            ("ip", "-j", "-s", "link", "show"): "ip-link.txt",
            ("ip", "-j", "addr", "show"): "ip-addr.txt",
            ("ip", "-j", "route", "show"): "ip-route.txt",
            ("ip", "-j", "-6", "route", "show"): "ip-6-route.txt",
            ("cat", "/etc/resolv.conf"): "resolv-systemd.conf",
            ("iptables-save",): "iptables-save.txt",
            ("ip6tables-save",): "ip6tables-save.txt",
            ("nft", "-j", "-a", "list", "ruleset"): "nft-ruleset.txt",
            ("ss", "-H", "-ltnp"): "ss-ltnup.txt",
        }
        key = tuple(argv)
        if key in files:
            return self._answer(argv, 0, (NET / files[key]).read_text())
        if argv[0] == "python3" and argv[3] == "tcp":
            out = '{"host": "10.0.0.5", "port": 8080, "address": "10.0.0.5", "ok": false, '
            out += '"ms": 3001.2, "error": "timeout"}'
            return self._answer(argv, 0, out)
        if argv[0] == "ping" and argv[-1] == "10.0.0.1":
            return self._answer(argv, 0, "rtt min/avg/max/mdev = 0.311/0.402/0.493/0.091 ms\n")
        if argv[0] == "ping":
            return self._answer(argv, 1, "2 packets transmitted, 0 received, 100% packet loss\n")
        if argv[:3] == ["ip", "neigh", "show"] or key[:3] == ("ip", "neigh", "show"):
            return self._answer(argv, 0, f"{argv[-1]} dev lan1 FAILED\n")
        return self._answer(argv, 1, "", f"{argv[0]}: not recorded")

    @staticmethod
    def _answer(argv: Sequence[str], status: int, out: str, err: str = "") -> CommandResult:
        return CommandResult(tuple(argv), status, out, err, 0.01)


def recorded_wizard_app(read_only: bool = False, audit_log: Path | None = None) -> FleetdeckApp:
    """The console on the recorded host, ready to open the network wizard on recorded
    network state (`open_recorded_wizard`)."""
    settings = Settings(interval=3600, read_only=read_only, audit_log=audit_log, storage_every=0)
    return make_app(settings, Config(), "web-01", recorded_sampler("web-01"))


async def open_recorded_wizard(pilot: Pilot[None], shell: RecordedNetShell | None = None) -> None:
    """Push the Wizard screen on the recorded host and wait until every step has run."""
    from checks.actions import FixHost
    from checks.catalog import WIZARDS
    from tui.wizard_screen import WizardScreen

    app = pilot.app
    assert isinstance(app, FleetdeckApp)

    async def open_host() -> FixHost:
        return FixHost("web-01", shell or RecordedNetShell(), "prod")

    screen = WizardScreen(
        WIZARDS["network"],
        dict(WIZARD_PARAMS),
        "web-01",
        open_host,
        app.gate,
        app.config.thresholds,
    )
    await app.push_screen(screen)
    await until_wizard_done(pilot)


async def until_wizard_done(pilot: Pilot[None]) -> None:
    """Wait until the Wizard screen's run has every step done or skipped."""
    for _ in range(600):
        screen = pilot.app.screen
        run = getattr(screen, "run", None)
        if (
            run is not None
            and not run.running
            and all(r.state.value in ("done", "skipped") for r in run.results)
        ):
            break
        await pilot.pause(0.05)
    await pilot.pause(0.2)
