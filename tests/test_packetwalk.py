"""The packet walk on recorded rulesets: real `iptables-save -c` and `nft -j` output of ufw,
Docker, a native nft table and a fail2ban jail, each made in a throwaway network namespace
(tests/data/firewall/README.md), and the older recordings in tests/data/net.

Each healthy ruleset is walked to an accept with no fix; each faulty twin names what decides:
the rule (in rule order, not any rule that mentions the port) or the chain's policy, and the
owner's way to open the port. The same walk runs for real over SSH in test_firewall_flow.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetdeck.checks.model import Fix, Status
from fleetdeck.checks.network.firewall import ChainPolicy, FirewallRule, Match, parse_iptables_save
from fleetdeck.checks.network.firewall_owners import OWNERS, chain_owner, policy_owner, rule_owner
from fleetdeck.checks.network.firewall_step import (
    Verdict,
    against_the_probe,
    grade_walk,
    moved_counters,
    nft_tables,
    path_evidence,
)
from fleetdeck.checks.network.packetwalk import Flow, Grade, Leg, Ruleset, Walk

FIREWALL = Path(__file__).parent / "data" / "firewall"
NET = Path(__file__).parent / "data" / "net"


def iptables(path: Path) -> tuple[list[FirewallRule], list[ChainPolicy]]:
    return parse_iptables_save(path.read_text())


def nft(path: Path) -> tuple[list[FirewallRule], list[ChainPolicy]]:
    """nft's own tables, as the step reads them on a host whose iptables-save answers."""
    return nft_tables(path.read_text(), skip_iptables=True)


def inbound(port: int, *interfaces: str, family: str = "ip", protocol: str = "tcp") -> Flow:
    """From another host to `port` here, in on any of `interfaces`."""
    leg = Leg(("prerouting", "input"), iif=interfaces or ("eth0",))
    return Flow("in", family, port, (), (), "UNICAST", "LOCAL", (leg,), protocol)


def outbound(port: int, dst: str, oif: str = "eth0", src: str = "10.0.0.2") -> Flow:
    leg = Leg(("output", "postrouting"), oif=oif)
    return Flow("out", "ip", port, (src,), (dst,), "LOCAL", "UNICAST", (leg,))


def to_myself(port: int, address: str = "127.0.0.1") -> Flow:
    out = Leg(("output", "postrouting"), oif="lo")
    back = Leg(("prerouting", "input"), iif=("lo",), nat=False)
    mine = (address,)
    return Flow("from this host", "ip", port, mine, mine, "LOCAL", "LOCAL", (out, back))


def walk(recording: tuple[list[FirewallRule], list[ChainPolicy]], flow: Flow) -> Walk:
    return Ruleset(*recording).walk(flow)


def no_fix(rule: FirewallRule) -> Fix | None:
    raise AssertionError(f"a fix was asked for {rule.text}")


def grade(recording: tuple[list[FirewallRule], list[ChainPolicy]], flow: Flow) -> Verdict:
    return grade_walk(walk(recording, flow), recording[0], {}, no_fix)


# --- plain iptables, in rule order ----------------------------------------------------------


def test_the_first_rule_that_applies_decides_not_every_rule_that_names_the_port() -> None:
    rules = iptables(NET / "iptables-save.txt")
    assert walk(rules, inbound(8080)).rule.text == "-A INPUT -p tcp -m tcp --dport 8080 -j DROP"  # type: ignore[union-attr]
    found = walk(rules, inbound(8050))
    assert found.verdict == "REJECT" and found.rule and found.rule.position == 4
    assert walk(rules, inbound(9100)).rule.position == 6  # type: ignore[union-attr]
    dns = walk(rules, inbound(53, protocol="udp"))
    assert dns.verdict == "ACCEPT" and dns.partial == []  # accepted before the -s drop
    assert walk(rules, to_myself(8080)).verdict == "ACCEPT"  # -i lo -j ACCEPT comes first


def test_a_drop_for_one_source_blocks_that_source_not_the_port() -> None:
    rules = iptables(NET / "iptables-save.txt")
    ssh = walk(rules, inbound(22))
    assert ssh.verdict == "ACCEPT" and [r.position for r in ssh.partial] == [7]
    verdict = grade_walk(ssh, rules[0], {}, no_fix)
    assert verdict.status is Status.OK and verdict.fixes == ()
    assert "blocks only part of it (saddr 203.0.113.7/32), not the port" in verdict.sentence
    v6 = parse_iptables_save((NET / "ip6tables-save.txt").read_text(), "ip6tables")
    policy = walk(v6, inbound(22, family="ip6"))
    assert policy.by_policy and policy.chain and policy.chain.chain == "INPUT"
    assert walk(v6, inbound(22)).verdict == "ACCEPT"  # ip6tables is not on the IPv4 path


