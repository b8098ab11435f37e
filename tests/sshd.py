"""Real OpenSSH sshd for tests: on loopback, and on extra hosts in network namespaces.

What is here, smallest first:

- `SshKeys`: a client key pair that every sshd here authorizes, and a "wrong" one it does not.
- `SshdHost`: one running `/usr/sbin/sshd -D -e` with its own temporary host key, config and
  hostname (`unshare --uts`). It can be stopped, started again with the same key and port, and
  given a new host key, for the "host went away", "came back" and "key changed" stories.
- `NetnsHost`: an `SshdHost` inside its own network namespace, with a link that can be cut
  (`partition()`) to make connections time out instead of being refused.
- `NetnsLab`: a private IPv4 /24 behind one bridge in a "switch" namespace of the lab's own,
  which the runner joins with one veth; it makes namespace hosts on that bridge, and "hidden"
  hosts wired only to another namespace host, which the test runner can reach only with
  ProxyJump. It always removes everything it made.
- `SshClient`: the real `ssh` client (and asyncssh options) with a known_hosts file and an
  identity of the test's choosing, never the developer's own ~/.ssh.

And the pytest fixtures over them: `ssh_keys`, `loopback_sshd`, `fresh_loopback_sshd`,
`netns_lab`, `netns_hosts`, `jump_topology` and `ssh_client`.

Names of everything a lab creates in the root namespace (the runner's veth end, namespaces)
start with `fdt<pid><tag>`, so parallel runs never collide, and a run cleans up what a crashed
run (a pid that is no longer a live Python process) left behind.

No lab packet crosses the root namespace's FORWARD chain: hosts talk to each other over the
switch namespace's bridge, and the runner talks to them from its own veth end (root OUTPUT
and INPUT only). So a root firewall that drops forwarded traffic, as Docker's default
`iptables -P FORWARD DROP` with br_netfilter does, leaves the labs alone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh
import pytest

if TYPE_CHECKING:
    from fleetdeck.hosts.ssh import SSHShell

SSHD = "/usr/sbin/sshd"
"""sshd re-executes itself for each connection, so it must be started by absolute path."""

NAME_PREFIX = "fdt"
"""Start of every name a lab creates: `fdt<pid><tag>`."""

LAB_SUPERNET = ipaddress.IPv4Network("10.231.0.0/16")
"""Labs take a free /24 from here (each run and each lab its own, none overlapping a route)."""

START_TIMEOUT = 10.0
"""How long sshd may take to listen before a start counts as failed."""

_STALE_NAME = re.compile(rf"^{NAME_PREFIX}(\d+)([a-z])(?:gw|br|v\d+|-.+)$")
"""`gw` the runner's veth end, `-...` namespaces; `br` and `v<n>` are root bridges and
ports of labs from before the switch namespace, still cleaned if a crash left them."""

NETNS_ETC = Path("/etc/netns")
"""`ip netns exec NS` binds /etc/netns/NS/<file> over /etc/<file>."""

SWITCH_NAME = "switch"
"""The lab's switch namespace is `fdt<pid><tag>-switch`; no host may take that name."""

SWITCH_BRIDGE = "br0"
"""The bridge inside a lab's switch namespace (names there are the lab's alone)."""
_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_live_tags: set[str] = set()


class SshdError(RuntimeError):
    """sshd or the network around it could not be set up; the message says what and why."""


# --------------------------------------------------------------------------- requirements


def require_sshd_tools(*, netns: bool = False) -> None:
    """Fail (never skip) with the way to set things up when root or a binary is missing."""
    needed = {SSHD: "openssh-server", "ssh": "openssh-client", "unshare": "util-linux"}
    if netns:
        needed["ip"] = "iproute2"
    for binary, package in needed.items():
        if shutil.which(binary) is None:
            pytest.fail(
                f"{binary} is not installed: run ./scripts/test (it installs {package}) "
                f"or apt-get install {package}"
            )
    if os.geteuid() != 0:
        what = "network namespaces and " if netns else ""
        pytest.fail(f"the sshd fixtures need root for {what}sshd: run ./scripts/test as root")


