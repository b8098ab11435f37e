"""The first storage wizard steps on real small filesystems (loop-mounted ext4), and RAID
from /proc/mdstat texts (this kernel has no md)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.storage.wizard import STORAGE_WIZARD
from fleetdeck.checks.wizards import WizardRun
from fleetdeck.hosts.linux.kernlog import escape
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import CommandResult, LocalShell, Shell

from loopfs import MakeLoopFs
from loopfs import loopfs as loopfs
from shells import with_file

MDSTAT = Path(__file__).parent / "data" / "mdstat"
HOST = socket.gethostname()


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    """What a storage step sees: this machine (or a recorded text), with wizard parameters."""
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, params or {})


def wizard_on(shell: Shell) -> WizardRun:
    return WizardRun(STORAGE_WIZARD, context(shell))


def free_bytes(path: Path) -> int:
    usage = shutil.disk_usage(path)
    return usage.free


async def yes_with_name(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def test_deleted_file_held_open_is_truncated_and_frees_what_it_promised(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=48)
    holder = fs.hold_deleted(16 * 1024 * 1024)
    before = free_bytes(fs.mountpoint)
    run = wizard_on(LocalShell(HOST))
    await run.run()
    step = run.index_of("disk.deleted_open")
    ours = [(f, x) for f, x in run.results[step].fixes if str(fs.mountpoint) in f.summary]
    assert len(ours) == 1, run.results[step].findings
    finding, fix = ours[0]
    assert finding.status is Status.WARN and "16.0 MiB" in finding.summary
    assert fix.risk.value == "destructive" and fix.commands[0][:3] == ("truncate", "-s", "0")

    audit = tmp_path / "audit.jsonl"
    gate = ActionGate(audit=AuditLog(audit), confirm=yes_with_name)
    result = await gate.apply(
        FixHost(HOST, LocalShell(HOST)), finding, fix, run.verifier(step, finding)
    )
    assert result.outcome is Outcome.VERIFIED, result.message
    freed = free_bytes(fs.mountpoint) - before
    assert freed >= 16 * 1024 * 1024 - 64 * 1024, f"freed {freed} bytes"  # df before and after
    assert "freed 16.0 MiB of 16.0 MiB promised" in result.message, result.message
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["space"]["promised"] == 16 * 1024 * 1024
    assert record["space"]["freed"] >= 16 * 1024 * 1024 - 64 * 1024
    assert holder.poll() is None  # the process lives on, writing to an empty file


async def test_holder_replaced_between_offer_and_apply_is_refused_by_the_pin(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=32)
    holder = fs.hold_deleted(4 * 1024 * 1024)
    run = wizard_on(LocalShell(HOST))
    await run.run()
    step = run.index_of("disk.deleted_open")
    finding, fix = next(
        (f, x) for f, x in run.results[step].fixes if str(fs.mountpoint) in f.summary
    )
    holder.kill()
    holder.wait(5)
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes_with_name)
    result = await gate.apply(
        FixHost(HOST, LocalShell(HOST)), finding, fix, run.verifier(step, finding)
    )
    assert result.outcome is Outcome.ABORTED and "gone" in result.message


async def test_a_read_only_mount_with_a_space_in_its_name_is_critical(
    loopfs: MakeLoopFs,
) -> None:
    """/etc/fstab (`\\040` for the space) mounts it read-write, so read-only is a fault."""
    fs = loopfs(space_in_name=True)
    assert " " in str(fs.mountpoint)
    fs.remount_ro()
    fstab = f"{fs.device} {escape(str(fs.mountpoint))} ext4 defaults 0 2\n"
    run = wizard_on(with_file("/etc/fstab", fstab))
    await run.run()
    readonly = run.results[run.index_of("disk.readonly")].findings
    ours = [f for f in readonly if f.target == str(fs.mountpoint)]
    assert len(ours) == 1 and ours[0].status is Status.CRIT
    assert "mounted read-only, but /etc/fstab mounts it read-write" in ours[0].summary


@pytest.mark.parametrize(
    ("recorded", "status", "words"),
    [
        ("clean-raid1.txt", Status.OK, "clean"),
        ("degraded-raid1.txt", Status.CRIT, "degraded"),
        ("raid5-resync.txt", Status.WARN, "resync"),
        ("raid1-recovery.txt", Status.CRIT, "recovery"),
        ("inactive.txt", Status.CRIT, "inactive"),
    ],
)
async def test_raid_states_from_mdstat(recorded: str, status: Status, words: str) -> None:
    from fleetdeck.checks.storage.wizard import RAID

    ctx = context(with_file("/proc/mdstat", (MDSTAT / recorded).read_text()))
    findings = await RAID.run(ctx)
    worst = max(findings, key=lambda f: f.status.rank)
    assert worst.status is status, findings
    assert any(words in f.summary for f in findings if f.status is status), findings


def test_storage_wizard_from_the_command_line_reads_only_without_answers(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=32)
    fs.hold_deleted(4 * 1024 * 1024)
    fleetdeck = str(Path(sys.executable).parent / "fleetdeck")
    done = subprocess.run(
        [fleetdeck, "wizard", "storage", "--audit-log", str(tmp_path / "a.jsonl")],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr
    assert "Deleted files still held open" in done.stdout
    assert str(fs.mountpoint) in done.stdout
    assert "(no answer: no)" in done.stderr
    assert fs.use_percent() > 10  # nothing was truncated


async def test_backups_stale_shrunken_and_corrupt_are_told_apart(loopfs: MakeLoopFs) -> None:
    fs = loopfs(size_mib=16)
    backups = fs.make_backups()
    ctx = context(LocalShell(HOST), {"backups": f"{backups.directory}/*.sql.gz"})
    from fleetdeck.checks.storage.backups import BACKUPS

    found = {f.target.rsplit("/", 1)[-1].split("-")[0]: f for f in await BACKUPS.run(ctx)}
    assert set(found) == {"orders", "billing", "users", "crm"}, found
    assert found["orders"].status is Status.OK and "intact" in found["orders"].summary
    assert found["billing"].status is Status.WARN and "30 h old" in found["billing"].summary
    assert found["users"].status is Status.WARN and "down from" in found["users"].summary
    assert found["crm"].status is Status.CRIT and "fails gzip" in found["crm"].summary

    missing = context(LocalShell(HOST), {"backups": f"{backups.directory}/none-*.gz"})
    (none,) = await BACKUPS.run(missing)
    assert none.status is Status.CRIT and "no backups match" in none.summary
    gone = context(LocalShell(HOST), {"backups": f"{fs.mountpoint}/no such dir"})
    (lost,) = await BACKUPS.run(gone)
    assert lost.status is Status.CRIT and "No such file or directory" in lost.summary

    # Several paths at once (from configuration), with the age limit set to 48 h.
    both = f"{backups.directory}/*.sql.gz\n{fs.mountpoint}/no such dir"
    many = context(LocalShell(HOST), {"backups": both, "backup_age": "48"})
    results = await BACKUPS.run(many)
    assert len(results) == 5 and results[-1].target == f"{fs.mountpoint}/no such dir"
    billing = next(f for f in results if "billing" in f.target)
    assert billing.status is Status.OK and billing.target.startswith(str(backups.directory))


async def test_old_logs_are_listed_then_removed_freeing_what_was_promised(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=32)
    logs = fs.make_logs(old_days=10, fresh=3, old=4, size=1024 * 1024)
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory), "older": "7"})
    from fleetdeck.checks.storage.cleanup import OLD_LOGS

    (finding,) = await OLD_LOGS.run(ctx)
    assert finding.status is Status.WARN and "4 files older than 7 days, 4.0 MiB" in finding.summary
    listed = finding.evidence[0].output
    assert all(str(p) in listed for p in logs.old) and not any(str(p) in listed for p in logs.fresh)
    (fix,) = finding.fixes
    before = free_bytes(fs.mountpoint)

    async def verify():  # type: ignore[no-untyped-def]
        return (await OLD_LOGS.run(ctx))[0]

    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes_with_name)
    result = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, fix, verify)
    assert result.outcome is Outcome.VERIFIED, result.message
    freed = free_bytes(fs.mountpoint) - before
    assert freed >= 4 * 1024 * 1024, f"promised 4 MiB, freed {freed} bytes"
    assert result.freed is not None and result.freed >= 4 * 1024 * 1024
    assert "freed 4.0 MiB of 4.0 MiB promised" in result.message, result.message
    assert all(p.exists() for p in logs.fresh) and not any(p.exists() for p in logs.old)


async def test_old_logs_fix_is_refused_when_the_list_changed(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=16)
    logs = fs.make_logs(old_days=10, fresh=1, old=2)
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory)})
    from fleetdeck.checks.storage.cleanup import OLD_LOGS

    (finding,) = await OLD_LOGS.run(ctx)
    (fix,) = finding.fixes
    os.utime(logs.fresh[0], (0, 0))  # one more file turns old after the list was shown

    async def verify():  # type: ignore[no-untyped-def]
        return (await OLD_LOGS.run(ctx))[0]

    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes_with_name)
    result = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, fix, verify)
    assert result.outcome is Outcome.ABORTED
    assert all(p.exists() for p in (*logs.old, *logs.fresh))


async def test_space_and_inodes_on_full_filesystems_from_one_sample_taken_now(
    loopfs: MakeLoopFs,
) -> None:
    nearly, full, no_inodes = loopfs(size_mib=32), loopfs(size_mib=32), loopfs(inodes=64)
    nearly.fill_to(95)
    full.fill_to(100)
    no_inodes.exhaust_inodes()
    from fleetdeck.checks.storage.wizard import SPACE

    found = {f.key: f for f in await SPACE.run(context(LocalShell(HOST)))}
    space = found[("disk.space", str(nearly.mountpoint))]
    percent = int(space.summary.removeprefix(f"{nearly.mountpoint} ").split("%")[0])
    assert space.status is Status.CRIT and 94 <= percent < 100, space.summary  # df rounds up
    assert "fill rate: too few samples (1 over 0 s" in space.summary
    assert found[("disk.space", str(full.mountpoint))].summary.startswith(
        f"{full.mountpoint} 100% used, 0 B free"
    )
    inodes = found[("disk.inodes", str(no_inodes.mountpoint))]
    assert inodes.status is Status.CRIT and "100% of inodes used" in inodes.summary
    assert found[("disk.space", str(no_inodes.mountpoint))].status is Status.OK


def test_check_reports_storage_with_the_hosts_settings_and_no_storage_leaves_it_out(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """`fleetdeck check` as cron runs it: a mount made read-only by hand, an expected mount
    that is not there and a stale backup (by the configured age) come out with the sampled
    checks."""
    from conftest import fleetdeck_bin

    fs = loopfs(size_mib=16)
    backups = fs.make_backups()
    fs.remount_ro()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nbackups = ["{backups.directory}/*.sql.gz"]\nbackup_max_age = 48\n'
        f'[storage.hosts."{HOST}"]\nmounts = ["{fs.mountpoint}", "{tmp_path}/not-mounted"]\n'
    )

    def check(*extra: str) -> tuple[int, list[dict[str, str]]]:
        done = subprocess.run(
            [
                fleetdeck_bin(),
                "check",
                "--json",
                "--interval",
                "0.2",
                "--config",
                str(config),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        (host,) = json.loads(done.stdout)["hosts"]
        return done.returncode, host["findings"]

    code, findings = check()
    by_key = {(f["check"], f["target"]): f for f in findings}
    assert code == 2
    readonly = by_key[("disk.readonly", str(fs.mountpoint))]
    # Remounted `ro` by hand, and not in this machine's /etc/fstab: a question, not a fault.
    assert readonly["status"] == "WARN" and "not in fstab: intended?" in readonly["summary"]
    backup_series = [f for f in findings if f["check"] == "backup.files"]
    assert {f["status"] for f in backup_series} == {"OK", "WARN", "CRIT"}  # 30 h old is OK at 48
    assert ("disk.space", str(fs.mountpoint)) in by_key
    assert not any(f["check"] == "disk.usage" for f in findings)  # no usage path configured

    code, sampled_only = check("--no-storage", "--no-services", "--no-containers")
    assert {f["check"] for f in sampled_only} <= {
        "cpu.usage",
        "mem.usage",
        "mem.swap",
        "load.per_core",
        "disk.space",
        "disk.inodes",
    }


async def test_host_screen_shows_storage_findings_and_raises_their_alerts(
    loopfs: MakeLoopFs,
) -> None:
    from fleetdeck.tui.app import Settings, make_app
    from fleetdeck.tui.host_screen import HostScreen
    from fleetdeck.widgets import FindingsTable

    fs = loopfs(size_mib=16)
    fs.remount_ro()
    app = make_app(Settings(interval=0.5), Config(alert_for=0))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, HostScreen)
        key = f"disk.readonly|{fs.mountpoint}"

        def alerted() -> bool:
            alerts = screen.host_watch.alerts.alerts()
            return any((a.check, a.target) == ("disk.readonly", str(fs.mountpoint)) for a in alerts)

        for _ in range(300):
            await pilot.pause(0.1)
            if key in screen.query_one(FindingsTable).row_keys and alerted():
                break
        table = screen.query_one(FindingsTable)
        assert key in table.row_keys, table.row_keys
        assert table.row_keys.index(key) < 3  # CRIT sorts to the top
        assert alerted(), screen.host_watch.alerts.alerts()


async def test_a_big_old_log_tree_is_shown_in_part_and_pinned_whole_by_checksum(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=16)
    logs = fs.mountpoint / "app logs"
    logs.mkdir()
    for n in range(250):
        path = logs / f"app.{n}.log"
        path.write_text("x" * 100)
        os.utime(path, (0, 0))
    from fleetdeck.checks.storage.cleanup import OLD_LOGS

    ctx = context(LocalShell(HOST), {"logs": str(logs), "older": "1"})
    (finding,) = await OLD_LOGS.run(ctx)
    shown = finding.evidence[0].output.splitlines()
    assert len(shown) == 201 and shown[-1] == "… and 50 more (the fix's pin covers them all)"
    (fix,) = finding.fixes
    assert "sha256" in fix.pin.what and len(fix.pin.value.split()[0]) == 64

    (logs / "app.0.log").write_text("y" * 200)  # one file grew after the offer
    os.utime(logs / "app.0.log", (0, 0))
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes_with_name)

    async def verify():  # type: ignore[no-untyped-def]
        return (await OLD_LOGS.run(ctx))[0]

    changed = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, fix, verify)
    assert changed.outcome is Outcome.ABORTED and len(list(logs.iterdir())) == 250
    (finding,) = await OLD_LOGS.run(ctx)
    result = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, finding.fixes[0], verify)
    assert result.outcome is Outcome.VERIFIED, result.message
    assert list(logs.iterdir()) == []


def _sleeper_holding(fd: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], pass_fds=(fd,))


async def test_a_deleted_file_shared_by_two_processes_is_one_file_and_one_fix(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """A master and its worker hold the same deleted log (one inode): counted once, one
    truncate offered, and the space it frees comes back."""
    fs = loopfs(size_mib=32)
    path = fs.mountpoint / "shared.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, bytes(8 << 20))
    os.fsync(fd)
    path.unlink()
    holders = [_sleeper_holding(fd) for _ in range(2)]
    os.close(fd)
    try:
        from fleetdeck.checks.storage.wizard import DELETED

        found = await DELETED.run(context(LocalShell(HOST)))
        ours = [f for f in found if str(path) in f.summary]
        assert len(ours) == 1, found
        (finding,) = ours
        assert "holds 8.0 MiB, open by sleep (pid" in finding.summary
        assert finding.summary.endswith("and 1 more process"), finding.summary
        (fix,) = finding.fixes
        assert fix.frees == 8 << 20 and "\n" not in fix.pin.value

        async def verify():  # type: ignore[no-untyped-def]
            again = await DELETED.run(context(LocalShell(HOST)))
            return next(f for f in again if f.target == finding.target)

        gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes_with_name)
        result = await gate.apply(FixHost(HOST, LocalShell(HOST)), finding, fix, verify)
        assert result.outcome is Outcome.VERIFIED, result.message
        assert result.freed is not None and result.freed >= (8 << 20) - (64 << 10)
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


# -- backups: series, symbolic links, the read-back budget and its memory ------------------


def _gzip_backup(path: Path, hours: float, size: int = 64 << 10) -> Path:
    import gzip
    import time

    path.write_bytes(gzip.compress(os.urandom(size), compresslevel=1))
    taken = time.time() - hours * 3600
    os.utime(path, (taken, taken))
    return path


def test_series_keep_short_numbers_and_drop_dates_and_times() -> None:
    from fleetdeck.checks.storage.backups import series_of

    assert series_of("shard1-20240110.sql.gz") == "shard1-#.sql.gz"
    assert series_of("shard2-20240110.sql.gz") == "shard2-#.sql.gz"
    assert series_of("db2_2024-01-10T03:00:00Z.dump.gz") == "db2_#Z.dump.gz"
    assert series_of("orders-20240110-0315.sql.gz") == "orders-#.sql.gz"  # loopfs's names
    assert series_of("web01.1700000000.tar.gz") == "web01.#.tar.gz"  # epoch seconds
    assert series_of("app-03:15.tgz") == "app-#.tgz"
    assert series_of("vm10-backup.2024.01.10.1.zip") == "vm10-backup.#.zip"
    assert series_of("db.sql.1.gz") == series_of("db.sql.12.gz") == "db.sql.#.gz"  # rotations
    assert series_of("web-01.sql.gz") == "web-01.sql.gz"


async def test_a_dead_job_of_one_shard_is_not_hidden_by_the_other(tmp_path: Path) -> None:
    """shard1 and shard2 differ by one digit: they are two series, and shard2's job that
    stopped three days ago is a warning of its own."""
    from fleetdeck.checks.storage.backups import BACKUPS

    _gzip_backup(tmp_path / "shard1-20240110.sql.gz", 1)
    _gzip_backup(tmp_path / "shard1-20240109.sql.gz", 25)
    _gzip_backup(tmp_path / "shard2-20240107.sql.gz", 72)
    _gzip_backup(tmp_path / "shard2-20240106.sql.gz", 96)
    found = await BACKUPS.run(context(LocalShell(HOST), {"backups": str(tmp_path)}))
    by_target = {f.target.rsplit("/", 1)[-1]: f for f in found}
    assert set(by_target) == {"shard1-#.sql.gz", "shard2-#.sql.gz"}
    assert by_target["shard1-#.sql.gz"].status is Status.OK
    shard2 = by_target["shard2-#.sql.gz"]
    assert shard2.status is Status.WARN and "newest is 72 h old" in shard2.summary


async def test_a_backup_directory_given_as_a_symbolic_link_is_followed(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    from fleetdeck.checks.storage.backups import BACKUPS

    backups = loopfs(size_mib=16).make_backups()
    link = tmp_path / "backup-link"
    link.symlink_to(backups.directory)
    for given in (str(link), f"{link}/*.sql.gz"):
        found = {f.target.rsplit("/", 1)[-1].split("-")[0]: f for f in await BACKUPS.run(
            context(LocalShell(HOST), {"backups": given}))}  # fmt: skip
        assert set(found) == {"orders", "billing", "users", "crm"}, found
        assert found["orders"].status is Status.OK and "intact" in found["orders"].summary
        assert found["crm"].status is Status.CRIT and "fails gzip" in found["crm"].summary


class _RecordingShell:
    """This machine's shell, keeping every argv it ran (and optionally under a prefix)."""

    def __init__(self, *prefix: str) -> None:
        self.prefix = prefix
        self.local = LocalShell(HOST)
        self.ran: list[tuple[str, ...]] = []

    @property
    def host(self) -> str:
        return HOST

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        from dataclasses import replace

        self.ran.append(tuple(argv))
        result = await self.local.run((*self.prefix, *argv), timeout=timeout, stdin=stdin)
        return replace(result, argv=tuple(argv))