def test_an_admins_drop_on_the_path_is_the_cause_and_offered_for_deletion() -> None:
    rules = iptables(NET / "iptables-save.txt")
    offered: list[str] = []

    def fix_for(rule: FirewallRule) -> Fix | None:
        offered.append(rule.text)
        return None

    verdict = grade_walk(walk(rules, inbound(8080)), rules[0], {}, fix_for)
    assert verdict.status is Status.CRIT
    assert offered == ["-A INPUT -p tcp -m tcp --dport 8080 -j DROP"]


TEXT = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:GUARD - [0:0]
:SKIP - [0:0]
[3:180] -A INPUT -i eth9 -p tcp -m tcp --dport 8080 -j DROP
[0:0] -A INPUT -p tcp -m tcp --dport 8080 -g SKIP
[0:0] -A INPUT -p tcp -m tcp --dport 8080 -j DROP
[0:0] -A INPUT -p tcp -m set --match-set banned src -j DROP
[5:300] -A INPUT -p tcp -m tcp --dport 9090 -j GUARD
[0:0] -A INPUT -p tcp -m tcp --dport 9090 -j REJECT
[0:0] -A GUARD -j RETURN
[0:0] -A SKIP -j LOG
[0:0] -A FORWARD -p tcp -m tcp --dport 9090 -j DROP
[0:0] -A OUTPUT -o eth0 -p tcp -m tcp --dport 5432 -j REJECT
[0:0] -A OUTPUT -o eth1 -p tcp -m tcp --dport 6432 -j REJECT
COMMIT
"""


def test_goto_returns_past_its_chain_return_comes_back_and_interfaces_narrow() -> None:
    rules = parse_iptables_save(TEXT)
    goto = walk(rules, inbound(8080, "eth0", "eth9"))
    assert goto.verdict == "ACCEPT"  # the goto's RETURN skips the DROP after it
    assert [r.position for r in goto.partial] == [1]  # eth9 only: part of the traffic
    only_eth9 = walk(rules, inbound(8080, "eth9"))
    assert only_eth9.rule and only_eth9.rule.position == 1
    back = walk(rules, inbound(9090))
    assert back.verdict == "REJECT" and back.rule and back.rule.position == 6
    assert all(r.chain != "FORWARD" for r in (s.rule for s in back.steps))


def test_a_rule_this_reader_cannot_read_may_apply_and_is_never_the_cause() -> None:
    rules = parse_iptables_save(TEXT)
    found = walk(rules, inbound(7000))
    assert found.verdict == "ACCEPT" and [r.position for r in found.unsure] == [4]
    verdict = grade_walk(found, rules[0], {}, no_fix)
    assert verdict.status is Status.WARN and "may apply" in verdict.sentence
    assert verdict.fixes == ()


def test_the_target_flow_takes_the_output_path_of_its_route_only() -> None:
    rules = parse_iptables_save(TEXT)
    blocked = walk(rules, outbound(5432, "10.0.0.9"))
    assert blocked.verdict == "REJECT" and blocked.rule and blocked.rule.position == 1
    assert walk(rules, outbound(5432, "10.0.0.9", oif="eth1")).verdict == "ACCEPT"
    assert walk(rules, outbound(8080, "10.0.0.9")).verdict == "ACCEPT"  # INPUT: not its path
    assert [c.chain for c in blocked.chains] == ["OUTPUT"]


def test_counters_that_moved_between_two_readings_name_the_rule_hit() -> None:
    before, chains = parse_iptables_save(TEXT)
    reject = "[0:0] -A INPUT -p tcp -m tcp --dport 9090 -j REJECT"
    after, _ = parse_iptables_save(TEXT.replace(reject, "[2:120]" + reject[5:]))
    moved = moved_counters(before, after)
    assert [(key[3], key[4], count) for key, count in moved.items()] == [("INPUT", 6, 2)]
    found = Ruleset(before, chains).walk(inbound(9090))
    said = grade_walk(found, before, moved, lambda rule: None).sentence
    assert "REJECT by iptables filter/INPUT #6" in said
    assert "(hit by the probe: +2 packets)" in said
    assert "hit by" not in grade_walk(found, before, {}, lambda rule: None).sentence


# --- ufw ----------------------------------------------------------------------------------


def test_ufw_allowed_ports_are_accepted_by_its_own_rules_with_nothing_to_fix() -> None:
    ufw = iptables(FIREWALL / "ufw-iptables-save-c.txt")
    for port in (22, 8080):
        verdict = grade(ufw, inbound(port))
        assert verdict.status is Status.OK and verdict.fixes == (), verdict
        assert f"-A ufw-user-input -p tcp -m tcp --dport {port} -j ACCEPT" in verdict.sentence
    assert grade(ufw, to_myself(8081)).status is Status.OK  # -o lo / -i lo accept


def test_a_port_ufw_denies_names_ufws_policy_and_ufw_allow() -> None:
    ufw = iptables(FIREWALL / "ufw-iptables-save-c.txt")
    found = walk(ufw, inbound(8081))
    assert (
        found.by_policy
        and found.chain
        and (found.chain.chain, found.chain.policy)
        == (
            "INPUT",
            "DROP",
        )
    )
    verdict = grade_walk(found, ufw[0], {}, no_fix)
    assert verdict.status is Status.CRIT and verdict.fixes == ()
    assert "set by ufw" in verdict.sentence and "ufw allow 8081/tcp" in verdict.sentence
    assert "INVALID" not in verdict.sentence and "iptables -D" not in verdict.sentence


# --- Docker ------------------------------------------------------------------------------


def test_dockers_chains_are_off_the_path_of_a_local_connection() -> None:
    docker = iptables(FIREWALL / "docker-iptables-save-c.txt")
    for flow in (to_myself(18080), inbound(18080, "eth0", "docker0")):
        found = walk(docker, flow)
        assert found.verdict == "ACCEPT"
        assert not any(c.chain == "FORWARD" for c in found.chains)
        assert not any("ISOLATION" in s.rule.chain for s in found.steps)
        assert grade(docker, flow).status is Status.OK
    forward = [c for c in docker[1] if c.chain == "FORWARD"]
    assert forward[0].policy == "DROP" and policy_owner(forward[0], docker[0]) is OWNERS[0]


# --- native nftables ------------------------------------------------------------------------


def test_native_nft_accepts_its_open_ports_and_blames_the_policy_for_the_rest() -> None:
    table = nft(FIREWALL / "nft-native.json")
    ok = grade(table, inbound(8080))
    assert ok.status is Status.OK and "tcp dport { 22, 8080 } counter accept" in ok.sentence
    found = walk(table, inbound(8081))
    assert found.by_policy and found.chain and found.chain.table == "filter"
    verdict = grade_walk(found, table[0], {}, no_fix)
    assert verdict.status is Status.CRIT and verdict.fixes == ()
    assert "nft add rule inet filter input tcp dport 8081 accept" in verdict.sentence
    assert "invalid" not in verdict.sentence
    assert walk(table, to_myself(8081)).verdict == "ACCEPT"  # iif lo accept


def test_nft_walk_follows_jumps_rates_and_families() -> None:
    fleet = nft(NET / "nft-ruleset.txt")
    assert walk(fleet, inbound(8080)).rule.text == "tcp dport 8080 drop"  # type: ignore[union-attr]
    v6 = walk(fleet, inbound(8080, family="ip6"))
    assert v6.rule and v6.rule.text == "tcp dport 8080 drop"  # inet comes first (prio 0 < 10)
    assert walk(fleet, inbound(2222)).rule.chain == "guard"  # type: ignore[union-attr]
    assert walk(fleet, inbound(5003)).rule.text == "tcp dport @blocked drop"  # type: ignore[union-attr]
    smtp = walk(fleet, inbound(25))
    assert smtp.verdict == "ACCEPT" and [r.position for r in smtp.partial] == [14]  # over a rate
    assert walk(fleet, inbound(123, protocol="udp")).verdict == "ACCEPT"
    udp = walk(fleet, inbound(8080, protocol="udp"))
    assert udp.verdict == "ACCEPT"  # tcp dport 8080 is tcp only
    assert walk(fleet, inbound(9999, family="ip6")).by_policy  # v6only: policy drop


# --- fail2ban ----------------------------------------------------------------------------


def test_a_fail2ban_ban_is_that_source_only_and_its_unban_is_text_not_a_fix() -> None:
    jail = iptables(FIREWALL / "fail2ban-iptables-save-c.txt")
    verdict = grade(jail, inbound(22))
    assert verdict.status is Status.OK and verdict.fixes == ()
    assert "fail2ban-client set sshd unbanip 203.0.113.7/32" in verdict.sentence
    assert (
        grade(jail, inbound(80)).status is Status.OK
        and "f2b" not in grade(jail, inbound(80)).sentence
    )


# --- owners ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "table", "backend", "owner"),
    [
        ("DOCKER-ISOLATION-STAGE-2", "filter", "iptables", "Docker"),
        ("DOCKER-USER", "filter", "iptables", "Docker"),
        ("KUBE-SERVICES", "nat", "iptables", "Kubernetes"),
        ("cali-INPUT", "filter", "iptables", "Kubernetes"),
        ("ufw-user-input", "filter", "iptables", "ufw"),
        ("ufw6-before-input", "filter", "ip6tables", "ufw"),
        ("f2b-sshd", "filter", "iptables", "fail2ban"),
        ("filter_IN_public_allow", "firewalld", "nftables", "firewalld"),
        ("IN_public_allow", "filter", "iptables", "firewalld"),
        ("f2b-chain", "f2b-table", "nftables", "fail2ban"),
        ("INPUT", "filter", "iptables", None),
        ("input", "filter", "nftables", None),
    ],
)
def test_each_tools_chains_have_that_owner(
    chain: str, table: str, backend: str, owner: str | None
) -> None:
    found = chain_owner(chain, table, backend)
    assert (found.name if found else None) == owner


def test_a_jump_into_an_owners_chain_is_the_owners_rule() -> None:
    jail = iptables(FIREWALL / "fail2ban-iptables-save-c.txt")[0]
    owner = rule_owner(jail[0])
    assert jail[0].chain == "INPUT" and owner is not None and owner.name == "fail2ban"


@given(st.integers(1, 65535), st.sampled_from(["eth0", "docker0", "lo"]))
def test_any_port_on_any_recording_walks_to_a_verdict(port: int, interface: str) -> None:
    for recording in (
        iptables(FIREWALL / "ufw-iptables-save-c.txt"),
        iptables(FIREWALL / "docker-iptables-save-c.txt"),
        iptables(NET / "iptables-save.txt"),
        nft(NET / "nft-ruleset.txt"),
        nft(FIREWALL / "nft-native.json"),
    ):
        for flow in (inbound(port, interface), outbound(port, "10.0.0.9"), to_myself(port)):
            found = walk(recording, flow)
            assert found.verdict in ("ACCEPT", "DROP", "REJECT")
            assert all(s.grade is not Grade.NO for s in found.steps)


def test_a_rule_ufw_itself_made_is_named_with_ufws_commands_never_deleted() -> None:
    text = (FIREWALL / "ufw-iptables-save-c.txt").read_text()
    accept = "[0:0] -A ufw-user-input -p tcp -m tcp --dport 8080 -j ACCEPT\n"
    deny = "[0:0] -A ufw-user-input -p tcp -m tcp --dport 8082 -j DROP\n"  # ufw deny 8082/tcp
    ufw = parse_iptables_save(text.replace(accept, accept + deny))
    verdict = grade(ufw, inbound(8082))
    assert verdict.status is Status.CRIT and verdict.fixes == ()
    assert "DROP by iptables filter/ufw-user-input #3" in verdict.sentence
    assert "ufw owns it: see ufw status numbered; to open the port: ufw allow 8082/tcp" in (
        verdict.sentence
    )


def test_the_policy_that_dropped_the_probe_is_named_as_hit() -> None:
    text = (FIREWALL / "ufw-iptables-save-c.txt").read_text()
    rules, chains = parse_iptables_save(text)
    after_rules, after_chains = parse_iptables_save(
        text.replace(":INPUT DROP [0:0]", ":INPUT DROP [1:60]")
    )
    moved = moved_counters(rules, after_rules, chains, after_chains)
    found = Ruleset(rules, chains).walk(inbound(8081))
    said = grade_walk(found, rules, moved, no_fix).sentence
    assert "drops it (hit by the probe: +1 packets); to open it" in said


def test_a_walk_that_blocks_a_connection_the_probe_made_is_not_called_blocked() -> None:
    rules = parse_iptables_save(TEXT)
    found = walk(rules, outbound(5432, "10.0.0.9"))
    assert found.blocked
    verdict = against_the_probe(found, {"target": {"ok": True}})
    assert verdict is not None and verdict.status is Status.WARN and verdict.fixes == ()
    assert "the probe connected" in verdict.sentence
    assert against_the_probe(found, {"target": {"ok": False, "error": "refused"}}) is None
    assert against_the_probe(walk(rules, inbound(8080, "eth0")), {"target": {"ok": True}}) is None


ALLOW_LIST = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT
-A INPUT -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -j ACCEPT
COMMIT
"""


