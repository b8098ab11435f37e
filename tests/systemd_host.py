"""A real systemd host for tests: systemd as PID 1 in a Debian root of its own, reached over SSH.

- `debian_root()`: a minimal Debian root (debootstrap `--variant=minbase` with systemd, dbus and
  openssh-server), made once per machine and kept under CACHE, keyed on the suite and package
  list. A half-made root is never used: it is built in a temporary directory and renamed into
  place, under a file lock so parallel runs build it once.
- `SystemdHost`: that root, seen through an overlay of this test run's own (the cached root is
  never written), booted with `systemd-nspawn --boot` inside a network namespace of a
  `NetnsLab` (tests/sshd.py), so it sits on the lab's bridge like the sshd hosts. Its own sshd
  (the root's ssh.service, started by its own systemd) serves a host key and authorized_keys
  the test wrote, so fleetdeck reaches it over real SSH exactly as it reaches the other hosts.
  nspawn runs with `--register=no --keep-unit`: this machine's systemd (if it has one) is
  never asked to start anything; the container's PID, mount, UTS and IPC namespaces are its own.
- The units inside (LAB_UNITS): one healthy, one that fails at boot, one that requires it
  (so it cannot start either), one that flaps (Restart=always, exits after a moment), one
  that fails until its stale lock file is removed (the clean-state command). Their error
  lines reach the container's journald at priority err, so `journalctl -p err` has real
  lines.
- The fixture `systemd_host`: one booted host for the session.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import asyncssh
import pytest

from fleetdeck.hosts.ssh import SSHShell

from sshd import NetnsLab, SshdError, SshKeys, _kill_tree, _write_key_pair, ssh_shell

CACHE = Path(os.environ.get("FLEETDECK_TEST_CACHE", "/var/cache/fleetdeck-tests"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3",
    "fail2ban", "python3-systemd", "nftables", "netbase", "curl",
)  # fmt: skip
"""What the root needs beyond minbase: systemd to boot, dbus for systemctl, sshd to be
reached, python3 for the network wizard's connect probe (the service wizard reuses it);
fail2ban for the security review's jails, with what debootstrap leaves out of its
Recommends: python3-systemd for its journal backend and nftables for its ban action, and
netbase, whose /etc/services names the `ssh` port its rules match (every real Debian has it);
curl, the HTTP health probe's first tool, as on most servers (benchmarks/services_sweep.py
compares it with a curl loop there).
fail2ban is masked in every host but the one that asks for it (`SystemdHost(fail2ban=...)`):
a ban on the lab client's address would lock every other test out."""
BUILD_TIMEOUT = 1800.0
"""debootstrap downloads ~60 MB and unpacks it; on a slow CI mirror it can take minutes."""
BOOT_TIMEOUT = 90.0
"""From nspawn's start to sshd answering and systemd done starting its units."""

STALE_LOCK = "/var/lib/fd-recover/stale.lock"
"""The file that keeps fd-recover.service from starting; removing it is its clean state."""

LAB_UNITS: Mapping[str, str] = {
    "fd-healthy.service": """\
[Unit]
Description=fleetdeck lab: a service that stays up

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
""",
    "fd-broken.service": """\
[Unit]
Description=fleetdeck lab: a service that fails at start

[Service]
Type=exec
ExecStart=/bin/sh -c \\
  'echo "<3>fd-broken: cannot open /srv/data/shard-4711.db: error 13 at 0x7ffd1c2a" >&2; exit 3'

[Install]
WantedBy=multi-user.target
""",
    "fd-flappy.service": """\
[Unit]
Description=fleetdeck lab: a service that crashes a moment after each start
StartLimitIntervalSec=0

[Service]
# The address stays one (its last part under 250) however high the PID grows, so the log's
# folding sees one kind of line at every turn.
ExecStart=/bin/sh -c 'sleep 1; octet=$$(($$$$ %% 250)); \\
  echo "<3>fd-flappy: lost connection to 10.0.0.$$octet after $$$$ ms" >&2; exit 1'
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
""",
    "fd-needy.service": """\
[Unit]
Description=fleetdeck lab: a service that requires the failing one
Requires=fd-broken.service
After=fd-broken.service

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
""",
    "fd-recover.service": f"""\
[Unit]
Description=fleetdeck lab: a service that starts once its stale lock is gone

[Service]
ExecStartPre=/bin/sh -c 'if [ -e {STALE_LOCK} ]; then \\
  echo "<3>fd-recover: stale lock {STALE_LOCK} held" >&2; exit 1; fi'
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
""",
}

