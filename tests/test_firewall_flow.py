"""The firewall step over real SSH, on namespace hosts with the firewalls real servers have.

Each test makes its own host on the lab bridge (`netns_lab.add_host`), puts a firewall in
that host's network namespace only, and runs `fleetdeck wizard network` against it: Docker's
own chains from a real dockerd started inside the namespace, real ufw (its configuration
bind-mounted from a copy, so the machine's /etc/ufw is never touched), a native nftables
table, a fail2ban-style jail, and one real DROP among rules off the flow's path. Every
healthy configuration is graded OK with no fix offered; its faulty twin is graded right.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from netns_listen import tcp_listener
from test_network_wizard import Wizardry

from conftest import fleetdeck_bin, require_binary, require_root
from dockerd import Dockerd
from dockerd import dockerd as dockerd
from sshd import NetnsHost, NetnsLab, SshKeys, write_known_hosts

_names = itertools.count(1)


@dataclass
class FwHost:
    """A namespace host of one test, and the way to run the wizard against it."""

    host: NetnsHost
    inventory: Path
    known_hosts: Path
    audit: Path
    listeners: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def netns(self) -> str:
        assert self.host.netns
        return self.host.netns

    def ns(self, *argv: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv}: {done.stderr}")
        return done.stdout

    def wizard(self, *args: str, answers: str = "") -> Wizardry:
        argv = [fleetdeck_bin(), "wizard", "network", "--json", "-i", str(self.inventory),
                "--known-hosts", str(self.known_hosts), "--audit-log", str(self.audit),
                "--host", self.host.name, *args]  # fmt: skip
        done = subprocess.run(argv, input=answers, capture_output=True, text=True, timeout=180)
        return Wizardry.of(done)

    def listen(self, address: str, port: int) -> None:
        """A real TCP listener in this host's namespace, killed with the host."""
        self.listeners.append(tcp_listener(self.netns, address, port))


@pytest.fixture
def fw_host(
    netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path: Path
) -> Iterator[Callable[[], FwHost]]:
    """`fw_host()`: a fresh namespace host (tier staging) for this test; all removed after."""
    require_root("put firewalls inside network namespaces")
    for binary, package in (("iptables", "iptables"), ("nft", "nftables"), ("ss", "iproute2")):
        require_binary(binary, package)
    made: list[FwHost] = []

    def make() -> FwHost:
        host = netns_lab.add_host(f"fw{next(_names)}")
        inventory = tmp_path / f"{host.name}.toml"
        inventory.write_text(
            f'[defaults]\nuser = "root"\nidentity_file = "{ssh_keys.client_key}"\n\n'
            f'[[host]]\nname = "{host.name}"\naddress = "{host.address}"\ntier = "staging"\n'
        )
        known = write_known_hosts(tmp_path / f"{host.name}.known_hosts", host)
        made.append(FwHost(host, inventory, known, tmp_path / "audit.jsonl"))
        return made[-1]

    try:
        yield make
    finally:
        for fw in made:
            for process in fw.listeners:
                process.kill()
                process.wait(5)
            netns_lab.remove_host(fw.host)


def firewall(run: Wizardry, port: int) -> dict[str, Any]:
    return run.finding("net.firewall", f"tcp/{port}")


def fixes_offered(run: Wizardry) -> list[str]:
    """Every command any step's fixes would run, as the JSON document shows them."""
    steps = run.doc["steps"]
    return [c for s in steps for f in s["findings"] for x in f["fixes"] for c in x["commands"]]


def _root_iptables() -> str:
    """The root namespace's rules, counters and dates left out."""
    text = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30).stdout
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


# --- one real DROP among rules off the path --------------------------------------------------

