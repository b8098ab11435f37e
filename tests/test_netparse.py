"""The network parsers read real `ip`, `ss` and resolv.conf output.

The recordings in tests/data/net come from a throwaway network namespace (see its README).
The firewall parsers are tested in tests/test_firewall.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import dnsd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetdeck.checks.network import probe as netprobe
from fleetdeck.checks.network.parse import (
    PORTED_KINDS,
    Listener,
    ResolvConf,
    default_routes,
    hosts_file_addresses,
    listeners_on,
    parse_addresses,
    parse_links,
    parse_nsswitch_hosts,
    parse_resolv_conf,
    parse_routes,
    parse_ss_listening,
    ports_of,
    search_names,
)
from fleetdeck.hosts.linux.procfs import ParseError

from host_json import json_values

DATA = Path(__file__).parent / "data" / "net"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


# --- links, addresses, routes --------------------------------------------------------------


def test_links_tell_admin_down_from_no_carrier_and_count_drops() -> None:
    links = {link.name: link for link in parse_links(recorded("ip-link.txt"))}
    lo, eth0, lan1, spare0 = links["lo"], links["eth0"], links["lan1"], links["spare0"]
    assert lo.loopback and lo.operstate == "UNKNOWN" and lo.admin_up and lo.carrier
    assert (eth0.ifindex, eth0.kind, eth0.operstate, eth0.mtu) == (5, "ether", "UP", 1500)
    assert not eth0.loopback and eth0.admin_up and eth0.carrier
    assert lan1.admin_up and not lan1.carrier and lan1.operstate == "LOWERLAYERDOWN"
    assert (lan1.rx_errors, lan1.rx_dropped, lan1.tx_errors, lan1.tx_dropped) == (0, 0, 0, 3)
    assert not spare0.admin_up and not spare0.carrier and spare0.operstate == "DOWN"
    assert len(links) == 7


def test_links_without_stats_count_zero() -> None:
    text = '[{"ifindex":3,"ifname":"wg0","flags":["POINTOPOINT","UP","LOWER_UP"],'
    text += '"link_type":"none"}]'
    (wg,) = parse_links(text)
    assert (wg.kind, wg.operstate, wg.tx_dropped, wg.loopback) == ("none", "UNKNOWN", 0, False)


def test_detailed_links_know_bridges_and_their_ports() -> None:
    links = parse_links(recorded("ip-link-detail.txt"))
    by_name = {link.name: link for link in links}
    idle, lan, port = by_name["docker0"], by_name["br-lan"], by_name["vethA"]
    assert idle.info_kind == lan.info_kind == "bridge" and "bridge" in PORTED_KINDS
    assert idle.admin_up and not idle.carrier and ports_of(idle, links) == []
    assert not lan.carrier and ports_of(lan, links) == [port]
    assert (port.info_kind, port.master, port.carrier) == ("veth", "br-lan", False)
    assert by_name["lo"].info_kind is None and by_name["eth0"].master is None


def test_addresses_keep_scope_secondary_and_addresses_of_down_links() -> None:
    addresses = parse_addresses(recorded("ip-addr.txt"))
    eth0 = [a for a in addresses if a.interface == "eth0"]
    assert [(a.family, a.cidr, a.scope, a.secondary) for a in eth0] == [
        ("inet", "10.0.0.5/24", "global", False),
        ("inet", "10.0.0.6/24", "global", True),
        ("inet6", "2001:db8::5/64", "global", False),
        ("inet6", "fe80::8cfa:6fff:fee8:9b17/64", "link", False),
    ]
    assert not any(a.tentative or a.dadfailed for a in addresses)
    fresh = '[{"ifname":"eth1","addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64,'
    fresh += '"scope":"link","tentative":true},{"family":"inet6","local":"2001:db8::9"}]}]'
    (link_local,) = parse_addresses(fresh)  # the second has no prefixlen: skipped
    assert link_local.tentative and link_local.cidr == "fe80::1/64"
    assert [a.cidr for a in addresses if a.interface == "spare0"] == ["172.16.9.1/16"]
    assert {a.scope for a in addresses if a.interface == "lo"} == {"host"}
    assert not [a for a in addresses if a.interface == "lan1-peer"]


def test_default_routes_by_metric_skip_blackholes_and_keep_linkdown() -> None:
    v4 = parse_routes(recorded("ip-route.txt"))
    v6 = parse_routes(recorded("ip-6-route.txt"), "inet6")
    defaults = default_routes(v6 + v4)
    assert [(r.family, r.gateway, r.device, r.metric) for r in defaults] == [
        ("inet", "10.0.0.1", "eth0", 100),
        ("inet", "192.168.50.1", "lan1", 200),
        ("inet6", "2001:db8::1", "eth0", 1024),
        ("inet6", "2001:db8::2", "eth0", 2048),
    ]
    assert defaults[0].protocol == "static" and not defaults[0].linkdown
    assert defaults[1].linkdown and defaults[1].protocol is None
    by_dst = {r.destination: r for r in v4}
    assert by_dst["203.0.113.0/24"].type == "blackhole"
    assert by_dst["203.0.114.0/24"].type == "unreachable"
    assert by_dst["10.0.0.0/24"].metric is None and by_dst["10.0.0.0/24"].gateway is None
    assert by_dst["10.9.9.9"].gateway == "10.0.0.1"  # a host route prints without /32
    multipath = by_dst["192.0.2.0/24"]
    assert multipath.gateway is None and multipath.gateways == ("10.0.0.1", "10.0.0.2")
    assert [hop.weight for hop in multipath.nexthops] == [1, 2]


def test_no_routes_is_an_empty_list_but_no_output_is_an_error() -> None:
    assert parse_routes("[]\n") == []
    with pytest.raises(ParseError, match="ip -j route: no output"):
        parse_routes("")
    with pytest.raises(ParseError, match="ip -j link: not JSON"):
        parse_links('Object "lnk" is unknown, try "ip help".')
    with pytest.raises(ParseError, match="expected a JSON list, got dict"):
        parse_addresses('{"ifname": "lo"}')
    with pytest.raises(ParseError, match="no entry has an ifname and an ifindex"):
        parse_links('[{"name": "eth0"}]')


def test_a_route_via_an_ipv6_gateway_reads_its_gateway() -> None:
    text = '[{"dst":"default","via":{"family":"inet6","host":"fe80::1"},"dev":"eth0","flags":[]}]'
    assert parse_routes(text)[0].gateway == "fe80::1"


# --- resolv.conf ---------------------------------------------------------------------------


def test_resolv_conf_of_systemd_resolved_has_the_stub_and_defaults() -> None:
    conf = parse_resolv_conf(recorded("resolv-systemd.conf"))
    assert conf.nameservers == ("127.0.0.53",)
    assert conf.search == ("corp.example.com",)
    assert (conf.timeout, conf.attempts, conf.ndots) == (5.0, 2, 1)
    assert conf.options == ("edns0", "trust-ad")
    assert conf.unknown_lines == ()


def test_resolv_conf_keeps_three_nameservers_like_glibc_and_notes_the_rest() -> None:
    conf = parse_resolv_conf(recorded("resolv-messy.conf"))
    assert conf.nameservers == ("10.0.0.2", "fe80::1%eth0", "192.0.2.53")
    assert conf.ignored_nameservers == ("198.51.100.53", "203.0.113.53")
    assert conf.search == ("corp.example.com", "lab.example.com")  # the last line wins
    assert (conf.timeout, conf.attempts, conf.ndots) == (1.0, 3, 2)
    assert "rotate" in conf.options
    assert conf.unknown_lines == ("nameserver not-an-address", "this line is junk")


def test_resolv_conf_caps_options_and_empty_means_defaults() -> None:
    conf = parse_resolv_conf("options timeout:99 attempts:9 ndots:40 timeout:x\ndomain a.b\n")
    assert (conf.timeout, conf.attempts, conf.ndots, conf.search) == (30.0, 5, 15, ("a.b",))
    assert parse_resolv_conf("") == parse_resolv_conf("# nothing\n;\n")
    assert parse_resolv_conf("").nameservers == ()


# --- ss ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "search", "ndots", "expected"),
    [
        ("api", ("lab", "corp.example"), 1, ("api.lab", "api.corp.example", "api")),
        ("api.lab", ("corp.example",), 1, ("api.lab", "api.lab.corp.example")),
        ("api.lab", ("corp.example",), 2, ("api.lab.corp.example", "api.lab")),
        ("api.lab.", ("corp.example",), 1, ("api.lab",)),
        ("api", (), 1, ("api",)),
        ("api", ("lab", "lab."), 1, ("api.lab", "api")),
    ],
)
def test_search_names_follow_glibc_order_for_ndots_and_the_search_list(
    name: str, search: tuple[str, ...], ndots: int, expected: tuple[str, ...]
) -> None:
    assert search_names(name, ResolvConf(("10.0.0.53",), search, ndots=ndots)) == expected


def test_nsswitch_hosts_sources_in_order_without_actions_and_glibc_default() -> None:
    text = (
        "# /etc/nsswitch.conf\npasswd: files systemd\n"
        "hosts:  files mdns4_minimal [NOTFOUND=return] dns myhostname # comment\n"
    )
    assert parse_nsswitch_hosts(text) == ("files", "mdns4_minimal", "dns", "myhostname")
    assert parse_nsswitch_hosts("hosts: resolve [!UNAVAIL=return] dns\n") == ("resolve", "dns")
    assert parse_nsswitch_hosts("") == ("dns", "files")
    assert parse_nsswitch_hosts("passwd: files\nhosts:\n") == ("dns", "files")


def test_debian_files_read_hosts_first_and_the_own_name_from_hosts() -> None:
    assert parse_nsswitch_hosts(recorded("nsswitch-debian.conf")) == ("files", "dns")
    hosts = recorded("hosts-debian.txt")
    assert hosts_file_addresses(hosts, "web-01") == ("127.0.1.1",)
    assert hosts_file_addresses(hosts, "localhost") == ("127.0.0.1", "::1")


def test_hosts_file_finds_names_and_aliases_in_any_case_and_skips_junk() -> None:
    text = (
        "127.0.0.1\tlocalhost\n127.0.1.1 web01.example.com Web01 # this host\n"
        "::1 localhost ip6-localhost\nnot-an-address web01\n#10.0.0.9 web01\n"
        "2001:db8::7 web01.example.com\n"
    )
    assert hosts_file_addresses(text, "web01") == ("127.0.1.1",)
    assert hosts_file_addresses(text, "WEB01.example.com.") == ("127.0.1.1", "2001:db8::7")
    assert hosts_file_addresses(text, "localhost") == ("127.0.0.1", "::1")
    assert hosts_file_addresses(text, "db01") == ()


def test_the_probe_reads_a_and_aaaa_answers_of_the_test_resolver() -> None:
    """The probe's packet code against tests/dnsd.py's: an AAAA-only name has no A record
    (NODATA), an unknown one is NXDOMAIN."""
    records = {"api.lab": ["10.0.0.5", "2001:db8::5"], "v6only.lab": ["2001:db8::6"]}

    def ask(name: str, qtype: str) -> tuple[str, list[str]]:
        query = netprobe.build_query(name, 4242, netprobe.QTYPES[qtype])
        rcode, addresses = netprobe.parse_response(dnsd.answer(query, records), 4242)
        return str(rcode), list(addresses)

    assert ask("api.lab", "A") == ("NOERROR", ["10.0.0.5"])
    assert ask("api.lab", "AAAA") == ("NOERROR", ["2001:db8::5"])
    assert ask("v6only.lab", "A") == ("NOERROR", [])
    assert netprobe._status({"A": ("NOERROR", []), "AAAA": ("NOERROR", ["2001:db8::6"])}) == (
        "answer",
        ["2001:db8::6"],
    )
    assert netprobe._status({"A": ("NOERROR", []), "AAAA": ("NOERROR", [])}) == ("nodata", [])
    assert netprobe._status({"A": ("NXDOMAIN", []), "AAAA": ("NXDOMAIN", [])})[0] == "nxdomain"
    assert netprobe._status({"A": ("SERVFAIL", []), "AAAA": ("NXDOMAIN", [])})[0] == "servfail"
    assert ask("nope.lab", "A") == ("NXDOMAIN", [])
    # A server that drops AAAA queries: the A answer still counts; none at all is a timeout.
    assert netprobe._status({"A": ("NOERROR", ["10.0.0.5"]), "AAAA": ("TIMEOUT", [])})[0] == (
        "answer"
    )
    assert netprobe._status({"A": ("NXDOMAIN", []), "AAAA": ("TIMEOUT", [])})[0] == "timeout"


def test_ss_listeners_strip_brackets_and_devices_and_read_processes() -> None:
    found = parse_ss_listening(recorded("ss-ltnup.txt"))
    by_port = {(lst.protocol, lst.port): lst for lst in found}
    assert len(found) == 15
    local = by_port[("tcp", 8080)]
    assert (local.address, local.processes, local.loopback_only) == (
        "127.0.0.1", ("python3 pid 9352",), True,
    )  # fmt: skip
    assert by_port[("udp", 5300)] == Listener(
        "udp", "0.0.0.0", 5300, ("python3 pid 9352",), "lo", "UNCONN"
    )
    assert by_port[("udp", 5300)].loopback_only  # bound to lo
    assert by_port[("tcp", 2222)].interface == "eth0" and by_port[("tcp", 2222)].all_addresses
    dual = by_port[("tcp", 8443)]  # an IPv6 socket that takes IPv4 too shows as *
    assert dual.address == "*" and dual.all_addresses and not dual.loopback_only
    assert by_port[("tcp", 9000)].address == "::" and by_port[("tcp", 9000)].all_addresses
    assert by_port[("tcp", 8081)].address == "::1" and by_port[("tcp", 8081)].loopback_only
    mapped = by_port[("tcp", 80)]
    assert mapped.address == "::ffff:127.0.0.1" and mapped.loopback_only
    link_local = by_port[("tcp", 7000)]
    assert (link_local.address, link_local.interface) == ("fe80::8cfa:6fff:fee8:9b17", "eth0")
    assert not by_port[("tcp", 5432)].loopback_only and not by_port[("tcp", 5432)].all_addresses
    assert by_port[("tcp", 8888)].processes == ("worker,1 pid 9435", "my (odd pid 9353")
    assert listeners_on(found, 5353, "udp") == [by_port[("udp", 5353)]]
    assert listeners_on(found, 5353) == []


def test_ss_without_processes_or_netid_column_or_with_header() -> None:
    plain = parse_ss_listening(recorded("ss-ltn.txt"))
    assert len(plain) == 11 and {lst.protocol for lst in plain} == {"tcp"}
    assert all(lst.processes == () for lst in plain)
    headed = parse_ss_listening(recorded("ss-ltnup-with-header.txt"))
    assert headed == parse_ss_listening(recorded("ss-ltnup.txt"))
    old = parse_ss_listening("LISTEN 0 128 :::22 :::*\nLISTEN 0 5 [fe80::1%eth0]:53 [::]:*\n")
    assert [(lst.address, lst.port, lst.interface) for lst in old] == [
        ("::", 22, None),
        ("fe80::1", 53, "eth0"),
    ]
    assert parse_ss_listening("UNCONN 0 0 0.0.0.0:68 0.0.0.0:*", "udp")[0].protocol == "udp"
    assert parse_ss_listening("") == []
    with pytest.raises(ParseError, match="ss: no line reads as a socket"):
        parse_ss_listening("ss: command not found")


# --- properties: any input gives a result or ParseError --------------------------------------

JSON_PARSERS: list[Callable[[str], object]] = [parse_links, parse_addresses, parse_routes]
TEXT_PARSERS: list[Callable[[str], object]] = [
    *JSON_PARSERS,
    parse_ss_listening,
    parse_resolv_conf,
    parse_nsswitch_hosts,
    lambda text: hosts_file_addresses(text, "web01"),
    lambda text: search_names(text, ResolvConf(search=("lab", "."), ndots=2)),
]


def _result_or_parse_error(parser: Callable[[str], object], text: str) -> None:
    with contextlib.suppress(ParseError):
        parser(text)


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


@pytest.mark.parametrize(
    ("bound", "address", "accepts"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "::1", False),
        ("127.0.0.1", "127.0.0.2", False),
        ("::1", "::1", True),
        ("0.0.0.0", "127.0.0.1", True),
        ("0.0.0.0", "::1", False),
        ("::", "127.0.0.1", True),  # dual-stack unless IPV6_V6ONLY, which ss does not show
        ("*", "::1", True),
        ("::ffff:127.0.0.1", "127.0.0.1", True),
    ],
)
def test_a_listener_accepts_its_own_address_or_any_of_the_family_it_binds_all_of(
    bound: str, address: str, accepts: bool
) -> None:
    assert Listener("tcp", bound, 80).accepts(address) is accepts
