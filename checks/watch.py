"""`HostWatch`: one host being watched, headless: samples, findings and alerts over time.

A watch owns its host's sample history, runs the checks after every sample and keeps the
alert states. `run()` polls it every interval, booking the next poll only when the last one
is done, so a slow host never piles up polls. Screens read a watch and `listen` for its
updates; they never sample themselves, so the Fleet table and a Host screen opened from it
show the same data, taken once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fleetdeck.checks.alerts import AlertTracker
from fleetdeck.checks.config import Config
from fleetdeck.checks.incidents.alertlog import alert_hook
from fleetdeck.checks.model import CheckContext, Finding, run_checks
from fleetdeck.checks.registry import CHECKS
from fleetdeck.hosts.metrics import Rates, SampleHistory
from fleetdeck.hosts.sample import HostInfo, Sample
from fleetdeck.hosts.samplers import Sampler

Listener = Callable[["HostWatch"], None]


class HostWatch:
    """A host's sampler with its history, findings and alerts, refreshed by `run()`."""

    def __init__(self, name: str, sampler: Sampler, config: Config, interval: float) -> None:
        self.name = name
        self.sampler = sampler
        self.config = config
        self.interval = interval
        # Enough history to cover the CPU window at this interval, and ten minutes at least.
        window_samples = int(config.thresholds.cpu_window / interval) + 2
        self.history = SampleHistory(size=max(600, window_samples))
        self.alerts = AlertTracker(
            name, config.alert_for, hook=alert_hook(config.incidents, name, sampler)
        )
        self.findings: list[Finding] = []
        self.domain_findings: dict[str, list[Finding]] = {}
        """The domains' periodic checks' findings by domain, refreshed at their own cadence
        by whoever can ask the host (the Host screen's `DomainScheduler`); they count for
        alerts like the others."""
        self.info: HostInfo | None = None
        self.rates: Rates | None = None
        self.error: str | None = None
        """Why the last poll failed; None after a good one."""
        self.received: float | None = None
        """When (time.monotonic) the last good sample arrived."""
        self.polls = 0
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()

    def all_findings(self) -> list[Finding]:
        """The sampled checks' findings, then each domain's, in the order they registered."""
        return [*self.findings, *(f for found in self.domain_findings.values() for f in found)]

    @property
    def latest(self) -> Sample | None:
        return self.history.latest

    def age(self) -> float | None:
        """Seconds since the last good sample arrived."""
        return None if self.received is None else time.monotonic() - self.received

    def is_stale(self) -> bool:
        """Data older than two intervals is never shown as current (ARCHITECTURE.md)."""
        age = self.age()
        return age is not None and age > max(2 * self.interval, 2.0)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(watch)` after every poll; returns the call that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def poll_now(self) -> None:
        """Take the next sample now instead of at the end of the interval."""
        self._wake.set()

    async def poll(self) -> None:
        """One sample and everything that follows from it; a failure is recorded, not raised."""
        try:
            async with asyncio.timeout(max(2 * self.interval, 5.0)):
                sample = await self.sampler.sample()
        except TimeoutError:
            self.error = "sampling timed out"
        except Exception as error:  # any failure is this host's stale state, never a crash
            self.error = str(error) or type(error).__name__
        else:
            rates = self.history.add(sample)
            self.rates = rates if rates is not None else self.rates
            self.error = None
            self.received = time.monotonic()
            ctx = CheckContext(self.name, self.history, self.config.thresholds)
            self.findings = await run_checks(ctx, CHECKS)
            self.alerts.update(self.all_findings(), sample.at)
            self.polls += 1
        if self.info is None and self.error is None:
            try:
                async with asyncio.timeout(10):
                    self.info = await self.sampler.describe()
            except Exception:  # the header shows the name until the host describes itself
                self.info = None
        for listener in list(self._listeners):
            listener(self)

    async def run(self) -> None:
        """Poll for ever: the first two samples half a second apart (rates need two), then
        one per interval, counted from the end of the last poll; a host backing off is
        polled again when its next connection attempt is due."""
        while True:
            await self.poll()
            delay = self.interval
            if self.error is None and len(self.history) < 2:
                delay = min(0.5, self.interval)
            # A link backing off after a failure says when it will try again: polling it
            # sooner only repeats "retry in N s" (a thousand dead hosts, twice a second).
            retry_in = getattr(self.sampler, "retry_in", None)
            if self.error is not None and callable(retry_in):
                delay = max(delay, retry_in())
            self._wake.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass
