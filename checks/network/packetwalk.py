"""The path one new TCP connection takes through a host's firewall, walked as the kernel does.

A `Flow` is the packet that opens a connection, seen at each hook it passes: to `--target`
from this host (OUTPUT and POSTROUTING, out of the interface `ip route get` names; and, when
the target is this host itself, back in on `lo`), or to `--listen` from another host
(PREROUTING and INPUT, in on any of the host's interfaces). The reply comes back as
ESTABLISHED, so only this first packet is graded. FORWARD is never on these paths: it is for
packets the host routes, not for its own connections.

At each hook the base chains run in priority order (iptables' raw, mangle, nat, filter; nft's
own chains by their priority). In each chain the rules are tried in order; a jump walks the
chain it names and comes back, a goto does not come back, RETURN goes back to the caller, and
ACCEPT ends that base chain (the next one at the hook still runs) while DROP or REJECT ends
the packet. A chain that runs out ends in its policy. A rule applies to the flow fully (YES),
to part of it (SOME: only some sources, some interfaces, above a rate), perhaps (UNSURE: it
has a match this reader cannot read, an ipset, an `xt` match), or not at all. Only a rule that
applies fully decides the packet; the others are kept, to be said as what they are.
"""

from __future__ import annotations

import enum
import fnmatch
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fleetdeck.checks.network.firewall import ChainPolicy, FirewallRule, Match

EPHEMERAL_PORTS = (32768, 60999)
"""Linux's default `ip_local_port_range`: a new connection's source port is one of these."""
MAX_DEPTH = 64
"""iptables refuses deeper jump chains; a walk that gets there stops rather than loops."""

BLOCKS = frozenset({"DROP", "REJECT"})
ENDS = frozenset({"ACCEPT", "DROP", "REJECT", "RETURN"})
NAT_ENDS = frozenset({"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"})
"""nat targets that end the nat chain: the packet goes on (with its address rewritten)."""
USERSPACE = frozenset({"QUEUE", "NFQUEUE", "VMAP"})
"""Verdicts a program (or an nft verdict map) gives per packet: the walk cannot know them."""


class Grade(enum.IntEnum):
    """How much of a flow a rule applies to. The lowest of a rule's matches is the rule's."""

    NO = 0
    UNSURE = 1  # a match this reader cannot read: the rule may apply
    SOME = 2  # some of the flow's packets: some sources, some interfaces, above a rate
    YES = 3


@dataclass(frozen=True, slots=True)
class Leg:
    """Where the flow's packet is, as the rules at these hooks see it."""

    hooks: tuple[str, ...]  # ("output", "postrouting") or ("prerouting", "input")
    iif: tuple[str, ...] = ()  # the interfaces it may come in on; () on the way out
    oif: str = ""  # the interface it leaves by; "" on the way in
    nat: bool = True  # nat chains see it (not a packet this host looped back to itself)


@dataclass(frozen=True, slots=True)
class Flow:
    """The first packet of one TCP connection and the hooks it passes."""

    name: str  # for the operator: "from this host to 10.0.0.5:8080"
    family: str  # "ip" or "ip6"
    dport: int
    src: tuple[str, ...]  # the addresses it may come from; (): any of another host
    dst: tuple[str, ...]  # the addresses it may go to; (): any of this host
    src_type: str  # address type as `-m addrtype` names it: "LOCAL", "UNICAST"
    dst_type: str
    legs: tuple[Leg, ...]
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class Step:
    """A rule on the walk that applies to the flow (fully, to part of it, or perhaps)."""

    rule: FirewallRule
    grade: Grade


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a flow ended: the verdict, what gave it, and the rules it passed on the way."""

    flow: Flow
    verdict: str  # "ACCEPT", "DROP" or "REJECT"
    rule: FirewallRule | None  # the rule that gave a DROP or REJECT; None: a policy did
    chain: ChainPolicy | None  # the base chain where it ended (None: no chain at all)
    steps: tuple[Step, ...]
    chains: tuple[ChainPolicy, ...]  # the base chains the flow went through, in order
    behind: tuple[tuple[FirewallRule | None, ChainPolicy], ...] = ()
    """What would drop it next, were the blocking rule gone: (rule or None for a policy,
    base chain), for each later base chain on the path that blocks it too."""

    @property
    def blocked(self) -> bool:
        return self.verdict in BLOCKS

    @property
    def by_policy(self) -> bool:
        return self.blocked and self.rule is None

    @property
    def partial(self) -> list[FirewallRule]:
        """Rules that drop or reject some of the flow only (a ban on some sources)."""
        return [s.rule for s in self.steps if s.grade is Grade.SOME and s.rule.action in BLOCKS]

    @property
    def partly_accepted(self) -> list[FirewallRule]:
        """Rules that accept some of the flow only (some sources, some interfaces)."""
        return [s.rule for s in self.steps if s.grade is Grade.SOME and s.rule.action == "ACCEPT"]

    @property
    def unsure(self) -> list[FirewallRule]:
        """Rules that may decide the flow, with matches this reader cannot read."""
        return [s.rule for s in self.steps if s.grade is Grade.UNSURE]

    @property
    def rewritten(self) -> list[FirewallRule]:
        """nat rules that change the flow's address (its path after that is not walked)."""
        return [s.rule for s in self.steps if s.grade is Grade.YES and s.rule.action == "DNAT"]


