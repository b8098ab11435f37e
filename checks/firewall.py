"""Pure parsers for a host's firewall: `iptables-save`, `ip6tables-save`, `nft -j -a list ruleset`.

Each function takes the text a tool printed and returns frozen dataclasses; the I/O stays
with the caller. Entries that lack what a record needs are skipped; text that is not the
tool's format at all raises `ParseError` naming the tool and what was wrong. No other
exception escapes, whatever the input: the property tests hold them to that.

Firewall rules from both tools carry the argv that deletes them and the argv that puts them
back where they were (`delete_argv`, `restore_argv`), so a fix can be undone. On hosts where
`iptables` is iptables-nft, its rules show in `nft list ruleset` too (tables `ip filter`,
`ip6 nat`, ...), mostly as opaque `xt` expressions; `iptables_managed` tells those apart so
that each rule is read once, from the tool that can read it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from checks.netparse import _PORT_TEXT, _dict, _int, _load_json, _str
from hosts.procfs import ParseError

PortRanges = tuple[tuple[int, int], ...]

# --- firewall rules ----------------------------------------------------------------------------

IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "33": "dccp", "132": "sctp", "58": "ipv6-icmp"}


def _protocol(name: str) -> str | None:
    name = name.lower()
    return None if name in ("all", "0") else _PROTOCOL_NUMBERS.get(name, name)


@dataclass(frozen=True, slots=True)
class Match:
    """One condition of a rule, in words both tools share, for `checks.packetwalk` to test.

    `field` is what it looks at: "protocol", "dport", "sport", "port" (either), "iif",
    "oif", "saddr", "daddr", "ctstate", "src-type", "dst-type", "pkttype", "nfproto",
    "syn", "rate" (a limit: true below the rate; negated, `over`, true above it), or
    "unknown" (a match this reader cannot read: `values` says what it was). Ports are in
    `ports`; everything else in `values`, lower case but address types (LOCAL, ...).
    """

    field: str
    values: tuple[str, ...] = ()
    ports: PortRanges = ()
    negated: bool = False


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One rule of iptables, ip6tables or nftables, with the argv to delete and restore it."""

    backend: str  # "iptables", "ip6tables" or "nftables"
    table: str
    chain: str
    position: int  # 1-based place in its chain
    text: str  # iptables: the `-A ...` line as printed; nft: the rule rebuilt from its JSON
    action: str  # "DROP", "REJECT", "ACCEPT", "LOG", a chain jumped to; "" for none
    protocol: str | None  # "tcp", "udp", "icmp", ...; None: any protocol
    ports: PortRanges | None  # destination port ranges; None: any port
    handle: int | None = None  # nft rule handle
    family: str = ""  # nft family: "ip", "ip6", "inet"; iptables: "ip" or "ip6"
    args: tuple[str, ...] = ()  # the rule spec as argv; nft: () when it cannot be rebuilt
    ports_negated: bool = False  # `! --dport 22`, `tcp dport != 22`
    protocol_negated: bool = False
    source: str | None = None  # `-s`, `ip saddr`; "!" in front when negated
    in_interface: str | None = None  # `-i`, `iifname`
    comment: str | None = None
    previous_handle: int | None = None  # nft: the rule before it, to put it back after
    opaque: bool = False  # has matches this parser cannot read (xt, unknown expressions)
    iptables_nft: bool = False  # nft rule in a table iptables-nft manages
    matches: tuple[Match, ...] = ()  # every condition, for the packet walk
    goto: bool = False  # `-g` / `goto`: a RETURN there goes back past this rule's chain
    packets: int | None = field(default=None, compare=False)  # its counter, where it has one

    @property
    def blocks(self) -> bool:
        return self.action in ("DROP", "REJECT")

    @property
    def narrowed(self) -> bool:
        """Applies only to some sources or one interface, not to all traffic to its ports."""
        return self.source is not None or self.in_interface is not None

    def matches_port(self, port: int, protocol: str = "tcp") -> bool:
        """Whether traffic to `port` can hit this rule (other conditions left aside)."""
        if self.protocol is not None and (self.protocol == protocol) == self.protocol_negated:
            return False
        if self.ports is None:
            return True
        return any(lo <= port <= hi for lo, hi in self.ports) != self.ports_negated

    @property
    def delete_argv(self) -> tuple[str, ...]:
        if self.backend == "nftables":
            if self.handle is None:
                return ()
            where = (self.family, self.table, self.chain)
            return ("nft", "delete", "rule", *where, "handle", str(self.handle))
        return (self.backend, "-t", self.table, "-D", self.chain, *self.args)

    @property
    def restore_argv(self) -> tuple[str, ...]:
        """The argv that puts the deleted rule back in its place; () when it cannot."""
        if self.backend != "nftables":
            insert = ("-I", self.chain, str(self.position))
            return (self.backend, "-t", self.table, *insert, *self.args)
        if not self.args:
            return ()
        where = (self.family, self.table, self.chain)
        if self.previous_handle is None:
            return ("nft", "insert", "rule", *where, *self.args)
        after = ("position", str(self.previous_handle))
        return ("nft", "add", "rule", *where, *after, *self.args)


