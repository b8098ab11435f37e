"""The table of checks fleetdeck knows, and running them so one broken check stays one finding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck.checks.model import Check, CheckContext, Finding, Status
from fleetdeck.checks.resources.checks import RESOURCE_CHECKS

CHECKS: tuple[Check, ...] = (*RESOURCE_CHECKS,)
CHECK_TIMEOUT = 30.0


def find_check(check_id: str) -> Check | None:
    return next((c for c in CHECKS if c.id == check_id), None)


async def run_checks(
    ctx: CheckContext, checks: Sequence[Check] = CHECKS, timeout: float = CHECK_TIMEOUT
) -> list[Finding]:
    """Run checks; a check that fails or overruns becomes an UNKNOWN finding."""

    async def one(check: Check) -> list[Finding]:
        try:
            async with asyncio.timeout(timeout):
                return await check.run(ctx)
        except TimeoutError:
            reason = f"did not finish within {timeout:g} s"
        except Exception as error:  # a bug in one check must not hide the others
            reason = f"check failed: {type(error).__name__}: {error}"
        return [Finding(check.id, Status.UNKNOWN, ctx.host, reason)]

    # One after the other: today's checks read samples already taken and finish at once,
    # so a task each would cost more than the checks (500 hosts x 6 checks every 2 s).
    # Each still has its own timeout; checks that wait on I/O will want running side by side.
    return [finding for check in checks for finding in await one(check)]
