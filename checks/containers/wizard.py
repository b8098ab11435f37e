"""The containers wizard (runbooks C1-C5): the container checks as steps, on one host's engine.

The steps ask through the `DockerLink` in the context (`CheckContext.docker`): on the command
line a link made for the run, in the console the host's own (shared with its containers
pane, and so with the readings the pane keeps). An engine that cannot be asked, or a host
with no Docker, stops the wizard at its first step. Fixes (restart, start, stop) are the
docker CLI on the host's shell, through the gate: see `checks.containers.fixes`.

`container` narrows the wizard to some containers (names or patterns such as `shop-*`), so
an operator on a busy host, or a test on a shared engine, is offered fixes only for those.
"""

from __future__ import annotations

import re
from dataclasses import replace

from fleetdeck.checks.containers.checks import DOMAIN, ENGINE_CHECK, STATE_CHECK, no_engine
from fleetdeck.checks.containers.trends import GROWTH_CHECK, LOOP_CHECK, MEMORY_CHECK
from fleetdeck.checks.model import CheckContext, Finding
from fleetdeck.checks.wizards import Param, Step, Wizard, WizardRun

_NAME = re.compile(r"[A-Za-z0-9_.*?\[\]-]+")


def _pattern(text: str) -> str:
    name = text.strip().lstrip("/")
    if not _NAME.fullmatch(name):
        raise ValueError("a container name, or a pattern of one such as web-* (no spaces)")
    return name


CONTAINERS_WIZARD = Wizard(
    domain=DOMAIN,
    title="Containers",
    steps=(
        Step(
            ENGINE_CHECK,
            "C1: the engine must answer: start it (systemctl start docker), or let this user "
            "use its socket (the docker group); a hung engine needs restarting on the host",
            stop_if=no_engine,
        ),
        Step(
            STATE_CHECK,
            "C1: an unhealthy container is restarted, a stopped one that should run is "
            "started; read its logs first (C4) for why: an OOM kill needs a higher limit or "
            "less use, a crash the same again",
        ),
        Step(
            LOOP_CHECK,
            "C3: a container that keeps restarting fails at start: its logs (C4) say why (a "
            "missing setting, a dependency down); stop it while the cause is fixed",
        ),
        Step(
            MEMORY_CHECK,
            "C3: near its limit a container is OOM-killed: raise the limit (docker update "
            "--memory, compose mem_limit) or find what it holds; a restart only frees it",
        ),
        Step(
            GROWTH_CHECK,
            "C5: memory growing steadily from start is a leak suspicion: note the slope, "
            "take a heap profile if the service has one, and restart before it reaches its "
            "limit",
        ),
    ),
    params=(
        Param(
            "container",
            "only these containers: names, or patterns such as shop-*",
            _pattern,
            many=True,
        ),
    ),
)


async def container_findings(ctx: CheckContext) -> list[Finding]:
    """The containers wizard's steps as health checks (for `fleetdeck check`): every step's
    findings, the fixes' offers left in them unasked."""
    run = WizardRun(replace(CONTAINERS_WIZARD), ctx)
    await run.run()
    return [finding for result in run.results for finding in result.findings]