_IPTABLES_PRIORITY = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
_NFT_PRIORITY = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50}
_NFT_PRIORITY["srcnat"] = 100


@dataclass(frozen=True, slots=True)
class ChainPolicy:
    """A chain's default verdict: ":INPUT DROP [0:0]"; "-" for a user chain (none).

    A base chain also says where the kernel runs it: its `hook` ("input", "output", ...),
    its `priority` there (lower runs first) and its `kind` ("filter", "nat", "route").
    """

    backend: str
    table: str
    chain: str
    policy: str
    family: str = ""
    hook: str = ""
    priority: int = 0
    kind: str = "filter"
    packets: int | None = field(default=None, compare=False)  # iptables-save -c: policy's count

    @property
    def builtin(self) -> bool:
        return self.policy != "-"


def _iptables_chain(backend: str, table: str, chain: str, policy: str) -> ChainPolicy:
    """A chain line of iptables-save, with the hook and priority of a built-in chain."""
    family = "ip6" if backend == "ip6tables" else "ip"
    if policy == "-":
        return ChainPolicy(backend, table, chain, policy, family)
    hook = chain.lower()
    if table == "nat":
        priority = -100 if hook in ("prerouting", "output") else 100
    else:
        priority = _IPTABLES_PRIORITY.get(table, 0)
    kind = table if table in ("nat", "filter") else "filter"
    return ChainPolicy(backend, table, chain, policy, family, hook, priority, kind)


def iptables_managed(rule: FirewallRule) -> bool:
    """Whether an nft rule is also an iptables(-nft) rule, so is read from iptables-save.

    True for rules in a table with `xt` expressions (nft's own test for its "managed by
    iptables-nft, do not touch" warning) and for every rule in the tables iptables itself
    makes: family ip or ip6, named filter, nat, mangle, raw or security. An nft-native table
    of one of those names is taken for iptables' too: iptables-nft shows (and edits) it.
    """
    return rule.backend == "nftables" and rule.iptables_nft


# --- iptables-save -----------------------------------------------------------------------------

