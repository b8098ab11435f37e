"""The firewall parsers read real `iptables-save`, `ip6tables-save` and `nft` output.

The recordings in tests/data/net come from a throwaway network namespace (see its README).
The last test builds such a namespace itself and checks for real that a rule's
`delete_argv` deletes exactly that rule and `restore_argv` puts it back where it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.checks.network.firewall import (
    ChainPolicy,
    FirewallRule,
    Match,
    iptables_managed,
    parse_iptables_save,
)
from fleetdeck.checks.network.nftables import parse_nft_chains, parse_nft_ruleset
from fleetdeck.checks.network.packetwalk import Flow, Leg, Ruleset
from fleetdeck.hosts.linux.procfs import ParseError

from conftest import require_binary, require_root
from host_json import JSON_KEYS, json_values

DATA = Path(__file__).parent / "data" / "net"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# --- iptables-save -------------------------------------------------------------------------


def test_iptables_save_reads_rules_in_order_with_ports_actions_and_policies() -> None:
    rules, policies = parse_iptables_save(recorded("iptables-save.txt"))
    inp = [r for r in rules if (r.table, r.chain) == ("filter", "INPUT")]
    assert [r.position for r in inp] == list(range(1, 10))
    assert [r.action for r in inp] == [
        *("ACCEPT", "DROP", "REJECT", "REJECT", "ACCEPT", "DROP", "DROP", "LOG", "SSHGUARD"),
    ]
    drop, _, multiport, dns, api, source, log, _ = inp[1:]
    assert drop.text == "-A INPUT -p tcp -m tcp --dport 8080 -j DROP"
    assert (drop.protocol, drop.ports, drop.family, drop.handle) == (
        "tcp",
        ((8080, 8080),),
        "ip",
        None,
    )
    assert multiport.ports == ((80, 80), (443, 443), (8000, 8100))
    assert (dns.protocol, dns.ports) == ("udp", ((53, 53),))
    assert (api.comment, api.ports) == ("block api", ((9000, 9100),))
    assert (source.source, source.ports, source.protocol, source.narrowed) == (
        "203.0.113.7/32", None, None, True,
    )  # fmt: skip
    assert log.ports_negated and log.ports == ((22, 22),)
    nat = [r for r in rules if r.table == "nat"]
    assert [(r.chain, r.position, r.action) for r in nat] == [
        ("PREROUTING", 1, "DNAT"),
        ("POSTROUTING", 1, "MASQUERADE"),
    ]
    assert [(p.table, p.chain, p.policy, p.builtin) for p in policies[:4]] == [
        ("filter", "INPUT", "ACCEPT", True),
        ("filter", "FORWARD", "DROP", True),
        ("filter", "OUTPUT", "ACCEPT", True),
        ("filter", "SSHGUARD", "-", False),
    ]


def test_iptables_rule_argv_deletes_by_spec_and_restores_at_its_position() -> None:
    rules, _ = parse_iptables_save(recorded("iptables-save.txt"))
    api = next(r for r in rules if r.comment == "block api")
    spec = ("-p", "tcp", "-m", "tcp", "--dport", "9000:9100", "-m", "comment")
    spec += ("--comment", "block api", "-j", "DROP")
    assert api.delete_argv == ("iptables", "-t", "filter", "-D", "INPUT", *spec)
    assert api.restore_argv == ("iptables", "-t", "filter", "-I", "INPUT", "6", *spec)
    v6, _ = parse_iptables_save(recorded("ip6tables-save.txt"), "ip6tables")
    assert v6[2].delete_argv[:5] == ("ip6tables", "-t", "filter", "-D", "INPUT")
    assert v6[2].family == "ip6" and v6[2].protocol == "udp"


def test_iptables_save_with_counters_reads_the_same_rules() -> None:
    plain, _ = parse_iptables_save(recorded("iptables-save.txt"))
    counted, _ = parse_iptables_save(recorded("iptables-save-counters.txt"))
    assert counted == plain


def test_iptables_rules_carry_every_match_the_walk_tests() -> None:
    rules, _ = parse_iptables_save(recorded("iptables-save.txt"))
    lo, drop, *_ = rules
    assert lo.matches == (Match("iif", ("lo",)),)
    assert drop.matches == (Match("protocol", ("tcp",)), Match("dport", ports=((8080, 8080),)))
    guard = next(r for r in rules if r.chain == "SSHGUARD")
    assert Match("ctstate", ("new",)) in guard.matches
    assert Match("unknown", ("-m recent",)) in guard.matches and guard.opaque
    text = "*filter\n-A INPUT ! -i eth+ -m addrtype ! --dst-type LOCAL -p tcp --syn -g X\n"
    (odd,), _ = parse_iptables_save(text)
    assert odd.goto and odd.action == "X"
    assert odd.matches[:2] == (
        Match("iif", ("eth*",), negated=True),
        Match("dst-type", ("LOCAL",), negated=True),
    )
    assert odd.matches[-1] == Match("syn")


def test_counters_are_read_but_do_not_make_a_rule_another() -> None:
    counted, _ = parse_iptables_save("*filter\n[12:720] -A INPUT -j DROP\n")
    plain, _ = parse_iptables_save("*filter\n-A INPUT -j DROP\n")
    assert counted == plain and (counted[0].packets, plain[0].packets) == (12, None)


def test_iptables_save_is_read_strictly() -> None:
    assert parse_iptables_save("") == ([], [])
    assert parse_iptables_save("# Warning: iptables-legacy tables present\n") == ([], [])
    with pytest.raises(ParseError, match=r"line 3: '-A INPUT -j DROP' outside a \*table block"):
        parse_iptables_save("*filter\nCOMMIT\n-A INPUT -j DROP\n")
    with pytest.raises(ParseError, match="iptables-save line 3: No closing quotation"):
        parse_iptables_save('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment "x\n')
    with pytest.raises(ParseError, match="line 1: not a table, chain or rule"):
        parse_iptables_save("iptables-save: command not found\n")
    with pytest.raises(ParseError, match="ip6tables-save line 2: chain line without a policy"):
        parse_iptables_save("*filter\n:INPUT\n", "ip6tables")


def test_iptables_reads_the_old_negation_spelling_and_open_ranges() -> None:
    text = "*filter\n-A INPUT -p tcp --dport ! 22 -j DROP\n-A INPUT -p tcp --dport 60000: -j DROP\n"
    old, high = parse_iptables_save(text)[0]
    assert old.ports_negated and not old.matches_port(22) and old.matches_port(23)
    assert high.ports == ((60000, 65535),)
    odd = parse_iptables_save("*filter\n-A INPUT -p tcp --dport ssh -j DROP\n")[0][0]
    assert odd.ports is None and odd.opaque  # a name iptables-save never prints: any port


# --- nft -j -a list ruleset ----------------------------------------------------------------


def _nft(family: str, table: str) -> list[FirewallRule]:
    rules = parse_nft_ruleset(recorded("nft-ruleset.txt"))
    return [r for r in rules if (r.family, r.table) == (family, table)]


def test_nft_rules_read_ports_verdicts_and_text() -> None:
    fleet = [r for r in _nft("inet", "fleet") if r.chain == "input"]
    assert [(r.position, r.handle, r.previous_handle) for r in fleet[:3]] == [
        (1, 25, None),
        (2, 38, 25),
        (3, 27, 38),
    ]
    got = [(r.text, r.action, r.protocol, r.ports) for r in fleet]
    assert got[1:4] == [
        ("tcp dport 8080 drop", "DROP", "tcp", ((8080, 8080),)),
        ("tcp dport { 80, 443 } reject", "REJECT", "tcp", ((80, 80), (443, 443))),
        ("tcp dport 9000-9100 drop", "DROP", "tcp", ((9000, 9100),)),
    ]
    assert got[8] == (
        "tcp dport { 6000-6010, 6100 } drop",
        "DROP",
        "tcp",
        ((6000, 6010), (6100, 6100)),
    )
    assert got[11] == ("tcp dport @blocked drop", "DROP", "tcp", ((3306, 3306), (5000, 5005)))
    bad_actor = fleet[5]
    assert (bad_actor.comment, bad_actor.source, bad_actor.narrowed) == (
        "bad actor",
        "203.0.113.7",
        True,
    )
    assert bad_actor.text == 'ip saddr 203.0.113.7 tcp dport 22 drop comment "bad actor"'
    assert (fleet[6].action, fleet[6].ports_negated) == ("LOG", True)
    assert fleet[7].text == "tcp dport 7000 reject with tcp reset"
    assert (fleet[10].action, fleet[10].text) == ("guard", "tcp dport 2222 jump guard")
    assert fleet[13].text == "tcp dport 25 limit rate over 5/minute burst 10 packets drop"
    assert fleet[0].in_interface == "lo" and fleet[0].text == 'meta iifname "lo" accept'
    assert not any(r.opaque for r in fleet)
    (v6only,) = _nft("ip6", "v6only")
    assert v6only.text == "tcp dport 8080 reject with icmpv6 admin-prohibited"


def test_nft_rule_argv_deletes_by_handle_and_restores_after_its_neighbour() -> None:
    fleet = _nft("inet", "fleet")
    first, drop = fleet[0], fleet[1]
    assert drop.delete_argv == ("nft", "delete", "rule", "inet", "fleet", "input", "handle", "38")
    assert drop.restore_argv == (
        *("nft", "add", "rule", "inet", "fleet", "input", "position", "25"),
        *("tcp", "dport", "8080", "drop"),
    )
    assert first.restore_argv == (
        *("nft", "insert", "rule", "inet", "fleet", "input", "meta", "iifname", '"lo"', "accept"),
    )


def test_iptables_nft_tables_show_in_nft_as_xt_and_are_told_apart() -> None:
    rules = parse_nft_ruleset(recorded("nft-ruleset.txt"))
    managed = {(r.family, r.table) for r in rules if iptables_managed(r)}
    assert managed == {("ip", "filter"), ("ip", "nat"), ("ip6", "filter")}
    multiport = next(r for r in rules if r.table == "filter" and r.handle == 37)
    assert multiport.text == "meta l4proto tcp <xt match multiport> counter <xt target REJECT>"
    assert (multiport.action, multiport.protocol, multiport.ports) == ("REJECT", "tcp", None)
    assert multiport.opaque and multiport.restore_argv == ()
    own = parse_nft_ruleset(recorded("nft-ruleset.txt"), skip_iptables=True)
    assert {(r.family, r.table) for r in own} == {("inet", "fleet"), ("ip6", "v6only")}
    assert own == [r for r in rules if not iptables_managed(r)]
    iptables_rules, _ = parse_iptables_save(recorded("iptables-save.txt"))
    assert not any(iptables_managed(r) for r in iptables_rules)


def test_an_iptables_named_table_without_xt_is_still_iptables_managed() -> None:
    rule = {"family": "ip", "table": "mangle", "chain": "PREROUTING", "handle": 4, "expr": []}
    plain = {"family": "ip", "table": "mine", "chain": "c", "handle": 5, "expr": [{"drop": None}]}
    rules = parse_nft_ruleset(json.dumps({"nftables": [{"rule": rule}, {"rule": plain}]}))
    assert [iptables_managed(r) for r in rules] == [True, False]


def test_nft_rules_carry_every_match_the_walk_tests() -> None:
    fleet = [r for r in _nft("inet", "fleet") if r.chain == "input"]
    assert fleet[0].matches == (Match("iif", ("lo",)),)
    assert fleet[5].matches == (
        Match("saddr", ("203.0.113.7",)),
        Match("protocol", ("tcp",)),
        Match("dport", ports=((22, 22),)),
    )
    assert fleet[9].matches == (Match("ctstate", ("established", "related")),)
    assert fleet[13].matches[-1] == Match("rate", ("5/minute",), negated=True)
    assert fleet[4].packets == 0  # `counter`: nft keeps one


def test_nft_chains_give_base_chain_policies() -> None:
    chains = parse_nft_chains(recorded("nft-ruleset.txt"))
    shown = {(c.family, c.table, c.chain): c.policy for c in chains}
    assert shown[("ip6", "v6only", "input")] == "DROP"
    assert shown[("inet", "fleet", "guard")] == "-"
    assert shown[("ip", "filter", "FORWARD")] == "DROP"
    v6only = next(c for c in chains if (c.family, c.table) == ("ip6", "v6only"))
    assert (v6only.hook, v6only.priority, v6only.kind) == ("input", 10, "filter")


def test_nft_output_that_is_not_a_ruleset_is_an_error() -> None:
    with pytest.raises(ParseError, match="nft -j list ruleset: no output"):
        parse_nft_ruleset("")
    with pytest.raises(ParseError, match="expected an object with an 'nftables' list"):
        parse_nft_ruleset("[]")
    with pytest.raises(ParseError, match="not JSON"):
        parse_nft_ruleset("Error: Could not process rule: Operation not permitted")
    empty = '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}'
    assert parse_nft_ruleset(empty) == [] and parse_nft_chains(empty) == []


def test_matches_port_honours_protocol_and_negation() -> None:
    base = FirewallRule("iptables", "filter", "INPUT", 1, "", "DROP", None, None)
    assert base.matches_port(1) and base.matches_port(1, "udp")
    tcp = FirewallRule("iptables", "filter", "INPUT", 1, "", "DROP", "tcp", ((10, 20),))
    assert tcp.matches_port(10) and tcp.matches_port(20) and not tcp.matches_port(21)
    assert not tcp.matches_port(15, "udp")
    not_icmp = FirewallRule(
        "nftables", "t", "c", 1, "", "DROP", "icmp", None, protocol_negated=True
    )
    assert not_icmp.matches_port(80) and not not_icmp.matches_port(80, "icmp")
    assert not FirewallRule("iptables", "f", "c", 1, "", "ACCEPT", None, None).blocks
    assert FirewallRule("nftables", "t", "c", 1, "", "DROP", None, None).delete_argv == ()


# --- properties: any input gives a result or ParseError --------------------------------------

JSON_PARSERS: list[Callable[[str], object]] = [parse_nft_ruleset, parse_nft_chains]
TEXT_PARSERS: list[Callable[[str], object]] = [*JSON_PARSERS, parse_iptables_save]


def _result_or_parse_error(parser: Callable[[str], object], text: str) -> None:
    with contextlib.suppress(ParseError):
        parser(text)


def _use(rules: list[FirewallRule]) -> None:
    """Every derived value of every rule computes without error."""
    for rule in rules:
        assert rule.position >= 1
        derived = (rule.delete_argv, rule.restore_argv, rule.blocks, rule.narrowed)
        assert derived[0] or rule.handle is None
        assert {rule.matches_port(80), rule.matches_port(53, "udp")} <= {True, False}
        assert all(0 <= lo <= hi <= 65535 for lo, hi in rule.ports or ())


def _walk_all(rules: list[FirewallRule], chains: list[ChainPolicy]) -> None:
    """Any parsed ruleset walks to a verdict for flows in, out and to this host itself."""
    legs = (Leg(("prerouting", "input"), iif=("eth0",)), Leg(("output", "postrouting"), oif="lo"))
    for family in ("ip", "ip6"):
        flow = Flow("any", family, 22, (), (), "UNICAST", "LOCAL", legs)
        assert Ruleset(rules, chains).walk(flow).verdict in ("ACCEPT", "DROP", "REJECT")


@settings(max_examples=300)
@given(st.text(max_size=400))
def test_no_parser_crashes_on_garbage_text(text: str) -> None:
    for parser in TEXT_PARSERS:
        _result_or_parse_error(parser, text)


@settings(max_examples=400)
@given(json_values)
def test_no_parser_crashes_on_any_json(value: object) -> None:
    for text in (json.dumps(v) for v in (value, [value], {"nftables": [value]})):
        for parser in JSON_PARSERS:
            _result_or_parse_error(parser, text)
        with contextlib.suppress(ParseError):
            _use(parse_nft_ruleset(text))
            _walk_all(parse_nft_ruleset(text), parse_nft_chains(text))


nft_rules = st.fixed_dictionaries(
    {
        "family": st.sampled_from(["ip", "ip6", "inet"]),
        "table": st.sampled_from(["filter", "fleet"]),
        "chain": st.sampled_from(["input", "guard"]),
        "handle": st.integers(min_value=1, max_value=99),
        "expr": st.lists(st.dictionaries(JSON_KEYS, json_values, min_size=1, max_size=1)),
    }
).map(lambda rule: {"rule": rule})


@settings(max_examples=300)
@given(st.lists(nft_rules, max_size=6))
def test_nft_rules_of_any_shape_read_or_fail_cleanly(objects: list[object]) -> None:
    rules = parse_nft_ruleset(json.dumps({"nftables": objects}))
    _use(rules)
    _walk_all(rules, parse_nft_chains(json.dumps({"nftables": objects})))


port_ranges = st.lists(
    st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(sorted).map(tuple),
    min_size=1,
    max_size=5,
)


@given(port_ranges, st.integers(0, 65535), st.booleans())
def test_iptables_port_lists_match_like_the_kernel(
    ranges: list[tuple[int, int]], port: int, negated: bool
) -> None:
    spec = ",".join(f"{lo}:{hi}" if lo != hi else str(lo) for lo, hi in ranges)
    neg = "! " if negated else ""
    text = f"*filter\n-A INPUT -p tcp -m multiport {neg}--dports {spec} -j DROP\nCOMMIT\n"
    (rule,), _ = parse_iptables_save(text)
    inside = any(lo <= port <= hi for lo, hi in ranges)
    assert rule.matches_port(port) == (inside != negated)
    assert not rule.matches_port(port, "udp")


@given(port_ranges, st.integers(0, 65535))
def test_nft_port_sets_match_and_rebuild(ranges: list[tuple[int, int]], port: int) -> None:
    elements: list[object] = [lo if lo == hi else {"range": [lo, hi]} for lo, hi in ranges]
    match = {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}}
    rule = {"family": "inet", "table": "t", "chain": "c", "handle": 7}
    expr = [{"match": {**match, "right": {"set": elements}}}, {"drop": None}]
    (parsed,) = parse_nft_ruleset(json.dumps({"nftables": [{"rule": {**rule, "expr": expr}}]}))
    assert parsed.matches_port(port) == any(lo <= port <= hi for lo, hi in ranges)
    shown = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
    assert parsed.text == f"tcp dport {{ {shown} }} drop"


iptables_words = st.sampled_from(
    ["-A", "INPUT", "-p", "tcp", "!", "--dport", "--dports", "80,443", "1:2", "-j", "DROP",
     "-s", "-i", "--comment", '"a b"', '"', "'", "-m", "set", "multiport", "x", ":", ","]
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(st.lists(iptables_words, max_size=10).map(" ".join), max_size=8))
def test_iptables_lines_of_any_words_read_or_fail_cleanly(lines: list[str]) -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n" + "\n".join(lines) + "\nCOMMIT\n"
    with contextlib.suppress(ParseError):
        rules, chains = parse_iptables_save(text)
        _use(rules)
        _walk_all(rules, chains)
        positions = [r.position for r in rules if r.chain == "INPUT"]
        assert positions == list(range(1, len(positions) + 1))


# --- for real, in a throwaway namespace ------------------------------------------------------

REAL_IPTABLES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:GUARD - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8080 -j DROP
-A INPUT -p tcp -m tcp --dport 8080 -j REJECT --reject-with tcp-reset
-A INPUT -p tcp -m multiport --dports 80,443,8000:8100 -j REJECT
-A INPUT -p tcp -m tcp --dport 9000:9100 -m comment --comment "block api" -j DROP
-A INPUT -p tcp -m tcp ! --dport 22 -j LOG --log-prefix "not ssh: "
-A INPUT -p tcp -m tcp --dport 2222 -j GUARD
-A GUARD -j DROP
COMMIT
"""
REAL_IP6TABLES = """*filter
:INPUT DROP [0:0]
-A INPUT -p tcp -m tcp --dport 8080 -j DROP
-A INPUT -p udp -m multiport --dports 500,4500 -j REJECT --reject-with icmp6-adm-prohibited
COMMIT
"""
REAL_NFT = """table inet fdtest {
    set blocked { type inet_service; flags interval; elements = { 3306, 5000-5005 }; }
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "lo" accept
        tcp dport 8080 drop
        tcp dport { 80, 443 } reject
        tcp dport 9000-9100 counter drop comment "block api"
        tcp dport @blocked drop
        tcp dport != 22 log prefix "not ssh "
        tcp dport 7000 reject with tcp reset
        tcp dport 25 limit rate over 5/minute burst 10 packets drop
        ct state established,related accept
        tcp dport 2222 jump guard
    }
    chain guard { drop; }
}
"""


