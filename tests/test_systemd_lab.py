"""The systemd lab itself: systemd is PID 1 in its own root, reached over real SSH, with the
units the services tests need in the states they need."""

from __future__ import annotations

from pathlib import Path

from sshd import SshClient, SshKeys
from systemd_host import SystemdHost


def test_lab_boots_systemd_reached_over_ssh(
    systemd_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> None:
    client = SshClient(tmp_path / "client", ssh_keys.client_key)
    client.known_hosts.write_text(systemd_host.known_hosts_line + "\n")
    pid1 = client.run(systemd_host, "cat", "/proc/1/comm")  # type: ignore[arg-type]
    assert pid1.returncode == 0, pid1.stderr
    assert pid1.stdout.strip() == "systemd"
    state = client.run(systemd_host, "systemctl", "is-active", "fd-healthy", "fd-broken")  # type: ignore[arg-type]
    assert state.stdout.split() == ["active", "failed"], state.stdout + state.stderr