def test_an_allow_list_is_open_to_some_sources_and_the_policy_closes_the_rest() -> None:
    rules = parse_iptables_save(ALLOW_LIST)
    verdict = grade(rules, inbound(5432))
    assert verdict.status is Status.WARN and verdict.fixes == ()
    assert "accepted only for part of it, by iptables filter/INPUT #1" in verdict.sentence
    assert "iptables -A INPUT -p tcp --dport 5432 -j ACCEPT" in verdict.sentence


def test_a_rule_for_this_hosts_own_address_applies_to_every_connection_to_it() -> None:
    rules = parse_iptables_save(ALLOW_LIST)
    leg = Leg(("prerouting", "input"), iif=("eth0",))
    only = Flow("in", "ip", 8080, (), ("10.0.0.5",), "UNICAST", "LOCAL", (leg,))
    assert grade(rules, only).status is Status.OK
    two = Flow("in", "ip", 8080, (), ("10.0.0.5", "10.0.0.6"), "UNICAST", "LOCAL", (leg,))
    assert grade(rules, two).status is Status.WARN  # not on 10.0.0.6


def test_ufws_ipv6_routing_header_drops_do_not_apply_to_a_new_connection() -> None:
    ufw6 = parse_iptables_save((FIREWALL / "ufw-ip6tables-save-c.txt").read_text(), "ip6tables")
    rh0 = next(r for r in ufw6[0] if "--rt-type 0" in r.text and r.chain == "ufw6-before-input")
    assert Match("exthdr", ("rt",)) in rh0.matches and not rh0.opaque
    verdict = grade(ufw6, inbound(8080, family="ip6"))
    assert verdict.status is Status.OK and "may apply" not in verdict.sentence
    assert grade(ufw6, inbound(8081, family="ip6")).status is Status.CRIT


