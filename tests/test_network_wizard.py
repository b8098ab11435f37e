"""The network wizard against real faults in network namespaces, through `fleetdeck wizard`.

Two hosts of their own on the lab bridge: `server` and `client`, each a real sshd in its own
namespace. Faults (a link down, no default route, a dead resolver, a DROP rule, a service on
127.0.0.1, a target nobody has) are made inside those namespaces only, and undone after.
Most runs go over SSH. A namespace gets its own /etc/resolv.conf, nsswitch.conf and hosts
from /etc/netns/<namespace>/ through `ip netns exec`: the first DNS test runs the console
that way inside the client's namespace, the later ones go over SSH to `resolving`, a host
whose sshd was started with such files (`NetnsLab.add_host(etc=...)`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns_listen import tcp_listener

from conftest import fleetdeck_bin, require_binary, require_root
from sshd import NetnsHost, NetnsLab, SshKeys, write_known_hosts

DNSD = Path(__file__).parent / "dnsd.py"


@dataclass
class Lab:
    server: NetnsHost
    client: NetnsHost
    lab: NetnsLab
    inventory: Path
    known_hosts: Path
    audit: Path
    nobody: str  # a lab address no host has

    def ns(self, host: NetnsHost, *argv: str, check: bool = True) -> str:
        assert host.netns
        done = subprocess.run(
            ["ip", "netns", "exec", host.netns, *argv], capture_output=True, text=True, timeout=30
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv}: {done.stderr}")
        return done.stdout

    def wizard(self, host: NetnsHost, *args: str, answers: str = "") -> Wizardry:
        argv = [
            fleetdeck_bin(),
            "wizard",
            "network",
            "--json",
            "-i",
            str(self.inventory),
            "--known-hosts",
            str(self.known_hosts),
            "--audit-log",
            str(self.audit),
            "--host",
            host.name,
            *args,
        ]
        return Wizardry.of(
            subprocess.run(argv, input=answers, capture_output=True, text=True, timeout=120)
        )

    def audit_records(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@dataclass
class Wizardry:
    """One `fleetdeck wizard --json` run: exit status, the document, and stderr."""

    code: int
    doc: dict[str, Any]
    stderr: str

    @classmethod
    def of(cls, done: subprocess.CompletedProcess[str]) -> Wizardry:
        assert "Traceback" not in done.stderr, done.stderr
        try:
            doc = json.loads(done.stdout) if done.stdout.strip() else {}
        except ValueError:
            raise AssertionError(f"not JSON: {done.stdout!r}\n{done.stderr}") from None
        return cls(done.returncode, doc, done.stderr)

    def step(self, step_id: str) -> dict[str, Any]:
        return next(s for s in self.doc["steps"] if s["id"] == step_id)

    def finding(self, step_id: str, target: str) -> dict[str, Any]:
        step = self.step(step_id)
        found = [f for f in step["findings"] if f["target"] == target]
        assert found, f"no {step_id} finding on {target}: {step}"
        return found[0]


@pytest.fixture(scope="module")
def lab(
    netns_lab: NetnsLab, ssh_keys: SshKeys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    require_root("make network faults inside namespaces")
    for binary, package in (
        ("iptables", "iptables"),
        ("ping", "iputils-ping"),
        ("ss", "iproute2"),
        ("setpriv", "util-linux"),
    ):
        require_binary(binary, package)
    server, client = netns_lab.add_host("server"), netns_lab.add_host("client")
    workdir = tmp_path_factory.mktemp("netwizard")
    inventory = workdir / "lab.toml"
    inventory.write_text(
        f'[defaults]\nuser = "root"\nidentity_file = "{ssh_keys.client_key}"\n\n'
        f'[[host]]\nname = "server"\naddress = "{server.address}"\ntier = "prod"\n\n'
        f'[[host]]\nname = "client"\naddress = "{client.address}"\ntier = "staging"\n'
    )
    known = write_known_hosts(workdir / "known_hosts", server, client)
    nobody = str(netns_lab.subnet[200])
    try:
        yield Lab(server, client, netns_lab, inventory, known, workdir / "audit.jsonl", nobody)
    finally:
        netns_lab.remove_host(server)
        netns_lab.remove_host(client)


@pytest.fixture
def listener(lab: Lab) -> Iterator[Any]:
    """`listener(host, address, port)`: a real TCP listener inside a host's namespace."""
    started: list[subprocess.Popen[str]] = []

    def start(host: NetnsHost, address: str, port: int) -> None:
        assert host.netns
        started.append(tcp_listener(host.netns, address, port))

    yield start
    for process in started:
        process.kill()
        process.wait(5)


