"""Recorded host output, replayed through the real `ProcSampler` for deterministic screens.

Snapshot tests and the screenshot script need the same picture every run, so they read
texts recorded as a host printed them (tests/data/HOST/) instead of this machine. The
parsers, rates, checks and widgets all run for real on that text; only the clock and the
host are fixed. Everything that talks to a live system is tested elsewhere against one.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from textual.pilot import Pilot

from fleetdeck.checks.config import Config
from fleetdeck.hosts.proc_sampler import DESCRIBE_SCRIPT, PROCESS_SCRIPT, SAMPLE_SCRIPT, ProcSampler
from fleetdeck.hosts.shell import CommandResult
from fleetdeck.tui.app import FleetdeckApp, Settings, make_app

DATA = Path(__file__).parent / "data"
START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the recorded samples' wall clock


class RecordedShell:
    """A `Shell` that answers fleetdeck's three scripts with recorded output, in turn, and
    other commands from `commands` (argv joined by NUL: what the host answered); a command
    not recorded fails with 127, as on a host without it (`test -d /run/systemd/system`
    there says: no systemd)."""

    def __init__(self, host: str, commands: Mapping[str, CommandResult] | None = None) -> None:
        self._host = host
        self._commands = dict(commands or {})
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
        if script not in self._answers:
            said = self._commands.get("\0".join(argv))
            if said is None:
                return CommandResult(tuple(argv), 127, "", f"{argv[0]}: not recorded", 0.01)
            return said
        answers = self._answers[script]
        index = min(self._calls[script], len(answers) - 1)
        self._calls[script] += 1
        return CommandResult(tuple(argv), 0, answers[index], "", 0.01)


def recorded_commands(name: str) -> dict[str, CommandResult]:
    """Commands and what the host answered, from tests/data/services/NAME (a JSON object of
    argv joined by NUL -> status, stdout, stderr), as `scripts/record_services.py` wrote it."""
    recorded = json.loads((DATA / "services" / name).read_text())
    return {
        key: CommandResult(tuple(key.split("\0")), r["status"], r["stdout"], r["stderr"], 0.01)
        for key, r in recorded.items()
    }


def systemd_commands() -> dict[str, CommandResult]:
    """What the systemd lab (tests/systemd_host.py) answered to the Services pane's reader
    and the services sweep, with `[services] units = ["fd-healthy", "nginx"]` (recorded 25 s
    after boot: fd-broken and fd-recover failed, fd-flappy restarted 11 times, no nginx)."""
    return recorded_commands("host-commands.json")


SERVICE_WIZARD_UNIT = "fd-recover"
SERVICE_RECOVERY = (
    '[{"unit": "fd-recover", "ports": ["127.0.0.1:22"], "disks": ["/"], '
    '"clean": [{"run": ["rm", "-f", "/var/lib/fd-recover/stale.lock"], '
    '"check": ["test", "!", "-e", "/var/lib/fd-recover/stale.lock"]}]}]'
)
"""The service wizard's story on the systemd lab: fd-recover failed at boot on its stale
lock (tests/systemd_host.py STALE_LOCK); the settings' recovery entry names the port it
needs (the lab's sshd), the mount it uses, and the lock's removal as its clean state."""

TLS_CA = "/tmp/fleetdeck-tls-lab/root.pem"
"""Where `scripts/record_services.py` made the test CA (tests/tlscerts.py) the recorded
endpoints are checked against: the settings' ca_file, part of the recorded argv."""
TLS_SETTINGS = "".join(
    f'[[services.tls]]\nendpoint = "127.0.0.1:{port}"\nname = "svc.test"\nca_file = "{TLS_CA}"\n'
    for port in (8443, 8444, 8447)
)
"""The TLS story (tests/test_services_http_tls.py's certificates, served by tests/webd.py):
8443 valid for 90 days, 8444 expiring in 5 days, 8447 sent without its intermediate."""


def recorded_sampler(
    host: str = "web-01", commands: Mapping[str, CommandResult] | None = None
) -> ProcSampler:
    """A sampler that sees the recorded host: one sample a second on the recorded clock; past
    the last recording it repeats it at the same time, which adds nothing to the history."""
    shell = RecordedShell(host, commands)

    def clock() -> float:
        return START + min(shell.samples_taken, shell.samples_recorded - 1)

    return ProcSampler(shell, processes=True, clock=clock)


def recorded_app(host: str = "web-01", *, systemd: bool = False, tls: bool = False) -> FleetdeckApp:
    """The console on a recorded host, refreshing only when asked: the same picture each run.
    `systemd`: the host also answers as the systemd lab did (`systemd_commands`), with the
    settings the recording was made with; otherwise it has no systemd. `tls`: the settings
    name `TLS_SETTINGS`' endpoints and the host answers the TLS check as the namespace host
    serving them did (tests/data/services/tls-commands.json)."""
    from fleetdeck.checks.config import parse_config

    # The recording holds no storage commands' output: the Host screen shows the sampled
    # checks only (the storage checks are tested on real filesystems).
    settings = Settings(interval=3600, storage_every=0)
    config = Config()
    commands = None
    if systemd:
        text = '[services]\nunits = ["fd-healthy", "nginx"]\n'
        config, commands = parse_config(text, Path("recorded.toml")), systemd_commands()
    elif tls:
        config = parse_config(TLS_SETTINGS, Path("recorded.toml"))
        commands = recorded_commands("tls-commands.json")
    return make_app(settings, config, host, recorded_sampler(host, commands))


async def until_shown(pilot: Pilot[None]) -> None:
    """Wait until both recorded samples are on the screen, and the first run of the domains'
    periodic checks and the first reading of the Services pane (the recorded host has a
    shell: the services domain asks it, and hears "no systemd" unless it was recorded)."""
    from fleetdeck.widgets.services_pane import ServicesPane

    def done() -> bool:
        screen = pilot.app.screen
        if getattr(screen, "polls", 0) < 2:
            return False
        watch = getattr(screen, "host_watch", None)
        swept = watch is None or all(watch.domain_findings.values())
        return swept and all(p.latest is not None for p in screen.query(ServicesPane))

    for _ in range(200):
        if done():
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def recorded_fleet_app() -> FleetdeckApp:
    """A fleet of recorded hosts and one that cannot be sampled (its shell is missing)."""
    from fleetdeck.checks.watch import HostWatch
    from fleetdeck.hosts.shell import LocalShell

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


LOCAL_PINGS = (
    "PING 10.0.0.5 (10.0.0.5) 56(84) bytes of data.\n"
    + "".join(
        f"64 bytes from 10.0.0.5: icmp_seq={n} ttl=64 time=0.0{30 + n % 7} ms\n"
        for n in range(1, 21)
    )
    + "\n--- 10.0.0.5 ping statistics ---\n"
    "20 packets transmitted, 20 received, 0% packet loss, time 3869ms\n"
    "rtt min/avg/max/mdev = 0.030/0.033/0.036/0.002 ms\n"
)
"""N7's 20 pings from web-01 to its own address 10.0.0.5, which no firewall rule drops."""


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
            # Recorded without -d: no kinds, which the story's veths and loopback don't need.
            ("ip", "-j", "-s", "-d", "link", "show"): "ip-link.txt",
            ("ip", "-j", "addr", "show"): "ip-addr.txt",
            ("ip", "-j", "route", "show"): "ip-route.txt",
            ("ip", "-j", "-6", "route", "show"): "ip-6-route.txt",
            ("ip", "-j", "route", "get", "10.0.0.5"): "ip-route-get-local.txt",
            ("cat", "/etc/resolv.conf"): "resolv-systemd.conf",
            ("iptables-save",): "iptables-save.txt",
            ("ip6tables-save",): "ip6tables-save.txt",
            ("iptables-save", "-c"): "iptables-save-counters.txt",
            # recorded without -c: ip6tables-save -c prints the same rules, counters aside
            ("ip6tables-save", "-c"): "ip6tables-save.txt",
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
        if argv[0] == "ping" and argv[-1] == "10.0.0.5":  # itself: ICMP is not dropped
            return self._answer(argv, 0, LOCAL_PINGS)
        if argv[0] == "iperf3":
            return self._answer(argv, 127, "", "sh: 1: iperf3: not found")
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


STORAGE = DATA / "storage"
STORAGE_PARAMS = {
    "mounts": "/srv/data\n/var/lib/postgresql",
    "logs": "/var/log/app",
    "backups": "/srv/backup disk/*.sql.gz",
}
"""The recorded storage story on web-01 (tests/data/storage/README.md): / at 94 % with a
busy vda, /srv/data (on md0, a RAID1 that lost vde1) not mounted so uploads land on /, the
backup disk remounted read-only by hand, a deleted log gunicorn still holds, old and
uncompressed logs, a journal near its cap, Docker to prune, one stale and one corrupt backup."""

_ARCHIVES = ("gz", "tgz", "z", "xz", "txz", "zst", "bz2", "tbz2", "lz4", "lz", "lzma", "zip", "7z")
_NOT_COMPRESSED = " ".join(f"'!' -iname '*.{ext}'" for ext in _ARCHIVES)
_JOURNALS = (
    r"-maxdepth 2 -type f '(' -name '*.journal' -o -name '*.journal~' ')' "
    r"-printf '%b %A@ %C@ %T@ %p\n'"
)
_MACHINE = "8f1e2c4a9b7d4e05a6c3f2b1d0e9c8a7"
_DF = ("df", "-P", "-B1")
_BACKUPS = "/srv/backup disk"
_DIGEST_SCRIPT = '"$@" | sha256sum'
_MOUNTED = {  # mount point -> df -P -B1 answer, for `df -P -B1 PATH`
    "/": "df-root.txt",
    "/var/lib/postgresql": "df-postgresql.txt",
    _BACKUPS: "df-backup-disk.txt",
}
_STORAGE_ANSWERS = (
    # the command as a shell would take it: stdout file, exit status, stderr file
    ("cat /proc/mounts", "proc-mounts.txt", 0, ""),
    ("dmesg", "dmesg.txt", 0, ""),
    ("cat /etc/fstab", "fstab.txt", 0, ""),
    ("cat /proc/mdstat", "mdstat.txt", 0, ""),
    ("smartctl --scan", "smartctl-scan.txt", 0, ""),
    (
        "df -l -P -B1 -x tmpfs -x devtmpfs -x overlay -x squashfs",
        "df-local.txt",
        1,
        "df-local.stderr.txt",
    ),
    ("timeout -s KILL 20 stdbuf -o0 du -H -x -0 -d 2 -B1 /", "du-root.bin", 0, ""),
    (
        r"timeout -s KILL 20 stdbuf -o0 find -H / -xdev -type f -size +1M -printf '%s\t%p\0'",
        "find-large-files.bin",
        0,
        "",
    ),
    (
        r"find /var/log/app -xdev -type f -mmin +10080 -printf '%i %s %b %p\0'",
        "find-old-logs.bin",
        0,
        "",
    ),
    (
        f"find /var/log/app -xdev -type f -mmin +10080 {_NOT_COMPRESSED} '!' -empty -links 1 "
        r"-printf '%i %s %b %p\0'",
        "find-uncompressed-logs.bin",
        0,
        "",
    ),
    ("cat /etc/machine-id", "machine-id.txt", 0, ""),
    ("journalctl --disk-usage", "journalctl-disk-usage.txt", 0, ""),
    (f"find /var/log/journal {_JOURNALS}", "find-journal.txt", 0, ""),
    (f"find /run/log/journal {_JOURNALS}", "", 1, "find-run-journal.stderr.txt"),
    (
        f"find /var/log/journal /var/log/journal/{_MACHINE} -maxdepth 1 -type f "
        r"'(' -name '*@*.journal' -o -name '*.journal~' ')' -printf '%b %p\n'",
        "find-journal-archived.txt",
        0,
        "",
    ),
    ("date +%s", "date.txt", 0, ""),
    ("docker system df --format '{{json .}}'", "docker-system-df.txt", 0, ""),
    (
        "docker images --filter dangling=true --format '{{.Size}}'",
        "docker-dangling-sizes.txt",
        0,
        "",
    ),
    ("docker info --format '{{.DockerRootDir}}'", "docker-root-dir.txt", 0, ""),
    (
        r"find -H '/srv/backup disk' -maxdepth 1 -type f -name '*.sql.gz' -printf '%T@\t%s\t%p\n'",
        "find-backups.txt",
        0,
        "",
    ),
    ("gzip -t '/srv/backup disk/billing-20231114.sql.gz'", "", 1, "gzip-t-billing.txt"),
    ("gzip -t '/srv/backup disk/orders-20231113.sql.gz'", "", 0, ""),
)
_STORAGE_FILES = {
    tuple(shlex.split(command)): (out, status, err)
    for command, out, status, err in _STORAGE_ANSWERS
}


class RecordedStorageShell:
    """A `Shell` that answers the storage wizard's commands with recorded output
    (tests/data/storage): the real parsers and checks run on it, only the host is fixed.

    Most commands are looked up by their exact argv. The `sh -c` scripts are recognised by
    their script and answered as the host would: the fixed ones from their recording, the
    pins from the same recorded text the script reads (/proc/mounts, the /proc fd listing),
    and the cleanup listing's `| sha256sum` with the checksum of the recorded listing. The
    two /proc/diskstats readings alternate, so a re-run step reads a fresh pair. Anything
    else answers exit 1, "not recorded", and is kept in `ran` like every command."""

    def __init__(self, host: str = "web-01") -> None:
        self._host = host
        self.ran: list[tuple[str, ...]] = []
        self._diskstats_reads = 0

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        key = tuple(argv)
        self.ran.append(key)
        return self._answer(key)

    def _answer(self, key: tuple[str, ...]) -> CommandResult:
        from fleetdeck.checks.storage.diskio import READ_ARGV

        if key in _STORAGE_FILES:
            out, status, err = _STORAGE_FILES[key]
            return _result(key, status, _text(out), _text(err))
        if key == READ_ARGV:
            self._diskstats_reads += 1
            reading = 1 if self._diskstats_reads % 2 else 2
            return _result(key, 0, _text(f"diskstats-{reading}.txt"))
        if key[:3] == _DF and len(key) == 4 and key[3].startswith("/"):
            holder = max((m for m in _MOUNTED if _under(key[3], m)), key=len)
            return _result(key, 0, _text(_MOUNTED[holder]))
        if key == ("sh", "-c", SAMPLE_SCRIPT):  # the space step samples the host itself
            samples = sorted((DATA / "web-01").glob("sample-*.txt"))
            return _result(key, 0, samples[-1].read_text())
        if key[:2] == ("sh", "-c") and (len(key) == 3 or key[3] == "sh"):
            answered = self._script(key[2], key[4:])
            if answered is not None:
                return _result(key, 0, answered)
        return _result(key, 1, "", f"{key[0]}: not recorded")

    def _script(self, script: str, args: tuple[str, ...]) -> str | None:
        from fleetdeck.checks.storage.cleanup import OPEN_SCRIPT, SAMPLE_SCRIPT
        from fleetdeck.checks.storage.dockerspace import PIN_ARGV as DOCKER_PIN
        from fleetdeck.checks.storage.expected_mounts import EXISTS_SCRIPT
        from fleetdeck.checks.storage.mounts import PIN_SCRIPT as MOUNT_PIN
        from fleetdeck.checks.storage.mounts import RESOLVE_SCRIPT
        from fleetdeck.checks.storage.wizard import DELETED_SCRIPT
        from fleetdeck.checks.storage.wizard import PIN_SCRIPT as HELD_PIN
        from fleetdeck.hosts.linux.disks import SYSFS_SCRIPT

        if script == SYSFS_SCRIPT and args == ("/sys",):
            return _text("sysfs-block.txt")
        if script == OPEN_SCRIPT and args == ("/var/log/app",):  # nothing old is open
            return _text("open-files-app.bin")
        if script == SAMPLE_SCRIPT and args == ("/var/log/app/worker.log.12", "1048576"):
            return _text("gzip-sample.txt")
        if script == DELETED_SCRIPT and not args:
            return _text("deleted-open.bin")
        if ("sh", "-c", script) == DOCKER_PIN and not args:
            return _text("docker-prune-list.txt")
        if script == RESOLVE_SCRIPT and args == (_BACKUPS, "/dev/vdc"):
            return _text("resolve-backup-disk.txt")
        if script == EXISTS_SCRIPT and args == ("/srv/data",):
            return _text("exists-srv-data.txt")
        if script == _DIGEST_SCRIPT and args:
            listing = self._answer(args)
            if not listing.ok:
                return None
            return hashlib.sha256(listing.stdout.encode()).hexdigest() + "  -\n"
        if script == MOUNT_PIN and len(args) == 1:  # what it prints from /proc/mounts
            for line in _text("proc-mounts.txt").splitlines():
                fields = line.split(" ")
                if fields[1] == args[0]:
                    return f"{fields[0]} {fields[3]}\n"
        if script == HELD_PIN and len(args) == 2:  # readlink of the fd, the start time
            for line in _text("deleted-open.bin").split("\0")[:-1]:
                pid, fd, _size, _file, start, _comm, target = line.split("\t", 6)
                if (pid, fd) == args:
                    return f"{target} start {start}\n"
        return None


def _text(name: str) -> str:
    return (STORAGE / name).read_bytes().decode() if name else ""


def _under(path: str, mountpoint: str) -> bool:
    return mountpoint == "/" or path == mountpoint or path.startswith(mountpoint + "/")


def _result(argv: tuple[str, ...], status: int, out: str, err: str = "") -> CommandResult:
    return CommandResult(argv, status, out, err, 0.01)


def recorded_wizard_app(read_only: bool = False, audit_log: Path | None = None) -> FleetdeckApp:
    """The console on the recorded host, ready to open the network or storage wizard on
    recorded host state (`open_recorded_wizard`)."""
    settings = Settings(interval=3600, read_only=read_only, audit_log=audit_log, storage_every=0)
    return make_app(settings, Config(), "web-01", recorded_sampler("web-01"))


async def open_recorded_wizard(
    pilot: Pilot[None],
    shell: RecordedNetShell | RecordedStorageShell | RecordedShell | None = None,
    domain: str = "network",
) -> None:
    """Push the Wizard screen for `domain` (network, storage or service) on the recorded
    host and wait until every step has run. As `open_wizard` does, the screen gets the
    host's sample history, so the storage wizard's disk.space step grades the recorded
    samples. The service wizard hears what the systemd lab answered
    (tests/data/services/wizard-commands.json) about `SERVICE_WIZARD_UNIT`, with the
    parameters `u` on the Services pane gives it: the unit and the settings' recovery entry."""
    from fleetdeck.checks.actions import FixHost
    from fleetdeck.checks.catalog import WIZARDS
    from fleetdeck.tui.wizard_screen import WizardScreen

    app = pilot.app
    assert isinstance(app, FleetdeckApp)
    wizard = WIZARDS[domain]
    shells: dict[str, Callable[[], RecordedNetShell | RecordedStorageShell | RecordedShell]] = {
        "network": RecordedNetShell,
        "storage": RecordedStorageShell,
        "service": lambda: RecordedShell("web-01", recorded_commands("wizard-commands.json")),
    }
    host_shell = shell or shells[domain]()
    service = {"unit": f"{SERVICE_WIZARD_UNIT}.service", "recovery": SERVICE_RECOVERY}
    params = {"network": WIZARD_PARAMS, "storage": STORAGE_PARAMS, "service": service}[domain]

    async def open_host() -> FixHost:
        return FixHost("web-01", host_shell, "prod")

    screen = WizardScreen(
        wizard,
        wizard.parse_params(params),
        "web-01",
        open_host,
        app.gate,
        app.config.thresholds,
        app.watches[0].history,
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