_COUNTERS = re.compile(r"\[(\d+):\d+\]\s+")  # `iptables-save -c` puts [packets:bytes] first
_DPORT_OPTIONS = {"--dport", "--destination-port", "--dports", "--destination-ports"}
_SPORT_OPTIONS = {"--sport", "--source-port", "--sports", "--source-ports"}
_VALUE_OPTIONS = {
    *_DPORT_OPTIONS,
    *_SPORT_OPTIONS,
    "--ports",  # multiport: source or destination, so it can match the destination
    *("-p", "--protocol", "-s", "--source", "-d", "--destination", "-i", "--in-interface"),
    *("-o", "--out-interface", "-j", "--jump", "-g", "--goto", "-m", "--match", "--comment"),
    *("--log-prefix", "--log-level", "--src-type", "--dst-type", "--pkt-type", "--icmp-type"),
    *("--reject-with", "--to-destination", "--to-source", "--to-ports", "--ctstate", "--state"),
    *("--match-set", "--set-mark", "--set-xmark", "--mark", "--limit", "--limit-burst"),
    *("--icmpv6-type", "--tcp-flags"),
}
_READABLE_MODULES = frozenset(
    {"tcp", "udp", "sctp", "dccp", "multiport", "comment", "conntrack", "state", "addrtype"}
    | {"icmp", "icmp6", "icmpv6", "ipv6-icmp", "limit", "pkttype"}
)
"""Modules whose options this reader turns into `Match`es (or that cannot change whether a
TCP packet matches: comments, ICMP types); any other `-m` makes the rule "may apply"."""
_MATCH_FIELDS = {
    **dict.fromkeys(("-p", "--protocol"), "protocol"),
    **dict.fromkeys(_DPORT_OPTIONS, "dport"),
    **dict.fromkeys(_SPORT_OPTIONS, "sport"),
    "--ports": "port",
    **dict.fromkeys(("-s", "--source"), "saddr"),
    **dict.fromkeys(("-d", "--destination"), "daddr"),
    **dict.fromkeys(("-i", "--in-interface"), "iif"),
    **dict.fromkeys(("-o", "--out-interface"), "oif"),
    **dict.fromkeys(("--ctstate", "--state"), "ctstate"),
    "--src-type": "src-type",
    "--dst-type": "dst-type",
    "--pkt-type": "pkttype",
}


def _port_ranges(spec: str) -> PortRanges | None:
    """`80,443,8000:8100` -> ((80, 80), (443, 443), (8000, 8100)); None if unreadable."""
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        lo, sep, hi = part.partition(":")
        if not re.fullmatch(r"[0-9]{0,5}", lo) or not re.fullmatch(r"[0-9]{0,5}", hi):
            return None
        if not sep:
            hi = lo
        low, high = int(lo or 0), int(hi or 65535)
        if (not lo and not sep) or low > high or high > 65535:
            return None
        ranges.append((low, high))
    return tuple(ranges)


def _iptables_match(option: str, value: str, negated: bool) -> Match:
    """The `Match` of one option of an iptables rule, read the way iptables-save prints it."""
    name = _MATCH_FIELDS[option]
    if name in ("dport", "sport", "port"):
        ranges = _port_ranges(value)
        if ranges is None:
            return Match("unknown", (f"{option} {value}",))
        return Match(name, ports=ranges, negated=negated)
    if name == "protocol":
        return Match(name, (_protocol(value) or "all",), negated=negated)
    if name in ("src-type", "dst-type"):
        return Match(name, tuple(value.upper().split(",")), negated=negated)
    if name in ("iif", "oif"):  # iptables' `eth+` is nft's `eth*`: one wildcard spelling
        return Match(name, (value[:-1] + "*" if value.endswith("+") else value,), (), negated)
    return Match(name, tuple(value.lower().split(",")), negated=negated)


@dataclass(slots=True)
class _IptablesReading:
    """What one pass over an iptables rule's words found; becomes a FirewallRule."""

    action: str = ""
    goto: bool = False
    comment: str | None = None
    matches: list[Match] = field(default_factory=list)


def _iptables_option(option: str, value: str | None, negate: bool, out: _IptablesReading) -> None:
    if value is None:
        if option == "--syn":
            out.matches.append(Match("syn", negated=negate))
        return
    if option in _MATCH_FIELDS:
        out.matches.append(_iptables_match(option, value, negate))
    elif option in ("-j", "--jump", "-g", "--goto") and not out.action:
        out.action, out.goto = value, option in ("-g", "--goto")
    elif option == "--comment":
        out.comment = value
    elif option in ("-m", "--match") and value not in _READABLE_MODULES:
        out.matches.append(Match("unknown", (f"-m {value}",)))  # an ipset, recent, owner ...
    elif option == "--tcp-flags":
        out.matches.append(Match("unknown", ("--tcp-flags",)))
    elif option == "--limit":
        out.matches.append(Match("rate", (value,)))


