"""Pure parsers for a host's network state: links, addresses, routes, DNS, listeners.

Each function takes the text a tool printed (`ip -j ...`, `ss -H -ltnup`, /etc/resolv.conf)
and returns frozen dataclasses; the I/O stays with the caller. Entries that lack what a
record needs are skipped; text that is not the tool's format at all raises `ParseError`
naming the tool and what was wrong. No other exception escapes, whatever the input: the
property tests hold them to that.

The firewall parsers (`iptables-save`, `nft -j -a list ruleset`) are in
`checks/network/firewall.py`, which shares the small JSON helpers below.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError

# --- JSON helpers: `ip -j` and `nft -j` print JSON; every field is checked for its type ----


def _load_json(text: str, what: str) -> object:
    """The JSON a tool printed. strict=False: iproute2 writes an interface name's control
    characters (`ip link set dev x name $'a\\x01b'`) into its strings raw, and one such
    name must not make every interface on the host unreadable."""
    if not text.strip():
        raise ParseError(f"{what}: no output")
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"{what}: not JSON ({str(exc)[:80]})") from None


def _json_list(text: str, what: str) -> list[object]:
    data = _load_json(text, what)
    if not isinstance(data, list):
        raise ParseError(f"{what}: expected a JSON list, got {type(data).__name__}")
    return data


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _count(stats: Mapping[str, object], key: str) -> int:
    return max(_int(stats.get(key)) or 0, 0)


def _records(entries: list[object], what: str) -> Iterable[Mapping[str, object]]:
    """The dict entries of a JSON list; none at all in a non-empty list is not the format."""
    dicts = [e for e in entries if isinstance(e, dict)]
    if entries and not dicts:
        raise ParseError(f"{what}: expected a list of objects")
    return dicts


# --- links: `ip -j -s link show` -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface, its state and its error counters."""

    name: str
    ifindex: int
    admin_up: bool  # "UP" in flags: set up by the administrator
    carrier: bool  # "LOWER_UP" in flags: the link below (cable, peer) is there
    operstate: str  # "UP", "DOWN", "LOWERLAYERDOWN"; loopback and dummies say "UNKNOWN"
    kind: str  # link_type: "ether", "loopback", "none" (tun, wireguard)
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    flags: tuple[str, ...] = ()
    mtu: int | None = None
    info_kind: str | None = None  # with `ip -d`: "bridge", "veth", "bond"; None for hardware
    master: str | None = None  # the bridge or bond this one is a port of

    @property
    def loopback(self) -> bool:
        return self.kind == "loopback" or "LOOPBACK" in self.flags


PORTED_KINDS = frozenset({"bridge", "bond", "team"})
"""Interfaces whose carrier is their ports' carrier: without ports they have none, and are
merely idle (an unused docker0 or libvirt bridge), not broken."""


def ports_of(link: Link, links: Iterable[Link]) -> list[Link]:
    """The interfaces attached to `link` (a bridge's ports, a bond's slaves)."""
    return [other for other in links if other.master == link.name]


def parse_links(text: str) -> list[Link]:
    """Interfaces from `ip -j -s -d link show` (counters 0 without `-s`, kinds None
    without `-d`)."""
    links: list[Link] = []
    entries = _records(_json_list(text, "ip -j link"), "ip -j link")
    for entry in entries:
        name, index = _str(entry.get("ifname")), _int(entry.get("ifindex"))
        if name is None or index is None:
            continue
        flags = _strs(entry.get("flags"))
        stats = _dict(entry.get("stats64", entry.get("stats")))
        rx, tx = _dict(stats.get("rx")), _dict(stats.get("tx"))
        links.append(
            Link(
                name=name,
                ifindex=index,
                admin_up="UP" in flags,
                carrier="LOWER_UP" in flags,
                operstate=_str(entry.get("operstate")) or "UNKNOWN",
                kind=_str(entry.get("link_type")) or "none",
                rx_errors=_count(rx, "errors"),
                rx_dropped=_count(rx, "dropped"),
                tx_errors=_count(tx, "errors"),
                tx_dropped=_count(tx, "dropped"),
                flags=flags,
                mtu=_int(entry.get("mtu")),
                info_kind=_str(_dict(entry.get("linkinfo")).get("info_kind")),
                master=_str(entry.get("master")),
            )
        )
    if entries and not links:
        raise ParseError("ip -j link: no entry has an ifname and an ifindex")
    return links