FAIL2BAN_JAIL_FILE = "fleetdeck.local"
"""A host's own jail settings, in /etc/fail2ban/jail.d (read after defaults-debian.conf)."""

SSHD_CONFIG = """\
# fleetdeck test lab: the test's host key and client key only.
HostKey /etc/ssh/fleetdeck_host_ed25519_key
AuthorizedKeysFile /etc/ssh/fleetdeck_authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


def require_systemd_tools() -> None:
    """Fail (never skip) saying how to install what the lab needs."""
    for binary, package in {
        "debootstrap": "debootstrap",
        "systemd-nspawn": "systemd-container",
        "ip": "iproute2",
    }.items():
        if shutil.which(binary) is None:
            pytest.fail(
                f"{binary} is not installed: run ./scripts/test (it installs {package}) "
                f"or apt-get install {package}"
            )
    if os.geteuid() != 0:
        pytest.fail("the systemd lab needs root for debootstrap, overlays and namespaces")


def debian_root() -> Path:
    """The cached Debian root, built first if missing (see the module's docstring)."""
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    root = CACHE / f"debroot-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"debroot-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "lib/systemd/systemd").exists():
            return root
        for left in CACHE.glob(f"debroot-{key}.building-*"):  # a build killed midway
            shutil.rmtree(left, ignore_errors=True)  # (the lock is ours: nobody builds now)
        building = CACHE / f"debroot-{key}.building-{os.getpid()}"
        command = [
            "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
            SUITE, str(building), MIRROR,
        ]  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise SshdError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr}")
        shutil.rmtree(root, ignore_errors=True)
        building.rename(root)
        print(f"built {root} in {time.monotonic() - started:.0f} s")
        return root