def _iptables_rule(
    tokens: list[str], line: str, backend: str, table: str, position: int
) -> FirewallRule:
    chain, args = tokens[1], tokens[2:]
    out = _IptablesReading()
    negate, i = False, 0
    while i < len(args):
        option = args[i]
        if option == "!":
            negate, i = True, i + 1
            continue
        value = args[i + 1] if i + 1 < len(args) and option in _VALUE_OPTIONS else None
        if value == "!" and i + 2 < len(args):  # the old `--dport ! 22` spelling
            negate, i, value = True, i + 1, args[i + 2]
        _iptables_option(option, value, negate, out)
        negate, i = False, i + (2 if value is not None else 1)
    return _rule_from_matches(
        FirewallRule(
            backend=backend,
            table=table,
            chain=chain,
            position=position,
            text=line,
            action=out.action,
            protocol=None,
            ports=None,
            family="ip6" if backend == "ip6tables" else "ip",
            args=tuple(args),
            comment=out.comment,
            goto=out.goto,
        ),
        out.matches,
    )


def _rule_from_matches(rule: FirewallRule, matches: list[Match]) -> FirewallRule:
    """The rule with its matches, and the summary fields (protocol, ports, source, in
    interface, opaque) that the fixes' titles and older readers use, taken from them."""
    protocol, ports, source, interface = rule.protocol, rule.ports, rule.source, rule.in_interface
    protocol_negated, ports_negated, opaque = rule.protocol_negated, rule.ports_negated, rule.opaque
    for match in matches:
        bang = "!" * match.negated
        if match.field == "protocol" and match.values:
            protocol, protocol_negated = _protocol(match.values[0]), match.negated
        elif match.field in ("dport", "port"):
            ports, ports_negated = match.ports, match.negated
        elif match.field == "saddr" and match.values:
            source = bang + ",".join(match.values)
        elif match.field == "iif" and match.values:
            interface = bang + ",".join(v.replace("*", "+") for v in match.values)
        elif match.field == "unknown":
            opaque = True
    return replace(
        rule,
        protocol=protocol,
        protocol_negated=protocol_negated,
        ports=ports,
        ports_negated=ports_negated,
        source=source,
        in_interface=interface,
        opaque=opaque,
        matches=tuple(matches),
    )


def parse_iptables_save(
    text: str, backend: str = "iptables"
) -> tuple[list[FirewallRule], list[ChainPolicy]]:
    """Rules and chain policies from `iptables-save` (or `ip6tables-save`, backend "ip6tables").

    No output means no rules (iptables-save prints nothing when no table is loaded). Lines that
    are not iptables-save's format raise `ParseError`: a misread here would delete or put back
    the wrong rule.
    """
    what = f"{backend}-save"
    rules: list[FirewallRule] = []
    policies: list[ChainPolicy] = []
    table: str | None = None
    positions: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        counted = _COUNTERS.match(raw.strip())
        line = raw.strip()[counted.end() :] if counted else raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*") and len(line) > 1:
            table, positions = line[1:].strip(), {}
        elif line == "COMMIT":
            table = None
        elif not line.startswith((":", "-A ")):
            raise ParseError(f"{what} line {number}: not a table, chain or rule: {line[:60]!r}")
        elif table is None:
            raise ParseError(f"{what} line {number}: {line[:60]!r} outside a *table block")
        elif line.startswith(":"):
            fields = line[1:].split()
            if len(fields) < 2:
                raise ParseError(f"{what} line {number}: chain line without a policy: {line!r}")
            chain = _iptables_chain(backend, table, fields[0], fields[1])
            counted = _COUNTERS.match(fields[2] + " ") if len(fields) > 2 else None
            policies.append(replace(chain, packets=int(counted.group(1))) if counted else chain)
        else:
            try:
                tokens = shlex.split(line)
            except ValueError as exc:
                raise ParseError(f"{what} line {number}: {exc}: {line[:80]!r}") from None
            if len(tokens) < 2:
                raise ParseError(f"{what} line {number}: rule without a chain: {line!r}")
            positions[tokens[1]] = position = positions.get(tokens[1], 0) + 1
            rule = _iptables_rule(tokens, line, backend, table, position)
            rules.append(replace(rule, packets=int(counted.group(1))) if counted else rule)
    return rules, policies