ChainKey = tuple[str, str, str, str]  # backend, family, table, chain


def _key(rule: FirewallRule, chain: str | None = None) -> ChainKey:
    return (rule.backend, rule.family, rule.table, rule.chain if chain is None else chain)


def _chain_key(chain: ChainPolicy) -> ChainKey:
    return (chain.backend, chain.family, chain.table, chain.chain)


def _families(family: str) -> tuple[str, str]:
    return (family, "inet")


class Ruleset:
    """A host's rules and chains, indexed by chain, ready to walk any number of flows."""

    def __init__(self, rules: Iterable[FirewallRule], chains: Iterable[ChainPolicy]) -> None:
        self.rules: dict[ChainKey, list[FirewallRule]] = {}
        for rule in rules:
            self.rules.setdefault(_key(rule), []).append(rule)
        self.chains = {_chain_key(chain): chain for chain in chains}
        for rules_of_chain in self.rules.values():
            rules_of_chain.sort(key=lambda r: r.position)

    def base_chains(self, family: str, hook: str) -> list[ChainPolicy]:
        """The base chains at a hook, in the order the kernel runs them."""
        found = [
            c
            for c in self.chains.values()
            if c.hook == hook and c.builtin and c.family in _families(family)
        ]
        return sorted(found, key=lambda c: c.priority)

    def walk(self, flow: Flow) -> Walk:
        """The flow's path through every base chain of every hook it passes."""
        walker = _Walker(self, flow)
        passed: list[ChainPolicy] = []
        path = self._path(flow)
        for index, (leg, base) in enumerate(path):
            walker.leg = leg
            passed.append(base)
            verdict, rule = walker.run(base)
            if verdict in BLOCKS:
                behind = self._behind(flow, path[index + 1 :])
                steps = tuple(walker.steps)
                return Walk(flow, verdict, rule, base, steps, tuple(passed), behind)
        last = passed[-1] if passed else None
        return Walk(flow, "ACCEPT", None, last, tuple(walker.steps), tuple(passed))

    def _path(self, flow: Flow) -> list[tuple[Leg, ChainPolicy]]:
        """Every base chain the flow passes, in order, with the leg it is on there."""
        return [
            (leg, base)
            for leg in flow.legs
            for hook in leg.hooks
            for base in self.base_chains(flow.family, hook)
            if leg.nat or base.kind != "nat"
        ]

    def _behind(
        self, flow: Flow, rest: Sequence[tuple[Leg, ChainPolicy]]
    ) -> tuple[tuple[FirewallRule | None, ChainPolicy], ...]:
        """The later base chains that would block the flow as well."""
        walker = _Walker(self, flow)
        found = []
        for leg, base in rest:
            walker.leg = leg
            verdict, rule = walker.run(base)
            if verdict in BLOCKS:
                found.append((rule, base))
        return tuple(found)