HARMLESS = (
    ("-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "DROP"),  # another port
    ("-A", "INPUT", "-i", "eth9", "-p", "tcp", "--dport", "8080", "-j", "DROP"),  # no such iface
    ("-A", "OUTPUT", "-o", "eth0", "-p", "tcp", "--dport", "8080", "-j", "DROP"),  # not via lo
    ("-A", "FORWARD", "-p", "tcp", "--dport", "8080", "-j", "DROP"),  # routed traffic only
    ("-A", "INPUT", "-p", "udp", "--dport", "8080", "-j", "DROP"),  # another protocol
)


def test_the_drop_on_the_path_is_named_as_hit_and_deleting_it_opens_the_port(
    fw_host: Callable[[], FwHost],
) -> None:
    server = fw_host()
    server.listen("0.0.0.0", 8080)
    for rule in HARMLESS:
        server.ns("iptables", *rule)
    server.ns("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP")
    target = f"{server.host.address}:8080"
    blocked = server.wizard("--target", target, "--listen", "8080")
    found = firewall(blocked, 8080)
    assert found["status"] == "CRIT"
    assert (
        "DROP by iptables filter/INPUT #4: -A INPUT -p tcp -m tcp --dport 8080 -j DROP"
        in (found["summary"])
    )
    assert "(hit by the probe: +" in found["summary"]
    assert fixes_offered(blocked) == [
        "iptables -t filter -D INPUT -p tcp -m tcp --dport 8080 -j DROP"
    ]
    assert blocked.finding("net.connect", target)["status"] == "CRIT"

    fixed = server.wizard("--target", target, "--listen", "8080", answers="y\n")
    (action,) = fixed.doc["actions"]
    assert action["outcome"] == "verified", action
    assert firewall(fixed, 8080)["status"] == "OK" and fixes_offered(fixed) == []
    assert fixed.finding("net.connect", target)["status"] == "OK"
    rules = server.ns("iptables", "-S")
    assert all(" ".join(rule) in rules.replace(" -m tcp", "").replace(" -m udp", "")
               for rule in HARMLESS)  # fmt: skip


# --- Docker's own chains, from a real dockerd inside the namespace ------------------------------


@contextlib.contextmanager
def dockerd_in(netns: str) -> Iterator[Path]:
    """A real dockerd in one network namespace only: default iptables and bridge, so it makes
    docker0, its DOCKER chains and the DROP policy of FORWARD there. `nsenter --net` (not
    `ip netns exec`, which remounts /sys and hides the cgroups dockerd needs) enters the
    namespace; everything else of its own lives in a short temporary directory."""
    dockerd = require_binary("dockerd", "docker.io")
    require_binary("nsenter", "util-linux")
    root = Path(tempfile.mkdtemp(prefix="fdtd", dir="/tmp"))  # containerd's socket path is short
    (root / "daemon.json").write_text("{}")  # not the machine's /etc/docker/daemon.json
    argv = [
        "nsenter", f"--net=/run/netns/{netns}", dockerd, "--config-file", str(root / "daemon.json"),
        "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{root / 'docker.sock'}",
    ]  # fmt: skip
    log = (root / "dockerd.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP" not in _iptables_s(netns):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-1500:]
                raise AssertionError(f"dockerd made no chains in {netns}:\n{tail}")
            time.sleep(0.3)
        yield root
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            if f" {root}/" in line:
                subprocess.run(["umount", "--lazy", line.split()[1]], check=False)
        shutil.rmtree(root, ignore_errors=True)


def _iptables_s(netns: str) -> str:
    argv = ["ip", "netns", "exec", netns, "iptables", "-S"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout


def test_dockers_chains_leave_a_local_web_server_ok_and_an_admins_drop_is_still_found(
    fw_host: Callable[[], FwHost],
) -> None:
    server = fw_host()
    root_before = _root_iptables()
    with dockerd_in(server.netns):
        rules = server.ns("iptables", "-S")
        assert "-P FORWARD DROP" in rules and "-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP" in (
            rules
        )
        assert "docker0" in server.ns("ip", "link", "show")
        web = subprocess.Popen(
            ["ip", "netns", "exec", server.netns, sys.executable, "-u", "-m", "http.server",
             "--bind", "127.0.0.1", "18080"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert web.stdout and "Serving HTTP" in web.stdout.readline()
            args = ("--target", "127.0.0.1:18080", "--listen", "18080")
            run = server.wizard(*args)
            found = firewall(run, 18080)
            assert found["status"] == "OK" and found["fixes"] == [], found
            assert "DOCKER" not in " ".join(fixes_offered(run))
            assert run.finding("net.connect", "127.0.0.1:18080")["status"] == "OK"

            server.ns("iptables", "-I", "INPUT", "-p", "tcp", "--dport", "18080", "-j", "DROP")
            twin = server.wizard(*args)
            assert firewall(twin, 18080)["status"] == "CRIT"
            assert fixes_offered(twin) == [
                "iptables -t filter -D INPUT -p tcp -m tcp --dport 18080 -j DROP"
            ]
        finally:
            web.kill()
            web.wait(5)
    assert _root_iptables() == root_before  # Docker's rules stayed in the namespace


# --- ufw -----------------------------------------------------------------------------------

UFW_STATE = (Path("/etc/ufw"), Path("/etc/default/ufw"), Path("/lib/ufw"))
"""Where ufw keeps configuration and state: shared by every network namespace."""


def _digest(paths: tuple[Path, ...]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            sha.update(str(file).encode() + file.read_bytes())
    return sha.hexdigest()


def ufw_in(host: FwHost, tmp_path: Path, *commands: str) -> None:
    """Run ufw commands in the host's namespace, with copies of ufw's files bind-mounted
    over the real ones in a mount namespace of their own."""
    script = ["set -e"]
    for index, path in enumerate(UFW_STATE):
        copy = tmp_path / f"ufw-state-{index}"
        if not copy.exists():
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, copy)
        script.append(f"mount --bind {copy} {path}")
    script += list(commands)
    host.ns("unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script))


def test_ufw_allowed_port_is_ok_and_a_denied_one_names_ufws_policy_and_ufw_allow(
    fw_host: Callable[[], FwHost], tmp_path: Path
) -> None:
    require_binary("ufw", "ufw")
    root_rules, root_ufw = _root_iptables(), _digest(UFW_STATE)
    server, other = fw_host(), fw_host()
    ufw_in(server, tmp_path, "ufw default deny incoming", "ufw allow 22/tcp",
           "ufw allow 8080/tcp", "ufw --force enable")  # fmt: skip
    assert "ufw-user-input" in server.ns("iptables", "-S")
    server.listen("0.0.0.0", 8080)
    server.listen("0.0.0.0", 8081)

    allowed = server.wizard("--listen", "8080")
    assert firewall(allowed, 8080)["status"] == "OK", firewall(allowed, 8080)
    assert fixes_offered(allowed) == []

    denied = server.wizard("--listen", "8081")
    found = firewall(denied, 8081)
    assert found["status"] == "CRIT" and found["fixes"] == []
    assert "policy of iptables filter/INPUT, set by ufw" in found["summary"]
    assert "ufw allow 8081/tcp" in found["summary"]
    assert "iptables -D" not in json.dumps(denied.doc) and "INVALID" not in found["summary"]

    # The ufw host as a client: its own incoming rules are not what its connection needs.
    other.listen("0.0.0.0", 8090)
    client = server.wizard("--target", f"{other.host.address}:8090")
    assert firewall(client, 8090)["status"] == "OK" and fixes_offered(client) == []
    assert client.finding("net.connect", f"{other.host.address}:8090")["status"] == "OK"

    assert _root_iptables() == root_rules and _digest(UFW_STATE) == root_ufw


# --- native nftables ----------------------------------------------------------------------

NATIVE_NFT = """table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state invalid counter drop
        ct state established,related accept
        iif lo accept
        tcp dport { 22, 8080 } counter accept
    }
}
"""


def test_native_nft_open_port_is_ok_and_a_closed_one_names_the_policy_not_the_invalid_drop(
    fw_host: Callable[[], FwHost],
) -> None:
    server = fw_host()
    server.ns("nft", "-f", "-", stdin=NATIVE_NFT)
    server.listen("0.0.0.0", 8080)
    server.listen("0.0.0.0", 8081)
    target = f"{server.host.address}:8080"
    run = server.wizard("--listen", "8080", "--target", target)
    found = firewall(run, 8080)
    assert found["status"] == "OK" and fixes_offered(run) == [], found
    assert "tcp dport { 22, 8080 } counter accept" in found["summary"]

    closed = server.wizard("--listen", "8081")
    found = firewall(closed, 8081)
    assert found["status"] == "CRIT" and found["fixes"] == []
    assert "DROP policy of nft inet filter/input" in found["summary"]
    assert "nft add rule inet filter input tcp dport 8081 accept" in found["summary"]
    assert "invalid" not in found["summary"]


# --- a fail2ban jail --------------------------------------------------------------------------


def test_a_fail2ban_ban_blocks_that_source_only_and_no_unban_is_offered(
    fw_host: Callable[[], FwHost],
) -> None:
    server, banned = fw_host(), fw_host()
    server.ns("iptables", "-N", "f2b-sshd")
    server.ns("iptables", "-A", "f2b-sshd", "-s", banned.host.address, "-j", "REJECT")
    server.ns("iptables", "-A", "f2b-sshd", "-j", "RETURN")
    server.ns("iptables", "-I", "INPUT", "-p", "tcp", "-m", "multiport", "--dports", "22",
              "-j", "f2b-sshd")  # fmt: skip
    run = server.wizard("--listen", "22")
    found = firewall(run, 22)
    assert found["status"] in ("OK", "WARN") and fixes_offered(run) == [], found
    assert "blocks only part of it" in found["summary"]
    assert f"fail2ban-client set sshd unbanip {banned.host.address}" in found["summary"]

    # The ban is real: the banned host cannot connect, and its own firewall is not the cause.
    target = f"{server.host.address}:22"
    from_banned = banned.wizard("--target", target)
    assert from_banned.finding("net.connect", target)["status"] == "CRIT"
    assert firewall(from_banned, 22)["status"] == "OK"


# --- this machine itself -----------------------------------------------------------------------


def test_this_machine_with_its_docker_engine_and_a_loopback_web_server_is_quiet(
    dockerd: Dockerd, tmp_path: Path
) -> None:
    """The wizard as a new user first runs it: on the machine the suite runs on (its Docker
    engine up, whatever its routes and firewall are) toward a real web server on 127.0.0.1.
    Nothing is WARN or CRIT and no fix is offered: a healthy host is quiet."""
    require_binary("ss", "iproute2")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        said = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...) ..."
        port = said.split(" port ")[1].split()[0]
        argv = [fleetdeck_bin(), "wizard", "network", "--json", "--read-only",
                "--audit-log", str(tmp_path / "audit.jsonl"),
                "--target", f"127.0.0.1:{port}", "--listen", port]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        run = Wizardry.of(done)
        loud = [
            (s["id"], f["target"], f["status"], f["summary"])
            for s in run.doc["steps"]
            for f in s["findings"]
            if f["status"] != "OK"
        ]
        assert not loud, loud
        assert not fixes_offered(run)
        assert run.code == 0, done.stderr
        assert run.finding("net.connect", f"127.0.0.1:{port}")["status"] == "OK"
    finally:
        server.kill()
        server.wait(5)