# --- nft -j -a list ruleset --------------------------------------------------------------------

_VERDICTS = ("accept", "drop", "continue", "return")
_BARE_WORD = re.compile(r"[A-Za-z0-9_.:/*@-]+")
_PROTOCOL_FIELDS = {("ip", "protocol"), ("ip6", "nexthdr"), ("meta", "l4proto")}


def _nft_ports(value: object, sets: Mapping[str, object], depth: int = 0) -> PortRanges | None:
    """Port ranges from a match's right side: 22, {"range": [a, b]}, {"set": [...]}, "@name"."""
    if depth > 8:
        return None
    if isinstance(value, str) and _PORT_TEXT.fullmatch(value):
        value = int(value)
    if (number := _int(value)) is not None:
        return ((number, number),) if 0 <= number <= 65535 else None
    if isinstance(value, str) and value.startswith("@") and value[1:] in sets:
        return _nft_ports(sets[value[1:]], sets, depth + 1)
    if isinstance(value, list):
        value = {"set": value}
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((key, inner),) = value.items()
    if key == "range" and isinstance(inner, list) and len(inner) == 2:
        lo, hi = (_nft_ports(v, sets, depth + 1) for v in inner)
        return ((lo[0][0], hi[0][1]),) if lo and hi and lo[0][0] <= hi[0][1] else None
    if key == "elem":
        return _nft_ports(_dict(inner).get("val"), sets, depth + 1)
    if key == "set" and isinstance(inner, list):
        ranges: list[tuple[int, int]] = []
        for element in inner:
            found = _nft_ports(element, sets, depth + 1)
            if found is None:
                return None
            ranges += found
        return tuple(ranges)
    return None


def _nft_value(value: object, quote: bool, depth: int = 0) -> str | None:
    """A match's right side in nft syntax, or None when this parser cannot write it."""
    if depth > 8:
        return None
    if (number := _int(value)) is not None:
        return str(number)
    if isinstance(value, str):
        if (quote or not _BARE_WORD.fullmatch(value)) and '"' not in value:
            return f'"{value}"'
        return value if _BARE_WORD.fullmatch(value) else None
    if isinstance(value, list):
        parts = [_nft_value(v, quote, depth + 1) for v in value]
        return None if None in parts or not parts else ",".join(p for p in parts if p)
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((key, inner),) = value.items()
    if key == "set" and isinstance(inner, list):
        parts = [_nft_value(v, quote, depth + 1) for v in inner]
        return (
            None if None in parts or not parts else "{ " + ", ".join(p for p in parts if p) + " }"
        )
    if key == "range" and isinstance(inner, list) and len(inner) == 2:
        lo, hi = (_nft_value(v, quote, depth + 1) for v in inner)
        return f"{lo}-{hi}" if lo and hi else None
    if key == "prefix":
        addr, length = _str(_dict(inner).get("addr")), _int(_dict(inner).get("len"))
        return f"{addr}/{length}" if addr and length is not None else None
    return None


@dataclass(slots=True)
class _NftReading:
    """What one walk over a rule's expressions found; becomes a FirewallRule."""

    words: list[str | None]
    verdict: str = ""
    statement: str = ""
    protocol: str | None = None
    protocol_negated: bool = False
    ports: PortRanges | None = None
    ports_negated: bool = False
    source: str | None = None
    interface: str | None = None
    opaque: bool = False
    xt: bool = False
    goto: bool = False
    packets: int | None = None
    matches: list[Match] = field(default_factory=list)


