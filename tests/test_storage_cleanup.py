"""Winning space back (runbook S1) for real: old logs gzipped on a loop filesystem, a real
systemd journal (files written by systemd-journal-remote) vacuumed by journalctl, and a real
Docker engine's stopped containers pruned; each fix through the gate, with the space it freed
measured. The parsers of what the hosts print are also tested on recorded texts."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import Check, CheckContext, Finding, Status
from fleetdeck.checks.storage.cleanup import (
    OLD_LOGS,
    UNCOMPRESSED_LOGS,
    LogFile,
    estimate_saving,
    parse_log_listing,
    parse_open_files,
    parse_sample,
    parse_size,
)
from fleetdeck.checks.storage.dockerspace import (
    DOCKER_SPACE,
    DfRow,
    parse_df_json,
    parse_df_table,
    parse_docker_size,
    parse_prune_list,
    prune_frees,
)
from fleetdeck.checks.storage.journal import JOURNAL, in_scope, parse_journal_files, vacuumable
from fleetdeck.hosts.inventory.records import HostSpec
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import LocalShell, Shell
from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host
from fleetdeck.hosts.units import human_bytes

from conftest import require_binary
from dockerd import Dockerd, DockerObjects, docker
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd
from loopfs import LoopFs, MakeLoopFs
from loopfs import loopfs as loopfs
from shells import LocalWith, prefixed
from sshd import NetnsLab, SshKeys, write_known_hosts

HOST = socket.gethostname()
DATA = Path(__file__).parent / "data"
MiB = 1024 * 1024
JOURNAL_REMOTE = Path("/lib/systemd/systemd-journal-remote")
MACHINE = "0123456789abcdef0123456789abcdef"


def context(shell: Shell, params: dict[str, str] | None = None) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, params or {})


async def yes_with_name(request: ConfirmRequest) -> Decision:
    return Decision(True, request.host.name)


async def apply(
    check: Check, ctx: CheckContext, finding: Finding, audit: Path, fix_index: int = 0
) -> ActionResult:
    """The finding's fix through the real gate, verified by re-running `check`."""

    async def verify() -> Finding | None:
        return next((f for f in await check.run(ctx) if f.key == finding.key), None)

    gate = ActionGate(audit=AuditLog(audit), confirm=yes_with_name)
    shell = ctx.shell
    assert shell is not None
    return await gate.apply(FixHost(HOST, shell), finding, finding.fixes[fix_index], verify)


# -- old logs compressed ----------------------------------------------------------------------


def _aged(path: Path, data: bytes, days: float) -> Path:
    path.write_bytes(data)
    old = time.time() - days * 86400
    os.utime(path, (old, old))
    return path