class _Walker:
    """One flow's walk: the rules it passed, and how each applied."""

    def __init__(self, ruleset: Ruleset, flow: Flow) -> None:
        self.ruleset = ruleset
        self.flow = flow
        self.leg = flow.legs[0] if flow.legs else Leg(())
        self.steps: list[Step] = []

    def run(self, base: ChainPolicy) -> tuple[str, FirewallRule | None]:
        """A base chain's verdict for the flow and the rule that gave it (None: its policy)."""
        verdict, rule = self.chain(_chain_key(base), Grade.YES, 0)
        return (base.policy, None) if verdict is None else (verdict, rule)

    def chain(
        self, key: ChainKey, mode: Grade, depth: int
    ) -> tuple[str | None, FirewallRule | None]:
        """Walk one chain as far as `mode` (how surely the flow got here) allows.

        Returns the verdict that ends the flow's run through this base chain ("ACCEPT",
        "DROP", "REJECT") and the rule that gave it, or (None, None) when the chain
        returns (ran out, RETURN, or a goto'd chain that returned).
        """
        if depth > MAX_DEPTH:
            return None, None
        for rule in self.ruleset.rules.get(key, ()):
            grade = min(self.grade(rule), mode)
            if grade is Grade.NO:
                continue
            target = _key(rule, rule.action)
            if rule.action and (target in self.ruleset.rules or target in self.ruleset.chains):
                self.steps.append(Step(rule, grade))
                verdict, by = self.chain(target, grade, depth + 1)
                if verdict is not None:
                    return verdict, by
                if rule.goto and grade is Grade.YES:
                    return None, None
                continue
            if rule.action in ENDS | NAT_ENDS | USERSPACE:
                self.steps.append(Step(rule, Grade.UNSURE if rule.action in USERSPACE else grade))
                if grade is Grade.YES and rule.action == "RETURN":
                    return None, None
                if grade is Grade.YES and rule.action not in USERSPACE:
                    return ("ACCEPT" if rule.action in NAT_ENDS else rule.action), rule
            elif grade is Grade.YES:
                self.steps.append(Step(rule, grade))  # LOG, MARK, counter: the walk goes on
        return None, None

    def grade(self, rule: FirewallRule) -> Grade:
        return min((self.match(m) for m in rule.matches), default=Grade.YES)

    def match(self, match: Match) -> Grade:
        """How much of the flow one condition lets through."""
        if match.field == "rate":  # a lone new connection is under any rate
            return Grade.SOME if match.negated else Grade.YES
        if match.field == "unknown":
            return Grade.UNSURE
        if match.field == "exthdr":  # negated or not, it needs a header a SYN does not have
            return Grade.NO
        grade = self._positive(match)
        if match.negated and grade in (Grade.YES, Grade.NO):
            return Grade.NO if grade is Grade.YES else Grade.YES
        return grade

    def _positive(self, match: Match) -> Grade:
        flow, leg, values = self.flow, self.leg, match.values
        if match.field == "protocol":
            return _yes(flow.protocol in values or "all" in values)
        if match.field == "dport":
            return _yes(_in(flow.dport, match.ports))
        if match.field == "sport":
            return _ephemeral(match.ports)
        if match.field == "port":  # multiport --ports: either end
            return Grade.YES if _in(flow.dport, match.ports) else _ephemeral(match.ports)
        if match.field in ("iif", "oif"):
            names = leg.iif if match.field == "iif" else (leg.oif,) if leg.oif else ()
            return _share(names, values)
        if match.field in ("saddr", "daddr"):
            addresses = flow.src if match.field == "saddr" else flow.dst
            return _address(values, addresses, flow.family)
        if match.field == "ctstate":
            return _yes("new" in values)
        if match.field in ("src-type", "dst-type"):
            return _yes((flow.src_type if match.field == "src-type" else flow.dst_type) in values)
        if match.field == "pkttype":
            return _yes("unicast" in values or "host" in values)
        if match.field == "nfproto":
            return _yes(("ipv4" if flow.family == "ip" else "ipv6") in values)
        if match.field == "syn":
            return Grade.YES
        return Grade.UNSURE


def _yes(condition: bool) -> Grade:
    return Grade.YES if condition else Grade.NO


def _in(port: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def _ephemeral(ranges: Sequence[tuple[int, int]]) -> Grade:
    """A source-port match against the ports a new connection picks from."""
    low, high = EPHEMERAL_PORTS
    if any(lo <= low and high <= hi for lo, hi in ranges):
        return Grade.YES
    if any(lo <= high and low <= hi for lo, hi in ranges):
        return Grade.SOME
    return Grade.NO


def _share(names: Sequence[str], patterns: Sequence[str]) -> Grade:
    """All, some or none of the interfaces the packet may use match (`eth*` a wildcard)."""
    hits = [any(fnmatch.fnmatchcase(name, p) for p in patterns) for name in names]
    if hits and all(hits):
        return Grade.YES
    return Grade.SOME if any(hits) else Grade.NO


def _address(values: Sequence[str], addresses: Sequence[str], family: str) -> Grade:
    """Whether an address match holds for all, some or none of the flow's addresses (none
    given: any address, so a match for part of them holds for some)."""
    version = 4 if family == "ip" else 6
    spans: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]] = []
    for value in values:
        try:
            if "-" in value:
                spans.append(tuple(ipaddress.ip_address(v) for v in value.split("-", 1)))
            else:
                net = ipaddress.ip_network(value, strict=False)
                spans.append((net.network_address, net.broadcast_address))
        except ValueError:
            return Grade.UNSURE  # a host name, a set this reader could not open
    mine = [(lo, hi) for lo, hi in spans if lo.version == version]
    if not addresses:
        top = 2 ** (32 if version == 4 else 128) - 1
        whole = any(int(lo) == 0 and int(hi) == top for lo, hi in mine)
        return Grade.YES if whole else Grade.SOME if mine else Grade.NO
    hits = [_within(ipaddress.ip_address(a), mine) for a in addresses]
    return Grade.YES if all(hits) else Grade.SOME if any(hits) else Grade.NO


def _within(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    spans: Sequence[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]],
) -> bool:
    return any(lo.version == ip.version and int(lo) <= int(ip) <= int(hi) for lo, hi in spans)
