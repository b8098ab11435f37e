"""Who owns a firewall rule or chain: Docker, Kubernetes, ufw, firewalld, fail2ban, or the admin.

The owners' table and `chain_owner` live in the core (`checks/owners.py`), since the services
domain names fail2ban's commands too; this module says which owner a parsed rule or a base
chain's policy belongs to, and the fail2ban jail of a rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleetdeck.checks.network.firewall import ChainPolicy, FirewallRule
from fleetdeck.checks.owners import DOCKER, OWNERS, Owner, chain_owner

__all__ = ["DOCKER", "OWNERS", "Owner", "chain_owner", "jail", "policy_owner", "rule_owner"]


def rule_owner(rule: FirewallRule) -> Owner | None:
    """Who put the rule there: the owner of its chain, or of the chain it jumps to (the
    `-A INPUT -j f2b-sshd` that fail2ban adds to a built-in chain is fail2ban's)."""
    return chain_owner(rule.chain, rule.table, rule.backend) or (
        chain_owner(rule.action, rule.table, rule.backend) if rule.action else None
    )


def policy_owner(chain: ChainPolicy, rules: Iterable[FirewallRule]) -> Owner | None:
    """Who set a base chain's policy: its nft table's owner, or the one tool whose chains
    the base chain jumps to (ufw's INPUT, Docker's FORWARD); None when no tool or several."""
    owner = chain_owner(chain.chain, chain.table, chain.backend)
    if owner is not None:
        return owner
    mine = {
        found.name: found
        for r in rules
        if (r.backend, r.family, r.table, r.chain)
        == (chain.backend, chain.family, chain.table, chain.chain)
        and (found := rule_owner(r)) is not None
    }
    return next(iter(mine.values())) if len(mine) == 1 else None


def jail(rule: FirewallRule) -> str:
    """The fail2ban jail a rule belongs to: `f2b-sshd` is jail sshd."""
    for name in (rule.chain, rule.action):
        if name.startswith("f2b-") and name != "f2b-chain":
            return name[4:]
    return "JAIL"