# --- addresses: `ip -j addr show` ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """One address on an interface."""

    interface: str
    family: str  # "inet" or "inet6"
    local: str
    prefixlen: int
    scope: str  # "global", "host", "link"
    secondary: bool = False
    tentative: bool = False  # IPv6 duplicate address detection still running
    dadfailed: bool = False  # IPv6 duplicate found: the address is not used

    @property
    def cidr(self) -> str:
        return f"{self.local}/{self.prefixlen}"


def parse_addresses(text: str) -> list[Address]:
    """Every address of every interface from `ip -j addr show`."""
    addresses: list[Address] = []
    entries = _records(_json_list(text, "ip -j addr"), "ip -j addr")
    named = 0
    for entry in entries:
        interface = _str(entry.get("ifname"))
        if interface is None:
            continue
        named += 1
        infos = entry.get("addr_info")
        for item in infos if isinstance(infos, list) else ():
            info = _dict(item)
            family, local = _str(info.get("family")), _str(info.get("local"))
            prefixlen = _int(info.get("prefixlen"))
            if family is None or local is None or prefixlen is None:
                continue
            addresses.append(
                Address(
                    interface=interface,
                    family=family,
                    local=local,
                    prefixlen=prefixlen,
                    scope=_str(info.get("scope")) or "global",
                    secondary=info.get("secondary") is True,
                    tentative=info.get("tentative") is True,
                    dadfailed=info.get("dadfailed") is True,
                )
            )
    if entries and not named:
        raise ParseError("ip -j addr: no entry has an ifname")
    return addresses


# --- routes: `ip -j route show`, `ip -j -6 route show` ---------------------------------------


