"""Every parser of host output, fed arbitrary bytes decoded as the hosts' output is (UTF-8
with replacement): each gives a result or its clean error (`ParseError`), never another
exception, and within a deadline. Inputs are random bytes, and recorded outputs from
tests/data with bytes flipped, cut, inserted and lines shuffled, so the fuzzing reaches past
the first line of each format.

The suite runs a few thousand examples in a few seconds. For a deep run (100,000 examples
over all parsers): `FLEETDECK_FUZZ=deep .venv/bin/python -m pytest tests/test_parser_bytes.py`.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetdeck.checks.audit import read_audit
from fleetdeck.checks.model import printable
from fleetdeck.checks.network import firewall, nftables
from fleetdeck.checks.network import parse as netparse
from fleetdeck.checks.secrets import redact
from fleetdeck.checks.storage import cleanup, diskusage, dockerspace, journal
from fleetdeck.checks.storage.wizard import parse_held
from fleetdeck.hosts import proc_sampler
from fleetdeck.hosts.certs import read_certificates
from fleetdeck.hosts.docker import records as docker_records
from fleetdeck.hosts.docker.endpoint import parse_context_meta
from fleetdeck.hosts.linux import (
    accesslog,
    authlog,
    diskstats,
    kernlog,
    limits,
    mdstat,
    netstat,
    ping,
    procfs,
)
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.shell import decoded

DATA = Path(__file__).parent / "data"
IDS = ("0123456789ab" * 5 + "abcd", "f" * 64)
"""Container ids for the cgroup reader to look for."""


def _audit(text: str) -> object:
    """The audit reader on a file holding exactly these bytes."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as handle:
        handle.write(text.encode("utf-8", errors="surrogateescape"))
        handle.flush()
        return read_audit(Path(handle.name))


def _sections(text: str) -> object:
    """The sampler's mount sections, each one part of the text."""
    parts = text.split("\x00") + [""] * 5
    keys = ("df", "dfi", "dfstatus", "netdf", "dfhung")
    return proc_sampler.parse_mounts(dict(zip(keys, parts, strict=False)))


PARSERS: dict[str, tuple[Callable[[str], Any], tuple[str, ...]]] = {
    # name: (parser, recorded outputs under tests/data it is seeded with)
    "proc_stat": (procfs.parse_proc_stat, ("web-01/sample-1.txt",)),
    "meminfo": (procfs.parse_meminfo, ("web-01/sample-1.txt",)),
    "loadavg": (procfs.parse_loadavg, ()),
    "uptime": (procfs.parse_uptime, ("diskstats/uptime-pair-1.txt",)),
    "net_dev": (procfs.parse_net_dev, ("web-01/sample-2.txt",)),
    "disk_counters": (diskstats.disk_counters, ("diskstats/debian12-kernel6.18.txt",)),
    "df_usage": (procfs.parse_df_usage, ("web-01/sample-1.txt",)),  # its df -PkT section
    "df_inodes": (procfs.parse_df_inodes, ()),
    "os_release": (procfs.parse_os_release, ()),
    "pid_stat": (procfs.parse_pid_stat, ()),
    "ps_users": (procfs.parse_ps_users, ("web-01/processes-1.txt",)),
    "split_sections": (
        lambda t: procfs.split_sections(t, proc_sampler.MARKER),
        ("web-01/sample-1.txt",),
    ),
    "df_errors": (lambda t: list(procfs.df_errors(t)), ("storage/df-local.stderr.txt",)),
    "sampler_mounts": (_sections, ("proc-sampler/hung-nfs.txt",)),
    "diskstats": (diskstats.parse_diskstats, ("diskstats/centos7-kernel3.10-14fields.txt",)),
    "diskstats_reading": (diskstats.parse_reading, ("diskstats/pair-2s-before.txt",)),
    "mdstat": (mdstat.parse_mdstat, ("mdstat/raid5-resync.txt", "mdstat/degraded-raid1.txt")),
    "proc_mounts": (kernlog.parse_mounts, ("storage/proc-mounts.txt",)),
    "fstab": (kernlog.parse_fstab, ("storage/fstab.txt",)),
    "block_device": (kernlog.parse_block_device, ()),
    "dumpe2fs": (kernlog.parse_dumpe2fs, ("dumpe2fs/ext4-not-clean-with-errors.txt",)),
    "kernel_log": (
        lambda t: kernlog.device_log(t, kernlog.parse_block_device("device sda1\ndisk sda\n")),
        ("kernlog/sata-sda1.txt",),
    ),
    "cgroup_read": (lambda t: docker_records.parse_cgroup_read(t, IDS), ()),
    "docker_time": (docker_records.parse_time, ()),
    "context_meta": (parse_context_meta, ()),
    "links": (netparse.parse_links, ("net/ip-link.txt", "net/ip-link-detail.txt")),
    "addresses": (netparse.parse_addresses, ("net/ip-addr.txt",)),
    "routes": (
        netparse.parse_routes,
        ("net/ip-route.txt", "net/ip-6-route.txt", "net/ip-route-get-local.txt"),
    ),
    "resolv_conf": (netparse.parse_resolv_conf, ("net/resolv-messy.conf",)),
    "nsswitch_hosts": (netparse.parse_nsswitch_hosts, ("net/nsswitch-debian.conf",)),
    "hosts_file": (
        lambda t: netparse.hosts_file_addresses(t, "web-01"),
        ("net/hosts-debian.txt",),
    ),
    "ss": (netparse.parse_ss_listening, ("net/ss-ltnup.txt", "net/ss-ltnup-with-header.txt")),
    "iptables_save": (firewall.parse_iptables_save, ("net/iptables-save-counters.txt",)),
    "nft_ruleset": (nftables.parse_nft_ruleset, ("net/nft-ruleset.txt",)),
    "nft_chains": (nftables.parse_nft_chains, ("net/nft-ruleset.txt",)),
    "held": (parse_held, ("storage/deleted-open.bin",)),
    "log_listing": (cleanup.parse_log_listing, ("cleanup/find-old-logs.bin",)),
    "open_files": (
        lambda t: cleanup.parse_open_files(t, "/var/log/app"),
        ("cleanup/open-files.bin",),
    ),
    "gzip_sample": (cleanup.parse_sample, ("storage/gzip-sample.txt",)),
    "df_space": (diskusage.parse_df, ("diskstats/df-local.txt",)),
    "sized_paths": (diskusage.parse_sized_paths, ("storage/du-root.bin",)),
    "docker_size": (dockerspace.parse_docker_size, ()),
    "docker_df_json": (dockerspace.parse_df_json, ("docker/df-json-28.2.txt",)),
    "docker_df_table": (dockerspace.parse_df_table, ("docker/df-table.txt",)),
    "prune_list": (dockerspace.parse_prune_list, ("storage/docker-prune-list.txt",)),
    "journal_files": (journal.parse_journal_files, ("journal/find-listing.txt",)),
    "proc_netstat": (netstat.parse_proc_netstat, ("services/proc-net-netstat.txt",)),
    "ss_listeners": (netstat.parse_ss_listeners, ("services/ss-ltnH.txt",)),
    "file_nr": (limits.parse_file_nr, ("services/file-nr.txt",)),
    "open_files_limit": (limits.parse_open_files_limit, ("services/proc-limits.txt",)),
    "process_limits": (limits.parse_process_limits, ()),
    "fd_counts": (limits.parse_fd_counts, ()),
    "grep_values": (limits.parse_grep_values, ()),
    "ping": (ping.parse_ping, ("services/ping.txt",)),
    "failed_logins": (lambda t: authlog.parse_failed_logins(t, 0, 2e9), ("services/auth.log",)),
    "access_log": (lambda t: accesslog.parse_access_log(t, 0), ()),
    "certificates": (read_certificates, ()),
    "audit_log": (_audit, ()),
    "printable": (printable, ()),
    "redact": (redact, ()),
}

