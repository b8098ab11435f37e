"""The inventory's records: a host (`HostSpec`), the whole (`Inventory`), what one file gave
(`Parsed`), its problems, and the small helpers every reader shares. The readers (TOML,
OpenSSH, Ansible) import these; `hosts.inventory.load` reads the files with them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from fleetdeck.hosts.docker.endpoint import DockerEndpoint
from fleetdeck.hosts.postgres.targets import PgTarget

TIERS = ("prod", "staging", "dev")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was written: a file and a line (None when the format hides it)."""

    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One host as the operator described it; nothing here has been contacted yet."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    jump: str | None = None
    identity_files: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tier: str | None = None
    origin: Origin | None = None
    postgres: tuple[PgTarget, ...] = ()
    """PostgreSQL databases on this host (TOML inventories only, so far)."""
    docker: DockerEndpoint | None = None
    """Where the host's Docker engine answers (TOML `docker = ...`, see hosts.docker.endpoint);
    None: the default (this machine's DOCKER_HOST, context or socket; a remote host's socket
    through its SSH connection)."""

    @property
    def labels(self) -> tuple[str, ...]:
        """Tags and groups together: what `--tag` and the Fleet filter match on."""
        return tuple(dict.fromkeys((*self.tags, *self.groups)))


@dataclass(frozen=True, slots=True)
class InventoryProblem:
    """A mistake (or, as a warning, a thing left unread) in an inventory file."""

    origin: Origin
    host: str | None
    problem: str

    def __str__(self) -> str:
        host = f" host {self.host!r}:" if self.host else ""
        return f"{self.origin}:{host} {self.problem}"


class InventoryError(Exception):
    """The inventory cannot be used; `problems` says every reason, file, line and host."""

    def __init__(self, problems: Sequence[InventoryProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Inventory:
    hosts: tuple[HostSpec, ...]
    warnings: tuple[InventoryProblem, ...] = field(default=())

    def host(self, name: str) -> HostSpec | None:
        return next((h for h in self.hosts if h.name == name), None)

    def select(self, name: str | None = None, tag: str | None = None) -> tuple[HostSpec, ...]:
        """The hosts named, or carrying a tag or group, or all of them."""
        return tuple(
            h
            for h in self.hosts
            if (name is None or h.name == name) and (tag is None or tag in h.labels)
        )


@dataclass
class Parsed:
    """What one file gave: hosts, problems that stop it, and warnings."""

    hosts: list[HostSpec] = field(default_factory=list)
    errors: list[InventoryProblem] = field(default_factory=list)
    warnings: list[InventoryProblem] = field(default_factory=list)
    identities_checked: set[tuple[str, Origin]] = field(default_factory=set)
    """Identity files already checked where they are set: one warning per line, not per
    host of a group."""


def missing_identity(identity: str, origin: Origin, host: str, into: Parsed) -> None:
    """Warn, naming the line that set it, about an identity file this machine cannot read.

    A warning, not an error: ssh and Ansible go on without the file (the agent or another key
    may still log in), and one operator's missing key must not hide the whole fleet. A line
    that sets it for a whole group is warned about once, naming the first host.
    """
    if (identity, origin) in into.identities_checked:
        return
    into.identities_checked.add((identity, origin))
    path = Path(os.path.expanduser(identity))
    if not os.access(path, os.R_OK):
        why = "does not exist" if not path.exists() else "is not readable"
        problem = f"identity file {identity} {why} (going on without it, as ssh does)"
        into.warnings.append(InventoryProblem(origin, host, problem))


def split_jumps(jump: str | None) -> list[str]:
    """The hops of a ProxyJump value, first hop first ('none' means no jump)."""
    if not jump or jump.strip().lower() == "none":
        return []
    return [hop.strip() for hop in jump.split(",") if hop.strip()]


def parse_port(value: object, origin: Origin, host: str, into: Parsed) -> int:
    """A port from any format; a bad one is an error naming the host, and 22 stands in."""
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 1 <= port <= 65535:
        into.errors.append(InventoryProblem(origin, host, f"bad port {value!r}: use 1-65535"))
        return 22
    return port


def with_defaults(host: HostSpec, **defaults: object) -> HostSpec:
    """Fill the fields a host left empty from defaults (a group's or a file's)."""
    changes = {k: v for k, v in defaults.items() if v is not None and not getattr(host, k)}
    return replace(host, **changes)  # type: ignore[arg-type]