def _nft_values(value: object, sets: Mapping[str, object], depth: int = 0) -> list[str] | None:
    """A match's right side as plain words: addresses ("10.0.0.0/8", "a-b"), names, states;
    a named set (`@name`) by its elements. None when some part cannot be read."""
    if depth > 8:
        return None
    if isinstance(value, str):
        if value.startswith("@"):
            return _nft_values(sets[value[1:]], sets, depth + 1) if value[1:] in sets else None
        return [value]
    if (number := _int(value)) is not None:
        return [str(number)]
    if isinstance(value, list):
        value = {"set": value}
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((key, inner),) = value.items()
    if key == "set" and isinstance(inner, list):
        words: list[str] = []
        for element in inner:
            found = _nft_values(element, sets, depth + 1)
            if found is None:
                return None
            words += found
        return words
    if key == "elem":
        return _nft_values(_dict(inner).get("val"), sets, depth + 1)
    if key == "prefix":
        addr, length = _str(_dict(inner).get("addr")), _int(_dict(inner).get("len"))
        return [f"{addr}/{length}"] if addr and length is not None else None
    if key == "range" and isinstance(inner, list) and len(inner) == 2:
        ends = [_nft_values(v, sets, depth + 1) for v in inner]
        return [f"{ends[0][0]}-{ends[1][0]}"] if ends[0] and ends[1] else None
    return None


_NFT_FIELDS = {
    ("meta", "l4proto"): "protocol",
    ("ip", "protocol"): "protocol",
    ("ip6", "nexthdr"): "protocol",
    ("meta", "iifname"): "iif",
    ("meta", "iif"): "iif",
    ("meta", "oifname"): "oif",
    ("meta", "oif"): "oif",
    ("meta", "nfproto"): "nfproto",
    ("meta", "pkttype"): "pkttype",
    ("ip", "saddr"): "saddr",
    ("ip6", "saddr"): "saddr",
    ("ip", "daddr"): "daddr",
    ("ip6", "daddr"): "daddr",
    ("ct", "state"): "ctstate",
}
"""nft's (protocol, field) pairs and the `Match` field each one is; ports are read apart."""


def _nft_condition(
    left: Mapping[str, object], right: object, negated: bool, sets: Mapping[str, object]
) -> list[Match]:
    """The `Match`es of one nft match expression ("tcp dport 22" is two: the protocol and
    the port); "unknown" names what this reader skipped."""
    payload, meta, ct = _dict(left.get("payload")), _dict(left.get("meta")), _dict(left.get("ct"))
    fib = _dict(left.get("fib"))
    proto, name = _str(payload.get("protocol")), _str(payload.get("field"))
    if name in ("dport", "sport") and proto in ("tcp", "udp", "sctp", "dccp", "th"):
        ranges = _nft_ports(right, sets)
        implied = [Match("protocol", (proto,))] if proto != "th" else []
        if ranges is not None:
            return [*implied, Match(name, ports=ranges, negated=negated)]
    if meta:
        proto, name = "meta", _str(meta.get("key"))
    elif ct:
        proto, name = "ct", _str(ct.get("key"))
    where = _NFT_FIELDS.get((proto or "", name or ""))
    if fib and _str(fib.get("result")) == "type":
        flags = fib.get("flags")
        flags = flags if isinstance(flags, list) else [flags]
        where = "dst-type" if "daddr" in flags else "src-type" if flags == ["saddr"] else None
    values = _nft_values(right, sets)
    if where is None or values is None:
        return [Match("unknown", (f"{proto or '?'} {name or '?'}",))]
    if where in ("src-type", "dst-type"):
        values = [v.upper() for v in values]
    if where == "protocol":
        values = [_protocol(v) or "all" for v in values]
    return [Match(where, tuple(values), negated=negated)]