@pytest.fixture
def throwaway_netns() -> Iterator[Callable[..., str]]:
    """A network namespace of this test's own; yields `run(*argv)` inside it."""
    require_root("create a network namespace and change its firewall")
    for binary, package in (("ip", "iproute2"), ("iptables", "iptables"), ("nft", "nftables")):
        require_binary(binary, package)
    name = f"fdn{os.getpid()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)

    def run(*argv: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", name, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout

    try:
        yield run
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


def _in(port: int) -> Flow:
    leg = Leg(("prerouting", "input"), iif=("eth0",))
    return Flow("in", "ip", port, (), (), "UNICAST", "LOCAL", (leg,))


def _rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def _nft_lines(text: str) -> list[str]:
    return [re.sub(r" # handle \d+$", "", line) for line in text.splitlines()]


def test_firewall_rules_are_deleted_exactly_and_restored_in_place_for_real(
    throwaway_netns: Callable[..., str],
) -> None:
    run = throwaway_netns
    run("iptables-restore", stdin=REAL_IPTABLES)
    run("ip6tables-restore", stdin=REAL_IP6TABLES)
    run("nft", "-f", "-", stdin=REAL_NFT)

    for backend in ("iptables", "ip6tables"):
        before = run(f"{backend}-save")
        rules, _ = parse_iptables_save(before, backend)
        assert len(rules) == (8 if backend == "iptables" else 2)
        for rule in rules:
            run(*rule.delete_argv)
            expected = _rule_lines(before)
            expected.remove(rule.text)
            assert _rule_lines(run(f"{backend}-save")) == expected, rule.text
            run(*rule.restore_argv)
            assert _rule_lines(run(f"{backend}-save")) == _rule_lines(before), rule.text
        if backend == "iptables":
            walk = Ruleset(rules, parse_iptables_save(before)[1]).walk(_in(8080))
            assert walk.rule and walk.rule.position == 2  # the first of the three, in order

    listing = ("nft", "-a", "list", "table", "inet", "fdtest")
    before_nft = _nft_lines(run(*listing))
    count = len(parse_nft_ruleset(run("nft", "-j", "-a", "list", "ruleset"), skip_iptables=True))
    assert count == 11
    for index in range(count):
        # Handles change when a rule comes back: read the ruleset afresh for each rule.
        rules = parse_nft_ruleset(run("nft", "-j", "-a", "list", "ruleset"), skip_iptables=True)
        rule = rules[index]
        assert rule.restore_argv, rule.text
        run(*rule.delete_argv)
        remaining = run(*listing)
        assert f"# handle {rule.handle}\n" not in remaining
        assert len(_nft_lines(remaining)) == len(before_nft) - 1, rule.text
        run(*rule.restore_argv)
        assert _nft_lines(run(*listing)) == before_nft, rule.text
    rules = parse_nft_ruleset(run("nft", "-j", "-a", "list", "ruleset"))
    managed = {(r.family, r.table) for r in rules if iptables_managed(r)}
    assert managed == {("ip", "filter"), ("ip6", "filter")}
    own = [r for r in rules if not iptables_managed(r)]
    guard = Ruleset(own, parse_nft_chains(run("nft", "-j", "-a", "list", "ruleset"))).walk(
        _in(2222)
    )
    assert guard.rule and (guard.rule.chain, guard.rule.text) == ("guard", "drop")
