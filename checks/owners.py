"""The tools that own firewall chains and tables (Docker, Kubernetes, ufw, firewalld, fail2ban),
and each one's own commands for its rules: one table that every domain reads, so the network
wizard's firewall step and the services domain's fail2ban review name the same commands.

These tools make whole chains (or nft tables) of their own and make them again on their next
start or reload: a rule deleted behind their back comes back, or leaves their state wrong (a
fail2ban ban deleted by hand is still counted as banned). So fleetdeck never deletes their
rules; it names the owner and the owner's own command. Add an owner here, not an `if`
elsewhere. Which rule a table row owns is `checks/network/firewall_owners.py`'s to say.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Owner:
    """A tool that owns chains or tables, and the operator's commands for its rules.

    `allow` and `unblock` are templates: `{port}`, `{protocol}`, `{jail}`, `{address}`.
    """

    name: str
    chains: tuple[str, ...]  # chain name patterns (iptables and nft)
    tables: tuple[str, ...]  # nft table name patterns
    review: str  # how to see its rules
    remove: str  # how to take away one of its rules
    allow: str  # how to let a port in through it
    unblock: str = ""  # how to let one blocked source in again


DOCKER = Owner(
    "Docker",
    chains=("DOCKER", "DOCKER-*"),
    tables=(),
    review="docker ps (its PORTS) and docker network inspect NETWORK",
    remove="change the container's network settings (its -p ports, its network)",
    allow="publish the port from the container (docker run -p {port}:PORT)",
)
OWNERS: tuple[Owner, ...] = (
    DOCKER,
    Owner(
        "Kubernetes",
        chains=("KUBE-*", "cali-*", "CILIUM*", "cilium*"),
        tables=("kube-proxy", "cilium*", "calico*"),
        review="kubectl get services,networkpolicies --all-namespaces",
        remove="change the Service or NetworkPolicy that made it",
        allow="a Service or NetworkPolicy that admits {protocol}/{port}",
    ),
    Owner(
        "ufw",
        chains=("ufw-*", "ufw6-*"),
        tables=(),
        review="ufw status numbered",
        remove="ufw delete N (N from ufw status numbered)",
        allow="ufw allow {port}/{protocol}",
    ),
    Owner(
        "firewalld",
        chains=(
            "*_direct",
            "*_ZONES",
            "*_ZONES_SOURCE",
            "IN_*",
            "FWD_*",
            "FWDI_*",
            "FWDO_*",
            "PRE_*",
            "POST_*",
            "OUT_*",
        ),
        tables=("firewalld", "firewalld_policy_*"),
        review="firewall-cmd --list-all",
        remove="firewall-cmd --permanent --remove-... for the zone, then firewall-cmd --reload",
        allow="firewall-cmd --permanent --add-port={port}/{protocol}, then firewall-cmd --reload",
    ),
    Owner(
        "fail2ban",
        chains=("f2b-*",),
        tables=("f2b-table",),
        review="fail2ban-client status {jail}",
        remove="fail2ban-client set {jail} unbanip ADDRESS",
        allow="",
        unblock="fail2ban-client set {jail} unbanip {address}",
    ),
)


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def chain_owner(chain: str, table: str, backend: str) -> Owner | None:
    """The tool that made this chain (or the nft table it is in); None: the admin's own."""
    for owner in OWNERS:
        if _matches(chain, owner.chains):
            return owner
        if backend == "nftables" and _matches(table, owner.tables):
            return owner
    return None


FAIL2BAN = next(owner for owner in OWNERS if owner.name == "fail2ban")