def test_a_drop_behind_the_first_one_is_said_so_one_deletion_is_not_taken_for_all() -> None:
    v4, v4_chains = iptables(NET / "iptables-save.txt")
    own, own_chains = nft(NET / "nft-ruleset.txt")
    both = (v4 + own, v4_chains + own_chains)
    found = walk(both, inbound(8080))
    assert found.rule and found.rule.backend == "iptables" and found.rule.position == 2
    assert [(r.text if r else None, c.table) for r, c in found.behind] == [
        ("tcp dport 8080 drop", "fleet")
    ]
    said = grade_walk(found, both[0], {}, lambda rule: None).sentence
    assert said.endswith("-j DROP (1 more behind it: see the path)")
    path = path_evidence(found, {}).output
    assert "behind it, also dropped by nftables fleet/input #2: tcp dport 8080 drop" in path
    assert walk(both, inbound(8081)).behind == ()  # REJECT by iptables; nft lets 8081 in


def test_an_nft_verdict_map_may_apply_and_never_decides() -> None:
    from fleetdeck.checks.network.nftables import parse_nft_chains, parse_nft_ruleset

    chain = {"family": "inet", "table": "t", "name": "input", "hook": "input", "prio": 0,
             "type": "filter", "policy": "accept"}  # fmt: skip
    vmap = {"vmap": {"key": {"payload": {"protocol": "th", "field": "dport"}},
                     "data": {"set": [[8080, {"drop": None}]]}}}  # fmt: skip
    rule = {"family": "inet", "table": "t", "chain": "input", "handle": 2, "expr": [vmap]}
    text = json.dumps({"nftables": [{"chain": chain}, {"rule": rule}]})
    found = Ruleset(parse_nft_ruleset(text), parse_nft_chains(text)).walk(inbound(8080))
    assert found.verdict == "ACCEPT" and [r.handle for r in found.unsure] == [2]