def _nft_match(match: Mapping[str, object], sets: Mapping[str, object], out: _NftReading) -> None:
    op, left, right = _str(match.get("op")) or "==", _dict(match.get("left")), match.get("right")
    negated = op == "!="
    payload, meta, ct = _dict(left.get("payload")), _dict(left.get("meta")), _dict(left.get("ct"))
    proto, field = _str(payload.get("protocol")), _str(payload.get("field"))
    key = _str(meta.get("key"))
    if proto and field:
        subject = f"{proto} {field}"
    elif key:
        subject, proto, field = f"meta {key}", "meta", key
    elif _str(ct.get("key")):
        subject = f"ct {ct.get('key')}"
    else:
        out.opaque, subject = True, ""
    value = _nft_value(right, quote=bool(field and field.endswith("name")))
    if field == "dport" and proto in ("tcp", "udp", "sctp", "dccp", "th"):
        out.ports, out.ports_negated = _nft_ports(right, sets), negated
        out.opaque = out.opaque or out.ports is None
        if proto != "th" and out.protocol is None:
            out.protocol = proto
    elif (proto, field) in _PROTOCOL_FIELDS and value is not None:
        out.protocol, out.protocol_negated = _protocol(value), negated
    elif field == "saddr" and value is not None:
        out.source = "!" * negated + value
    elif field in ("iifname", "iif") and isinstance(right, str):
        out.interface = "!" * negated + right
    shown_op = [] if op in ("==", "in") else [op]
    out.words += [*subject.split(), *shown_op, value] if subject else [None]
    out.matches += _nft_condition(left, right, negated, sets)


def _nft_statement(key: str, value: object, out: _NftReading) -> None:
    inner = _dict(value)
    if key in _VERDICTS and value is None:
        out.verdict = key.upper()
        out.words.append(key)
    elif key in ("jump", "goto") and (target := _str(inner.get("target"))):
        out.verdict, out.goto = target, key == "goto"
        out.words += [key, target]
    elif key == "reject":
        out.verdict = "REJECT"
        kind, why = _str(inner.get("type")), _str(inner.get("expr"))
        if value is None or (kind == "icmpx" and why == "port-unreachable"):
            out.words.append("reject")
        else:
            out.words += ["reject", "with", *(kind or "").split(), *([why] if why else [])]
    elif key == "counter":
        out.packets = _int(inner.get("packets"))
        out.words.append("counter")
    elif key == "limit" and set(inner) <= {"rate", "per", "burst", "inv"}:
        rate, per, burst = _int(inner.get("rate")), _str(inner.get("per")), inner.get("burst", 5)
        over = ["over"] if inner.get("inv") is True else []
        out.matches.append(Match("rate", (f"{rate}/{per}",), negated=bool(over)))
        extra = [] if burst == 5 else ["burst", _nft_value(burst, quote=False), "packets"]
        out.words += ["limit", "rate", *over, f"{rate}/{per}" if rate and per else None, *extra]
    elif key == "log":
        out.statement = out.statement or "LOG"
        words: list[str | None] = ["log"]
        for option, setting in inner.items():
            shown = _nft_value(setting, quote=option == "prefix")
            words += [option, shown] if option in ("prefix", "level", "group") else [None]
        out.words += words
    else:
        out.opaque = True
        if key == "xt":
            out.xt = True
            if inner.get("type") == "target" and (name := _str(inner.get("name"))):
                out.verdict = name
            elif inner.get("type") == "match":
                out.matches.append(Match("unknown", (f"xt match {inner.get('name')}",)))
        elif key in ("masquerade", "snat", "dnat", "redirect", "queue"):
            out.statement = key.upper()
        out.words.append(None)


def _nft_rule(
    rule: Mapping[str, object], sets: Mapping[str, object], position: int, previous: int | None
) -> FirewallRule | None:
    family, table = _str(rule.get("family")), _str(rule.get("table"))
    chain, expr = _str(rule.get("chain")), rule.get("expr")
    if not (family and table and chain) or not isinstance(expr, list):
        return None
    out = _NftReading(words=[])
    shown: list[str] = []  # each statement as nft writes it, or <what> when it cannot
    for stmt in expr:
        start = len(out.words)
        if isinstance(stmt, dict) and len(stmt) == 1:
            ((key, value),) = stmt.items()
            if key == "match":
                _nft_match(_dict(value), sets, out)
            else:
                _nft_statement(key, value, out)
        else:
            key, value = "?", None
            out.opaque = True
            out.words.append(None)
        words = out.words[start:]
        xt = _dict(value) if key == "xt" else {}
        placeholder = f"<xt {xt.get('type')} {xt.get('name')}>" if xt else f"<{key}>"
        shown.append(placeholder if None in words else " ".join(w for w in words if w))
    comment = _str(rule.get("comment"))
    if comment is not None:
        out.words += ["comment", f'"{comment}"' if '"' not in comment else None]
    args = () if None in out.words else tuple(w for w in out.words if w is not None)
    return FirewallRule(
        backend="nftables",
        table=table,
        chain=chain,
        position=position,
        text=" ".join(args) or " ".join(shown) + (f' comment "{comment}"' if comment else ""),
        action=out.verdict or out.statement,
        protocol=out.protocol,
        ports=out.ports,
        handle=_int(rule.get("handle")),
        family=family,
        args=args,
        ports_negated=out.ports_negated,
        protocol_negated=out.protocol_negated,
        source=out.source,
        in_interface=out.interface,
        comment=comment,
        previous_handle=previous,
        opaque=out.opaque,
        iptables_nft=out.xt,
        goto=out.goto,
        packets=out.packets,
        matches=tuple(out.matches),
    )


