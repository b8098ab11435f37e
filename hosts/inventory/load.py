"""The inventory: which hosts there are and how to reach them.

Hosts come from fleetdeck's own TOML files, from OpenSSH client configs and from Ansible
inventories (INI or YAML); `load_inventory` reads any mix of them, detects each file's
format, and checks the whole: a duplicate name, a bad port or a jump host that does not
exist is an `InventoryError` naming the file, the line and the host. What fleetdeck merely
does not understand (an Ansible variable, an ssh_config `Match` block) is a warning, and so
is an identity file missing on this machine: ssh and Ansible go on without it.
Every file is read within the bounds of `hosts.inventory.limits` (size, hosts, nesting).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from fleetdeck.hosts.inventory.limits import MAX_HOSTS, LimitError, load_toml, read_bounded
from fleetdeck.hosts.inventory.records import (
    TIERS,
    HostSpec,
    Inventory,
    InventoryError,
    InventoryProblem,
    Origin,
    Parsed,
    split_jumps,
)


def detect_format(path: Path, text: str) -> str:
    """'toml', 'ansible-ini', 'ansible-yaml' or 'ssh-config', by name and then by content."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in {".yml", ".yaml"}:
        return "ansible-yaml"
    if suffix in {".ini", ".cfg", ".hosts"}:
        return "ansible-ini"
    words = [line.split(None, 1)[0].lower() for line in text.splitlines() if line.strip()]
    words = [w for w in words if not w.startswith(("#", ";"))]
    if (words and words[0] in {"host", "match", "include", "hostname"}) or path.name == "config":
        return "ssh-config"
    if any(w.startswith("[") and "=" not in w for w in words):
        try:
            load_toml(text)
        except (ValueError, LimitError):  # tomllib.TOMLDecodeError is a ValueError
            return "ansible-ini"
        return "toml"
    if (words and words[0].endswith(":")) or text.lstrip().startswith("---"):
        return "ansible-yaml"
    return "ansible-ini"


def load_inventory(paths: Sequence[Path]) -> Inventory:
    """Read every file, check the whole, and return it; raise `InventoryError` otherwise."""
    from fleetdeck.hosts.inventory import ansible, ssh_config
    from fleetdeck.hosts.inventory import toml_file as toml_inventory

    readers = {
        "toml": toml_inventory.parse,
        "ansible-ini": ansible.parse_ini,
        "ansible-yaml": ansible.parse_yaml,
        "ssh-config": ssh_config.parse,
    }
    merged = Parsed()
    for path in paths:
        try:
            text = read_bounded(path)
        except LimitError as error:
            merged.errors.append(InventoryProblem(Origin(path), None, error.problem))
            continue
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            merged.errors.append(InventoryProblem(Origin(path), None, f"cannot read: {reason}"))
            continue
        found = readers[detect_format(path, text)](path, text)
        merged.hosts += found.hosts
        merged.errors += found.errors
        merged.warnings += found.warnings
        if len(merged.hosts) > MAX_HOSTS:
            problem = f"more than {MAX_HOSTS:,} hosts in all the inventory files together"
            merged.errors.append(InventoryProblem(Origin(path), None, problem))
            break
    merged.errors += list(check(merged.hosts))
    if merged.errors:
        raise InventoryError(merged.errors)
    return Inventory(tuple(merged.hosts), tuple(merged.warnings))


def check(hosts: Sequence[HostSpec]) -> Iterable[InventoryProblem]:
    """Problems between hosts: duplicate names, unknown tiers, jump hosts."""
    seen: dict[str, HostSpec] = {}
    names = {h.name for h in hosts}
    for host in hosts:
        origin = host.origin or Origin(Path("?"))
        if host.name in seen:
            first = seen[host.name].origin
            yield InventoryProblem(origin, host.name, f"duplicate host name (first at {first})")
        seen.setdefault(host.name, host)
        if host.tier is not None and host.tier not in TIERS:
            yield InventoryProblem(
                origin, host.name, f"unknown tier {host.tier!r}: use {', '.join(TIERS)}"
            )
        for hop in split_jumps(host.jump):
            hop_host = hop.rpartition("@")[2].rsplit(":", 1)[0]
            # A bare word must be a host of the inventory; anything with a user, a port or a
            # dot is an address OpenSSH would dial as written.
            if hop == hop_host and "." not in hop and hop not in names:
                yield InventoryProblem(
                    origin,
                    host.name,
                    f"jump host {hop!r} is not in the inventory "
                    "(name a host of the inventory, or write user@address[:port])",
                )
            if hop_host == host.name:
                yield InventoryProblem(origin, host.name, "a host cannot be its own jump host")