def _ensure_privsep_dir() -> None:
    """Debian's sshd refuses to start without /run/sshd, which only its service creates."""
    path = Path("/run/sshd")
    if not path.is_dir():
        path.mkdir(mode=0o755, parents=True, exist_ok=True)


# --------------------------------------------------------------------------- keys


def _write_key_pair(path: Path, comment: str) -> asyncssh.SSHKey:
    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path.with_name(path.name + ".pub")))
    return key


def _public_line(key: asyncssh.SSHKey) -> str:
    """`ssh-ed25519 AAAA...` without the comment: the form known_hosts lines use."""
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{algorithm} {blob}"


@dataclass(frozen=True)
class SshKeys:
    """Client key pairs for the whole session.

    `client_key` is authorized by every sshd the fixtures start (its public half is the
    `authorized_keys` file their config points at); `wrong_key` is a valid key nobody
    authorizes, for the auth-failed story.
    """

    directory: Path
    client_key: Path
    client_public_key: Path
    wrong_key: Path
    wrong_public_key: Path
    authorized_keys: Path

    @classmethod
    def create(cls, directory: Path) -> SshKeys:
        directory.mkdir(parents=True, exist_ok=True)
        client = _write_key_pair(directory / "id_ed25519", "fleetdeck-test-client")
        _write_key_pair(directory / "wrong_ed25519", "fleetdeck-test-wrong")
        authorized = directory / "authorized_keys"
        authorized.write_bytes(client.export_public_key("openssh"))
        return cls(
            directory=directory,
            client_key=directory / "id_ed25519",
            client_public_key=directory / "id_ed25519.pub",
            wrong_key=directory / "wrong_ed25519",
            wrong_public_key=directory / "wrong_ed25519.pub",
            authorized_keys=authorized,
        )