@dataclass(frozen=True, slots=True)
class NextHop:
    """One path of a multipath route."""

    gateway: str | None
    device: str | None
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Route:
    """One route. Multipath routes have no gateway or device of their own: see `nexthops`."""

    destination: str  # "default" or a CIDR; host routes print without "/32"
    gateway: str | None
    device: str | None
    protocol: str | None  # "kernel", "static", "dhcp", ...; None when ip does not say
    metric: int | None  # None when ip leaves it out (IPv4 metric 0)
    family: str
    type: str = "unicast"  # "blackhole", "unreachable", "prohibit", "local", ...
    table: str = "main"
    flags: tuple[str, ...] = ()  # "linkdown", "onlink"
    nexthops: tuple[NextHop, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.destination in ("default", "0.0.0.0/0", "::/0")

    @property
    def gateways(self) -> tuple[str, ...]:
        hops = [self.gateway, *(hop.gateway for hop in self.nexthops)]
        return tuple(g for g in hops if g)

    @property
    def linkdown(self) -> bool:
        return "linkdown" in self.flags


def _gateway(entry: Mapping[str, object]) -> str | None:
    # A route via a gateway of the other family (RFC 5549) says "via": {"family", "host"}.
    return _str(entry.get("gateway")) or _str(_dict(entry.get("via")).get("host"))


def parse_routes(text: str, family: str = "inet") -> list[Route]:
    """Routes from `ip -j route show` (family "inet") or `ip -j -6 route show` ("inet6")."""
    routes: list[Route] = []
    entries = _records(_json_list(text, "ip -j route"), "ip -j route")
    for entry in entries:
        destination = _str(entry.get("dst"))
        if destination is None:
            continue
        hops = entry.get("nexthops")
        nexthops = tuple(
            NextHop(_gateway(h), _str(h.get("dev")), max(_int(h.get("weight")) or 1, 1))
            for h in (hops if isinstance(hops, list) else ())
            if isinstance(h, dict)
        )
        routes.append(
            Route(
                destination=destination,
                gateway=_gateway(entry),
                device=_str(entry.get("dev")),
                protocol=_str(entry.get("protocol")),
                metric=_int(entry.get("metric")),
                family=family,
                type=_str(entry.get("type")) or "unicast",
                table=_str(entry.get("table")) or "main",
                flags=_strs(entry.get("flags")),
                nexthops=nexthops,
            )
        )
    if entries and not routes:
        raise ParseError("ip -j route: no entry has a dst")
    return routes


def default_routes(routes: Iterable[Route]) -> list[Route]:
    """The default routes that forward traffic (no blackhole), the one the kernel uses first."""
    found = [r for r in routes if r.is_default and r.type == "unicast"]
    return sorted(found, key=lambda r: r.metric or 0)


# --- DNS: /etc/resolv.conf -------------------------------------------------------------------

MAX_NAMESERVERS = 3  # glibc's MAXNS: later nameserver lines are ignored


@dataclass(frozen=True, slots=True)
class ResolvConf:
    """The resolver settings glibc reads from /etc/resolv.conf."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    timeout: float = 5.0
    attempts: int = 2
    ndots: int = 1
    options: tuple[str, ...] = ()
    ignored_nameservers: tuple[str, ...] = ()  # past the third: glibc never asks them
    unknown_lines: tuple[str, ...] = ()  # junk glibc skips, kept to show the operator


def _valid_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


def _option_number(option: str, name: str, cap: int) -> int | None:
    """`timeout:2` -> 2, read like glibc's atoi and capped like glibc caps it."""
    match = re.fullmatch(rf"{name}:([0-9]+)\S*", option)
    return min(int(match[1]), cap) if match else None


def parse_resolv_conf(text: str) -> ResolvConf:
    """Nameservers, search list and options; junk lines are skipped as glibc skips them."""
    servers: list[str] = []
    search: tuple[str, ...] = ()
    options: list[str] = []
    unknown: list[str] = []
    timeout, attempts, ndots = 5, 2, 1
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        keyword, *values = line.split()
        if keyword == "nameserver" and values and _valid_address(values[0]):
            servers.append(values[0])
        elif keyword in ("search", "domain") and values:
            search = tuple(values)  # the last search or domain line wins
        elif keyword == "options":
            for option in values:
                options.append(option)
                if (number := _option_number(option, "timeout", 30)) is not None:
                    timeout = number
                if (number := _option_number(option, "attempts", 5)) is not None:
                    attempts = number
                if (number := _option_number(option, "ndots", 15)) is not None:
                    ndots = number
        elif keyword not in ("sortlist", "lookup", "family"):
            unknown.append(line)
    return ResolvConf(
        nameservers=tuple(servers[:MAX_NAMESERVERS]),
        search=search,
        timeout=float(timeout),
        attempts=attempts,
        ndots=ndots,
        options=tuple(options),
        ignored_nameservers=tuple(servers[MAX_NAMESERVERS:]),
        unknown_lines=tuple(unknown),
    )


def search_names(name: str, conf: ResolvConf) -> tuple[str, ...]:
    """The names glibc's resolver asks for `name`, in order (res_search).

    A name with at least `ndots` dots is tried as it is first, then with each search domain
    appended; a shorter one with the search domains first and as it is last.
    """
    bare = name.rstrip(".")
    if name.endswith(".") or not bare:
        return (bare,) if bare else ()
    searched = tuple(f"{bare}.{domain.strip('.')}" for domain in conf.search if domain.strip("."))
    if bare.count(".") >= conf.ndots:
        return tuple(dict.fromkeys((bare, *searched)))
    return tuple(dict.fromkeys((*searched, bare)))


# --- name service: /etc/nsswitch.conf and /etc/hosts ----------------------------------------

DEFAULT_HOSTS_SOURCES = ("dns", "files")
"""glibc's `hosts:` order when nsswitch.conf has no such line (or there is no file)."""


def parse_nsswitch_hosts(text: str) -> tuple[str, ...]:
    """The sources of the `hosts:` line, in order, without `[STATUS=action]` items."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        database, sep, rest = line.partition(":")
        if sep and database.strip() == "hosts":
            sources = re.sub(r"\[[^\]]*\]", " ", rest).split()
            return tuple(sources) or DEFAULT_HOSTS_SOURCES
    return DEFAULT_HOSTS_SOURCES


def hosts_file_addresses(text: str, name: str) -> tuple[str, ...]:
    """Addresses /etc/hosts gives `name` (its canonical name or an alias; any case)."""
    wanted = name.rstrip(".").lower()
    found: list[str] = []
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2 or not _valid_address(fields[0]):
            continue
        if wanted in (field.rstrip(".").lower() for field in fields[1:]):
            found.append(fields[0])
    return tuple(dict.fromkeys(found))


# --- listening sockets: `ss -H -ltnup` ---------------------------------------------------------

_SS_NETIDS = {"tcp", "udp", "raw", "sctp", "dccp", "mptcp", "u_str", "u_dgr", "u_seq", "p_raw"}
_SS_STATES = {"LISTEN": "tcp", "UNCONN": "udp"}  # without -u or -t ss drops the Netid column
_SS_USER = re.compile(r'\("(.*?)",pid=(\d+),fd=\d+\)')
_PORT_TEXT = re.compile(r"[0-9]{1,5}")  # also read by checks/network/firewall.py


@dataclass(frozen=True, slots=True)
class Listener:
    """A socket waiting for traffic, and who holds it."""

    protocol: str  # "tcp" or "udp"
    address: str  # "127.0.0.1", "0.0.0.0", "::", "::1", "*", without brackets or %device
    port: int
    processes: tuple[str, ...] = ()  # ("python3 pid 1234",); () without -p or without root
    interface: str | None = None  # bound to a device: "0.0.0.0%lo:53", "[fe80::1]%eth0:22"
    state: str = ""

    @property
    def loopback_only(self) -> bool:
        """Reachable from this host only: 127.0.0.0/8, ::1 (mapped too) or bound to lo."""
        if self.interface == "lo":
            return True
        try:
            address = ipaddress.ip_address(self.address)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    @property
    def all_addresses(self) -> bool:
        """Bound to every address ("*" is a dual-stack IPv6 socket)."""
        return self.address in ("0.0.0.0", "::", "*")

    def accepts(self, address: str) -> bool:
        """Whether a connection to `address`, one of this host's, reaches this socket: its
        own address, or any of the family it is bound to all of ("::" may be dual-stack)."""
        try:
            wanted = ipaddress.ip_address(address.partition("%")[0])
            bound = ipaddress.ip_address("::" if self.address == "*" else self.address)
        except ValueError:
            return False
        if bound.is_unspecified:
            return bound.version == 6 or wanted.version == 4
        if isinstance(bound, ipaddress.IPv6Address) and bound.ipv4_mapped is not None:
            bound = bound.ipv4_mapped
        return bound == wanted


def _split_endpoint(text: str) -> tuple[str, str | None, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not _PORT_TEXT.fullmatch(port) or int(port) > 65535 or not host:
        return None
    interface = None
    if "%" in host:  # "[fe80::1]%eth0" and "0.0.0.0%lo" (newer ss), "[fe80::1%eth0]" (older)
        host, _, interface = host.partition("%")
        interface = interface.rstrip("]") or None
    host = host.removeprefix("[").removesuffix("]")
    return (host, interface, int(port)) if host else None


def parse_ss_listening(text: str, protocol: str | None = None) -> list[Listener]:
    """Listening sockets from `ss -H -ltnup`, or `ss -ltn` and the like (header skipped).

    With one of -t or -u alone ss leaves the Netid column out; the protocol is then
    `protocol`, or guessed from the state (LISTEN is tcp, UNCONN udp).
    """
    listeners: list[Listener] = []
    rows = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] in ("Netid", "State"):
            continue
        rows += 1
        if fields[0] in _SS_NETIDS:
            netid, fields = fields[0], fields[1:]
        else:
            netid = protocol or _SS_STATES.get(fields[0], "")
        endpoint = _split_endpoint(fields[3]) if len(fields) >= 5 and netid else None
        if endpoint is None:
            continue
        address, interface, port = endpoint
        users = line[line.find("users:(") :] if "users:(" in line else ""
        processes = dict.fromkeys(f"{m[1]} pid {m[2]}" for m in _SS_USER.finditer(users))
        listeners.append(
            Listener(netid, address, port, tuple(processes), interface, state=fields[0])
        )
    if rows and not listeners:
        raise ParseError(f"ss: no line reads as a socket: {text.strip()[:60]!r}")
    return listeners


def listeners_on(listeners: Sequence[Listener], port: int, protocol: str = "tcp") -> list[Listener]:
    """The sockets listening on `port` for `protocol`."""
    return [lst for lst in listeners if lst.port == port and lst.protocol == protocol]
