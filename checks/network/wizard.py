"""The network wizard (runbooks N1-N8): link, addresses, DNS, route, firewall, TCP, listeners.

Each step asks the host itself, through its shell: `ip -j`, `ss`, `iptables-save`, `nft`,
`ping`, and for DNS and TCP the small stdlib probe in `checks/network/probe.py`, run with the
host's python3. Findings keep stable targets (an interface, a port, "default route") so a
fix's verification finds the same finding again.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import required as _required
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.network.between import BETWEEN
from fleetdeck.checks.network.firewall_step import check_firewall
from fleetdeck.checks.network.parse import (
    PORTED_KINDS,
    Link,
    Route,
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
from fleetdeck.checks.network.probe import MAX_ADDRESSES
from fleetdeck.checks.wizards import Param, Step, Wizard
from fleetdeck.hosts.shell import CommandResult, Shell

DOMAIN = "network"
COMMAND_TIMEOUT = 10.0
DNS_TIMEOUT = 2.0
DNS_SLOW_MS = 1000.0
GLIBC_DEFAULT_NAMESERVERS = ("127.0.0.1",)
"""Whom the C library asks when resolv.conf names no nameserver (resolv.conf(5))."""
CONNECT_TIMEOUT = 3.0
ERRORS_SPACING = 1.0
"""Seconds between the two counter readings that tell growing errors from old ones."""

PROBE_SOURCE = (Path(__file__).parent / "probe.py").read_text()


# -- parameters ------------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")


def parse_port(text: str) -> str:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("a port is a number from 1 to 65535")
    return str(int(text))


def parse_name(text: str) -> str:
    name = text.strip().rstrip(".")
    if not _HOSTNAME.match(name):
        raise ValueError("not a host name")
    return name


def _host_part(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return parse_name(text)


def split_target(text: str) -> tuple[str, int]:
    """HOST:PORT, or [IPv6]:PORT, into its parts; ValueError says what is wrong."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s\[\]]+):(\d+)", text.strip())
    if not match:
        raise ValueError("expected HOST:PORT (IPv6 as [ADDR]:PORT)")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    return _host_part(host), int(parse_port(port))