class _ColdAndSlow:
    """The filesystem mounted again (nothing of it cached), and as the context's value a
    command prefix that runs in a blkio cgroup reading its device at `bytes_per_second`:
    a slow disk, for real."""

    def __init__(self, device: str | None, mountpoint: Path, bytes_per_second: int) -> None:
        assert device is not None
        self.device, self.mountpoint, self.rate = device, mountpoint, bytes_per_second
        self.group = Path("/sys/fs/cgroup/blkio") / f"fdt{os.getpid()}-backups"

    def __enter__(self) -> tuple[str, ...]:
        if not (self.group.parent / "blkio.throttle.read_bps_device").exists():
            pytest.fail("this test needs the cgroup v1 blkio controller at /sys/fs/cgroup/blkio")
        subprocess.run(["umount", str(self.mountpoint)], check=True)
        subprocess.run(["mount", self.device, str(self.mountpoint)], check=True)
        self.group.mkdir()
        rdev = os.stat(self.device).st_rdev
        limit = f"{os.major(rdev)}:{os.minor(rdev)} {self.rate}"
        (self.group / "blkio.throttle.read_bps_device").write_text(limit)
        return ("sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.group / "cgroup.procs"))

    def __exit__(self, *exc: object) -> None:
        import time

        deadline = time.monotonic() + 10
        while (self.group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.group.rmdir()


async def test_slow_read_back_tests_share_one_budget_and_age_verdicts_are_never_lost(
    loopfs: MakeLoopFs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three 4 MiB backups on a disk that reads 1 MiB a second: gzip -t takes 4 s each,
    the read-back budget (7 s here, 20 s in use) fits one and part of the next. The newest
    series is tested first; the others say their test did not finish or had no time, and
    billing's stale verdict stands."""
    import time

    from fleetdeck.checks.model import run_checks
    from fleetdeck.checks.storage import backups as module
    from fleetdeck.checks.wizards import STEP_TIMEOUT

    monkeypatch.setattr(module, "INTEGRITY_SECONDS", 7.0)
    fs = loopfs(size_mib=32)
    directory = fs.mountpoint / "backup"
    directory.mkdir()
    for name, hours in (("users", 1), ("orders", 2), ("billing", 40)):
        _gzip_backup(directory / f"{name}-20240101.sql.gz", hours, 4 << 20)
    with _ColdAndSlow(fs.device, fs.mountpoint, bytes_per_second=1 << 20) as prefix:
        shell = _RecordingShell(*prefix)
        started = time.monotonic()
        found = await run_checks(
            context(shell, {"backups": str(directory)}), (module.BACKUPS,), STEP_TIMEOUT
        )
        took = time.monotonic() - started
    by_name = {f.target.rsplit("/", 1)[-1].split("-")[0]: f for f in found}
    assert set(by_name) == {"users", "orders", "billing"}, found
    assert by_name["users"].status is Status.OK and "intact" in by_name["users"].summary
    for name in ("orders", "billing"):
        assert "integrity not verified" in by_name[name].summary, by_name[name].summary
    assert by_name["orders"].status is Status.OK
    billing = by_name["billing"]
    assert billing.status is Status.WARN and "newest is 40 h old" in billing.summary
    assert took < 7.0 + 2, f"took {took:.1f} s"


async def test_an_unchanged_backup_is_not_read_back_again(tmp_path: Path) -> None:
    """The Host screen checks storage every 5 minutes: a backup already read back whole (or
    found broken) is not read again until its size or time changes."""
    from fleetdeck.checks.storage.backups import BACKUPS

    good = _gzip_backup(tmp_path / "orders-20240110.sql.gz", 1)
    broken = _gzip_backup(tmp_path / "crm-20240110.sql.gz", 1)
    broken.write_bytes(broken.read_bytes()[:1000])
    shell = _RecordingShell()
    params = {"backups": str(tmp_path)}
    first = await BACKUPS.run(context(shell, params))
    tested = [argv for argv in shell.ran if argv[:2] == ("gzip", "-t")]
    assert sorted(tested) == [("gzip", "-t", str(broken)), ("gzip", "-t", str(good))]

    shell.ran.clear()
    again = await BACKUPS.run(context(shell, params))
    assert not [argv for argv in shell.ran if argv[0] == "gzip"], shell.ran
    assert [(f.status, f.summary) for f in again] == [(f.status, f.summary) for f in first]
    assert again[0].status is Status.CRIT and "fails gzip" in again[0].summary

    _gzip_backup(good, 0.5)  # a new backup under the same name
    shell.ran.clear()
    await BACKUPS.run(context(shell, params))
    assert [argv for argv in shell.ran if argv[0] == "gzip"] == [("gzip", "-t", str(good))]


async def test_a_backup_whose_name_is_not_utf8_is_not_tested_nor_called_broken(
    tmp_path: Path,
) -> None:
    """The shell reads names as UTF-8: café in Latin-1 comes back with U+FFFD and could
    not be named to gzip again. That file is reported untested, never a false CRIT."""
    from fleetdeck.checks.storage.backups import BACKUPS

    latin1 = os.path.join(os.fsencode(tmp_path), b"caf\xe9-20240110.sql.gz")
    _gzip_backup(Path(os.fsdecode(latin1)), 1)
    _gzip_backup(tmp_path / "orders-20240110.sql.gz", 1)
    found = await BACKUPS.run(context(LocalShell(HOST), {"backups": str(tmp_path)}))
    cafe = next(f for f in found if "caf" in f.target)
    assert cafe.status is Status.OK, cafe.summary
    assert cafe.summary.endswith("name is not UTF-8: not tested")
    orders = next(f for f in found if "orders" in f.target)
    assert orders.status is Status.OK and orders.summary.endswith(", intact")
