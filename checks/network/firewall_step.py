"""The network wizard's firewall step (N5): the path of the `--target` and `--listen` flows.

The step reads every firewall the host has (iptables, ip6tables, native nft; counters
included), opens the step's own probe connections, reads the counters again, and walks each
flow through the rules (`checks.network.packetwalk`). Per port, one finding says where each
flow ends: accepted; dropped by a rule (named, "hit by the probe" when its counter moved
while the probe ran); or dropped by a chain's policy, with the way to open the port that the
chain's owner (`checks.network.firewall_owners`) provides. Only a rule the admin owns,
deciding the flow on its own, is offered for deletion, through the gate with its pin; a rule
of Docker, ufw, firewalld, fail2ban or Kubernetes is named with its owner's commands instead.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from fleetdeck.checks.hostcheck import StepFailed
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import required as _required
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import Evidence, Finding, Fix, Pin, PinMatch, Risk, Status
from fleetdeck.checks.network.firewall import (
    IPTABLES_TABLES,
    ChainPolicy,
    FirewallRule,
    iptables_managed,
    parse_iptables_save,
)
from fleetdeck.checks.network.firewall_owners import jail, policy_owner, rule_owner
from fleetdeck.checks.network.nftables import parse_nft_chains, parse_nft_ruleset
from fleetdeck.checks.network.packetwalk import Flow, Leg, Ruleset, Walk
from fleetdeck.checks.network.parse import Address, parse_addresses, parse_links
from fleetdeck.hosts.shell import CommandResult, Shell

Probe = Callable[[str, int], Awaitable[dict[str, object] | None]]
"""A TCP connect from the host (netprobe's `tcp`): (host, port) -> its JSON, None: no python3."""

RuleKey = tuple[str, str, str, str, int, str]


@dataclass(slots=True)
class Reading:
    """Everything the host's firewall tools printed, parsed, with what could not be read."""

    rules: list[FirewallRule] = field(default_factory=list)
    chains: list[ChainPolicy] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nft_listing: CommandResult | None = None  # `nft -s -a list ruleset`: evidence, nft pins


async def read_firewall(shell: Shell, *, listing: bool = True) -> Reading:
    """iptables-save -c, ip6tables-save -c and `nft -j -a list ruleset`, as far as present;
    with `listing`, nft's own tables also as the operator reads them (and pins find them).

    Rules of tables iptables-nft manages show in both; they are read once, from iptables-save,
    unless no iptables-save answered."""
    reading = Reading()
    for backend in ("iptables", "ip6tables"):
        result = await _run(shell, (f"{backend}-save", "-c"))
        if result.exit_status == 127:
            reading.notes.append(f"{backend}-save not installed")
        elif not result.ok:
            reading.notes.append(f"{backend}-save: {result.stderr.strip() or result.exit_status}")
        else:
            rules, chains = parse_iptables_save(result.stdout, backend)
            reading.rules += rules
            reading.chains += chains
            reading.evidence.append(_evidence(result))
    have_iptables = bool(reading.evidence)
    nft = await _run(shell, ("nft", "-j", "-a", "list", "ruleset"))
    if nft.exit_status == 127:
        reading.notes.append("nft not installed")
    elif not nft.ok:
        reading.notes.append(f"nft: {nft.stderr.strip() or f'exit {nft.exit_status}'}")
    else:
        rules, chains = nft_tables(nft.stdout, skip_iptables=have_iptables)
        reading.rules += rules
        reading.chains += chains
        if rules and listing:
            # -s: no counters, which the very traffic being diagnosed keeps changing
            reading.nft_listing = await _run(shell, ("nft", "-s", "-a", "list", "ruleset"))
            reading.evidence.append(_evidence(reading.nft_listing))
        else:
            reading.evidence.append(Evidence(nft.command, f"{len(rules)} rules of nft's own"))
    if not reading.evidence:
        raise StepFailed("cannot read any firewall: " + "; ".join(reading.notes))
    return reading


def nft_tables(text: str, *, skip_iptables: bool) -> tuple[list[FirewallRule], list[ChainPolicy]]:
    """Rules and chains of `nft -j -a list ruleset`; with `skip_iptables`, without the tables
    iptables-nft manages (read from iptables-save instead, which can read their matches)."""
    rules = parse_nft_ruleset(text)
    chains = parse_nft_chains(text)
    if not skip_iptables:
        return rules, chains
    managed = {(r.family, r.table) for r in rules if iptables_managed(r)}
    managed |= {(c.family, c.table) for c in chains if c.family in ("ip", "ip6")
                and c.table in IPTABLES_TABLES}  # fmt: skip
    return (
        [r for r in rules if (r.family, r.table) not in managed],
        [c for c in chains if (c.family, c.table) not in managed],
    )


def _rule_key(rule: FirewallRule) -> RuleKey:
    where = rule.handle if rule.handle is not None else rule.position
    return (rule.backend, rule.family, rule.table, rule.chain, where, rule.text)


def _policy_key(chain: ChainPolicy) -> RuleKey:
    return (chain.backend, chain.family, chain.table, chain.chain, 0, "policy")


def moved_counters(
    before: Sequence[FirewallRule],
    after: Sequence[FirewallRule],
    chains_before: Sequence[ChainPolicy] = (),
    chains_after: Sequence[ChainPolicy] = (),
) -> dict[RuleKey, int]:
    """Packets each rule (and each built-in chain's policy) counted between two readings,
    for those whose counter moved."""
    old = {_rule_key(r): r.packets for r in before if r.packets is not None}
    old |= {_policy_key(c): c.packets for c in chains_before if c.packets is not None}
    new = {_rule_key(r): r.packets for r in after if r.packets is not None}
    new |= {_policy_key(c): c.packets for c in chains_after if c.packets is not None}
    return {
        key: count - (old[key] or 0)
        for key, count in new.items()
        if count is not None and key in old and count > (old[key] or 0)
    }


# -- the flows ---------------------------------------------------------------------------------


async def target_flow(shell: Shell, host: str, port: int, address: str | None) -> Flow | str:
    """The flow to `--target` from this host, from `ip route get`; a sentence when none."""
    if address is None:
        return f"{host} did not resolve: no path to walk"
    result = await _run(shell, ("ip", "-j", "route", "get", address))
    try:
        route = json.loads(result.stdout)[0] if result.ok else None
    except (ValueError, IndexError, KeyError):
        route = None
    if not isinstance(route, dict):
        return f"no route to {address} ({result.stderr.strip() or 'ip route get said nothing'})"
    family = "ip6" if ":" in address else "ip"
    name = f"from this host to {host}:{port}"
    src = str(route.get("prefsrc") or "") or None
    out = Leg(("output", "postrouting"), oif=str(route.get("dev") or ""))
    source = (src or address,)
    if route.get("type") == "local":
        back = Leg(("prerouting", "input"), iif=("lo",), nat=False)
        return Flow(name, family, port, source, (address,), "LOCAL", "LOCAL", (out, back))
    return Flow(name, family, port, source, (address,), "LOCAL", "UNICAST", (out,))


async def listen_flows(shell: Shell, port: int) -> tuple[list[Flow], str]:
    """The flows to `--listen` from other hosts (IPv4, and IPv6 where the host has a global
    IPv6 address), in on any interface but lo; and the local address to probe it on."""
    # The same readings as the link and address steps: one recording serves all three, and an
    # interface list that could not be read stops the step instead of walking no interface.
    links = await _required(shell, ("ip", "-j", "-s", "-d", "link", "show"))
    names = tuple(link.name for link in parse_links(links.stdout) if not link.loopback)
    addrs = await _run(shell, ("ip", "-j", "addr", "show"))
    mine = [a for a in parse_addresses(addrs.stdout) if a.scope == "global"] if addrs.ok else []
    families = ["ip"] + (["ip6"] if any(a.family == "inet6" for a in mine) else [])
    leg = Leg(("prerouting", "input"), iif=names)
    flows = [
        Flow("from other hosts" + (" (IPv6)" if f == "ip6" else ""),
             f, port, (), _addresses_of(mine, f), "UNICAST", "LOCAL", (leg,))
        for f in families
    ]  # fmt: skip
    local = next((a.local for a in mine if a.family == "inet"), "127.0.0.1")
    return flows, local


def _addresses_of(addresses: Sequence[Address], family: str) -> tuple[str, ...]:
    """This host's global addresses of one family: where a connection to it may go."""
    kind = "inet" if family == "ip" else "inet6"
    return tuple(a.local for a in addresses if a.family == kind)


# -- grading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """One flow's grade: status, a sentence, and the fixes it offers."""

    status: Status
    sentence: str
    fixes: tuple[Fix, ...] = ()


FixFor = Callable[[FirewallRule], Fix | None]


def _where(rule: FirewallRule) -> str:
    return f"{rule.backend} {rule.table}/{rule.chain} #{rule.position}: {rule.text}"


def _hit(what: FirewallRule | ChainPolicy, moved: dict[RuleKey, int]) -> str:
    key = _rule_key(what) if isinstance(what, FirewallRule) else _policy_key(what)
    count = moved.get(key)
    return f" (hit by the probe: +{count} packets)" if count else ""


def _open_port(chain: ChainPolicy, rules: Sequence[FirewallRule], port: int) -> str:
    owner = policy_owner(chain, rules)
    if owner is not None and owner.allow:
        return f"{owner.name} owns it: {owner.allow.format(port=port, protocol='tcp')}"
    if chain.backend == "nftables":
        where = f"{chain.family} {chain.table} {chain.chain}"
        return f"a rule in your own table: nft add rule {where} tcp dport {port} accept"
    return f"your own rule: {chain.backend} -A {chain.chain} -p tcp --dport {port} -j ACCEPT"


def grade_walk(
    walk: Walk, rules: Sequence[FirewallRule], moved: dict[RuleKey, int], fix_for: FixFor
) -> Verdict:
    """How one flow came out, in the operator's words."""
    flow, rule = walk.flow, walk.rule
    if walk.by_policy and walk.chain is not None:
        chain = walk.chain
        owner = policy_owner(chain, rules)
        set_by = f", set by {owner.name}" if owner else ""
        ends = (
            f"the {chain.policy} policy of {_chain_name(chain)}{set_by} drops it"
            f"{_hit(chain, moved)}; to open it, {_open_port(chain, rules, flow.dport)}"
        )
        if walk.partly_accepted:  # an allow list: open to some, closed to the rest
            some = "; ".join(_where(r) for r in walk.partly_accepted)
            said = f"{flow.name}: accepted only for part of it, by {some}; for the rest, {ends}"
            return Verdict(Status.WARN, said + _notes(walk))
        return Verdict(Status.CRIT, f"{flow.name}: no rule accepts it, so {ends}" + _notes(walk))
    if walk.blocked and rule is not None:
        owner = rule_owner(rule)
        said = f"{flow.name}: {walk.verdict} by {_where(rule)}{_hit(rule, moved)}{_behind(walk)}"
        if owner is not None:
            said += f"; {owner.name} owns it: see {_fill(owner.review, rule, flow)}; "
            said += f"to open the port: {_fill(owner.allow or owner.remove, rule, flow)}"
            return Verdict(Status.CRIT, said + _notes(walk))
        fix = fix_for(rule)
        return Verdict(Status.CRIT, said + _notes(walk), (fix,) if fix else ())
    accepted = [s.rule for s in walk.steps if s.grade == 3 and s.rule.action == "ACCEPT"]
    by = f" by {_where(accepted[-1])}" if accepted else " (no rule stops it)"
    sentence = f"{flow.name}: accepted{by}{_hit(accepted[-1], moved) if accepted else ''}"
    status = Status.WARN if walk.unsure else Status.OK
    return Verdict(status, sentence + _notes(walk))


def _behind_it(walk: Walk) -> list[str]:
    """What drops the flow next, were the blocking rule gone."""
    return [
        _where(rule) if rule else f"the {chain.policy} policy of {_chain_name(chain)}"
        for rule, chain in walk.behind
    ]


def _behind(walk: Walk) -> str:
    """Said in the summary, so a fix that deletes one rule is not taken for the whole answer;
    the path's evidence names them."""
    count = len(walk.behind)
    return f" ({count} more behind it: see the path)" if count else ""


def _fill(template: str, rule: FirewallRule, flow: Flow) -> str:
    """An owner's command with the flow's port and the rule's jail and source put in."""
    address = rule.source or "ADDRESS"
    return template.format(
        port=flow.dport, protocol=flow.protocol, jail=jail(rule), address=address
    )


def _notes(walk: Walk) -> str:
    """What else applies to the flow: bans on some sources, rules that may apply, NAT."""
    notes = []
    for rule in walk.partial:
        owner = rule_owner(rule)
        narrowed = " ".join(
            f"{'not ' * m.negated}{m.field} {','.join(m.values)}"
            for m in rule.matches
            if m.field in ("saddr", "iif", "rate")
        )
        said = f"{_where(rule)} blocks only part of it ({narrowed or 'some packets'}), not the port"
        if owner is not None and owner.unblock:
            address = rule.source or "ADDRESS"
            said += (
                f"; to let one back in: {owner.unblock.format(jail=jail(rule), address=address)}"
            )
        notes.append(said)
    notes += [f"may apply, with a match this reader cannot read: {_where(r)}" for r in walk.unsure]
    notes += [f"rewrites the address (not followed): {_where(r)}" for r in walk.rewritten]
    return "".join(f"; {note}" for note in notes)


def _chain_name(chain: ChainPolicy) -> str:
    if chain.backend == "nftables":
        return f"nft {chain.family} {chain.table}/{chain.chain}"
    return f"{chain.backend} {chain.table}/{chain.chain}"


def path_evidence(walk: Walk, moved: dict[RuleKey, int]) -> Evidence:
    """The flow's path, chain by chain, rule by rule, with the counters the probe moved."""
    grades = {3: "", 2: "  [some of it]", 1: "  [may apply]"}
    chains = " -> ".join(_chain_name(c) for c in walk.chains) or "none"
    lines = [f"base chains in order: {chains}"]
    lines += [f"{_where(s.rule)}{grades[s.grade]}{_hit(s.rule, moved)}" for s in walk.steps]
    end = walk.chain
    if walk.by_policy and end is not None:
        lines.append(f"end of {_chain_name(end)}: policy {end.policy}{_hit(end, moved)}")
    lines.append(f"verdict: {walk.verdict}")
    lines += [f"behind it, also dropped by {said}" for said in _behind_it(walk)]
    return Evidence(f"the path {walk.flow.name}", "\n".join(lines))


def probe_evidence(
    probes: dict[str, dict[str, object] | None], moved: dict[RuleKey, int]
) -> Evidence:
    """What the probes got, and every counter that moved while they ran (other traffic too:
    the walk names a rule as hit only where it lies on the flow's path)."""
    said = [f"{what}: {json.dumps(result)}" for what, result in probes.items()]
    said.append(f"counters that moved meanwhile: {len(moved)}")
    for (backend, _family, table, chain, where, text), count in moved.items():
        place = f"handle {where}" if backend == "nftables" else f"#{where}"
        what = "policy" if text == "policy" else f"{place}: {text}"
        said.append(f"  {backend} {table}/{chain} {what} +{count}")
    return Evidence("the step's own probe connections", "\n".join(said))


_VERDICT_WORDS = {"ACCEPT": "accepted", "DROP": "dropped", "REJECT": "rejected"}


def port_finding(
    port: int,
    walks: Sequence[tuple[Walk, Verdict]],
    evidence: Sequence[Evidence],
    notes: Sequence[str],
) -> Finding:
    """One finding per port: the worst of its flows in full, the others in a word each
    (their paths are in the evidence), and the fixes of all."""
    target = f"tcp/{port}"
    status = max((v.status for _, v in walks), key=lambda s: s.rank, default=Status.OK)
    ordered = sorted(walks, key=lambda wv: -wv[1].status.rank)
    said = [v.sentence for _, v in ordered if v.status is status]
    said += [
        f"{w.flow.name}: {_VERDICT_WORDS[w.verdict]}" for w, v in ordered if v.status is not status
    ]
    summary = "; ".join(said) or f"no flow to walk for {target}"
    if notes:
        summary += " (" + "; ".join(notes) + ")"
    fixes: dict[tuple[str, ...], Fix] = {}
    for _, verdict in ordered:
        for fix in verdict.fixes:
            fixes.setdefault(fix.commands[0], fix)
    return Finding("net.firewall", status, target, summary, tuple(evidence), tuple(fixes.values()))


# -- the step --------------------------------------------------------------------------------


async def check_firewall(
    shell: Shell, target: tuple[str, int] | None, listen: int | None, probe: Probe
) -> list[Finding]:
    """The firewall step: read, probe, read the counters again, walk each flow, grade."""
    before = await read_firewall(shell)
    probes: dict[str, dict[str, object] | None] = {}
    flows: list[Flow] = []
    unwalked: dict[int, str] = {}
    listen_at = "127.0.0.1"
    if listen is not None:
        found, listen_at = await listen_flows(shell, listen)
        flows += found
    if target is not None:
        host, port = target
        probes["target"] = await probe(host, port)
        address = host if _is_address(host) else _str((probes["target"] or {}).get("address"))
        flow = await target_flow(shell, host, port, address)
        if isinstance(flow, str):
            unwalked[port] = flow
        else:
            flows.insert(0, flow)
    if listen is not None:
        probes["listen"] = await probe(listen_at, listen)
    after = await read_firewall(shell, listing=False)
    moved = moved_counters(before.rules, after.rules, before.chains, after.chains)
    ruleset = Ruleset(before.rules, before.chains)
    walks = [ruleset.walk(flow) for flow in flows]
    nft_text = before.nft_listing
    findings = []
    for port in sorted({w.flow.dport for w in walks} | set(unwalked)):
        mine = [w for w in walks if w.flow.dport == port]

        def fix_for(rule: FirewallRule, port: int = port) -> Fix | None:
            return delete_rule_fix(rule, f"tcp/{port}", nft_text)

        graded = [(w, against_the_probe(w, probes) or grade_walk(w, before.rules, moved, fix_for))
                  for w in mine]  # fmt: skip
        evidence = [path_evidence(w, moved) for w in mine]
        evidence += [probe_evidence(probes, moved), *before.evidence]
        notes = [*([unwalked[port]] if port in unwalked else []), *before.notes]
        findings.append(port_finding(port, graded, evidence, notes))
    return findings


def against_the_probe(walk: Walk, probes: dict[str, dict[str, object] | None]) -> Verdict | None:
    """For the --target flow: a walk that ends blocked although the probe connected means a
    rule was misread here; the steps must not contradict each other, so it is said so."""
    result = probes.get("target") or {}
    if walk.blocked and walk.flow.src_type == "LOCAL" and result.get("ok"):
        sentence = (
            f"{walk.flow.name}: the walk ends in {walk.verdict}, but the probe connected: "
            "a rule was misread here; the path is open"
        )
        return Verdict(Status.WARN, sentence)
    return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# -- deleting an admin's rule through the gate -----------------------------------------------


_NFT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
"""nft re-reads its arguments as text: names outside its identifier characters are refused."""


def delete_rule_fix(rule: FirewallRule, target: str, nft_text: CommandResult | None) -> Fix | None:
    """Delete one admin-owned rule, pinned on its text (iptables -S) or handle (nft)."""
    verb = {"DROP": "dropped", "REJECT": "rejected"}.get(rule.action, "blocked")
    if rule.restore_argv:
        impact = (
            f"{target} is no longer {verb} by this rule: traffic it stopped gets through; "
            "the command that puts it back is kept in the audit log"
        )
    else:  # sets, xt matches: nothing here can rebuild it, so deleting it is for good
        impact = (
            f"{target} is no longer {verb} by this rule: traffic it stopped gets through; "
            "fleetdeck cannot put this rule back (save the ruleset first)"
        )
    if rule.backend in ("iptables", "ip6tables"):
        pin = Pin(
            f"the rule in {rule.backend} {rule.table}/{rule.chain}",
            (rule.backend, "-t", rule.table, "-S", rule.chain),
            rule.text,
            PinMatch.LINE,
        )
    else:
        names = (rule.family, rule.table, rule.chain)
        line = nft_rule_line(nft_text.stdout if nft_text else "", rule)
        if line is None or not all(_NFT_NAME.match(name) for name in names):
            return None
        pin = Pin(
            f"nft rule handle {rule.handle} in {rule.family} {rule.table}/{rule.chain}",
            ("nft", "-s", "-a", "list", "chain", *names),
            line,
            PinMatch.LINE,
        )
    return Fix(
        id="net.firewall.delete-rule",
        title=f"delete the {rule.backend} rule that {rule.action.lower()}s {target}"
        + (f" from {rule.source}" if rule.source else "")
        + (f" on {rule.in_interface}" if rule.in_interface else ""),
        risk=Risk.DISRUPTIVE if rule.restore_argv else Risk.DESTRUCTIVE,
        commands=(rule.delete_argv,),
        target=target,
        pin=pin,
        verify="net.firewall",
        impact=impact,
        undo=(rule.restore_argv,) if rule.restore_argv else (),
    )


def nft_rule_line(text: str, rule: FirewallRule) -> str | None:
    """The rule's own line in `nft -a list ruleset`, found by table, chain and handle."""
    table = chain = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("table "):
            table = tuple(line.split()[1:3])
        elif line.startswith("chain "):
            chain = line.split()[1]
        elif (
            line.endswith(f"# handle {rule.handle}")
            and table == (rule.family, rule.table)
            and chain == rule.chain
        ):
            return line
    return None
