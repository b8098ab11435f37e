"""A host's firewall rules as data, and the parser of `iptables-save` / `ip6tables-save`.

`checks.network.nftables` reads `nft -j -a list ruleset` into the same types. Each parser takes the
text a tool printed and returns frozen dataclasses; the I/O stays with the caller. Entries
that lack what a record needs are skipped; text that is not the tool's format at all raises
`ParseError` naming the tool and what was wrong. No other exception escapes, whatever the
input: the property tests hold them to that.

Firewall rules from both tools carry the argv that deletes them and the argv that puts them
back where they were (`delete_argv`, `restore_argv`), so a fix can be undone, and their
conditions as `Match`es for the packet walk (`checks.network.packetwalk`). On hosts where `iptables`
is iptables-nft, its rules show in `nft list ruleset` too (tables `ip filter`, `ip6 nat`,
...), mostly as opaque `xt` expressions; `iptables_managed` tells those apart so that each
rule is read once, from the tool that can read it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace

from fleetdeck.hosts.linux.procfs import ParseError

PortRanges = tuple[tuple[int, int], ...]

# --- firewall rules ----------------------------------------------------------------------------

IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "33": "dccp", "132": "sctp", "58": "ipv6-icmp"}


def _protocol(name: str) -> str | None:
    name = name.lower()
    return None if name in ("all", "0") else _PROTOCOL_NUMBERS.get(name, name)


@dataclass(frozen=True, slots=True)
class Match:
    """One condition of a rule, in words both tools share, for `checks.network.packetwalk` to test.

    `field` is what it looks at: "protocol", "dport", "sport", "port" (either), "iif",
    "oif", "saddr", "daddr", "ctstate", "src-type", "dst-type", "pkttype", "nfproto",
    "syn", "rate" (a limit: true below the rate; negated, `over`, true above it),
    "exthdr" (an IPv6 extension header the rule needs, negated or not), or "unknown" (a
    match this reader cannot read: `values` says what it was). Ports are in `ports`;
    everything else in `values`, lower case but address types (LOCAL, ...).
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
IPV6_EXTENSION_HEADERS = frozenset({"rt", "frag", "hbh", "dst", "ah", "mh"})
"""IPv6 extension headers (iptables modules, nft `exthdr` names): a match on one needs the
header, which the first packet of a TCP connection does not carry (ufw's RH0 drops)."""
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
    elif option in ("-m", "--match") and value in IPV6_EXTENSION_HEADERS:
        out.matches.append(Match("exthdr", (value,)))
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
