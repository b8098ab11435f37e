"""The parser of `nft -j -a list ruleset`: nft's rules and chains as `checks.network.firewall`
types.

Each rule is rebuilt as nft would print it, where it can be, so that it can be put back after
a delete (`FirewallRule.restore_argv`); its conditions become `Match`es for the packet walk.
Anything that is not nft's JSON raises `ParseError`; entries that lack what a record needs
are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from fleetdeck.checks.network.firewall import (
    IPTABLES_TABLES,
    IPV6_EXTENSION_HEADERS,
    ChainPolicy,
    FirewallRule,
    Match,
    PortRanges,
    _protocol,
    iptables_managed,
)
from fleetdeck.checks.network.parse import _PORT_TEXT, _dict, _int, _load_json, _str
from fleetdeck.hosts.linux.procfs import ParseError

_NFT_PRIORITY = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50}
_NFT_PRIORITY["srcnat"] = 100
"""nft's names for the standard priorities (`priority filter`), as numbers."""

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
    fib, exthdr = _dict(left.get("fib")), _dict(left.get("exthdr"))
    if _str(exthdr.get("name")) in IPV6_EXTENSION_HEADERS:
        return [Match("exthdr", (str(exthdr["name"]),))]
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
        elif key == "vmap":  # the verdict is looked up in a map: it depends on the packet
            out.verdict = "VMAP"
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