async def test_old_logs_are_gzipped_freeing_about_what_was_estimated(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=32)
    logs = fs.make_logs(old_days=10, fresh=2, old=4, size=MiB)
    done_gz = _aged(logs.directory / "done-01.log.gz", os.urandom(64 << 10), 10)
    done_xz = _aged(logs.directory / "DONE-02.LOG.XZ", os.urandom(64 << 10), 10)
    originals = {p: p.read_bytes() for p in logs.old}
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory), "older": "7"})

    (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
    assert finding.status is Status.WARN, finding
    assert "4 files older than 7 days not yet compressed, 4.0 MiB" in finding.summary
    listed = finding.evidence[0].output
    assert all(str(p) in listed for p in logs.old)
    assert not any(str(p) in listed for p in (*logs.fresh, done_gz, done_xz))
    (fix,) = finding.fixes
    assert fix.risk.value == "disruptive" and "still writing" in fix.impact
    assert "estimate" in fix.impact and fix.frees is not None
    assert 4 * MiB - 64 * 1024 <= fix.frees <= 4 * MiB  # log lines compress to almost nothing
    assert fix.commands[0][-4:] == ("gzip", "--", "{}", "+")

    result = await apply(UNCOMPRESSED_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 0.95 * fix.frees, result.message
    for path, text in originals.items():
        packed = path.with_name(path.name + ".gz")
        assert not path.exists() and gzip.decompress(packed.read_bytes()) == text
        assert packed.stat().st_mtime < time.time() - 9 * 86400  # gzip keeps the mtime
    assert all(p.exists() for p in logs.fresh)
    assert done_gz.stat().st_size == done_xz.stat().st_size == 64 << 10  # left alone

    # The .gz files are still past their keeping time: removal is still offered, honestly.
    (old,) = await OLD_LOGS.run(ctx)
    assert old.status is Status.WARN and "6 files older than 7 days" in old.summary


async def test_compress_is_refused_when_a_listed_log_grew_after_the_offer(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=16)
    logs = fs.make_logs(old_days=10, fresh=1, old=2, size=64 << 10)
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory)})
    (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
    assert finding.fixes and finding.fixes[0].pin.timeout == 60.0  # as long as the listing's
    stamp = logs.old[0].stat().st_mtime
    with logs.old[0].open("ab") as late:  # a process still writes to a "rotated" log
        late.write(b"Jan 11 00:00:00 web01 app[4242]: one more line\n")
    os.utime(logs.old[0], (stamp, stamp))

    result = await apply(UNCOMPRESSED_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.ABORTED, result.message
    assert all(p.exists() for p in logs.old) and not list(logs.directory.glob("*.gz"))


async def test_uncompressed_logs_are_ok_when_only_archives_are_old_and_unknown_when_missing(
    loopfs: MakeLoopFs,
) -> None:
    fs = loopfs(size_mib=16)
    logs = fs.make_logs(old_days=1, fresh=1, old=1)  # one day old: kept with --older 7
    _aged(logs.directory / "rotated.1.gz", b"x" * 4096, 30)
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory), "older": "7"})
    (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
    assert finding.status is Status.OK and "no uncompressed files" in finding.summary

    gone = context(LocalShell(HOST), {"logs": f"{fs.mountpoint}/no such dir"})
    (missing,) = await UNCOMPRESSED_LOGS.run(gone)
    assert missing.status is Status.UNKNOWN and "No such file or directory" in missing.summary


async def test_old_logs_on_a_path_with_a_space_are_gzipped_over_ssh(
    loopfs: MakeLoopFs,
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    tmp_path: Path,
) -> None:
    """A namespace host shares this filesystem: its sshd reaches the loop mount, and every
    path crosses the SSH channel as argv joined with shlex, spaces and all. The host is made
    after the mount (a namespace made before it need not see it: / may not propagate)."""
    fs = loopfs(size_mib=32, space_in_name=True)
    logs = fs.make_logs(old_days=10, fresh=1, old=2, size=MiB)
    host = netns_lab.add_host()
    try:
        spec = HostSpec(
            "logs01", host.address, user="root", identity_files=(str(ssh_keys.client_key),)
        )
        options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known_hosts", host))
        connection = await connect_host(spec, options)
        try:
            ctx = context(SSHShell("logs01", connection), {"logs": str(logs.directory)})
            (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
            assert finding.status is Status.WARN, finding
            assert " mnt/log/old-01.log" in finding.evidence[0].output
            result = await apply(UNCOMPRESSED_LOGS, ctx, finding, tmp_path / "audit.jsonl")
        finally:
            connection.close()
    finally:
        netns_lab.remove_host(host)
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 2 * MiB - 64 * 1024, result.message
    assert all(p.with_name(p.name + ".gz").exists() and not p.exists() for p in logs.old)


def test_log_listing_and_saving_estimate_from_recorded_find_output() -> None:
    """NUL-ended records: a name holding a newline and digits is one file, not two; a sparse
    log is counted by the blocks it holds, not its size."""
    files = parse_log_listing((DATA / "cleanup" / "find-old-logs.bin").read_text())
    assert [f.path for f in files] == [
        "/var/log/app/api.log.1",
        "/var/log/app/api.log.2",
        "/var/log/app/tiny.log",
        "/var/log/app/a\n1 2 3 fake.log",
        "/var/log/app/old access 2024-01-03.log",
    ]
    assert files[0] == LogFile(2220166, 1048576, 1048576, "/var/log/app/api.log.1")
    assert files[1].size == 52428806 and files[1].usage == 4096  # sparse: 4 KiB to free
    assert parse_log_listing("1 2 3 /ok\0garbled record\0\0 4 5 6 /x\n7 8 9 /y\0") == [
        LogFile(1, 2, 1536, "/ok")
    ]
    tiny = LogFile(1, 100, 4096, "/x")
    assert estimate_saving([tiny], 0.1) == 0  # a small file still takes one block as .gz
    assert estimate_saving(files[:1], 0.1) == 1048576 - 106496


class HeldOpen:
    """`sleep` with `path` open for appending on its stdout, as a quiet daemon holds its log."""

    def __init__(self, path: Path) -> None:
        with path.open("ab") as log:
            self.process = subprocess.Popen(["sleep", "300"], stdout=log)

    def __enter__(self) -> int:
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(5)


async def test_logs_a_process_still_has_open_are_left_out_of_gzip_and_removal(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """A quiet daemon's active log, not written for ten days, looks old: gzip would leave the
    daemon writing to a deleted file, removing it would free nothing. Both fixes leave it out,
    say who holds it, and the space each promised is really freed."""
    fs = loopfs(size_mib=32)
    logs = fs.make_logs(old_days=10, fresh=1, old=3, size=MiB)
    active = logs.old[0]
    stamp = active.stat().st_mtime
    with HeldOpen(active) as pid:
        os.utime(active, (stamp, stamp))  # opening it for append changed nothing
        ctx = context(LocalShell(HOST), {"logs": str(logs.directory)})

        (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
        assert finding.status is Status.WARN, finding
        held = f"1 old file is still open by sleep (pid {pid}): left out"
        assert finding.summary.startswith("2 files older than 7 days not yet compressed, 2.0 MiB")
        assert finding.summary.endswith(held), finding.summary
        assert f"pid {pid}: {active}" in finding.evidence[1].output
        (fix,) = finding.fixes
        assert ("!", "-inum", str(active.stat().st_ino)) == fix.commands[0][-8:-5]
        assert fix.frees is not None and fix.frees >= 2 * MiB - 64 * 1024
        result = await apply(UNCOMPRESSED_LOGS, ctx, finding, tmp_path / "audit.jsonl")
        assert result.outcome is Outcome.VERIFIED, result.message
        assert held in result.message
        assert active.exists() and not active.with_name(active.name + ".gz").exists()
        assert all(p.with_name(p.name + ".gz").exists() for p in logs.old[1:])

        (finding,) = await OLD_LOGS.run(ctx)  # the two .gz files, and the open log
        assert finding.status is Status.WARN, finding
        assert finding.summary.startswith("2 files older than 7 days") and held in finding.summary
        (fix,) = finding.fixes
        gz = [p.with_name(p.name + ".gz") for p in logs.old[1:]]
        promised = usage(gz)
        assert fix.frees == promised and "free nothing" in fix.impact
        result = await apply(OLD_LOGS, ctx, finding, tmp_path / "audit.jsonl")
        assert result.outcome is Outcome.VERIFIED, result.message
        assert active.exists() and not any(p.exists() for p in gz)
        assert result.freed is not None and result.freed >= promised, result.message

        (alone,) = await OLD_LOGS.run(ctx)
        assert alone.status is Status.OK and not alone.fixes
        assert alone.summary.endswith(held) and "to remove" in alone.summary


def test_open_files_from_a_recorded_proc_walk() -> None:
    """Recorded with /var/log/app a symlink to /srv/logs/app (paths and pids rewritten):
    /proc links name files by their real path, mapped back to the listing's."""
    text = (DATA / "cleanup" / "open-files.bin").read_text()
    held = parse_open_files(text, "/var/log/app")
    assert held == {
        "/var/log/app/api.log.1": {311, 412},
        "/var/log/app/old access 2024-01-03.log": {311},
    }
    assert parse_open_files("/srv/logs/app\0", "/var/log/app") == {}
    lookalike = "/srv/logs/app\0/proc/7/fd\0/srv/logs/app2/x.log\0/proc/x/fd\0/srv/logs/app/y\0"
    assert parse_open_files(lookalike, "/var/log/app") == {}


async def test_gzip_stays_in_the_log_tree_when_a_directory_is_swapped_for_a_symlink(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """The log directory's owner swaps `a/` for a symlink to a root-only directory after find
    has read it and before gzip opens `a/x.log` (the fix's first gzip run makes the swap, so
    it always lands in that window): gzip must not follow it out of the tree."""
    fs = loopfs(size_mib=16)
    top, victim = fs.mountpoint / "log", fs.mountpoint / "private"
    (top / "a").mkdir(parents=True)
    victim.mkdir()
    secret = _aged(victim / "x.log", b"root's own file outside the log directory\n" * 500, 30)
    log = _aged(top / "a" / "x.log", b"Jan 01 00:00:00 web01 app[4242]: GET / 200\n" * 4000, 30)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    a, q = top / "a", shlex.quote
    swap = f"mkdir {q(str(tmp_path / 'swapped'))} 2>/dev/null && mv {q(str(a))} {q(str(a))}.old"
    swap += f" && ln -s {q(str(victim))} {q(str(a))}"
    gzip_wrapper = bin_dir / "gzip"
    fix_run = '[ "$1" = -- ]'  # the fix's gzip, not the check's sample (gzip -6 -c)
    gzip_wrapper.write_text(f'#!/bin/sh\n{fix_run} && {swap}\nexec {shutil.which("gzip")} "$@"\n')
    gzip_wrapper.chmod(0o755)
    shell = prefixed("env", f"PATH={bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    ctx = context(shell, {"logs": str(top)})

    (finding,) = await UNCOMPRESSED_LOGS.run(ctx)
    assert finding.status is Status.WARN and str(log) in finding.evidence[0].output
    assert not (tmp_path / "swapped").exists()
    result = await apply(UNCOMPRESSED_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert (tmp_path / "swapped").exists() and (top / "a").is_symlink()
    assert secret.exists() and not (victim / "x.log.gz").exists(), result.message
    assert (top / "a.old" / "x.log.gz").exists()  # the file find found, where it found it
    assert result.outcome is Outcome.VERIFIED, result.message


async def test_names_with_newlines_and_sparse_logs_are_listed_and_promised_as_they_are(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """A name with a newline and digits in it cannot fake a second file, and a sparse log
    (50 MiB long, 4 KiB on disk) promises the 4 KiB its removal frees."""
    fs = loopfs(size_mib=32)
    logs = fs.make_logs(old_days=10, fresh=1, old=1, size=MiB)
    odd = _aged(logs.directory / "a\n999999999 99999999999 fake.log", os.urandom(8192), 10)
    sparse = logs.directory / "sparse.log"
    with sparse.open("wb") as handle:
        handle.truncate(50 * MiB)
        handle.write(b"first line\n")
    os.utime(sparse, (time.time() - 10 * 86400,) * 2)
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory)})

    (finding,) = await OLD_LOGS.run(ctx)
    promised = usage([*logs.old, odd, sparse])
    assert promised < 2 * MiB
    assert finding.summary.startswith(f"3 files older than 7 days, {human_bytes(promised)}")
    shown = finding.evidence[0].output.splitlines()
    assert len(shown) == 3 and any(
        line.endswith("/a\\n999999999 99999999999 fake.log") for line in shown
    )
    (fix,) = finding.fixes
    assert fix.frees == promised
    result = await apply(OLD_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert not odd.exists() and not sparse.exists() and logs.fresh[0].exists()
    assert result.freed is not None and result.freed >= promised - 4096, result.message


async def test_old_logs_on_a_full_filesystem_report_the_space_really_freed(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """Filled by root into its reserved blocks, df shows 0 B available before and after the
    fix: the gate counts free blocks, reserve included, so the gain is still measured."""
    fs = loopfs(size_mib=64)
    logs = fs.make_logs(old_days=10, fresh=1, old=4, size=512 << 10)
    fs.fill_to(100)
    assert shutil.disk_usage(fs.mountpoint).free == 0
    ctx = context(LocalShell(HOST), {"logs": str(logs.directory)})
    (finding,) = await OLD_LOGS.run(ctx)
    assert finding.summary.endswith("2.0 MiB; 0 B free there"), finding.summary
    result = await apply(OLD_LOGS, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 2 * MiB, result.message
    assert "freed 2.0 MiB of 2.0 MiB promised" in result.message


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory outside pytest's 0700 temporary tree, so another user can list it."""
    path = Path(tempfile.mkdtemp(prefix="fdt-logs-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


async def test_gzip_estimate_promises_nothing_it_cannot_sample_or_would_not_free(
    world_readable_dir: Path,
) -> None:
    """root:root 0640 logs, like /var/log's, checked by a user who may list but not read
    them: no estimate, so no fix (an empty read compresses to 20 bytes, which once promised
    everything). As root, random bytes that gzip cannot shrink: nothing to offer either."""
    logs = [_aged(world_readable_dir / f"app.log.{n}", os.urandom(2 * MiB), 10) for n in (1, 2)]
    for path in logs:
        path.chmod(0o640)
    nobody = prefixed("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    params = {"logs": str(world_readable_dir)}

    (unread,) = await UNCOMPRESSED_LOGS.run(context(nobody, params))
    assert unread.status is Status.UNKNOWN and not unread.fixes, unread
    assert "what gzip would free is not known" in unread.summary
    assert "Permission denied" in unread.summary

    (random,) = await UNCOMPRESSED_LOGS.run(context(LocalShell(HOST), params))
    assert random.status is Status.OK and not random.fixes, random
    assert "gzip would free nothing" in random.summary
    assert parse_sample("read 0\n2097\n") == parse_sample("2097\nread 0\n") == (0, 2097)
    assert parse_sample("read 1\n20\n") == (1, 20) and parse_sample("20\n") is None


# -- the systemd journal ----------------------------------------------------------------------


def _export(start: float, entries: int, tag: str) -> bytes:
    """Journal export format: `entries` messages one second apart from `start` (epoch s)."""
    lines = []
    for n in range(entries):
        usec = int((start + n) * 1e6)
        lines += [
            f"__REALTIME_TIMESTAMP={usec}",
            f"__MONOTONIC_TIMESTAMP={(n + 1) * 1_000_000}",
            f"_BOOT_ID={MACHINE}",
            "_HOSTNAME=web01",
            "SYSLOG_IDENTIFIER=app",
            f"MESSAGE={tag} GET /orders/{n} 200 " + os.urandom(40).hex(),
            "",
        ]
    return ("\n".join(lines) + "\n").encode()


def write_journal(
    directory: Path, days_ago: float, entries: int = 200, archive: bool = True
) -> Path:
    """A journal file written by systemd-journal-remote, entries from `days_ago`; archived
    files are renamed as journald names them (seqnum id, head seqnum, head realtime)."""
    if not JOURNAL_REMOTE.exists():
        pytest.fail(f"{JOURNAL_REMOTE} is missing: apt-get install systemd-journal-remote")
    directory.mkdir(parents=True, exist_ok=True)
    export = directory.parent / f"days-{days_ago}.export"
    export.write_bytes(_export(time.time() - days_ago * 86400, entries, f"d{days_ago}"))
    path = directory / ("writing.journal" if archive else "system.journal")
    done = subprocess.run(
        [str(JOURNAL_REMOTE), f"--output={path}", str(export)], capture_output=True, timeout=60
    )
    export.unlink()
    assert done.returncode == 0, done.stderr.decode()
    if not archive:
        return path
    header = subprocess.run(
        ["journalctl", "--file", str(path), "--header"], capture_output=True, text=True, check=True
    ).stdout
    seqnum_id = re.search(r"Sequential number ID: ([0-9a-f]{32})", header)
    head = re.search(r"Head sequential number: \d+ \(([0-9a-f]+)\)", header)
    realtime = re.search(r"Head realtime timestamp: .*\(([0-9a-f]+)\)", header)
    assert seqnum_id and head and realtime, header
    name = f"system@{seqnum_id[1]}-{int(head[1], 16):016x}-{int(realtime[1], 16):016x}.journal"
    return path.rename(directory / name)


def journal_messages(root: Path) -> str:
    argv = ["journalctl", f"--directory={root}", "-o", "cat", "--no-pager"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def usage(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_blocks * 512 for p in paths)


def journal_on(fs: LoopFs) -> tuple[Path, list[Path], list[Path], str]:
    """A journal directory like /var/log/journal: old archived files (30, 25, 20 days), a
    recent archived one and the active one; and a warning level (`journal_max`) that they
    are over and the recent ones under (journald sizes its files to the filesystem)."""
    root = fs.mountpoint / "journal"
    files = root / MACHINE
    old = [write_journal(files, days) for days in (30, 25, 20)]
    kept = [write_journal(files, 2), write_journal(files, 0, archive=False)]
    return root, old, kept, str(usage(kept) + usage(old) // 2)


async def test_old_journal_files_are_vacuumed_freeing_what_was_promised(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=64)
    root, old, kept, level = journal_on(fs)
    ctx = context(LocalShell(HOST), {"journal_dir": str(root), "journal_max": level})
    (finding,) = await JOURNAL.run(ctx)
    promised = usage(old)
    assert finding.status is Status.WARN, finding
    assert f"{human_bytes(promised)} in 3 archived files older than 14 days" in finding.summary
    (fix,) = finding.fixes
    assert fix.commands == (("journalctl", f"--directory={root}", "--vacuum-time=14d"),)
    assert fix.risk.value == "destructive" and fix.frees == promised
    assert all(p.name in fix.pin.value for p in (*old, kept[0]))
    assert "/system.journal" not in fix.pin.value  # the active file grows: never pinned

    result = await apply(JOURNAL, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 0.99 * promised, result.message
    assert not any(p.exists() for p in old) and all(p.exists() for p in kept)
    shown = journal_messages(root)
    assert "d2 GET" in shown and "d0 GET" in shown and "d30 GET" not in shown
    record = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert record["space"]["promised"] == promised and record["space"]["freed"] > 0


async def test_journal_vacuum_is_refused_when_another_file_was_archived(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=64)
    root, old, _, level = journal_on(fs)
    params = {"journal_dir": str(root), "journal_days": "7", "journal_max": level}
    ctx = context(LocalShell(HOST), params)
    (finding,) = await JOURNAL.run(ctx)
    assert finding.status is Status.WARN and finding.fixes, finding
    write_journal(root / MACHINE, 1)  # journald rotated meanwhile
    result = await apply(JOURNAL, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.ABORTED, result.message
    assert all(p.exists() for p in old)


async def test_journal_age_is_its_own_parameter_not_the_old_logs_age(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """`older 1` is meant for the application's log directory: the journal keeps its 14 days
    unless `journal_days` says otherwise."""
    fs = loopfs(size_mib=64)
    root, old, _, level = journal_on(fs)
    params = {"journal_dir": str(root), "journal_max": level, "older": "1"}
    (finding,) = await JOURNAL.run(context(LocalShell(HOST), params))
    assert "3 archived files older than 14 days" in finding.summary, finding.summary
    assert finding.fixes[0].commands[0][-1] == "--vacuum-time=14d"

    (later,) = await JOURNAL.run(context(LocalShell(HOST), {**params, "journal_days": "22"}))
    assert f"{human_bytes(usage(old[:2]))} in 2 archived files older than 22" in later.summary
    assert later.fixes[0].commands[0][-1] == "--vacuum-time=22d"
    assert later.fixes[0].frees == usage(old[:2])

    (bad,) = await JOURNAL.run(context(LocalShell(HOST), {**params, "journal_days": "soon"}))
    assert bad.status is Status.UNKNOWN and "journal_days 'soon'" in bad.summary


class JournalOn(LocalWith):
    """This machine with `directory` mounted on /var/log/journal (and nothing on
    /run/log/journal), in a mount namespace made for each command: journalctl with no
    --directory reads it as the system journal, and nothing leaks to the real one."""

    SCRIPT = (
        'mount --bind "$1" /var/log/journal || exit 125; shift; '
        "if [ -d /run/log/journal ]; then mount -t tmpfs none /run/log/journal || exit 125; fi; "
        'exec "$@"'
    )

    def __init__(self, directory: Path) -> None:
        if not Path("/var/log/journal").is_dir():
            pytest.fail("/var/log/journal is missing: mkdir /var/log/journal (systemd does)")
        super().__init__(prefix=("unshare", "-m", "sh", "-c", self.SCRIPT, "sh", str(directory)))


async def test_journal_vacuum_promises_only_what_journalctl_removes(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    """A container's journal linked under /var/log/journal (another machine ID), and a stray
    directory journalctl never reads: `journalctl --vacuum-time` leaves their old files, so
    they are neither counted nor promised; this machine's old file is, and is freed."""
    fs = loopfs(size_mib=96)
    root = fs.mountpoint / "journal"
    local = root / Path("/etc/machine-id").read_text().strip()
    old = [write_journal(local, 30)]
    kept = [write_journal(local, 0, archive=False)]
    others = [write_journal(root / MACHINE, days) for days in (30, 25, 20)]
    others.append(write_journal(root / "imported", 30))
    level = str(usage(kept) + usage(old) // 2)
    ctx = context(JournalOn(root), {"journal_max": level})

    (finding,) = await JOURNAL.run(ctx)
    assert finding.status is Status.WARN, finding
    assert f"takes {human_bytes(usage(old + kept))} (2 files)" in finding.summary
    assert "1 archived files older than 14 days" in finding.summary
    (fix,) = finding.fixes
    promised = usage(old)
    assert fix.commands == (("journalctl", "--vacuum-time=14d"),)
    assert fix.frees == promised and fix.frees_on == "/var/log/journal"
    assert MACHINE not in fix.pin.value and "imported" not in fix.pin.value
    result = await apply(JOURNAL, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 0.99 * promised, result.message
    assert not any(p.exists() for p in old) and all(p.exists() for p in kept + others)


async def test_journal_that_is_small_missing_or_absent_is_said_plainly(
    loopfs: MakeLoopFs, tmp_path: Path
) -> None:
    fs = loopfs(size_mib=64)
    root = fs.mountpoint / "journal"
    write_journal(root / MACHINE, 0, archive=False)
    (small,) = await JOURNAL.run(context(LocalShell(HOST), {"journal_dir": str(root)}))
    tenth = human_bytes(int(shutil.disk_usage(fs.mountpoint).total * 0.1))
    assert small.status is Status.OK, small
    assert f"under {tenth} (10% of its filesystem)" in small.summary

    empty = tmp_path / "empty"
    empty.mkdir()
    (none,) = await JOURNAL.run(context(LocalShell(HOST), {"journal_dir": str(empty)}))
    assert none.status is Status.OK and f"no systemd journal on {HOST}" in none.summary

    lost = context(LocalShell(HOST), {"journal_dir": str(tmp_path / "no such dir")})
    (unknown,) = await JOURNAL.run(lost)
    assert unknown.status is Status.UNKNOWN and "No such file or directory" in unknown.summary

    (absent,) = await JOURNAL.run(context(prefixed("env", "PATH=/nonexistent")))
    assert absent.status is Status.OK
    assert absent.summary == f"no systemd journal on {HOST}: journalctl is not installed"


async def test_this_machines_own_journal_is_reported_without_a_crash() -> None:
    on_disk = [
        p for d in ("/var/log/journal", "/run/log/journal") for p in Path(d).glob("**/*.journal*")
    ]
    (finding,) = await JOURNAL.run(context(LocalShell(HOST)))
    assert finding.target == "/var/log/journal, /run/log/journal"
    if on_disk:
        assert finding.status in (Status.OK, Status.WARN) and "takes" in finding.summary
    else:  # no systemd running here: journalctl works, but there is nothing to read
        assert finding.status is Status.OK and "no journal files in" in finding.summary


def test_journal_listing_from_recorded_find_output() -> None:
    """Recorded from files systemd-journal-remote wrote (paths moved to /var/log/journal)."""
    files = parse_journal_files((DATA / "journal" / "find-listing.txt").read_text())
    assert len(files) == 6 and all(f.usage == 8 * MiB for f in files)
    assert [Path(f.path).name for f in files if not f.archived] == ["system.journal"]
    disposed = next(f for f in files if f.path.endswith("~"))
    assert disposed.oldest == 0x5F5E1000 / 1e6  # set aside as corrupt: realtime in the name
    now = 1795449913.0 + 3600
    # Old by the first entry's time in the name, or by file times (journalctl takes the older):
    # system@8d9f... began 3 days ago by its name, but its mtime says 40 days.
    old = {Path(f.path).name[:14] for f in vacuumable(files, now, 14)}
    assert old == {"system@2df0dbb", "user-1000@9ef5", "system@0000000", "system@8d9ff4d"}


def test_journal_scope_is_what_journalctl_reads() -> None:
    """journalctl reads a journal directory's own files and its machine-ID subdirectories;
    without --directory only this machine's."""
    roots, mine = ("/var/log/journal", "/run/log/journal"), "8f1e2c4a9b7d4e05a6c3f2b1d0e9c8a7"
    assert in_scope(f"/var/log/journal/{mine}/system.journal", roots, mine)
    assert in_scope("/run/log/journal/system@x.journal", roots, mine)
    assert not in_scope(f"/var/log/journal/{MACHINE}/system.journal", roots, mine)
    assert in_scope(f"/var/log/journal/{MACHINE}/system.journal", roots, None)
    assert not in_scope("/var/log/journal/remote/system.journal", roots, None)
    assert not in_scope(f"/var/log/journal/{mine}/deeper/system.journal", roots, None)


# -- Docker -----------------------------------------------------------------------------------


def _big(objects: DockerObjects, mib: int = 8) -> str:
    """A stopped container whose writable layer holds `mib` MiB."""
    return objects.run("sh", "-c", f"head -c {mib * MiB} /dev/zero > /big", what="big")


async def test_stopped_containers_are_pruned_and_the_space_comes_back(
    dockerd: Dockerd, docker_objects: DockerObjects, tmp_path: Path
) -> None:
    ours = [_big(docker_objects) for _ in range(4)]
    docker_objects.image("app", {"app/v1": b"1" * 4096})
    dangling = docker_objects.image("app-again", {"app/v2": b"2" * 4096})
    docker("tag", dangling, docker_objects.images[0])  # v2 takes the tag: v1 dangles
    v1 = docker_objects.images[1]

    (default,) = await DOCKER_SPACE.run(context(LocalShell(HOST)))
    assert default.status is Status.OK and "docker system prune would free" in default.summary

    ctx = context(LocalShell(HOST), {"docker_reclaim": str(16 * MiB)})
    (finding,) = await DOCKER_SPACE.run(ctx)
    assert finding.status is Status.WARN, finding
    assert finding.target == dockerd.root_dir
    (fix,) = finding.fixes
    assert fix.commands == (("docker", "system", "prune", "-f"),)
    assert fix.risk.value == "destructive" and fix.frees_on == dockerd.root_dir
    assert fix.frees is not None and fix.frees >= 0.99 * 4 * 8 * MiB  # docker rounds: 33.55MB
    assert all(c in fix.pin.value for c in ours) and v1 in fix.pin.value
    assert "stopped containers" in fix.impact and "dangling" in fix.impact

    result = await apply(DOCKER_SPACE, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.freed is not None and result.freed >= 4 * 8 * MiB * 0.95, result.message
    left = docker("ps", "-a", "-q", "--no-trunc").stdout.split()
    assert not set(ours) & set(left)
    assert docker("image", "inspect", v1, check=False).returncode != 0  # the dangling one
    assert docker("image", "inspect", dangling, check=False).returncode == 0  # tagged: kept
    assert docker("image", "inspect", dockerd.image, check=False).returncode == 0


async def test_prune_is_refused_when_a_container_stopped_after_the_offer(
    dockerd: Dockerd, docker_objects: DockerObjects, tmp_path: Path
) -> None:
    first = _big(docker_objects, 1)
    ctx = context(LocalShell(HOST), {"docker_reclaim": "1"})
    (finding,) = await DOCKER_SPACE.run(ctx)
    assert finding.status is Status.WARN and first in finding.fixes[0].pin.value
    late = _big(docker_objects, 1)  # stopped after the list was shown

    result = await apply(DOCKER_SPACE, ctx, finding, tmp_path / "audit.jsonl")
    assert result.outcome is Outcome.ABORTED, result.message
    assert late[:12] in result.message
    left = docker("ps", "-a", "-q", "--no-trunc").stdout.split()
    assert first in left and late in left


async def test_docker_missing_absent_down_or_forbidden_is_said_plainly(dockerd: Dockerd) -> None:
    (absent,) = await DOCKER_SPACE.run(context(prefixed("env", "PATH=/nonexistent")))
    assert absent.status is Status.OK and absent.summary == f"no docker CLI on {HOST}"

    elsewhere = prefixed("env", "DOCKER_HOST=unix:///nonexistent/docker.sock")
    (down,) = await DOCKER_SPACE.run(context(elsewhere))
    assert down.status is Status.UNKNOWN, down
    assert "Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock" in down.summary

    # A host with the CLI and no engine at all: in a mount namespace of its own, an empty
    # /run hides the default socket from the CLI and from `test`, as on a host without one.
    bare = prefixed("unshare", "-m", "sh", "-c", 'mount -t tmpfs none /run && exec "$@"', "sh")
    (none,) = await DOCKER_SPACE.run(context(bare))
    assert none.status is Status.OK, none
    assert none.summary == (
        f"no Docker engine on {HOST}: /var/run/docker.sock does not exist, and only the "
        "docker CLI is installed"
    )

    nobody = prefixed("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    (forbidden,) = await DOCKER_SPACE.run(context(nobody))
    assert forbidden.status is Status.UNKNOWN, forbidden
    assert "permission denied while trying to connect" in forbidden.summary


@pytest.mark.parametrize("recorded", ["df-json-28.2.txt", "df-json-20.10.txt"])
def test_docker_df_json_from_both_cli_versions(recorded: str) -> None:
    rows = parse_df_json((DATA / "docker" / recorded).read_text())
    assert [r.kind for r in rows] == ["Images", "Containers", "Local Volumes", "Build Cache"]
    assert rows[1] == DfRow("Containers", 5, 1, 41_940_000, 33_550_000)
    assert rows[0] == DfRow("Images", 2, 1, 3_984_000, 2_000_000) and rows[2].reclaimable == 0


def test_docker_df_table_and_sizes() -> None:
    rows = parse_df_table((DATA / "docker" / "df-table.txt").read_text())
    assert rows == parse_df_json((DATA / "docker" / "df-json-28.2.txt").read_text())
    assert parse_docker_size("0B") == 0
    assert parse_docker_size("8.389MB") == 8_389_000
    assert parse_docker_size("1.2GB (50%)") == 1_200_000_000
    assert parse_docker_size("512kB") == 512_000 and parse_docker_size("2KiB") == 2048
    with pytest.raises(ParseError):
        parse_docker_size("lots")
    with pytest.raises(ParseError):
        parse_df_json('{"Type": "Images"}')
    assert parse_size("500M") == str(500 * MiB) and parse_size("1.5GiB") == str(1536 * MiB)
    assert parse_size("4096") == "4096" and parse_size("2 kb") == "2048"
    with pytest.raises(ValueError, match="500M"):
        parse_size("a lot")


def test_prune_figure_counts_only_what_a_plain_prune_removes() -> None:
    rows = parse_df_json((DATA / "docker" / "df-json-28.2.txt").read_text())
    # Unused tagged images (2 MB reclaimable) stay: only dangling ones count, at most that.
    assert prune_frees(rows, dangling=0) == 33_550_000
    assert prune_frees(rows, dangling=10**9) == 33_550_000 + 2_000_000
    listed = parse_prune_list("stopped containers:\nabc\ndef\ndangling images:\n\n")
    assert listed.containers == ("abc", "def") and listed.images == ()


def test_docker_fixture_needs_the_static_busybox() -> None:
    from dockerd import BUSYBOX, is_static

    require_binary("busybox", "busybox-static")
    assert is_static(BUSYBOX)
    assert not is_static(Path(shutil.which("ls") or "/bin/ls"))  # dynamically linked