class SystemdHost:
    """A booted systemd container on a lab's bridge; `close()` powers it off and removes it.

    It has what `tests.sshd.ssh_shell` and `write_known_hosts` read from an sshd host:
    `name`, `address`, `port`, `known_hosts_line`."""

    def __init__(
        self,
        lab: NetnsLab,
        keys: SshKeys,
        workdir: Path,
        name: str = "sysd",
        units: Mapping[str, str] = LAB_UNITS,
        fail2ban: str | None = None,
    ) -> None:
        require_systemd_tools()
        self.units = units
        """Unit files written to /etc/systemd/system and enabled (the benchmark adds many)."""
        self.fail2ban = fail2ban
        """The text of /etc/fail2ban/jail.d/fleetdeck.local, and fail2ban started at boot;
        None: fail2ban.service masked (installed, never started)."""
        self.name = name
        self.port = 22
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.merged = workdir / "root"
        self.log_path = workdir / "nspawn.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._mounted = False
        lower = debian_root()
        self.netns, address, _port = lab.add_namespace(name)
        self.address = str(address)
        try:
            self._mount_overlay(lower)
            self._host_key = self._prepare(keys)
            self._boot()
        except BaseException:
            self.close()
            raise

    @property
    def known_hosts_line(self) -> str:
        algorithm, blob = self._host_key.export_public_key("openssh").decode().split()[:2]
        return f"{self.address} {algorithm} {blob}"

    def path(self, inside: str) -> Path:
        """Where a path of the container is seen from here (through the overlay)."""
        return self.merged / inside.lstrip("/")

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Power the container off (SIGTERM to nspawn asks its systemd to), kill what is left
        after a bounded wait, and unmount the overlay; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
                process.wait(timeout=5)
        if self._mounted:
            subprocess.run(["umount", "-l", str(self.merged)], check=False, timeout=30)
            self._mounted = False

    # -- internals

    def _mount_overlay(self, lower: Path) -> None:
        upper, work = self.workdir / "upper", self.workdir / "work"
        for directory in (upper, work, self.merged):
            directory.mkdir(exist_ok=True)
        options = f"lowerdir={lower},upperdir={upper},workdir={work}"
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self._mounted = True

    def _prepare(self, keys: SshKeys) -> asyncssh.SSHKey:
        """Host key, authorized key, hostname and the lab's units, written into the overlay."""
        ssh = self.path("/etc/ssh")
        host_key = _write_key_pair(ssh / "fleetdeck_host_ed25519_key", f"root@{self.name}")
        shutil.copyfile(keys.authorized_keys, ssh / "fleetdeck_authorized_keys")
        (ssh / "sshd_config.d").mkdir(exist_ok=True)
        (ssh / "sshd_config.d/fleetdeck.conf").write_text(SSHD_CONFIG)
        self.path("/etc/hostname").write_text(f"{self.name}\n")
        # minbase has no locale file, and pam_env logs an error for it at every SSH login:
        # that would be the journal's newest error line whenever a test had just logged in.
        self.path("/etc/default/locale").write_text("LANG=C.UTF-8\n")
        units = self.path("/etc/systemd/system")
        wants = units / "multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        for unit, text in self.units.items():
            (units / unit).write_text(text)
            (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
        self._set_up_fail2ban(units)
        lock = self.path(STALE_LOCK)
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("pid 4242\n")
        return host_key

    def _set_up_fail2ban(self, units: Path) -> None:
        """Mask fail2ban, or write the host's jail file and start it at boot. The package's
        postinst enabled it in the cached root; a mask in the overlay wins over that."""
        service = units / "fail2ban.service"
        if self.fail2ban is None:
            service.symlink_to("/dev/null")
            return
        self.path(f"/etc/fail2ban/jail.d/{FAIL2BAN_JAIL_FILE}").write_text(self.fail2ban)
        wanted = units / "multi-user.target.wants/fail2ban.service"
        if not wanted.is_symlink():
            wanted.symlink_to("/lib/systemd/system/fail2ban.service")

    def _boot(self) -> None:
        command = [
            "systemd-nspawn", "--boot", "--quiet", "--register=no", "--keep-unit",
            f"--directory={self.merged}", f"--machine={self.netns[-40:]}",
            f"--network-namespace-path=/run/netns/{self.netns}", "--console=pipe",
        ]  # fmt: skip
        if self.fail2ban is not None:
            # fail2ban's ban action writes nft rules: in the container's own network
            # namespace (the lab's), which nspawn leaves without CAP_NET_ADMIN by default.
            command.append("--capability=CAP_NET_ADMIN")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise SshdError(f"systemd-nspawn for {self.name} exited:\n{self.log()[-4000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.address, self.port), timeout=1) as probe,
            ):
                probe.settimeout(2)
                if probe.recv(4).startswith(b"SSH-"):
                    return
            if time.monotonic() > deadline:
                raise SshdError(
                    f"{self.name}'s sshd did not answer within {BOOT_TIMEOUT:.0f} s of boot:\n"
                    f"{self.log()[-4000:]}"
                )
            time.sleep(0.2)


@pytest.fixture(scope="session")
def systemd_host(
    tmp_path_factory: pytest.TempPathFactory, netns_lab: NetnsLab, ssh_keys: SshKeys
) -> Iterator[SystemdHost]:
    """One booted systemd host on the session's namespace lab (LAB_UNITS inside)."""
    host = SystemdHost(netns_lab, ssh_keys, tmp_path_factory.mktemp("systemd-host"))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
async def lab_shell(
    systemd_host: SystemdHost, ssh_keys: SshKeys, tmp_path: Path
) -> AsyncIterator[SSHShell]:
    """fleetdeck's SSH shell on the booted systemd host, as a test's `ctx.shell`."""
    known = tmp_path / "known_hosts"
    async with ssh_shell(systemd_host, ssh_keys, known, "sysd") as shell:  # type: ignore[arg-type]
        yield shell