def _nft_objects(text: str, what: str) -> list[Mapping[str, object]]:
    data = _load_json(text, what)
    items = _dict(data).get("nftables")
    if not isinstance(items, list):
        raise ParseError(f"{what}: expected an object with an 'nftables' list")
    return [_dict(item) for item in items]


def parse_nft_ruleset(text: str, *, skip_iptables: bool = False) -> list[FirewallRule]:
    """Rules from `nft -j -a list ruleset`, each with its family, handle and place.

    `skip_iptables` leaves out the rules `iptables_managed` names, for a caller that reads
    those from iptables-save instead.
    """
    objects = _nft_objects(text, "nft -j list ruleset")
    sets: dict[tuple[str, str], dict[str, object]] = {}
    for obj in objects:
        found = _dict(obj.get("set"))
        family, table, name = (_str(found.get(k)) for k in ("family", "table", "name"))
        if family and table and name:
            sets.setdefault((family, table), {})[name] = found.get("elem", [])
    rules: list[FirewallRule] = []
    places: dict[tuple[str, str, str], tuple[int, int | None]] = {}
    for obj in objects:
        entry = _dict(obj.get("rule"))
        where = tuple(_str(entry.get(k)) or "" for k in ("family", "table", "chain"))
        count, previous = places.get((where[0], where[1], where[2]), (0, None))
        table_sets = sets.get((where[0], where[1]), {})
        rule = _nft_rule(entry, table_sets, count + 1, previous) if entry else None
        if rule is not None:
            places[(where[0], where[1], where[2])] = (count + 1, rule.handle)
            rules.append(rule)
    xt_tables = {(r.family, r.table) for r in rules if r.iptables_nft}
    rules = [
        _with_iptables_flag(r, (r.family, r.table) in xt_tables or _iptables_name(r)) for r in rules
    ]
    return [r for r in rules if not (skip_iptables and iptables_managed(r))]


def _iptables_name(rule: FirewallRule) -> bool:
    return rule.family in ("ip", "ip6") and rule.table in IPTABLES_TABLES


def _with_iptables_flag(rule: FirewallRule, managed: bool) -> FirewallRule:
    return rule if rule.iptables_nft == managed else replace(rule, iptables_nft=managed)


def parse_nft_chains(text: str) -> list[ChainPolicy]:
    """The base chains' policies from `nft -j list ruleset` ("-" for regular chains)."""
    policies = []
    for obj in _nft_objects(text, "nft -j list ruleset"):
        chain = _dict(obj.get("chain"))
        family, table, name = (_str(chain.get(k)) for k in ("family", "table", "name"))
        if family and table and name:
            hook = _str(chain.get("hook")) or ""
            policy = (_str(chain.get("policy")) or "accept").upper() if hook else "-"
            prio = chain.get("prio")
            priority = _NFT_PRIORITY.get(prio, 0) if isinstance(prio, str) else _int(prio) or 0
            kind = _str(chain.get("type")) or "filter"
            chain_policy = ChainPolicy("nftables", table, name, policy, family, hook, priority)
            policies.append(replace(chain_policy, kind=kind))
    return policies
