"""`HostLink`: one inventory host's connection and sampling stream, kept up.

asyncssh has no reconnect of its own. A link connects on first use, and after a failure
waits before the next attempt, twice as long each time up to a cap, with jitter so a fleet
that lost its network does not reconnect in lockstep. It knows its state at all times
(up, connecting, or the reason it is down) for the Fleet screen and `check`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import asyncssh

from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.sample import HostInfo, Sample
from fleetdeck.hosts.samplers import SampleError, SampleGarbage
from fleetdeck.hosts.ssh import ConnectError, ConnState, SSHOptions, SSHShell, connect_host
from fleetdeck.hosts.stream import StreamScripts


class HostLink:
    """A `Sampler` for one remote host that reconnects by itself."""

    def __init__(
        self,
        spec: HostSpec,
        options: SSHOptions,
        inventory: Inventory | None = None,
        gate: asyncio.Semaphore | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
        jitter: Callable[[], float] = random.random,
        timeout: float = 10.0,
    ) -> None:
        self.spec = spec
        self.options = options
        self.inventory = inventory
        self.processes = False
        self._gate = gate or asyncio.Semaphore(1)
        self._backoff = backoff
        self._jitter = jitter
        self._timeout = timeout
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sampler: ProcSampler | None = None
        self._failures = 0
        self._retry_at = 0.0
        self.state = ConnState.CONNECTING
        self.reason: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def retry_in(self) -> float:
        """Seconds until the next connection attempt (0: now)."""
        return max(self._retry_at - time.monotonic(), 0.0)

    async def sample(self) -> Sample:
        sampler = await self._ready()
        sampler.processes = self.processes
        try:
            return await sampler.sample()
        except SampleGarbage as error:
            self.state, self.reason = ConnState.UP, str(error)  # connected; answer unreadable
            raise
        except SampleError as error:
            self._lost(ConnState.DOWN, str(error))
            raise

    async def describe(self) -> HostInfo:
        return await (await self._ready()).describe()

    async def shell(self) -> SSHShell:
        """A shell on this host over the link's own connection (connecting if need be);
        raises `SampleError` saying why when the host cannot be reached."""
        await self._ready()
        assert self._connection is not None
        return SSHShell(self.name, self._connection)

    async def connection(self) -> asyncssh.SSHClientConnection:
        """The link's own SSH connection (connecting if need be), for port forwards to the
        host's PostgreSQL; raises `SampleError` saying why when the host cannot be reached."""
        await self._ready()
        assert self._connection is not None
        return self._connection

    async def _ready(self) -> ProcSampler:
        if self._sampler is not None:
            return self._sampler
        wait = self.retry_in()
        if wait > 0:
            raise SampleError(
                f"{self.name}: {self.state.value}: {self.reason}; retry in {wait:.0f} s"
            )
        self.state, self.reason = ConnState.CONNECTING, None
        try:
            async with self._gate:
                connection = await connect_host(self.spec, self.options, self.inventory)
        except ConnectError as error:
            self._failed(error.state, error.detail)
            raise SampleError(str(error)) from None
        self._connection = connection
        self._sampler = ProcSampler(
            StreamScripts(self.name, connection), processes=self.processes, timeout=self._timeout
        )
        self._failures, self.state, self.reason = 0, ConnState.UP, None
        return self._sampler

    def _failed(self, state: ConnState, reason: str) -> None:
        self._failures += 1
        base, cap = self._backoff
        delay = min(cap, base * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay * (0.5 + self._jitter() / 2)
        self.state, self.reason = state, reason

    def _lost(self, state: ConnState, reason: str) -> None:
        """The connection broke under a sample: drop it; the next sample reconnects at once
        (a lost connection is often a blip), later failures back off."""
        self.close()
        self.state, self.reason = state, reason
        self._retry_at = 0.0

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._sampler = None
