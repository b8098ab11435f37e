"""`HostAccess`: the one way fleetdeck reaches a host, for the console, `fleetdeck check` and
`fleetdeck wizard` alike.

It hands out the host's shell (as the `FixHost` wizards and fixes run on, with its tier), the
getter of its SSH connection (for a forward to its database or Docker engine), its Docker link
(one per host, made on first use and closed with the access) and what its database links are
built from (the PostgreSQL targets). Each entry point makes one access per host, from what it
already holds: a watched host's sampler (`for_sampler`), an open SSH connection (`over_ssh`),
or this machine (`local`). Nothing here connects until asked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fleetdeck.checks.actions import FixHost
from fleetdeck.hosts.shell import LocalShell, Shell

if TYPE_CHECKING:
    import asyncssh

    from fleetdeck.hosts.docker.endpoint import DockerEndpoint
    from fleetdeck.hosts.docker.link import DockerLink
    from fleetdeck.hosts.inventory.records import HostSpec
    from fleetdeck.hosts.postgres.targets import PgTarget
    from fleetdeck.hosts.samplers import Sampler

ShellGetter = Callable[[], Awaitable[Shell]]
SSHGetter = Callable[[], Awaitable["asyncssh.SSHClientConnection"]]


class HostAccess:
    """One host's shell, SSH connection, Docker link and database targets."""

    def __init__(
        self,
        name: str,
        *,
        shell: ShellGetter | None = None,
        tier: str | None = None,
        ssh: SSHGetter | None = None,
        docker: DockerEndpoint | None = None,
        postgres: tuple[PgTarget | None, ...] = (),
        labels: tuple[str, ...] = (),
        wants_docker: bool = True,
    ) -> None:
        self.name = name
        self.tier = tier
        self.ssh = ssh
        """The host's SSH connection, for a forward; None for this machine."""
        self.docker_endpoint = docker
        self.postgres = postgres
        """The PostgreSQL targets: the inventory's, or None for libpq's defaults here."""
        self.labels = labels
        """The host's tags and groups, which pick its part of the settings file."""
        self.wants_docker = wants_docker
        """Whether the host has a Docker engine worth showing (`docker = "none"` says not)."""
        self._shell = shell
        self._docker: DockerLink | None = None

    @property
    def has_shell(self) -> bool:
        return self._shell is not None

    async def fix_host(self) -> FixHost:
        """Where wizards and fixes run: the host's shell and tier. RuntimeError if the host
        has no shell (recorded data); whatever the connection raises if it cannot be had."""
        if self._shell is None:
            raise RuntimeError(f"{self.name}: no shell to run a wizard on")
        return FixHost(self.name, await self._shell(), self.tier)

    def docker_link(self) -> DockerLink:
        """The link to the host's Docker engine: its inventory's `docker` endpoint or the
        default (a remote host's socket through its SSH connection). One per access, so
        every screen shares its threads, its forward and its last stats reading."""
        if self._docker is None:
            from fleetdeck.hosts.docker.link import DockerLink

            self._docker = DockerLink(self.name, self.docker_endpoint, ssh=self.ssh)
        return self._docker

    async def close(self) -> None:
        """Close the Docker link (log streams, forward, threads), before the SSH connection
        it forwards over is closed by whoever opened it."""
        link, self._docker = self._docker, None
        if link is not None:
            await link.close()

    @classmethod
    def local(
        cls, name: str, tier: str | None = None, postgres: bool = False, wants_docker: bool = True
    ) -> HostAccess:
        """This machine: a local shell, libpq's defaults with `postgres`."""

        async def shell() -> Shell:
            return LocalShell(name)

        targets: tuple[PgTarget | None, ...] = (None,) if postgres else ()
        return cls(name, shell=shell, tier=tier, postgres=targets, wants_docker=wants_docker)

    @classmethod
    def over_ssh(cls, spec: HostSpec, connection: asyncssh.SSHClientConnection) -> HostAccess:
        """An inventory host through an SSH connection its caller opened and will close."""
        from fleetdeck.hosts.ssh import SSHShell

        async def shell() -> Shell:
            return SSHShell(spec.name, connection)

        async def ssh() -> asyncssh.SSHClientConnection:
            return connection

        return cls(
            spec.name,
            shell=shell,
            tier=spec.tier,
            ssh=ssh,
            docker=spec.docker,
            postgres=tuple(spec.postgres),
            labels=spec.labels,
        )

    @classmethod
    def for_sampler(
        cls, name: str, sampler: Sampler, tier: str | None = None, postgres: bool = False
    ) -> HostAccess:
        """A watched host, reached the way its sampler reads it: this machine (psutil), an
        inventory host's self-reconnecting link (its own connection), or a shell a recorded
        sampler reads through; a sampler with none of these has no shell."""
        from fleetdeck.hosts.samplers import PsutilSampler

        if isinstance(sampler, PsutilSampler):
            return cls.local(name, tier, postgres)
        spec: HostSpec | None = getattr(sampler, "spec", None)
        link_shell = getattr(sampler, "shell", None)
        connection = getattr(sampler, "connection", None)
        shell: ShellGetter | None = link_shell if callable(link_shell) else None
        if shell is None:
            scripts_shell = getattr(getattr(sampler, "scripts", None), "shell", None)
            if scripts_shell is not None:
                fixed: Shell = scripts_shell

                async def recorded() -> Shell:
                    return fixed

                shell = recorded
        if spec is None:  # a recorded host: this machine's Docker engine is not its
            targets: tuple[PgTarget | None, ...] = (None,) if postgres else ()
            return cls(name, shell=shell, postgres=targets, wants_docker=False)
        from fleetdeck.hosts.docker.endpoint import EndpointKind

        return cls(
            name,
            shell=shell,
            tier=spec.tier,
            ssh=connection if callable(connection) else None,
            docker=spec.docker,
            postgres=tuple(spec.postgres),
            labels=spec.labels,
            wants_docker=spec.docker is None or spec.docker.kind is not EndpointKind.NONE,
        )