CLEAN: dict[str, type[Exception]] = {"context_meta": ValueError, "certificates": ValueError}
"""The error a parser may raise on output it cannot read: `ParseError`, or what its
docstring names (a docker context's meta.json: ValueError, saying what is wrong)."""

DEEP_TOTAL = 100_000
PROFILES = {
    "quick": settings(
        max_examples=60,
        deadline=timedelta(seconds=1),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    ),
    "deep": settings(
        max_examples=math.ceil(DEEP_TOTAL / len(PARSERS)),
        deadline=timedelta(seconds=1),
        suppress_health_check=list(HealthCheck),
    ),
}
"""`quick` in the suite (60 examples a parser, about 3,000 in all); `deep` when
FLEETDECK_FUZZ=deep, 100,000 in all. The deadline is per example: a parser that takes a
second on a few KiB has a runaway loop or a regular expression that backtracks."""
PROFILE = PROFILES[os.environ.get("FLEETDECK_FUZZ", "quick")]


def _seed(name: str) -> str:
    return decoded((DATA / name).read_bytes())


def _mutated(seed: str) -> st.SearchStrategy[str]:
    """A recorded output with random edits: bytes replaced or inserted, a cut, lines
    shuffled or repeated, decoded again with replacement as a host's would be."""
    raw = seed.encode()

    @st.composite
    def edit(draw: st.DrawFn) -> str:
        data = bytearray(raw)
        for _ in range(draw(st.integers(0, 8))):
            at = draw(st.integers(0, len(data)))
            blob = draw(st.binary(min_size=1, max_size=8))
            if draw(st.booleans()) and at < len(data):
                data[at : at + len(blob)] = blob
            else:
                data[at:at] = blob
        lines = bytes(data).split(b"\n")
        if draw(st.booleans()):
            lines = draw(st.permutations(lines))
        if draw(st.booleans()) and lines:
            lines = lines[: draw(st.integers(0, len(lines)))]
        return decoded(b"\n".join(lines))

    return edit()


def host_output(seeds: tuple[str, ...]) -> st.SearchStrategy[str]:
    """What a host may send: any bytes, or a recorded output with edits; both decoded."""
    anything = st.binary(max_size=2048).map(decoded)
    texts = st.text(max_size=512)  # control characters, surrogate-free odd code points
    if not seeds:
        return st.one_of(anything, texts)
    return st.one_of(anything, texts, *(_mutated(_seed(s)) for s in seeds))


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_a_parser_of_host_output_gives_a_result_or_its_clean_error(name: str) -> None:
    parser, seeds = PARSERS[name]

    @PROFILE
    @given(host_output(seeds))
    def parse(text: str) -> None:
        with contextlib.suppress(CLEAN.get(name, ParseError)):
            parser(text)

    parse()


def test_the_seeds_are_read_by_their_parsers() -> None:
    """The recorded outputs parse as they are, each to something (a seed its parser reads
    as nothing would fuzz from no structure at all), so the edits start from real structure."""
    for name, (parser, seeds) in PARSERS.items():
        for seed in seeds:
            found = parser(_seed(seed))
            parts = found if isinstance(found, tuple) else (found,)
            assert any(part for part in parts), (name, seed, found)
