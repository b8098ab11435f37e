"""`fleetdeck check -i INVENTORY` across real hosts: one entry per host, an unreachable one
says why and counts as CRITICAL, and `--host` / `--tag` pick hosts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import fleetdeck_bin
from sshd import NetnsHost, NetnsLab, SshKeys, write_known_hosts


def _inventory(tmp_path: Path, keys: SshKeys, hosts: list[NetnsHost], tags: list[str]) -> Path:
    entries = "".join(
        f'[[host]]\nname = "{h.name}"\naddress = "{h.address}"\nport = {h.port}\n'
        f'tags = ["{tag}"]\n\n'
        for h, tag in zip(hosts, tags, strict=True)
    )
    path = tmp_path / "fleet.toml"
    path.write_text(f'[defaults]\nuser = "root"\nidentity_file = "{keys.client_key}"\n\n{entries}')
    return path


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [fleetdeck_bin(), "check", "--json", "--interval", "0.3", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_across_the_fleet_reports_each_host_and_the_unreachable_one_as_critical(
    netns_hosts,
    netns_lab: NetnsLab,
    ssh_keys: SshKeys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    up: list[NetnsHost] = netns_hosts(2)
    down = netns_lab.add_host()
    try:
        down.stop()
        hosts = [*up, down]
        inventory = _inventory(tmp_path, ssh_keys, hosts, ["web", "web", "db"])
        known = tmp_path / "known_hosts"
        write_known_hosts(known, *hosts)
        result = _check("-i", str(inventory), "--known-hosts", str(known))
        report = {h["name"]: h for h in json.loads(result.stdout)["hosts"]}
        assert list(report) == [h.name for h in hosts]
        for host in up:
            entry = report[host.name]
            assert entry["reachable"] is True
            checks = {f["check"] for f in entry["findings"]}
            assert {"cpu.usage", "mem.usage", "disk.space", "load.per_core"} <= checks
        lost = report[down.name]
        assert lost["reachable"] is False and lost["findings"] == []
        assert "refused" in lost["error"] and down.name in lost["error"]
        assert result.returncode == 2

        only = _check("-i", str(inventory), "--known-hosts", str(known), "--tag", "web")
        assert [h["name"] for h in json.loads(only.stdout)["hosts"]] == [h.name for h in up]
        one = _check("-i", str(inventory), "--known-hosts", str(known), "--host", up[1].name)
        assert [h["name"] for h in json.loads(one.stdout)["hosts"]] == [up[1].name]
        (entry,) = json.loads(one.stdout)["hosts"]
        statuses = {f["status"] for f in entry["findings"]}  # load is the machine's own
        worst = (
            2
            if "CRIT" in statuses
            else 1
            if "WARN" in statuses
            else 3
            if "UNKNOWN" in statuses
            else 0
        )
        assert one.returncode == worst
        missing = _check("-i", str(inventory), "--host", "nope")
        assert missing.returncode == 3 and "no host 'nope'" in missing.stderr
    finally:
        netns_lab.remove_host(down)


def test_an_unknown_host_key_makes_that_host_unreachable_with_the_fingerprint(
    netns_hosts,
    ssh_keys: SshKeys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    (host,) = netns_hosts(1)
    inventory = _inventory(tmp_path, ssh_keys, [host], ["web"])
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    result = _check("-i", str(inventory), "--known-hosts", str(known))
    (entry,) = json.loads(result.stdout)["hosts"]
    assert entry["reachable"] is False
    assert "host key unknown" in entry["error"] and host.host_key_fingerprint in entry["error"]
    accepted = _check("-i", str(inventory), "--known-hosts", str(known), "--accept-new")
    assert json.loads(accepted.stdout)["hosts"][0]["reachable"] is True
    assert host.address in known.read_text()


def test_a_host_that_answers_garbage_is_unknown_and_the_others_are_not_affected(
    netns_hosts,
    ssh_keys: SshKeys,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A real sshd whose ForceCommand speaks fleetdeck's framing but sends nonsense in
    place of /proc: that host is UNKNOWN with the reason, reachable; the healthy one is fine."""
    from sshd import start_loopback_sshd

    liar = tmp_path / "liar.sh"
    liar.write_text(
        "#!/bin/sh\n"
        "while read -r request nonce; do\n"
        "  printf '\\n@@fleetdeck:stat\\nthis is not /proc/stat\\n@@fleetdeck:end\\n'\n"
        "  printf '\\n@@fleetdeck:@done %s\\n' \"$nonce\"\n"
        "done\n"
    )
    liar.chmod(0o755)
    garbage = start_loopback_sshd(
        tmp_path / "liar", ssh_keys, name="liar", extra_config=[f"ForceCommand {liar}"]
    )
    try:
        (good,) = netns_hosts(1)
        hosts = [good, garbage]
        path = tmp_path / "fleet.toml"
        path.write_text(
            f'[defaults]\nuser = "root"\nidentity_file = "{ssh_keys.client_key}"\n\n'
            + "".join(
                f'[[host]]\nname = "{h.name}"\naddress = "{h.address}"\nport = {h.port}\n\n'
                for h in hosts
            )
        )
        known = tmp_path / "known_hosts"
        write_known_hosts(known, *hosts)
        result = _check("-i", str(path), "--known-hosts", str(known))
        report = {h["name"]: h for h in json.loads(result.stdout)["hosts"]}
        assert report[good.name]["reachable"] is True
        # Nothing of the healthy host may be UNKNOWN: its disks are this VM's virtio ones
        # (SMART not applicable), and Docker's space is measured, or absent, not unknown.
        unknown = [f for f in report[good.name]["findings"] if f["status"] == "UNKNOWN"]
        assert unknown == [], unknown
        # The liar's sshd still forwards its Docker socket (this machine's), so its
        # container checks run as on any host. Its sample is the one UNKNOWN saying what
        # could not be read, and the domains that ask it through its shell (services) get
        # no answer from it: UNKNOWN with that reason, never a false OK.
        liars = report["liar"]["findings"]
        (finding,) = [f for f in liars if f["check"] == "host.sample"]
        asked = [f for f in liars if not f["check"].startswith(("container.", "host."))]
        assert all(f["status"] == "UNKNOWN" and "no answer" in f["summary"] for f in asked), asked
        assert report["liar"]["reachable"] is True
        assert (finding["check"], finding["status"]) == ("host.sample", "UNKNOWN")
        assert "liar: unreadable answer: /proc/stat" in finding["summary"]
        statuses = {f["status"] for h in report.values() for f in h["findings"]}
        expected = 2 if "CRIT" in statuses else 1 if "WARN" in statuses else 3
        assert result.returncode == expected  # Nagios: CRIT > WARN > UNKNOWN across hosts
    finally:
        garbage.stop()