def parse_target(text: str) -> str:
    host, port = split_target(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_unit(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9:_.@\\-]{1,255}", text) or text.startswith("-"):
        raise ValueError("not a systemd unit name")
    return text


PARAMS = (
    Param(
        "target",
        "HOST:PORT to connect to (TCP), and whose port the firewall step looks for",
        parse_target,
    ),
    Param("resolve", "a name to resolve with each configured resolver", parse_name),
    Param("listen", "a local port a service should listen on", parse_port),
    Param(
        "service", "the systemd unit that should listen on --listen (offered a restart)", parse_unit
    ),
)


# -- N1 link ---------------------------------------------------------------------------------


async def _links(shell: Shell) -> tuple[list[Link], CommandResult]:
    result = await _required(shell, ("ip", "-j", "-s", "-d", "link", "show"))
    # Exact text: an interface name may hold bytes that are not UTF-8, and its fix names it.
    return parse_links(result.exact_stdout), result


def _links_evidence(result: CommandResult, links: Sequence[Link]) -> Evidence:
    lines = [
        f"{link.name:<15} admin {'up' if link.admin_up else 'DOWN':<4}  carrier "
        f"{'yes' if link.carrier else 'NO ':<3}  operstate {link.operstate:<8} "
        f"ifindex {link.ifindex}"
        for link in links
    ]
    return Evidence(result.command, "\n".join(lines))


async def _check_link(ctx: CheckContext, shell: Shell) -> list[Finding]:
    links, result = await _links(shell)
    routes = await _routes(shell)
    addressed = await _addressed(shell)
    default_devs = {r.device for r in default_routes(routes) if r.device}
    evidence = (_links_evidence(result, links),)
    findings = []
    for link in links:
        if link.loopback:
            continue
        if not link.admin_up and link.name not in addressed:
            summary = f"{link.name} is down and has no address: not in use"
            findings.append(Finding("net.link", Status.OK, link.name, summary, evidence))
        elif not link.admin_up:
            status = Status.CRIT
            summary = f"{link.name} is administratively down (operstate {link.operstate})"
            fix = Fix(
                id="net.link.up",
                title=f"bring {link.name} up",
                risk=Risk.DISRUPTIVE,
                commands=(("ip", "link", "set", "dev", link.name, "up"),),
                target=link.name,
                pin=Pin(
                    f"interface index of {link.name}",
                    ("cat", f"/sys/class/net/{link.name}/ifindex"),
                    str(link.ifindex),
                ),
                verify="net.link",
                impact=f"{link.name} starts carrying traffic: its addresses and routes "
                "become active and connections may start using it",
                undo=(("ip", "link", "set", "dev", link.name, "down"),),
            )
            findings.append(Finding("net.link", status, link.name, summary, evidence, (fix,)))
        elif not link.carrier:
            findings.append(_no_carrier(link, links, default_devs, evidence))
        else:
            summary = f"{link.name} is up with carrier (operstate {link.operstate})"
            findings.append(Finding("net.link", Status.OK, link.name, summary, evidence))
    if not findings:
        findings.append(
            Finding(
                "net.link", Status.CRIT, ctx.host, "no network interface but loopback", evidence
            )
        )
    return findings


def _no_carrier(
    link: Link, links: Sequence[Link], default_devs: set[str], evidence: tuple[Evidence, ...]
) -> Finding:
    """An interface that is up without carrier: broken, unless it is a bridge or bond with
    no ports yet (an idle docker0 looks like that), and that matters most on the default
    route's interface."""
    status = Status.CRIT if link.name in default_devs else Status.WARN
    if link.info_kind not in PORTED_KINDS:
        summary = (
            f"{link.name} is up but has no carrier (operstate {link.operstate}): "
            "cable, peer or switch port"
        )
        return Finding("net.link", status, link.name, summary, evidence)
    ports = ports_of(link, links)
    if ports:
        names = ", ".join(port.name for port in ports)
        summary = f"{link.name} ({link.info_kind}) is up but none of its ports has carrier: {names}"
        return Finding("net.link", status, link.name, summary, evidence)
    summary = f"{link.name} ({link.info_kind}) has no ports attached, so no carrier"
    if status is Status.CRIT:
        summary += ", yet the default route uses it"
        return Finding("net.link", status, link.name, summary, evidence)
    return Finding("net.link", Status.OK, link.name, summary + ": idle", evidence)


async def _addressed(shell: Shell) -> set[str]:
    """Interfaces with an address configured: someone meant them to carry traffic."""
    result = await _run(shell, ("ip", "-j", "addr", "show"))
    if not result.ok:
        return set()
    return {a.interface for a in parse_addresses(result.exact_stdout) if a.scope != "link"}


def _no_link(findings: Sequence[Finding]) -> str | None:
    if not any(f.status is Status.CRIT for f in findings):
        return None  # links are fine, or the step could not tell (UNKNOWN says why)
    if any(f.status is Status.OK and "up with carrier" in f.summary for f in findings):
        return None
    return "no interface has a working link, so nothing beyond this host can be reached"


# -- N2 addresses ----------------------------------------------------------------------------


async def _check_addresses(ctx: CheckContext, shell: Shell) -> list[Finding]:
    result = await _required(shell, ("ip", "-j", "addr", "show"))
    addresses = parse_addresses(result.exact_stdout)  # names as _links reads them
    links, _ = await _links(shell)
    shown = [
        f"{link.name:<15} "
        + " ".join(
            f"{a.local}/{a.prefixlen} ({a.scope})" for a in addresses if a.interface == link.name
        )
        for link in links
    ]
    evidence = (Evidence(result.command, "\n".join(line.rstrip() for line in shown)),)
    findings = []
    for link in links:
        if link.loopback or not (link.admin_up and link.carrier):
            continue
        mine = [a for a in addresses if a.interface == link.name]
        usable = [a for a in mine if a.scope == "global"]
        if usable:
            text = ", ".join(f"{a.local}/{a.prefixlen}" for a in usable)
            findings.append(Finding("net.addr", Status.OK, link.name, text, evidence))
        else:
            # Bridge and bond members have none of their own, so this alone is no fault;
            # a host where no interface has one is (below).
            local = ", ".join(f"{a.local}/{a.prefixlen}" for a in mine) or "none"
            summary = (
                f"no global address on {link.name} (link-local: {local}): a bridge or bond "
                "member, or DHCP/static configuration missing"
            )
            findings.append(Finding("net.addr", Status.OK, link.name, summary, evidence))
    if not any("no global" not in f.summary for f in findings):
        findings.append(
            Finding(
                "net.addr",
                Status.CRIT,
                "global address",
                "no interface with a link has a global address",
                evidence,
            )
        )
    return findings


def _no_address(findings: Sequence[Finding]) -> str | None:
    if not any(f.status is Status.CRIT for f in findings):
        return None
    return "no global address, so no traffic can leave this host"


# -- N3 DNS ----------------------------------------------------------------------------------


async def _python(shell: Shell, *args: str, timeout: float) -> dict[str, object] | None:
    """Run the probe with the host's python3; None if the host has none."""
    result = await _run(shell, ("python3", "-c", PROBE_SOURCE, *args), timeout=timeout)
    if result.exit_status == 127 or "python3: not found" in result.stderr:
        return None
    if not result.ok:
        raise StepFailed(f"the network probe failed: {result.stderr.strip()[-300:]}")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        raise StepFailed(f"the network probe printed {result.stdout[:200]!r}") from None
    if not isinstance(data, dict):
        raise StepFailed(f"the network probe printed {result.stdout[:200]!r}")
    return data


def _lookup_name(ctx: CheckContext) -> str | None:
    if ctx.params.get("resolve"):
        return ctx.params["resolve"]
    if ctx.params.get("target"):
        host, _port = split_target(ctx.params["target"])
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return host
    return None


async def _read_etc(shell: Shell, path: str) -> tuple[str, Evidence]:
    """A configuration file's text; "" when it does not exist (the C library's defaults)."""
    result = await _run(shell, ("cat", path))
    if not result.ok and "No such file" not in result.stderr:
        raise StepFailed(f"cannot read {path}: {result.stderr.strip()}")
    return (result.stdout if result.ok else ""), _evidence(result)


async def _check_dns(ctx: CheckContext, shell: Shell) -> list[Finding]:
    text, shown = await _read_etc(shell, "/etc/resolv.conf")
    conf = parse_resolv_conf(text)
    findings = []
    servers = conf.nameservers or GLIBC_DEFAULT_NAMESERVERS
    if not conf.nameservers:
        # Legal, and what a host with its own resolver on 127.0.0.1 may have: the lookup
        # below, asking 127.0.0.1 as the C library does, says whether anything answers.
        summary = "no nameserver line in /etc/resolv.conf: the C library asks 127.0.0.1 alone"
        findings.append(Finding("net.dns", Status.WARN, "resolvers", summary, (shown,)))
    else:
        findings.append(
            Finding(
                "net.dns", Status.OK, "resolvers", "nameservers " + ", ".join(servers), (shown,)
            )
        )
    name = _lookup_name(ctx)
    if name is None:
        return findings
    names = search_names(name, conf)
    timeout = min(conf.timeout, DNS_TIMEOUT)
    probe_timeout = timeout * (len(servers) + 1) * (len(names) + 1) + 5
    data = await _python(
        shell, "dns", name, f"{timeout:g}", ",".join(names), *servers, timeout=probe_timeout
    )
    if data is None:
        findings.append(await _getent(shell, name))
        return findings
    nsswitch, _ = await _read_etc(shell, "/etc/nsswitch.conf")
    hosts, _ = await _read_etc(shell, "/etc/hosts")
    local = NameService(parse_nsswitch_hosts(nsswitch), hosts_file_addresses(hosts, name))
    findings.append(_grade_dns(name, data, local))
    if not conf.nameservers and any(not a.silent for a in _server_answers(data)):
        said = "no nameserver line in /etc/resolv.conf: the C library asks 127.0.0.1, which answers"
        findings[0] = dataclasses.replace(findings[0], status=Status.OK, summary=said)
    return findings


@dataclasses.dataclass(frozen=True, slots=True)
class NameService:
    """What the host's name service does besides DNS: its nsswitch `hosts:` sources in
    order, and what /etc/hosts says about the name."""

    sources: tuple[str, ...]
    hosts_file: tuple[str, ...] = ()

    @property
    def files_first(self) -> bool:
        """/etc/hosts is read before any nameserver is asked."""
        order = [s for s in self.sources if s in ("files", "dns")]
        return bool(order) and order[0] == "files"


@dataclasses.dataclass(frozen=True, slots=True)
class ServerAnswer:
    """One nameserver's answer to the search expansion, as the probe reported it."""

    server: str
    status: str  # "answer", "nodata", "nxdomain", "timeout", "refused", "error", "servfail"...
    ms: float
    name: str | None = None  # the expansion that had an address
    addresses: tuple[str, ...] = ()
    error: str | None = None
    tried: tuple[tuple[str, str], ...] = ()  # (name asked, its status), in order

    @property
    def silent(self) -> bool:
        return self.status in ("timeout", "refused", "error")

    @property
    def said(self) -> str:
        return ", ".join(self.addresses) or self.error or self.status


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _ms(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _server_answers(data: dict[str, object]) -> list[ServerAnswer]:
    entries = data.get("servers")
    return [
        ServerAnswer(
            server=_text(entry.get("server")),
            status=_text(entry.get("status")) or "error",
            ms=_ms(entry.get("ms")),
            name=_text(entry.get("name")) or None,
            addresses=_texts(entry.get("addresses")),
            error=_text(entry.get("error")) or None,
            tried=tuple(
                (_text(t.get("name")), _text(t.get("status")))
                for t in (entry.get("tried") or [])
                if isinstance(t, dict)
            ),
        )
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]


def _grade_dns(name: str, data: dict[str, object], local: NameService) -> Finding:
    """The lookup graded as the host resolves: /etc/hosts where nsswitch reads it first,
    else each nameserver's answer to the search expansion; a name getaddrinfo resolves is
    never CRIT, whatever the nameservers say."""
    target = f"resolve {name}"
    answers = _server_answers(data)
    raw = data.get("system")
    system: dict[str, object] = raw if isinstance(raw, dict) else {}
    resolved = _texts(system.get("addresses"))
    failure = _text(system.get("error")) or "no address"
    evidence = _dns_evidence(
        name, answers, f"{', '.join(resolved) or failure} in {_ms(system.get('ms'))} ms", local
    )
    silent = [a for a in answers if a.silent]
    good = [a for a in answers if a.status == "answer"]
    if local.hosts_file and local.files_first:
        summary = f"{name} is {', '.join(local.hosts_file)} from /etc/hosts (read before DNS)"
    elif good:
        fastest = min(good, key=lambda a: a.ms)
        asked = f" as {fastest.name}" if fastest.name not in (None, name) else ""
        summary = f"{name} is {fastest.said} ({fastest.ms:g} ms from {fastest.server}{asked})"
        if not resolved:
            summary += f"; but getaddrinfo on the host fails ({failure}): nsswitch hosts: "
            summary += " ".join(local.sources)
            return Finding("net.dns", Status.WARN, target, summary, evidence)
        if fastest.ms > DNS_SLOW_MS and not silent:
            return Finding("net.dns", Status.WARN, target, f"slow: {summary}", evidence)
    elif resolved:
        said = "; ".join(f"{a.server}: {a.status}" for a in answers)
        where = "/etc/hosts" if local.hosts_file else "nsswitch " + " ".join(local.sources)
        summary = (
            f"{name} is {', '.join(resolved)} (getaddrinfo, from {where}; nameservers: {said})"
        )
    else:
        return _unresolved(name, answers, evidence)
    if silent:
        dead = ", ".join(f"{a.server} ({a.status})" for a in silent)
        summary += f"; not answering: {dead}"
        return Finding("net.dns", Status.WARN, target, summary, evidence)
    return Finding("net.dns", Status.OK, target, summary, evidence)


def _unresolved(name: str, answers: list[ServerAnswer], evidence: tuple[Evidence, ...]) -> Finding:
    """A name neither the host nor any nameserver resolves: which of them said what."""
    target = f"resolve {name}"
    nx = [a.server for a in answers if a.status == "nxdomain"]
    if nx:
        summary = f"{name} does not exist: NXDOMAIN from {', '.join(nx)}"
        return Finding("net.dns", Status.CRIT, target, summary, evidence)
    if answers and all(a.silent for a in answers):
        why = "; ".join(f"{a.server}: {a.error or a.status}" for a in answers)
        return Finding("net.dns", Status.CRIT, target, f"no resolver answers: {why}", evidence)
    said = "; ".join(f"{a.server}: {a.status}" for a in answers)
    return Finding("net.dns", Status.CRIT, target, f"{name} did not resolve: {said}", evidence)


def _dns_evidence(
    name: str, answers: list[ServerAnswer], system: str, local: NameService
) -> tuple[Evidence, ...]:
    lines = [
        f"nsswitch hosts: {' '.join(local.sources)}",
        f"/etc/hosts: {', '.join(local.hosts_file) or f'no entry for {name}'}",
    ]
    for a in answers:
        asked = ", ".join(f"{asked} {status}" for asked, status in a.tried)
        lines.append(
            f"{a.server}: {a.status} in {a.ms:g} ms: {a.said}"
            + (f" (asked {asked})" if asked else "")
        )
    lines.append(f"getaddrinfo: {system}")
    what = f"DNS query for {name} (A and AAAA, through the search list) to each nameserver"
    return (Evidence(what, "\n".join(lines)),)


async def _getent(shell: Shell, name: str) -> Finding:
    result = await _run(shell, ("getent", "ahosts", name), timeout=30)
    target = f"resolve {name}"
    note = "(no python3 on the host to tell NXDOMAIN from a silent resolver)"
    if result.ok:
        first = result.stdout.split()[0] if result.stdout.split() else "?"
        summary = f"{name} is {first} ({result.duration * 1000:.0f} ms, getent)"
        return Finding("net.dns", Status.OK, target, summary, (_evidence(result),))
    summary = f"{name} did not resolve after {result.duration:.1f} s {note}"
    return Finding("net.dns", Status.CRIT, target, summary, (_evidence(result),))


# -- N4 routing ------------------------------------------------------------------------------


async def _routes(shell: Shell) -> list[Route]:
    result = await _required(shell, ("ip", "-j", "route", "show"))
    return parse_routes(result.exact_stdout)


async def _check_route(ctx: CheckContext, shell: Shell) -> list[Finding]:
    """The route the target takes, graded in full; default routes it does not take, at most
    WARN (a dead IPv6 gateway says nothing about an IPv4 target). Without a target the
    default routes are graded, an IPv6 one that goes nowhere at most WARN where IPv4 works."""
    v4 = await _required(shell, ("ip", "-j", "route", "show"))
    v6 = await _run(shell, ("ip", "-j", "-6", "route", "show"))
    v6_routes = parse_routes(v6.exact_stdout, "inet6") if v6.ok else []
    routes = parse_routes(v4.exact_stdout) + v6_routes
    table = Evidence(
        "ip -j route show; ip -j -6 route show",
        "\n".join(_route_text(r) for r in routes) or "(no routes)",
    )
    address, looked_up = await _target_address(ctx, shell)
    if address is None:
        return await _default_findings(shell, routes, (table, *looked_up), reached=None)
    findings, used = await _target_route(shell, address, (table, *looked_up))
    reached = address if all(f.status is Status.OK for f in findings) else ""
    rest = await _default_findings(shell, routes, (table,), reached=reached, used=used)
    return findings + rest


async def _target_address(
    ctx: CheckContext, shell: Shell
) -> tuple[str | None, tuple[Evidence, ...]]:
    """The address --target names, as getaddrinfo on the host gives it first (which is the
    one the connect step tries); None without a target or when the name does not resolve."""
    if not ctx.params.get("target"):
        return None, ()
    host, _port = split_target(ctx.params["target"])
    try:
        return str(ipaddress.ip_address(host)), ()
    except ValueError:
        pass
    result = await _run(shell, ("getent", "ahosts", host), timeout=30)
    words = result.stdout.split() if result.ok else []
    return (words[0] if words else None), (_evidence(result),)


async def _target_route(
    shell: Shell, address: str, evidence: tuple[Evidence, ...]
) -> tuple[list[Finding], set[str]]:
    """The kernel's own answer for the target (`ip route get`), and its gateway graded;
    returns the findings and the gateway it uses, if any."""
    target = f"route to {address}"
    get = await _run(shell, ("ip", "-j", "route", "get", address))
    evidence = (_evidence(get), *evidence)
    family = "inet6" if ":" in address else "inet"
    routes = parse_routes(get.exact_stdout, family) if get.ok else []
    if not routes:
        why = (get.stderr or get.stdout).strip().splitlines()
        summary = f"no route to {address}: {why[-1] if why else f'exit {get.exit_status}'}"
        return [Finding("net.route", Status.CRIT, target, summary, evidence)], set()
    route = routes[0]
    shown = _route_text(dataclasses.replace(route, destination=address))
    if route.type in ("unreachable", "blackhole", "prohibit", "throw"):
        summary = f"{address} is routed to nowhere ({route.type}): {shown}"
        return [Finding("net.route", Status.CRIT, target, summary, evidence)], set()
    if route.type == "local":
        summary = f"{address} is this host ({shown})"
        return [Finding("net.route", Status.OK, target, summary, evidence)], set()
    if route.linkdown:
        summary = f"{shown}: {route.device} has no carrier"
        return [Finding("net.route", Status.CRIT, target, summary, evidence)], set()
    where = "" if route.gateway else " (directly connected)"
    findings = [Finding("net.route", Status.OK, target, shown + where, evidence)]
    if route.gateway:
        findings.append(await _gateway(shell, route.gateway, route.device))
    return findings, {route.gateway} if route.gateway else set()


async def _default_findings(
    shell: Shell,
    routes: Sequence[Route],
    evidence: tuple[Evidence, ...],
    *,
    reached: str | None,
    used: Collection[str] = (),
) -> list[Finding]:
    """The default routes and their gateways. `reached` is the target's address when its own
    route works ("" when it does not, None without a target): defaults it does not use are
    then at most WARN, and none at all is fine."""
    defaults = default_routes(routes)
    if not defaults:
        summary = "no default route: only directly connected networks are reachable"
        if reached:
            summary += f", {reached} among them"
            return [Finding("net.route", Status.OK, "default route", summary, evidence)]
        return [Finding("net.route", Status.CRIT, "default route", summary, evidence)]
    shown = "; ".join(_route_text(r) for r in defaults)
    findings = [Finding("net.route", Status.OK, "default route", shown, evidence)]
    gateways = {
        gateway: (route.family, device)
        for route in reversed(defaults)  # the first (lowest metric) wins the device
        for gateway, device in _hops(route)
        if gateway not in used
    }
    graded = {g: (family, await _gateway(shell, g, dev)) for g, (family, dev) in gateways.items()}
    ipv4_works = any(
        route.family == "inet"
        and all(graded[g][1].status is Status.OK for g in route.gateways if g in graded)
        for route in defaults
    )
    for family, finding in graded.values():
        if reached:  # the target's own route works: a default it does not use is no fault
            finding = _at_most(Status.OK, finding, "the target does not use it")
        elif reached is not None:
            finding = _at_most(Status.WARN, finding, "the target does not use it")
        elif family == "inet6" and ipv4_works:
            why = "IPv4 works: only IPv6 beyond this network fails"
            finding = _at_most(Status.WARN, finding, why)
        findings.append(finding)
    return findings


def _hops(route: Route) -> list[tuple[str, str | None]]:
    """(gateway, device) of each path of a route."""
    hops = [(route.gateway, route.device), *((h.gateway, h.device) for h in route.nexthops)]
    return [(gateway, device) for gateway, device in hops if gateway]


def _at_most(status: Status, finding: Finding, why: str) -> Finding:
    """The finding graded no worse than `status`, saying why; UNKNOWN stays UNKNOWN."""
    if finding.status not in (Status.WARN, Status.CRIT) or finding.status.rank <= status.rank:
        return finding
    return dataclasses.replace(finding, status=status, summary=f"{finding.summary} ({why})")


def _route_text(route: Route) -> str:
    parts = [route.destination]
    parts += [f"via {route.gateway}"] if route.gateway else []
    parts += [f"dev {route.device}"] if route.device else []
    parts += [f"proto {route.protocol}"] if route.protocol else []
    parts += [f"metric {route.metric}"] if route.metric is not None else []
    return " ".join(parts)


async def _gateway(shell: Shell, gateway: str, device: str | None = None) -> Finding:
    target = f"gateway {gateway}"
    flag = "-6" if ":" in gateway else "-4"
    # A link-local gateway means nothing without its interface.
    scoped = f"{gateway}%{device}" if gateway.lower().startswith("fe80:") and device else gateway
    ping = await _run(shell, ("ping", flag, "-n", "-c", "2", "-i", "0.2", "-W", "1", scoped))
    if ping.ok:
        rtt = re.search(r"= [\d.]+/([\d.]+)/", ping.stdout)
        said = f"answers ping ({rtt.group(1)} ms)" if rtt else "answers ping"
        return Finding("net.route", Status.OK, target, f"{gateway} {said}", (_evidence(ping),))
    neigh_argv = ("ip", "neigh", "show", gateway, *(("dev", device) if device else ()))
    neigh = await _run(shell, neigh_argv)
    state = neigh.stdout.split()[-1] if neigh.ok and neigh.stdout.split() else ""
    evidence = (_evidence(ping), _evidence(neigh))
    if state in ("REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT"):
        summary = f"{gateway} does not answer ping but answers ARP/ND ({state}): it is there"
        return Finding("net.route", Status.OK, target, summary, evidence)
    if ping.exit_status == 127:  # a missing tool is not a dead gateway
        summary = f"cannot tell whether {gateway} answers: ping is not installed, no ARP/ND entry"
        return Finding("net.route", Status.UNKNOWN, target, summary, evidence)
    summary = f"gateway {gateway} unreachable: no answer to ping or ARP"
    return Finding("net.route", Status.CRIT, target, summary, evidence)


# -- N5 firewall -----------------------------------------------------------------------------


async def _check_firewall(ctx: CheckContext, shell: Shell) -> list[Finding]:
    """The paths of the --target and --listen flows through the rules
    (checks.network.firewall_step), with this module's TCP probe as the step's own probe
    connection."""
    target = split_target(ctx.params["target"]) if ctx.params.get("target") else None
    listen = int(ctx.params["listen"]) if ctx.params.get("listen") else None

    async def probe(host: str, port: int) -> dict[str, object] | None:
        args = ("tcp", host, str(port), f"{CONNECT_TIMEOUT:g}")
        return await _python(shell, *args, timeout=CONNECT_TIMEOUT + 10)

    return await check_firewall(shell, target, listen, probe)


# -- N6 TCP connect --------------------------------------------------------------------------


async def _check_connect(ctx: CheckContext, shell: Shell) -> list[Finding]:
    host, port = split_target(ctx.params["target"])
    target = ctx.params["target"]
    data = await _python(
        shell, "tcp", host, str(port), f"{CONNECT_TIMEOUT:g}",
        timeout=CONNECT_TIMEOUT * MAX_ADDRESSES + 10,
    )  # fmt: skip
    if data is None:
        raise StepFailed(f"{ctx.host} has no python3, which the TCP probe needs")
    evidence = (Evidence(f"TCP connect to {target} from {ctx.host}", json.dumps(data)),)
    address = data.get("address") or host
    if data.get("ok"):
        summary = f"connected to {address}:{port} in {data.get('ms')} ms"
        return [Finding("net.connect", Status.OK, target, summary, evidence)]
    error = str(data.get("error"))
    meaning = {
        "refused": "nothing listens there, or a firewall rejects it",
        "timeout": "no answer: the host is down or a firewall drops the packets",
        "no route to host": "the host does not answer on its network",
        "network unreachable": "no route to that network",
    }.get(error, "")
    summary = f"cannot connect to {address}:{port}: {error}" + (f" ({meaning})" if meaning else "")
    tries = data.get("tried")
    others = [t for t in tries if isinstance(t, dict)][1:] if isinstance(tries, list) else []
    if others:  # the name's other addresses, tried in turn as a client would
        summary += "; also " + ", ".join(f"{t.get('address')}: {t.get('error')}" for t in others)
    return [Finding("net.connect", Status.CRIT, target, summary, evidence)]


# -- N8 listening sockets --------------------------------------------------------------------


async def _check_listen(ctx: CheckContext, shell: Shell) -> list[Finding]:
    port = int(ctx.params["listen"])
    target = f"tcp/{port}"
    result = await _required(shell, ("ss", "-H", "-ltnp"))
    found = listeners_on(parse_ss_listening(result.stdout), port)
    evidence = (_evidence(result),)
    if not found:
        fixes = await _restart_fixes(ctx, shell, target)
        summary = f"nothing listens on {target}"
        if ctx.params.get("service") and not fixes:
            summary += f"; no systemd on {ctx.host}: start {ctx.params['service']} by hand"
        return [Finding("net.listen", Status.CRIT, target, summary, evidence, fixes)]
    where = ", ".join(
        f"{lst.address}:{lst.port}" + (f" ({', '.join(lst.processes)})" if lst.processes else "")
        for lst in found
    )
    if all(lst.loopback_only for lst in found):
        address, _ = await _target_address(ctx, shell)
        if address is not None and ipaddress.ip_address(address).is_loopback:
            if _names_address(ctx, port, address) and not any(
                lst.accepts(address) for lst in found
            ):  # --target [::1]:PORT, the service on 127.0.0.1 alone: the connect is refused
                summary = f"listens on loopback only ({where}), but not on {address}, the target"
                return [Finding("net.listen", Status.WARN, target, summary, evidence)]
            # The operator's own client is on this host: nobody else is meant to connect.
            summary = f"listens on loopback only ({where}), where the target {address} is"
            return [Finding("net.listen", Status.OK, target, summary, evidence)]
        summary = f"listens on loopback only ({where}): other hosts cannot connect"
        return [Finding("net.listen", Status.WARN, target, summary, evidence)]
    return [Finding("net.listen", Status.OK, target, f"listening on {where}", evidence)]


def _names_address(ctx: CheckContext, port: int, address: str) -> bool:
    """--target is this address itself at the port listened on (a name may have others,
    which the connect step tries in turn)."""
    host, target_port = split_target(ctx.params["target"])
    try:
        return target_port == port and ipaddress.ip_address(host) == ipaddress.ip_address(address)
    except ValueError:
        return False  # a name


async def _restart_fixes(ctx: CheckContext, shell: Shell, target: str) -> tuple[Fix, ...]:
    unit = ctx.params.get("service")
    if not unit:
        return ()
    systemd = await _run(shell, ("test", "-d", "/run/systemd/system"))
    if not systemd.ok:
        return ()
    show = await _run(shell, ("systemctl", "show", "--property=InvocationID", "--value", unit))
    if not show.ok:
        return ()
    return (
        Fix(
            id="net.listen.restart",
            title=f"restart {unit}",
            risk=Risk.DISRUPTIVE,
            commands=(("systemctl", "restart", unit),),
            target=target,
            pin=Pin(
                f"invocation id of {unit}",
                ("systemctl", "show", "--property=InvocationID", "--value", unit),
                show.stdout.strip(),
            ),
            verify="net.listen",
            impact=f"{unit} stops and starts again: its clients are disconnected",
        ),
    )


# -- N7 interface errors ---------------------------------------------------------------------


async def _check_errors(ctx: CheckContext, shell: Shell) -> list[Finding]:
    import asyncio

    first, _ = await _links(shell)
    await asyncio.sleep(ERRORS_SPACING)
    second, result = await _links(shell)
    before = {link.name: link for link in first}
    findings = []
    for link in second:
        if link.loopback:
            continue
        old = before.get(link.name)
        totals = {
            "rx errors": link.rx_errors,
            "rx dropped": link.rx_dropped,
            "tx errors": link.tx_errors,
            "tx dropped": link.tx_dropped,
        }
        growth = {}
        if old is not None:
            growth = {
                "rx errors": link.rx_errors - old.rx_errors,
                "rx dropped": link.rx_dropped - old.rx_dropped,
                "tx errors": link.tx_errors - old.tx_errors,
                "tx dropped": link.tx_dropped - old.tx_dropped,
            }
        rising = {k: v for k, v in growth.items() if v > 0}
        total_text = ", ".join(f"{v} {k}" for k, v in totals.items() if v) or "no errors or drops"
        if rising:
            now = ", ".join(f"+{v} {k}" for k, v in rising.items())
            summary = f"{now} in the last {ERRORS_SPACING:g} s (since boot: {total_text})"
            findings.append(
                Finding("net.errors", Status.WARN, link.name, summary, (_evidence(result),))
            )
        else:
            summary = f"none in the last {ERRORS_SPACING:g} s (since boot: {total_text})"
            findings.append(Finding("net.errors", Status.OK, link.name, summary))
    return findings


LINK = ShellCheck("net.link", "Link: carrier and admin state", _check_link, DOMAIN)
ADDRESSES = ShellCheck("net.addr", "Addresses", _check_addresses, DOMAIN)
DNS = ShellCheck("net.dns", "DNS: resolvers and a lookup", _check_dns, DOMAIN)
ROUTE = ShellCheck("net.route", "Default route and gateway", _check_route, DOMAIN)
FIREWALL = ShellCheck("net.firewall", "Firewall rules on the port", _check_firewall, DOMAIN)
CONNECT = ShellCheck("net.connect", "TCP connect to the target", _check_connect, DOMAIN)
LISTEN = ShellCheck("net.listen", "Listening socket of the service", _check_listen, DOMAIN)
ERRORS = ShellCheck("net.errors", "Interface errors and drops", _check_errors, DOMAIN)

NETWORK_WIZARD = Wizard(
    domain=DOMAIN,
    title="Network: link, addresses, DNS, routing, firewall, connection, listener",
    params=PARAMS,
    steps=(
        Step(
            LINK,
            "Without carrier and admin state up nothing else on the network can work; "
            "check cables, the switch port, or bring the interface up.",
            stop_if=_no_link,
        ),
        Step(
            ADDRESSES,
            "An interface with a link but no global address points at DHCP or the "
            "static configuration.",
            stop_if=_no_address,
        ),
        Step(
            DNS,
            "Each resolver is asked directly, through the search list as the host asks, "
            "so a dead resolver, a missing one and a name that does not exist (NXDOMAIN) "
            "are told apart; /etc/hosts counts where nsswitch reads it first.",
        ),
        Step(
            ROUTE,
            "The target's own route counts; without a default route only directly "
            "connected networks answer; a gateway that answers neither ping nor ARP is "
            "down or on the wrong network.",
        ),
        Step(
            FIREWALL,
            "The packet is followed through the rules in order to the one that decides, "
            "or to the chain's policy; a rule of Docker, ufw, firewalld, fail2ban or "
            "Kubernetes is changed with that tool, not deleted here.",
            requires=("target", "listen"),
        ),
        Step(
            CONNECT,
            "Refused means nothing listens (or a REJECT); a timeout means a firewall "
            "drops the packets or the host is down.",
            requires=("target",),
        ),
        Step(
            BETWEEN,
            "Loss of more than a ping or two, or jitter near the latency itself, points at "
            "a congested or failing path; iperf3 measures throughput where both ends run it.",
            requires=("target",),
        ),
        Step(
            LISTEN,
            "A service bound to 127.0.0.1 only answers on this host; change its bind "
            "address to reach it from others.",
            requires=("listen",),
        ),
        Step(
            ERRORS,
            "Errors that keep growing point at a bad cable, duplex mismatch or a "
            "failing NIC; drops at a full receive queue point at load.",
        ),
    ),
)