# --------------------------------------------------------------------------- processes


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _kill_tree(root: int) -> None:
    """SIGKILL a process and everything under it; each is stopped first so none forks away.

    sshd puts every connection in its own session, so a process group kill would miss them.
    """
    frozen: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)
        todo.extend(_children_by_parent().get(pid, []))
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _wait_gone(pids: Sequence[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def _pdeathsig_prefix() -> list[str]:
    """Make sshd die with the test process if that one crashes.

    The kernel sends the signal when the *thread* that started the child exits, so it is only
    set from the main thread: an sshd started from a worker thread just lives until stop().
    """
    if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "KILL", "--"]
    return []


# --------------------------------------------------------------------------- sshd


class SshdHost:
    """One real sshd: where it listens, which host key it has, and how to stop and start it.

    The process is `sshd -D -e` as a direct child (its pid is `pid`), inside `unshare --uts`
    so `hostname` over SSH answers `name`, and inside the network namespace `netns` when one
    is given. Its log (stderr) goes to `log_path`. Everything lives in `workdir`.
    """

    def __init__(
        self,
        *,
        name: str,
        address: str,
        port: int,
        workdir: Path,
        authorized_keys: Path,
        netns: str | None = None,
        reachable: bool = True,
        extra_config: Sequence[str] = (),
    ) -> None:
        if not _HOSTNAME.match(name):
            raise ValueError(f"host name {name!r}: use lowercase letters, digits and '-'")
        self.name = name
        self.address = address
        self.port = port
        self.workdir = workdir
        self.authorized_keys = authorized_keys
        self.netns = netns
        self.reachable = reachable
        """False when the test runner has no route to it (a host behind a jump host)."""
        self.extra_config = tuple(extra_config)
        """More sshd_config lines (ForceCommand for a host that answers nonsense)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host_key_path = workdir / "ssh_host_ed25519_key"
        self.config_path = workdir / "sshd_config"
        self.pid_file = workdir / "sshd.pid"
        self.log_path = workdir / "sshd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._host_key = _write_key_pair(self.host_key_path, f"root@{name}")
        self._write_config()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        where = f" in netns {self.netns}" if self.netns else ""
        return f"<SshdHost {self.name} {self.address}:{self.port}{where} {state}>"

    # -- what a client needs to know

    @property
    def host_key_paths(self) -> tuple[Path, ...]:
        return (self.host_key_path,)

    @property
    def host_public_key(self) -> str:
        """The host key as `ssh-ed25519 AAAA...`."""
        return _public_line(self._host_key)

    @property
    def host_key_fingerprint(self) -> str:
        """`SHA256:...`, as OpenSSH prints it."""
        return self._host_key.get_fingerprint("sha256")

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names this host in known_hosts: `addr`, or `[addr]:port` off port 22."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    @property
    def known_hosts_line(self) -> str:
        return f"{self.known_hosts_name} {self.host_public_key}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running and self._process else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self, since: int = 0) -> str:
        """What sshd has written to stderr (with -e, its whole log) from byte `since` on."""
        try:
            data = self.log_path.read_bytes()[since:]
        except FileNotFoundError:
            return ""
        return data.decode(errors="replace").replace("\r\n", "\n")

    # -- lifecycle

    def start(self) -> None:
        """Start sshd (same host key and port as before) and wait until it listens."""
        if self.is_running:
            return
        _ensure_privsep_dir()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        inner = [
            "unshare",
            "--uts",
            "--",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            SSHD,
            "-D",
            "-e",
            "-f",
            str(self.config_path),
        ]
        netns = ["ip", "netns", "exec", self.netns] if self.netns else []
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*_pdeathsig_prefix(), *netns, *inner],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._wait_listening(offset)

    def stop(self, *, drop_sessions: bool = True) -> None:
        """Kill sshd, so new connections are refused.

        With `drop_sessions` (the default) the connections it already serves die too, as when
        a host goes away; without it they live on, as when only the listener restarts.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if drop_sessions:
                _kill_tree(process.pid)
            else:
                process.kill()
        process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def rotate_host_key(self) -> None:
        """Give the host a new host key (restarting sshd if it runs): the "key changed" story."""
        self._host_key = _write_key_pair(self.host_key_path, f"root@{self.name}")
        if self.is_running:
            self.restart()

    # -- internals

    def _write_config(self) -> None:
        self.config_path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    "AddressFamily inet",
                    f"HostKey {self.host_key_path}",
                    f"PidFile {self.pid_file}",
                    f"AuthorizedKeysFile {self.authorized_keys}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "AllowTcpForwarding yes",
                    # The fan-out benchmark opens many connections at once.
                    "MaxStartups 200:30:400",
                    "MaxSessions 64",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    # Root's ~/.bashrc here runs `pyenv init`, whose rehash waits 60 s on a
                    # lock that a session killed mid-rehash (a host removed by a test) leaves
                    # behind: every later command would then stall past its timeout.
                    "SetEnv PYENV_REHASH_TIMEOUT=1",
                    *self.extra_config,
                    "",
                ]
            )
        )

    def _wait_listening(self, offset: int) -> None:
        """Bounded wait for sshd's "Server listening on" line, then (when the runner can
        reach it) for the port to accept a connection."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            text = self.log(offset)
            if "Server listening on" in text:
                break
            if self._process.poll() is not None:
                self._process = None
                raise SshdError(f"sshd for {self.name} exited while starting:\n{text}")
            if time.monotonic() > deadline:
                self.stop()
                raise SshdError(
                    f"sshd for {self.name} did not listen on {self.address}:{self.port} "
                    f"within {START_TIMEOUT:.0f}s; its log:\n{self.log(offset)}"
                )
            time.sleep(0.005)
        if not self.reachable:
            return
        while True:
            try:
                socket.create_connection((self.address, self.port), timeout=1).close()
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise SshdError(
                        f"sshd for {self.name} logs that it listens, but "
                        f"{self.address}:{self.port} does not accept connections ({error}); "
                        f"its log:\n{self.log(offset)}"
                    ) from error
                time.sleep(0.01)


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_loopback_sshd(
    workdir: Path, keys: SshKeys, *, name: str = "loopback", extra_config: Sequence[str] = ()
) -> SshdHost:
    """A running sshd on 127.0.0.1 at a free port; the caller stops it."""
    require_sshd_tools()
    host = SshdHost(
        name=name,
        address="127.0.0.1",
        port=free_loopback_port(),
        workdir=workdir,
        authorized_keys=keys.authorized_keys,
        extra_config=extra_config,
    )
    host.start()
    return host


# --------------------------------------------------------------------------- namespaces


def _ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise SshdError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def _ip_json(*args: str) -> list[dict[str, Any]]:
    text = _ip("-j", *args).strip()
    return json.loads(text) if text else []


def netns_names() -> list[str]:
    return [entry["name"] for entry in _ip_json("netns", "list")]


def link_names() -> list[str]:
    """Links in the root namespace."""
    return [entry["ifname"] for entry in _ip_json("link", "show")]


def _netns_pids(netns: str) -> list[int]:
    return [int(pid) for pid in _ip("netns", "pids", netns, check=False).split()]


def _kill_netns(netns: str) -> None:
    """Kill every process in a namespace and delete it, and its /etc/netns files."""
    pids = _netns_pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pids)
    _ip("netns", "delete", netns, check=False)
    shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)


def _is_live_python(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"python" in cmdline or b"pytest" in cmdline


def clean_stale() -> list[str]:
    """Remove namespaces and links that labs of crashed runs left behind.

    Anything named `fdt<pid><tag>...` goes, unless `<pid>` is a live Python process (a run in
    parallel) or it belongs to a live lab of this process. Returns what was removed.
    """

    def stale(name: str) -> bool:
        match = _STALE_NAME.match(name)
        if match is None:
            return False
        pid, tag = int(match[1]), match[2]
        if pid == os.getpid():
            return tag not in _live_tags
        return not _is_live_python(pid)

    removed: list[str] = []
    # Root-side veth ends first (each takes its peer along), then bridges, then namespaces.
    for link in sorted(filter(stale, link_names()), key=lambda name: name.endswith("br")):
        _ip("link", "delete", link, check=False)
        removed.append(link)
    for netns in filter(stale, netns_names()):
        _kill_netns(netns)
        removed.append(netns)
    return removed


class NetnsHost(SshdHost):
    """A host in its own network namespace, with its own address and hostname.

    `uplink` is the far end of the veth that carries its traffic, and the namespace it is in:
    `(switch_netns, port)` for its port on the lab bridge, `(jump_netns, ifname)` for a host
    behind a jump host.
    """

    def __init__(self, *, uplink: tuple[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uplink = uplink

    def partition(self) -> None:
        """Cut the host's link: its packets are dropped, so connections time out."""
        self._set_uplink("down")

    def heal(self) -> None:
        self._set_uplink("up")

    def _set_uplink(self, state: str) -> None:
        netns, link = self.uplink
        _ip("-n", netns, "link", "set", link, state)


