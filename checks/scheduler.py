"""Running the registered domains' periodic checks: one run for `fleetdeck check`
(`open_run`), and `DomainScheduler`, the one loop that runs them on an open Host screen.

A domain declares what its checks need and how often they run (`checks/domain.py`); this
module gives them that and stores what they find in the watch, by domain. No domain is named
here: a new domain's checks are run on every host as soon as it is registered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from fleetdeck.checks.access import HostAccess
from fleetdeck.checks.catalog import domain_params
from fleetdeck.checks.config import Config
from fleetdeck.checks.domain import Domain, DomainRun
from fleetdeck.checks.model import CheckContext, Finding, Status
from fleetdeck.checks.watch import HostWatch
from fleetdeck.hosts.metrics import SampleHistory

BadSettings = Callable[[ValueError], dict[str, str]]
"""What to do when the settings file's parameters for a host are refused: the parameters to
use instead, or raise."""


def _refuse(error: ValueError) -> dict[str, str]:
    raise error


def available(domain: Domain, access: HostAccess) -> bool:
    """Whether the host has what the domain's periodic checks cannot do without."""
    if domain.periodic is None:
        return False
    needs = domain.periodic.needs
    if "shell" in needs and not access.has_shell:
        return False
    return "database" not in needs or bool(access.postgres)


async def open_run(
    domain: Domain,
    history: SampleHistory,
    config: Config,
    access: HostAccess,
    bad_settings: BadSettings = _refuse,
) -> DomainRun:
    """What one run of `domain`'s periodic checks on the host is given: the shell first
    (RuntimeError: the host has none; whatever the connection raises), then the
    parameters the settings file gives the host (`bad_settings` on a refused one)."""
    assert domain.periodic is not None
    needs = domain.periodic.needs
    fix = await access.fix_host() if "shell" in needs else None
    params: dict[str, str] = {}
    if "params" in needs:
        try:
            params = domain_params(domain, config, access.name, access.labels)
        except ValueError as error:
            params = bad_settings(error)
    ctx = CheckContext(
        access.name,
        history,
        config.thresholds,
        fix.shell if fix else None,
        fix.tier if fix else None,
        params,
        docker=access.docker_link() if "docker" in needs else None,
    )
    return DomainRun(ctx, access, config.domains.get(domain.name))


class DomainScheduler:
    """The registered domains' periodic checks on one watched host, each at its cadence, for
    as long as `run()` runs (the Host screen's life). Findings go to
    `watch.domain_findings[domain]`, then `updated()` is called.

    `every` overrides a domain's cadence (the console's `storage_every`; 0 stops it); a
    domain with a pane runs only while `shown(name)`, and finds nothing while `quiet(name)`
    (its pane says the service is absent); `bad_settings` is told of parameters the
    settings file gives the host that are refused, and the checks run without them.
    """

    def __init__(
        self,
        watch: HostWatch,
        access: HostAccess,
        domains: Sequence[Domain],
        *,
        updated: Callable[[], None],
        bad_settings: Callable[[ValueError], None],
        every: Mapping[str, float] | None = None,
        shown: Callable[[str], bool] = lambda name: True,
        quiet: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.watch = watch
        self.access = access
        self.domains = tuple(domains)
        self.every = dict(every or {})
        self._updated = updated
        self._bad_settings = bad_settings
        self._shown = shown
        self._quiet = quiet

    def cadence(self, domain: Domain) -> float:
        """Seconds between runs on the screen; 0: the domain is not run there."""
        if domain.periodic is None or (domain.pane is not None and not self._shown(domain.name)):
            return 0.0
        every = self.every.get(domain.name, domain.periodic.every)
        return every or 0.0

    async def run(self) -> None:
        jobs = [d for d in self.domains if self.cadence(d) > 0]
        for domain in jobs:  # the findings keep the registration order, whoever is first
            self.watch.domain_findings.setdefault(domain.name, [])
        await asyncio.gather(*(self._job(d) for d in jobs))

    def _ignore(self, error: ValueError) -> dict[str, str]:
        self._bad_settings(error)
        return {}

    async def _job(self, domain: Domain) -> None:
        assert domain.periodic is not None
        watch, every = self.watch, self.cadence(domain)
        if domain.periodic.after_pane_reads and domain.pane is not None:
            pane_every = max(watch.interval, domain.pane.every)
            await asyncio.sleep(domain.periodic.after_pane_reads * pane_every + 1)
        while True:
            if self._quiet(domain.name):
                found: list[Finding] = []
            else:
                try:
                    run = await open_run(
                        domain, watch.history, watch.config, self.access, self._ignore
                    )
                except RuntimeError:
                    return  # a host with no shell (recorded data): the sampled checks only
                except Exception as error:  # the host cannot be reached just now
                    said = f"not run: {error}"
                    found = [Finding(f"{domain.name}.checks", Status.UNKNOWN, watch.name, said)]
                else:
                    found = await _guarded(domain, run)
            watch.domain_findings[domain.name] = found
            self._updated()
            await asyncio.sleep(every)


async def _guarded(domain: Domain, run: DomainRun) -> list[Finding]:
    """The domain's checks; a bug in them is the host's UNKNOWN, never the end of the loop."""
    assert domain.periodic is not None
    try:
        return await domain.periodic.run(run)
    except Exception as error:
        said = f"{domain.name} checks stopped: {type(error).__name__}: {error}"
        return [Finding(f"{domain.name}.checks", Status.UNKNOWN, run.ctx.host, said)]


async def run_once(
    domain: Domain, history: SampleHistory, config: Config, access: HostAccess
) -> list[Finding]:
    """One run of a domain's checks for `fleetdeck check`: settings the host cannot use are
    a `<domain>.settings` UNKNOWN, a host that cannot be reached a `<domain>.checks` one."""
    try:
        run = await open_run(domain, history, config, access)
    except ValueError as error:
        return [Finding(f"{domain.name}.settings", Status.UNKNOWN, access.name, str(error))]
    except Exception as error:
        said = f"not run: {error}"
        return [Finding(f"{domain.name}.checks", Status.UNKNOWN, access.name, said)]
    return await _guarded(domain, run)