def _veth(lab: Lab, name: str) -> None:
    """An admin-down interface with an address on the client; its peer is up, so the link
    gets carrier the moment it is brought up (this kernel has no dummy driver)."""
    lab.ns(lab.client, "ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    lab.ns(lab.client, "ip", "link", "set", f"{name}p", "up")


def test_admin_down_link_is_found_and_brought_up_after_confirm(lab: Lab) -> None:
    _veth(lab, "dum0")
    lab.ns(lab.client, "ip", "addr", "add", "198.51.100.10/24", "dev", "dum0")
    try:
        before = len(lab.audit_records())
        run = lab.wizard(lab.client, answers="y\n")
        (action,) = run.doc["actions"]
        assert action["fix"] == "net.link.up" and action["outcome"] == "verified", action
        assert (
            action["before"] == "CRIT"
            and "dum0 is administratively down" in (action["before_summary"])
        )
        assert action["after"] == "OK" and "dum0 is up with carrier" in action["after_summary"]
        assert run.finding("net.link", "eth0")["status"] == "OK"
        assert run.finding("net.link", "dum0")["status"] == "OK"
        assert "Apply bring dum0 up on client? [y/N]" in run.stderr
        assert "ip link set dev dum0 up" in run.stderr  # the command, shown before the prompt
        assert '"UP"' in lab.ns(lab.client, "ip", "-j", "link", "show", "dum0")
        started, finished = lab.audit_records()[before:]
        assert started["event"] == "started" and finished["event"] == "finished"
        assert finished["host"] == "client" and finished["tier"] == "staging"
        assert finished["check"] == "net.link" and finished["fix"] == "net.link.up"
        assert finished["commands"] == ["ip link set dev dum0 up"]
        assert finished["undo"] == ["ip link set dev dum0 down"]
        assert finished["runs"][0]["exit_status"] == 0
        assert finished["verification"]["after"]["status"] == "OK"
        assert finished["pin"]["what"] == "interface index of dum0"
    finally:
        lab.ns(lab.client, "ip", "link", "del", "dum0", check=False)  # and its peer


def test_read_only_wizard_offers_nothing_and_audits_the_refusal(lab: Lab) -> None:
    _veth(lab, "dum1")
    lab.ns(lab.client, "ip", "addr", "add", "198.51.100.11/24", "dev", "dum1")
    try:
        before = len(lab.audit_records())
        run = lab.wizard(lab.client, "--read-only", answers="y\ny\ny\n")
        (action,) = run.doc["actions"]
        assert action["outcome"] == "refused" and "read-only" in action["message"]
        assert "[y/N]" not in run.stderr
        assert '"UP"' not in lab.ns(lab.client, "ip", "-j", "link", "show", "dum1")
        (record,) = lab.audit_records()[before:]
        assert record["event"] == "refused" and record["read_only"] is True
        assert run.code == 2
    finally:
        lab.ns(lab.client, "ip", "link", "del", "dum1", check=False)  # and its peer


def test_a_fix_whose_command_fails_shows_status_and_stderr_and_stays_failed(lab: Lab) -> None:
    """The console runs inside the namespace without CAP_NET_ADMIN: `ip link set up` fails."""
    assert lab.client.netns
    _veth(lab, "dum2")
    lab.ns(lab.client, "ip", "addr", "add", "198.51.100.12/24", "dev", "dum2")
    try:
        before = len(lab.audit_records())
        done = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                lab.client.netns,
                "setpriv",
                "--bounding-set=-net_admin",
                fleetdeck_bin(),
                "wizard",
                "network",
                "--json",
                "--audit-log",
                str(lab.audit),
            ],
            input="y\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        run = Wizardry.of(done)
        (action,) = run.doc["actions"]
        assert action["outcome"] == "failed"
        assert "exit status 2" in action["message"]
        assert "Operation not permitted" in action["message"]
        assert run.finding("net.link", "dum2")["status"] == "CRIT"
        assert run.code == 2
        finished = lab.audit_records()[before:][-1]
        assert finished["outcome"] == "failed" and finished["runs"][0]["exit_status"] == 2
        assert "Operation not permitted" in finished["runs"][0]["output"]
    finally:
        lab.ns(lab.client, "ip", "link", "del", "dum2", check=False)  # and its peer


def test_missing_default_route_is_critical_and_a_reachable_gateway_passes(lab: Lab) -> None:
    run = lab.wizard(lab.client)
    route = run.finding("net.route", "default route")
    assert route["status"] == "CRIT" and "no default route" in route["summary"]
    assert run.code == 2
    lab.ns(lab.client, "ip", "route", "add", "default", "via", str(lab.lab.gateway))
    try:
        run = lab.wizard(lab.client)
        assert run.finding("net.route", "default route")["status"] == "OK"
        gateway = run.finding("net.route", f"gateway {lab.lab.gateway}")
        assert gateway["status"] == "OK" and "answers ping" in gateway["summary"]
        lab.ns(lab.client, "ip", "route", "replace", "default", "via", lab.nobody)
        run = lab.wizard(lab.client)
        gone = run.finding("net.route", f"gateway {lab.nobody}")
        assert gone["status"] == "CRIT" and "unreachable" in gone["summary"]
    finally:
        lab.ns(lab.client, "ip", "route", "del", "default", check=False)


def test_drop_rule_on_the_target_port_is_shown_deleted_after_confirm_and_kept_for_undo(
    lab: Lab, listener: Any
) -> None:
    listener(lab.server, "0.0.0.0", 8080)
    rule = ["-A", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DROP"]
    lab.ns(lab.server, "iptables", *rule)
    try:
        blocked = lab.wizard(lab.client, "--target", f"{lab.server.address}:8080")
        connect = blocked.finding("net.connect", f"{lab.server.address}:8080")
        assert connect["status"] == "CRIT" and "timeout" in connect["summary"]

        before = len(lab.audit_records())
        # server is a prod host: yes, then its name typed
        run = lab.wizard(
            lab.server,
            "--target",
            f"{lab.server.address}:8080",
            "--listen",
            "8080",
            answers="y\nserver\n",
        )
        assert "type the host name (server) to confirm" in run.stderr
        (action,) = run.doc["actions"]
        assert action["outcome"] == "verified", action
        assert action["title"] == "delete the iptables rule that drops tcp/8080"
        assert run.finding("net.firewall", "tcp/8080")["status"] == "OK"
        assert run.finding("net.connect", f"{lab.server.address}:8080")["status"] == "OK"
        assert run.finding("net.listen", "tcp/8080")["status"] == "OK"
        assert "--dport 8080" not in lab.ns(lab.server, "iptables", "-S", "INPUT")
        finished = lab.audit_records()[before:][-1]
        assert finished["commands"] == [
            "iptables -t filter -D INPUT -p tcp -m tcp --dport 8080 -j DROP"
        ]
        assert finished["pin"]["value"] == " ".join(rule)
        (undo,) = finished["undo"]
        assert undo == "iptables -t filter -I INPUT 1 -p tcp -m tcp --dport 8080 -j DROP"
        failing = {s["id"] for s in run.doc["steps"] if s["status"] not in (None, "OK")}
        assert failing <= {"net.route"}, run.doc  # lab hosts have no default route

        lab.ns(lab.server, *shlex.split(undo))  # the record is enough to put the rule back
        assert " ".join(rule) in lab.ns(lab.server, "iptables", "-S", "INPUT")
    finally:
        lab.ns(lab.server, "iptables", "-F", "INPUT", check=False)


def test_rule_changed_between_offer_and_confirm_aborts_with_a_record(
    lab: Lab, listener: Any
) -> None:
    """While the operator reads the prompt, someone else deletes the rule: the pin sees it."""
    argv = [
        fleetdeck_bin(),
        "wizard",
        "network",
        "--json",
        "-i",
        str(lab.inventory),
        "--known-hosts",
        str(lab.known_hosts),
        "--audit-log",
        str(lab.audit),
        "--host",
        "client",
        "--listen",
        "8090",
    ]
    lab.ns(lab.client, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8090", "-j", "REJECT")
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert process.stderr and process.stdin
        seen = ""
        deadline = time.monotonic() + 60
        while "[y/N]" not in seen and time.monotonic() < deadline:
            seen += process.stderr.read(1)
        lab.ns(lab.client, "iptables", "-F", "INPUT")
        lab.ns(lab.client, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8090", "-j", "DROP")
        out, err = process.communicate("y\n", timeout=60)
        run = Wizardry.of(subprocess.CompletedProcess(argv, process.returncode, out, err))
        (action,) = run.doc["actions"]
        assert action["outcome"] == "aborted"
        assert "changed since the fix was offered" in action["message"]
        record = lab.audit_records()[-1]
        assert record["event"] == "aborted" and "REJECT" in record["pin"]["value"]
        assert "REJECT" not in record["pin_now"]
        assert "--dport 8090 -j DROP" in lab.ns(lab.client, "iptables", "-S", "INPUT")
    finally:
        lab.ns(lab.client, "iptables", "-F", "INPUT", check=False)


def test_service_on_loopback_only_is_a_warning_and_refused_from_outside(
    lab: Lab, listener: Any
) -> None:
    listener(lab.server, "127.0.0.1", 8081)
    run = lab.wizard(lab.server, "--listen", "8081")
    listen = run.finding("net.listen", "tcp/8081")
    assert listen["status"] == "WARN" and "loopback only" in listen["summary"]
    assert "127.0.0.1:8081" in listen["summary"]
    outside = lab.wizard(lab.client, "--target", f"{lab.server.address}:8081")
    connect = outside.finding("net.connect", f"{lab.server.address}:8081")
    assert connect["status"] == "CRIT" and "refused" in connect["summary"]
    nothing = lab.wizard(lab.server, "--listen", "8082", "--service", "api.service")
    missing = nothing.finding("net.listen", "tcp/8082")
    assert missing["status"] == "CRIT" and "nothing listens" in missing["summary"]
    assert "no systemd on server" in missing["summary"] and missing["fixes"] == []


def test_unreachable_target_fails_the_connect_step(lab: Lab) -> None:
    run = lab.wizard(lab.client, "--target", f"{lab.nobody}:80")
    connect = run.finding("net.connect", f"{lab.nobody}:80")
    assert connect["status"] == "CRIT"
    assert any(w in connect["summary"] for w in ("no route to host", "timeout"))
    assert run.code == 2


@pytest.fixture
def resolver(lab: Lab) -> Iterator[str]:
    """A real DNS server in the server's namespace: api.lab has an address, nothing else."""
    assert lab.server.netns
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.server.netns,
            sys.executable,
            str(DNSD),
            lab.server.address,
            "53",
            f"api.lab={lab.server.address}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout and process.stdout.readline().strip() == "ready"
    yield lab.server.address
    process.kill()
    process.wait(5)


@pytest.fixture
def resolv_conf(lab: Lab) -> Iterator[Path]:
    """/etc/netns/<client ns>/resolv.conf, which `ip netns exec` puts over /etc/resolv.conf."""
    assert lab.client.netns
    directory = Path("/etc/netns") / lab.client.netns
    directory.mkdir(parents=True, exist_ok=True)
    yield directory / "resolv.conf"
    shutil.rmtree(directory, ignore_errors=True)


def _local_wizard(lab: Lab, *args: str) -> Wizardry:
    assert lab.client.netns
    env = {**os.environ, "LC_ALL": "C"}
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.client.netns,
            fleetdeck_bin(),
            "wizard",
            "network",
            "--json",
            "--audit-log",
            str(lab.audit),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    return Wizardry.of(done)


def test_dns_tells_a_good_answer_nxdomain_a_dead_resolver_and_none_apart(
    lab: Lab, resolver: str, resolv_conf: Path
) -> None:
    resolv_conf.write_text(f"nameserver {resolver}\noptions timeout:1\n")
    good = _local_wizard(lab, "--resolve", "api.lab")
    found = good.finding("net.dns", "resolve api.lab")
    assert found["status"] == "OK" and lab.server.address in found["summary"]
    assert " ms from " in found["summary"]

    missing = _local_wizard(lab, "--resolve", "nope.lab")
    nx = missing.finding("net.dns", "resolve nope.lab")
    assert nx["status"] == "CRIT" and "NXDOMAIN" in nx["summary"]

    resolv_conf.write_text(f"nameserver {lab.nobody}\noptions timeout:1\n")
    dead = _local_wizard(lab, "--resolve", "api.lab")
    silent = dead.finding("net.dns", "resolve api.lab")
    assert silent["status"] == "CRIT" and "no resolver answers" in silent["summary"]
    assert lab.nobody in silent["summary"]

    # No nameserver line: the C library asks 127.0.0.1, and so does the step.
    resolv_conf.write_text("# nothing configured\nsearch lab\noptions timeout:1\n")
    none = _local_wizard(lab, "--resolve", "api.lab")
    resolvers = none.finding("net.dns", "resolvers")
    assert resolvers["status"] == "WARN" and "asks 127.0.0.1 alone" in resolvers["summary"]
    nobody = none.finding("net.dns", "resolve api.lab")
    assert nobody["status"] == "CRIT" and "127.0.0.1: port 53 refused" in nobody["summary"]

    # Its healthy twin: a resolver of the host's own on 127.0.0.1 answers.
    assert lab.client.netns
    local = subprocess.Popen(
        ["ip", "netns", "exec", lab.client.netns, sys.executable, str(DNSD), "127.0.0.1", "53",
         f"api.lab={lab.server.address}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert local.stdout and local.stdout.readline().strip() == "ready"
        own = _local_wizard(lab, "--resolve", "api")
    finally:
        local.kill()
        local.wait(5)
    assert own.finding("net.dns", "resolvers")["status"] == "OK", own.step("net.dns")
    found = own.finding("net.dns", "resolve api")
    assert found["status"] == "OK" and "as api.lab" in found["summary"], found


def test_wizard_on_an_unreachable_host_says_so_without_a_traceback(lab: Lab) -> None:
    host = lab.lab.add_host("gone")
    try:
        host.stop()
        inventory = lab.inventory.parent / "gone.toml"
        inventory.write_text(
            lab.inventory.read_text().split("[[host]]")[0]
            + f'[[host]]\nname = "gone"\naddress = "{host.address}"\n'
        )
        done = subprocess.run(
            [
                fleetdeck_bin(),
                "wizard",
                "network",
                "-i",
                str(inventory),
                "--host",
                "gone",
                "--known-hosts",
                str(lab.known_hosts),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "gone" in done.stderr and "refused" in done.stderr
    finally:
        lab.lab.remove_host(host)


@pytest.mark.parametrize("target", ["api", "api:", ":80", "api:99999", "a b:80", "[zz]:1"])
def test_a_target_that_is_not_host_port_is_a_usage_error(target: str) -> None:
    done = subprocess.run(
        [fleetdeck_bin(), "wizard", "network", "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert f"--target {target!r}" in done.stderr


def test_nftables_drop_rule_is_found_and_deleted_by_its_handle(lab: Lab, listener: Any) -> None:
    """A native nftables table (not iptables-nft): the rule is found by its port, deleted
    by handle after confirm, and the audit record keeps the command that puts it back."""
    require_binary("nft", "nftables")
    listener(lab.client, "0.0.0.0", 8095)
    lab.ns(lab.client, "nft", "add", "table", "inet", "guard")
    lab.ns(lab.client, "nft", "add", "chain", "inet", "guard", "input",
           "{ type filter hook input priority 0 ; }")  # fmt: skip
    lab.ns(lab.client, "nft", "add", "rule", "inet", "guard", "input", "tcp", "dport", "8095",
           "counter", "drop")  # fmt: skip
    try:
        before = len(lab.audit_records())
        # The connect step sends a packet the rule counts before the prompt is answered:
        # the pin must not take the counter for a change of rule.
        run = lab.wizard(
            lab.client, "--listen", "8095", "--target", f"{lab.client.address}:8095", answers="y\n"
        )
        (action,) = run.doc["actions"]
        assert action["title"] == "delete the nftables rule that drops tcp/8095"
        assert action["outcome"] == "verified", action
        assert "tcp dport 8095 counter drop" in action["before_summary"]
        assert "dport 8095" not in lab.ns(lab.client, "nft", "list", "table", "inet", "guard")
        finished = lab.audit_records()[before:][-1]
        (command,) = finished["commands"]
        assert command.startswith("nft delete rule inet guard input handle ")
        (undo,) = finished["undo"]
        assert undo.startswith("nft ") and "8095" in undo
        lab.ns(lab.client, *shlex.split(undo))
        assert "tcp dport 8095 counter" in lab.ns(
            lab.client, "nft", "list", "table", "inet", "guard"
        )
    finally:
        lab.ns(lab.client, "nft", "delete", "table", "inet", "guard", check=False)


async def test_a_fix_that_overruns_over_ssh_is_killed_on_the_host(lab: Lab, tmp_path: Path) -> None:
    """Closing an SSH channel does not stop a remote command: the host's timeout(1) must,
    or a fix reported as failed could still finish minutes later."""
    from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, FixHost, Outcome
    from fleetdeck.checks.audit import AuditLog
    from fleetdeck.checks.model import Finding, Fix, Pin, Risk, Status
    from fleetdeck.hosts.inventory.load import load_inventory
    from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host

    flag = tmp_path / "finished-late"  # the namespace host shares this filesystem
    (spec,) = load_inventory([lab.inventory]).select("client")  # fmt: skip
    connection = await connect_host(spec, SSHOptions(known_hosts=lab.known_hosts))
    try:
        fix = Fix("demo.slow", "slow fix", Risk.SAFE, (("sh", "-c", f"sleep 3; touch {flag}"),),
                  "x", Pin("nothing", ("true",), ""), "demo", timeout=1.0)  # fmt: skip
        finding = Finding("demo", Status.CRIT, "x", "broken", (), (fix,))

        async def yes(request: ConfirmRequest) -> Decision:
            return Decision(True, "client")

        async def verify() -> Finding:
            return finding

        gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=yes)
        result = await gate.apply(
            FixHost("client", SSHShell("client", connection)), finding, fix, verify
        )
        assert result.outcome is Outcome.FAILED
        assert "timed out after 1 s: killed" in result.message
        await asyncio.sleep(4)
        assert not flag.exists()
    finally:
        connection.close()


def test_audit_log_given_before_the_command_is_the_one_used(lab: Lab, tmp_path: Path) -> None:
    _veth(lab, "dum3")
    lab.ns(lab.client, "ip", "addr", "add", "198.51.100.13/24", "dev", "dum3")
    log = tmp_path / "before.jsonl"
    try:
        done = subprocess.run(
            [fleetdeck_bin(), "--audit-log", str(log), "--read-only", "wizard", "network",
             "-i", str(lab.inventory), "--known-hosts", str(lab.known_hosts),
             "--host", "client"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr
        (record,) = [json.loads(line) for line in log.read_text().splitlines()]
        assert record["event"] == "refused" and record["fix"] == "net.link.up"
        shown = subprocess.run([fleetdeck_bin(), "--audit-log", str(log), "audit"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        assert "refused" in shown.stdout and "client" in shown.stdout
    finally:
        lab.ns(lab.client, "ip", "link", "del", "dum3", check=False)


def test_ctrl_c_at_the_prompt_stops_at_once_and_audits_the_attempt(lab: Lab) -> None:
    _veth(lab, "dum4")
    lab.ns(lab.client, "ip", "addr", "add", "198.51.100.14/24", "dev", "dum4")
    argv = [fleetdeck_bin(), "wizard", "network", "-i", str(lab.inventory),
            "--known-hosts", str(lab.known_hosts), "--audit-log", str(lab.audit),
            "--host", "client"]  # fmt: skip
    try:
        before = len(lab.audit_records())
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert process.stderr
        seen = ""
        deadline = time.monotonic() + 60
        while "[y/N]" not in seen and time.monotonic() < deadline:
            seen += process.stderr.read(1)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=5)
        assert process.returncode == 3 and "interrupted" in err and "Traceback" not in err
        (record,) = lab.audit_records()[before:]
        assert record["event"] == "cancelled" and record["fix"] == "net.link.up"
        assert '"UP"' not in lab.ns(lab.client, "ip", "-j", "link", "show", "dum4")
    finally:
        lab.ns(lab.client, "ip", "link", "del", "dum4", check=False)


# -- steps that agree with each other (issue 15): healthy cases and their faulty twins ------

MY_STEPS = ("net.link", "net.addr", "net.dns", "net.route", "net.connect", "net.listen")
"""The steps graded here; the firewall step and the error counters have tests of their own."""


def _not_ok(run: Wizardry, steps: tuple[str, ...] = MY_STEPS) -> list[dict[str, Any]]:
    return [
        finding
        for step in run.doc["steps"]
        if step["id"] in steps
        for finding in step["findings"]
        if finding["status"] != "OK"
    ]


def test_an_idle_bridge_is_ok_and_a_bridge_whose_ports_have_no_carrier_is_not(lab: Lab) -> None:
    """docker0 after its last container went: up, no ports, no carrier. Idle, not broken.
    (A bridge that never had a port keeps carrier; losing its last port drops it.)"""
    lab.ns(lab.client, "ip", "link", "add", "bridle", "type", "bridge")
    lab.ns(lab.client, "ip", "link", "set", "bridle", "up")
    lab.ns(lab.client, "ip", "link", "add", "gone", "type", "veth", "peer", "name", "gonep")
    lab.ns(lab.client, "ip", "link", "set", "gone", "master", "bridle", "up")
    lab.ns(lab.client, "ip", "link", "del", "gone")
    try:
        assert "NO-CARRIER" in lab.ns(lab.client, "ip", "link", "show", "bridle")
        run = lab.wizard(lab.client)
        idle = run.finding("net.link", "bridle")
        assert idle["status"] == "OK" and "no ports attached" in idle["summary"], idle
        # Idle is fine until the default route needs it.
        lab.ns(lab.client, "ip", "route", "add", "default", "dev", "bridle")
        try:
            needed = lab.wizard(lab.client).finding("net.link", "bridle")
        finally:
            lab.ns(lab.client, "ip", "route", "del", "default", check=False)
        assert needed["status"] == "CRIT" and "the default route uses it" in needed["summary"]

        # Its twin: a port attached whose peer is down, so the bridge has no carrier.
        lab.ns(lab.client, "ip", "link", "add", "brport", "type", "veth", "peer", "name", "brpeer")
        lab.ns(lab.client, "ip", "link", "set", "brport", "master", "bridle", "up")
        run = lab.wizard(lab.client)
        dark = run.finding("net.link", "bridle")
        assert dark["status"] == "WARN", dark
        assert "none of its ports has carrier: brport" in dark["summary"]
        assert run.finding("net.link", "brport")["status"] == "WARN"
    finally:
        lab.ns(lab.client, "ip", "link", "del", "brport", check=False)  # and its peer
        lab.ns(lab.client, "ip", "link", "del", "bridle", check=False)


@pytest.fixture
def dual_stack_client(lab: Lab) -> Iterator[str]:
    """The client with an IPv4 default route through the lab gateway (which answers) and an
    IPv6 default route through a gateway that does not exist. Yields that dead gateway."""
    dead = "2001:db8:15::1"
    lab.ns(lab.client, "ip", "-6", "addr", "add", "2001:db8:15::10/64", "dev", "eth0", "nodad")
    lab.ns(lab.client, "ip", "route", "add", "default", "via", str(lab.lab.gateway))
    lab.ns(lab.client, "ip", "-6", "route", "add", "default", "via", dead)
    try:
        yield dead
    finally:
        lab.ns(lab.client, "ip", "-6", "route", "del", "default", check=False)
        lab.ns(lab.client, "ip", "route", "del", "default", check=False)
        lab.ns(lab.client, "ip", "-6", "addr", "del", "2001:db8:15::10/64", "dev", "eth0",
               check=False)  # fmt: skip


def test_a_dead_ipv6_gateway_the_ipv4_target_does_not_use_is_reported_not_graded(
    lab: Lab, dual_stack_client: str
) -> None:
    """An IPv6 default route that goes nowhere is how many ordinary hosts look: while the
    target's own route works it is named, and the step stays OK."""
    for target in ("127.0.0.1:22", f"{lab.server.address}:22"):
        run = lab.wizard(lab.client, "--target", target)
        address = target.rsplit(":", 1)[0]
        route = run.finding("net.route", f"route to {address}")
        assert route["status"] == "OK", route
        dead = run.finding("net.route", f"gateway {dual_stack_client}")
        assert dead["status"] == "OK", dead
        assert "unreachable" in dead["summary"] and "the target does not use it" in dead["summary"]
        assert run.finding("net.route", f"gateway {lab.lab.gateway}")["status"] == "OK"
        assert run.step("net.route")["status"] == "OK"
    local = run.finding("net.route", f"route to {lab.server.address}")
    assert "directly connected" in local["summary"]

    # Without a target: the IPv4 default works, so the IPv6 one going nowhere is a warning.
    run = lab.wizard(lab.client)
    dead = run.finding("net.route", f"gateway {dual_stack_client}")
    assert dead["status"] == "WARN" and "IPv4 works" in dead["summary"], dead
    assert run.step("net.route")["status"] == "WARN"


def test_a_target_whose_own_route_is_broken_is_critical(lab: Lab, dual_stack_client: str) -> None:
    lab.ns(lab.client, "ip", "route", "add", "203.0.113.0/25", "via", lab.nobody)
    lab.ns(lab.client, "ip", "route", "add", "unreachable", "203.0.113.128/25")
    try:
        run = lab.wizard(lab.client, "--target", "203.0.113.7:80")
        assert run.finding("net.route", "route to 203.0.113.7")["status"] == "OK"
        gone = run.finding("net.route", f"gateway {lab.nobody}")
        assert gone["status"] == "CRIT" and "unreachable" in gone["summary"], gone
        # The IPv6 default still does not matter to this IPv4 target.
        assert run.finding("net.route", f"gateway {dual_stack_client}")["status"] == "WARN"
        assert run.code == 2

        run = lab.wizard(lab.client, "--target", "203.0.113.200:80")
        nowhere = run.finding("net.route", "route to 203.0.113.200")
        assert nowhere["status"] == "CRIT", nowhere
        assert run.step("net.route")["status"] == "CRIT"
    finally:
        lab.ns(lab.client, "ip", "route", "del", "203.0.113.0/25", check=False)
        lab.ns(lab.client, "ip", "route", "del", "unreachable", "203.0.113.128/25", check=False)


def test_a_loopback_only_service_is_ok_for_a_loopback_target_and_not_for_its_own_address(
    lab: Lab, listener: Any
) -> None:
    listener(lab.server, "127.0.0.1", 8083)
    run = lab.wizard(lab.server, "--listen", "8083", "--target", "127.0.0.1:8083")
    listen = run.finding("net.listen", "tcp/8083")
    assert listen["status"] == "OK" and "loopback only" in listen["summary"], listen
    assert run.finding("net.connect", "127.0.0.1:8083")["status"] == "OK"
    assert not _not_ok(run), _not_ok(run)

    # Loopback, but the other family: the steps agree that ::1 is not served.
    run = lab.wizard(lab.server, "--listen", "8083", "--target", "[::1]:8083")
    listen = run.finding("net.listen", "tcp/8083")
    assert listen["status"] == "WARN" and "but not on ::1, the target" in listen["summary"]
    assert run.finding("net.connect", "[::1]:8083")["status"] == "CRIT"

    mine = f"{lab.server.address}:8083"
    run = lab.wizard(lab.server, "--listen", "8083", "--target", mine)
    listen = run.finding("net.listen", "tcp/8083")
    assert listen["status"] == "WARN" and "other hosts cannot connect" in listen["summary"]
    connect = run.finding("net.connect", mine)
    assert connect["status"] == "CRIT" and "refused" in connect["summary"]


def test_a_service_on_a_hosts_own_address_is_all_ok_from_itself_and_from_another_host(
    lab: Lab, listener: Any
) -> None:
    listener(lab.server, lab.server.address, 8084)
    target = f"{lab.server.address}:8084"
    for host, args in ((lab.server, ("--listen", "8084")), (lab.client, ())):
        run = lab.wizard(host, "--target", target, *args)
        assert run.finding("net.connect", target)["status"] == "OK"
        assert not _not_ok(run), _not_ok(run)
        if host is lab.server:
            assert run.finding("net.listen", "tcp/8084")["status"] == "OK"
        assert run.code != 2, run.doc


# -- DNS as the host resolves it, over SSH ----------------------------------------------------


@pytest.fixture(scope="module")
def dns_host(lab: Lab) -> Iterator[NetnsHost]:
    """A host with a resolv.conf, nsswitch.conf and /etc/hosts of its own (bound over /etc
    for its sshd), in the inventory as `resolving`."""
    host = lab.lab.add_host("resolving", etc={"resolv.conf": "", "nsswitch.conf": "", "hosts": ""})
    with lab.inventory.open("a") as inventory:
        inventory.write(f'\n[[host]]\nname = "resolving"\naddress = "{host.address}"\n')
    with lab.known_hosts.open("a") as known:
        known.write(host.known_hosts_line + "\n")
    try:
        yield host
    finally:
        lab.lab.remove_host(host)


def _etc(host: NetnsHost, **files: str) -> None:
    """Rewrite the host's own /etc files in place (sshd sees them by inode)."""
    assert host.netns
    for name, text in files.items():
        with (Path("/etc/netns") / host.netns / name.replace("_", ".")).open("r+") as file:
            file.truncate(0)
            file.write(text)


@pytest.fixture
def zone(lab: Lab) -> Iterator[str]:
    """dnsd in the server's namespace: api.lab (A), v6only.lab (AAAA only), nothing else."""
    assert lab.server.netns
    process = subprocess.Popen(
        ["ip", "netns", "exec", lab.server.netns, sys.executable, str(DNSD),
         lab.server.address, "53", f"api.lab={lab.server.address}", "v6only.lab=2001:db8::5"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout and process.stdout.readline().strip() == "ready"
    yield lab.server.address
    process.kill()
    process.wait(5)


def test_dns_over_ssh_resolves_through_search_hosts_file_and_aaaa_as_the_host_does(
    lab: Lab, dns_host: NetnsHost, zone: str, listener: Any
) -> None:
    _etc(
        dns_host,
        resolv_conf=f"nameserver {zone}\nsearch lab\noptions timeout:1\n",
        nsswitch_conf="hosts: files dns\n",
        hosts="127.0.0.1 localhost\n127.0.1.1 resolving\n",
    )
    short = lab.wizard(dns_host, "--resolve", "api").finding("net.dns", "resolve api")
    assert short["status"] == "OK", short
    assert lab.server.address in short["summary"] and "as api.lab" in short["summary"]

    own = lab.wizard(dns_host, "--resolve", "resolving").finding("net.dns", "resolve resolving")
    assert own["status"] == "OK" and "127.0.1.1 from /etc/hosts" in own["summary"], own

    six = lab.wizard(dns_host, "--resolve", "v6only.lab").finding("net.dns", "resolve v6only.lab")
    assert six["status"] == "OK" and "2001:db8::5" in six["summary"], six

    listener(lab.server, "0.0.0.0", 8085)
    run = lab.wizard(dns_host, "--target", "api:8085")
    assert run.finding("net.connect", "api:8085")["status"] == "OK"
    assert run.finding("net.route", f"route to {lab.server.address}")["status"] == "OK"
    assert not _not_ok(run), _not_ok(run)
    assert run.code != 2, run.doc

    # With DNS asked first the own name still resolves (from /etc/hosts after NXDOMAIN):
    # what the host resolves is never critical.
    _etc(dns_host, nsswitch_conf="hosts: dns files\n")
    own = lab.wizard(dns_host, "--resolve", "resolving").finding("net.dns", "resolve resolving")
    assert own["status"] == "OK" and "getaddrinfo, from /etc/hosts" in own["summary"], own


def test_dns_over_ssh_a_name_that_does_not_exist_and_a_dead_resolver_are_critical(
    lab: Lab, dns_host: NetnsHost, zone: str
) -> None:
    _etc(
        dns_host,
        resolv_conf=f"nameserver {zone}\nsearch lab\noptions timeout:1\n",
        nsswitch_conf="hosts: files dns\n",
        hosts="127.0.0.1 localhost\n",
    )
    run = lab.wizard(dns_host, "--resolve", "nope")
    nx = run.finding("net.dns", "resolve nope")
    assert nx["status"] == "CRIT" and "NXDOMAIN" in nx["summary"], nx
    asked = "\n".join(e["output"] for e in nx["evidence"])
    assert "nope.lab nxdomain" in asked and "nope nxdomain" in asked  # the search list, tried

    _etc(dns_host, resolv_conf=f"nameserver {lab.nobody}\nsearch lab\noptions timeout:1\n")
    dead = lab.wizard(dns_host, "--resolve", "api").finding("net.dns", "resolve api")
    assert dead["status"] == "CRIT" and "no resolver answers" in dead["summary"], dead


def test_a_name_whose_first_address_refuses_is_connected_on_the_next_as_clients_do(
    lab: Lab, dns_host: NetnsHost, zone: str, listener: Any
) -> None:
    """Debian's /etc/hosts gives `localhost` ::1 first; a service on 127.0.0.1 alone still
    answers curl or ssh, which go on to the next address. So does the connect step; and a
    port nothing listens on names every address it tried."""
    _etc(
        dns_host,
        resolv_conf=f"nameserver {zone}\noptions timeout:1\n",
        nsswitch_conf="hosts: files dns\n",
        hosts="::1 localhost ip6-localhost\n127.0.0.1 localhost\n",
    )
    listener(dns_host, "127.0.0.1", 8086)
    run = lab.wizard(dns_host, "--target", "localhost:8086", "--listen", "8086")
    connect = run.finding("net.connect", "localhost:8086")
    assert connect["status"] == "OK" and "127.0.0.1:8086" in connect["summary"], connect
    assert not _not_ok(run), _not_ok(run)

    closed = lab.wizard(dns_host, "--target", "localhost:8087").finding(
        "net.connect", "localhost:8087"
    )
    assert closed["status"] == "CRIT", closed
    assert "::1:8087: refused" in closed["summary"], closed
    assert "also 127.0.0.1: refused" in closed["summary"], closed