@dataclass(frozen=True)
class JumpTopology:
    """`hidden` is reachable only through `jump` (`ssh -J jump hidden`), never directly."""

    jump: NetnsHost
    hidden: NetnsHost


class NetnsLab:
    """A private IPv4 network of namespace hosts, joined by one bridge in a namespace of its own.

    The bridge lives in the lab's switch namespace (`switch`), so traffic between hosts is
    bridged there and never reaches the root namespace's FORWARD chain. The runner joins it
    with one veth, `gateway_link`, whose root end holds `gateway`; hosts get ports on the
    bridge, addresses from `.10` up, and listen on port 22. A hidden host (`add_hidden_host`)
    is wired by its own veth pair only to its jump host's namespace, with /32 addresses from
    the top of the same subnet: the runner routes that subnet to the switch, where nobody
    answers for it, so a direct connection times out without a packet leaving the lab.

    Namespace hosts have no default route: they can reach only the lab. `close()` (or leaving
    the `with` block) removes every process, namespace, veth and the bridge, even after a
    failed setup.
    """

    def __init__(
        self, workdir: Path, keys: SshKeys, *, tag: str | None = None, prefixlen: int = 24
    ) -> None:
        require_sshd_tools(netns=True)
        self.workdir = workdir
        self.keys = keys
        self.tag = tag or self._free_tag()
        if self.tag in _live_tags or not re.fullmatch("[a-z]", self.tag):
            raise ValueError(f"lab tag {self.tag!r} is in use or not one lowercase letter")
        _live_tags.add(self.tag)
        self.prefix = f"{NAME_PREFIX}{os.getpid()}{self.tag}"
        self.switch = f"{self.prefix}-{SWITCH_NAME}"
        self.gateway_link = f"{self.prefix}gw"
        if len(self.gateway_link) > 15:
            raise SshdError(f"interface name {self.gateway_link} is longer than Linux allows")
        self.hosts: list[NetnsHost] = []
        self._closed = False
        self._next_port = 0
        try:
            clean_stale()
            self._add_switch()
            self.subnet = self._claim_subnet(prefixlen)
        except BaseException:
            self.close()
            raise
        self.gateway = self.subnet[1]
        self._next_low = 10
        self._next_high = self.subnet.num_addresses - 2

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetnsLab {self.prefix} {self.subnet} {len(self.hosts)} hosts>"

    # -- hosts

    def add_host(self, name: str | None = None, *, etc: Mapping[str, str] = {}) -> NetnsHost:
        """A new namespace host on the bridge, sshd running on port 22 of its address.

        `etc` maps file names to text for /etc/netns/<namespace>/ (`resolv.conf`, `hosts`,
        `nsswitch.conf`): `ip netns exec` binds them over /etc for sshd, and so for every
        SSH session on the host. They are bound by inode: rewrite them in place, never by
        rename. They go when the namespace goes.
        """
        name = self._check_new_name(name or self._free_name("ns"))
        netns, address, port = self.add_namespace(name, etc=etc)
        return self._start_host(name, address, netns, uplink=(self.switch, port), reachable=True)

    def add_namespace(
        self, name: str, *, etc: Mapping[str, str] = {}
    ) -> tuple[str, ipaddress.IPv4Address, str]:
        """A namespace `fdt<pid><tag>-NAME` on the bridge with the next address and nothing
        running in it: (namespace, address, its port on the switch). `add_host` starts sshd
        there; a booted systemd (tests/systemd_host.py) brings its own. `close()` removes it."""
        address = self._allocate(low=True)
        netns, port = f"{self.prefix}-{name}", self._port_name()
        self._add_netns(netns)
        if etc:
            (NETNS_ETC / netns).mkdir(parents=True, exist_ok=True)
        for file, text in etc.items():
            (NETNS_ETC / netns / file).write_text(text)
        _ip(
            "-n", self.switch, "link", "add", port, "type", "veth",
            "peer", "name", "eth0", "netns", netns,
        )  # fmt: skip
        _ip("-n", self.switch, "link", "set", port, "master", SWITCH_BRIDGE, "up")
        _ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        return netns, address, port

    def add_hosts(self, count: int) -> list[NetnsHost]:
        return [self.add_host() for _ in range(count)]

    def add_hidden_host(self, behind: NetnsHost, name: str | None = None) -> NetnsHost:
        """A host wired only to `behind`'s namespace: the runner needs ProxyJump to reach it."""
        if behind.netns is None or behind not in self.hosts:
            raise ValueError(f"{behind!r} is not a host of this lab")
        name = self._check_new_name(name or self._free_name("hidden"))
        address, jump_side = self._allocate(low=False), self._allocate(low=False)
        netns = f"{self.prefix}-{name}"
        self._add_netns(netns)
        inner = f"to-{name}"[:15]
        _ip(
            "link", "add", inner, "netns", behind.netns, "type", "veth",
            "peer", "name", "eth0", "netns", netns,
        )  # fmt: skip
        _ip("-n", behind.netns, "addr", "add", str(jump_side), "peer", str(address), "dev", inner)
        _ip("-n", behind.netns, "link", "set", inner, "up")
        _ip("-n", netns, "addr", "add", str(address), "peer", str(jump_side), "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        return self._start_host(name, address, netns, uplink=(behind.netns, inner), reachable=False)

    def add_jump_topology(self) -> JumpTopology:
        jump = self.add_host(self._free_name("jump"))
        return JumpTopology(jump=jump, hidden=self.add_hidden_host(jump))

    def remove_host(self, host: NetnsHost) -> None:
        """Stop the host and delete its namespace and veth (hosts behind it lose their link)."""
        self.hosts.remove(host)
        host.stop()
        netns, link = host.uplink
        if netns == self.switch:  # at once, not when the kernel gets round to the namespace
            _ip("-n", netns, "link", "delete", link, check=False)
        assert host.netns is not None
        _kill_netns(host.netns)

    def close(self) -> None:
        """Remove every process, namespace and veth, the switch too; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for host in self.hosts:
            try:
                host.stop()
            except Exception as error:
                errors.append(f"stopping {host.name}: {error}")
        for host in self.hosts:
            assert host.netns is not None
            _kill_netns(host.netns)
        _ip("link", "delete", self.gateway_link, check=False)
        # The switch, and namespaces whose setup failed before their host object existed.
        for netns in netns_names():
            if netns.startswith(f"{self.prefix}-"):
                _kill_netns(netns)
        leftovers = [n for n in [*netns_names(), *link_names()] if n.startswith(self.prefix)]
        if leftovers:
            errors.append(f"still present: {', '.join(leftovers)}")
        self.hosts.clear()
        _live_tags.discard(self.tag)
        _drop_orphaned_pyenv_lock()
        if errors:
            raise SshdError(f"cleaning up lab {self.prefix}: " + "; ".join(errors))

    # -- internals

    @staticmethod
    def _free_tag() -> str:
        for tag in "abcdefghijklmnopqrstuvwxyz":
            if tag not in _live_tags:
                return tag
        raise SshdError("26 labs are open in this process; close some")

    def _check_new_name(self, name: str) -> str:
        if any(host.name == name for host in self.hosts):
            raise ValueError(f"lab {self.prefix} has a host named {name} already")
        if name == SWITCH_NAME:
            raise ValueError(f"{name} is the name of the lab's switch namespace")
        return name

    def _free_name(self, stem: str) -> str:
        taken = {host.name for host in self.hosts}
        return next(f"{stem}{n:02d}" for n in range(1, 1000) if f"{stem}{n:02d}" not in taken)

    def _port_name(self) -> str:
        """A bridge port's name, inside the switch namespace where no other lab has names."""
        self._next_port += 1
        return f"p{self._next_port}"

    def _allocate(self, *, low: bool) -> ipaddress.IPv4Address:
        if self._next_low > self._next_high:
            raise SshdError(f"lab subnet {self.subnet} is full; use a larger prefixlen")
        if low:
            self._next_low += 1
            return self.subnet[self._next_low - 1]
        self._next_high -= 1
        return self.subnet[self._next_high + 1]

    def _add_netns(self, netns: str) -> None:
        if netns in netns_names():
            raise SshdError(f"network namespace {netns} exists already")
        _ip("netns", "add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")

    def _start_host(
        self,
        name: str,
        address: ipaddress.IPv4Address,
        netns: str,
        *,
        uplink: tuple[str | None, str],
        reachable: bool,
    ) -> NetnsHost:
        host = NetnsHost(
            name=name,
            address=str(address),
            port=22,
            workdir=self.workdir / name,
            authorized_keys=self.keys.authorized_keys,
            netns=netns,
            reachable=reachable,
            uplink=uplink,
        )
        self.hosts.append(host)
        host.start()
        return host

    def _add_switch(self) -> None:
        """The switch namespace with its bridge, and the runner's veth to it (no address yet).

        The switch namespace's own firewall is empty, so its bridge forwards everything even
        where br_netfilter passes bridged frames through iptables.
        """
        self._add_netns(self.switch)
        _ip("-n", self.switch, "link", "add", SWITCH_BRIDGE, "type", "bridge")
        _ip("-n", self.switch, "link", "set", SWITCH_BRIDGE, "up")
        _ip(
            "link", "add", self.gateway_link, "type", "veth",
            "peer", "name", "uplink", "netns", self.switch,
        )  # fmt: skip
        _ip("-n", self.switch, "link", "set", "uplink", "master", SWITCH_BRIDGE, "up")
        _ip("link", "set", self.gateway_link, "up")

    def _claim_subnet(self, prefixlen: int) -> ipaddress.IPv4Network:
        """The first /prefixlen of LAB_SUPERNET (starting at a pid-dependent place) that no
        route or address of this machine overlaps, put on the runner's veth to the switch."""
        candidates = list(LAB_SUPERNET.subnets(new_prefix=prefixlen))
        start = (os.getpid() * 31 + ord(self.tag)) % len(candidates)
        for candidate in candidates[start:] + candidates[:start]:
            if any(candidate.overlaps(used) for used in _used_networks()):
                continue
            _ip("addr", "add", f"{candidate[1]}/{prefixlen}", "dev", self.gateway_link)
            # Another run may have claimed the same subnet a moment ago: then take the next.
            rivals = [
                route
                for route in _ip_json("-4", "route", "show", "exact", str(candidate))
                if route.get("dev") != self.gateway_link
            ]
            if not rivals:
                return candidate
            _ip("addr", "flush", "dev", self.gateway_link)
        raise SshdError(f"no free /{prefixlen} left in {LAB_SUPERNET} for a test lab")


def _drop_orphaned_pyenv_lock() -> None:
    """Remove the rehash lock of the login user's pyenv if a session this lab killed left it
    (root's ~/.bashrc runs `pyenv init` on every SSH command): with it, every new shell on
    this machine would wait a minute. Only when no rehash is running."""
    lock = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "shims" / ".pyenv-shim"
    if not lock.exists():
        return
    running = subprocess.run(["pgrep", "-f", "pyenv-rehash"], capture_output=True, check=False)
    if running.returncode != 0:
        lock.unlink(missing_ok=True)


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for route in _ip_json("-4", "route", "show", "table", "all"):
        if route.get("dst", "default") != "default":
            used.append(ipaddress.IPv4Network(route["dst"], strict=False))
    for link in _ip_json("-4", "addr", "show"):
        for info in link.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", False))
    return used


# --------------------------------------------------------------------------- client


class SshClient:
    """The real OpenSSH client with a test's own identity and known_hosts, nothing else.

    Options go in an ssh_config file (`-F`) rather than on the command line because
    ProxyJump starts a second ssh for the jump host that is given only `-F`, not `-o`/`-i`.
    `trust()` writes hosts' current keys to known_hosts; strict checking is always on.
    """

    def __init__(self, directory: Path, identity: Path, known_hosts: Path | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.identity = identity
        self.known_hosts = known_hosts or directory / "known_hosts"
        self.known_hosts.touch()
        self.config_path = directory / f"ssh_config.{identity.name}"
        self.config_path.write_text(
            "Host *\n"
            "  User root\n"
            f"  IdentityFile {identity}\n"
            "  IdentitiesOnly yes\n"
            "  IdentityAgent none\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  UpdateHostKeys no\n"
            "  CheckHostIP no\n"
            "  BatchMode yes\n"
            "  ConnectTimeout 5\n"
            "  LogLevel ERROR\n"
        )

    def with_identity(self, identity: Path) -> SshClient:
        """Another client sharing this one's known_hosts."""
        return SshClient(self.directory, identity, self.known_hosts)

    def trust(self, *hosts: SshdHost) -> None:
        """Add the hosts' current host keys to known_hosts."""
        with self.known_hosts.open("a") as file:
            for host in hosts:
                file.write(host.known_hosts_line + "\n")

    def argv(
        self,
        host: SshdHost,
        *command: str,
        jump: SshdHost | None = None,
        connect_timeout: float | None = None,
    ) -> list[str]:
        options = ["-F", str(self.config_path), "-p", str(host.port)]
        if connect_timeout is not None:
            options += ["-o", f"ConnectTimeout={connect_timeout:g}"]
        if jump is not None:
            options += ["-J", f"root@{jump.address}:{jump.port}"]
        return ["ssh", *options, f"root@{host.address}", *command]

    def run(
        self,
        host: SshdHost,
        *command: str,
        jump: SshdHost | None = None,
        connect_timeout: float | None = None,
        timeout: float = 20,
    ) -> subprocess.CompletedProcess[str]:
        """Run `ssh ... host command`; never raises on a non-zero exit (255 = ssh failed)."""
        return subprocess.run(
            self.argv(host, *command, jump=jump, connect_timeout=connect_timeout),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def asyncssh_options(self, host: SshdHost) -> dict[str, Any]:
        """Keyword arguments for `asyncssh.connect` with this identity and known_hosts, and
        no agent or ~/.ssh/config."""
        return {
            "host": host.address,
            "port": host.port,
            "username": "root",
            "client_keys": [str(self.identity)],
            "known_hosts": str(self.known_hosts),
            "agent_path": None,
            "config": None,
            "connect_timeout": 5,
        }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshKeys:
    """The session's client key (authorized everywhere) and a wrong key (authorized nowhere)."""
    return SshKeys.create(tmp_path_factory.mktemp("ssh-keys"))


@pytest.fixture(scope="session")
def loopback_sshd(
    tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys
) -> Iterator[SshdHost]:
    """One sshd on 127.0.0.1 at a free port for the whole session, hostname `loopback`.
    Shared: a test that stops it or rotates its key uses `fresh_loopback_sshd` instead."""
    host = start_loopback_sshd(tmp_path_factory.mktemp("loopback-sshd"), ssh_keys)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def fresh_loopback_sshd(tmp_path: Path, ssh_keys: SshKeys) -> Iterator[SshdHost]:
    """A loopback sshd of this test's own, to stop, restart or re-key at will."""
    host = start_loopback_sshd(tmp_path / "sshd", ssh_keys, name="fresh")
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture(scope="session")
def netns_lab(tmp_path_factory: pytest.TempPathFactory, ssh_keys: SshKeys) -> Iterator[NetnsLab]:
    """The session's namespace network. Tests that stop, partition or re-key a host make their
    own with `netns_lab.add_host()` and give it back with `netns_lab.remove_host(host)`."""
    with NetnsLab(tmp_path_factory.mktemp("netns-lab"), ssh_keys) as lab:
        yield lab


@pytest.fixture(scope="session")
def netns_hosts(netns_lab: NetnsLab) -> Callable[[int], list[NetnsHost]]:
    """`netns_hosts(n)`: n shared namespace hosts (made on first need, reused after), each
    running and connected when returned."""
    shared: list[NetnsHost] = []

    def hosts(count: int) -> list[NetnsHost]:
        while len(shared) < count:
            shared.append(netns_lab.add_host())
        for host in shared[:count]:
            host.heal()
            host.start()
        return shared[:count]

    return hosts


@pytest.fixture(scope="session")
def jump_topology(netns_lab: NetnsLab) -> JumpTopology:
    """A jump host on the lab bridge and a hidden host reachable only through it."""
    return netns_lab.add_jump_topology()


@pytest.fixture
def ssh_client(tmp_path: Path, ssh_keys: SshKeys) -> SshClient:
    """The OpenSSH client with the good key and an empty known_hosts of this test's own."""
    return SshClient(tmp_path / "ssh-client", ssh_keys.client_key)


def write_known_hosts(path: Path, *hosts: SshdHost) -> Path:
    """A known_hosts file that trusts exactly these hosts' keys."""
    path.write_text("".join(h.known_hosts_line + "\n" for h in hosts))
    return path


@contextlib.asynccontextmanager
async def ssh_shell(
    host: SshdHost, keys: SshKeys, known_hosts: Path, name: str
) -> AsyncIterator[SSHShell]:
    """fleetdeck's own SSH shell on `host` as root (its key trusted in `known_hosts`), the
    way the console reaches an inventory host; closed on leaving."""
    from fleetdeck.hosts.inventory.records import HostSpec
    from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host

    spec = HostSpec(name, host.address, port=host.port, user="root",
                    identity_files=(str(keys.client_key),))  # fmt: skip
    options = SSHOptions(known_hosts=write_known_hosts(known_hosts, host))
    connection = await connect_host(spec, options)
    try:
        yield SSHShell(name, connection)
    finally:
        connection.close()
