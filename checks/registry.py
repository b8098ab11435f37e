"""The table of checks fleetdeck knows, and running them so one broken check stays one finding."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from checks.model import Check, CheckContext, Finding, Status
from checks.resources import RESOURCE_CHECKS

CHECKS: tuple[Check, ...] = (*RESOURCE_CHECKS,)
CHECK_TIMEOUT = 30.0


def find_check(check_id: str) -> Check | None:
    return next((c for c in CHECKS if c.id == check_id), None)


async def run_checks(
    ctx: CheckContext, checks: Sequence[Check] = CHECKS, timeout: float = CHECK_TIMEOUT
) -> list[Finding]:
    """Run checks concurrently; a check that fails or overruns becomes an UNKNOWN finding."""

    async def one(check: Check) -> list[Finding]:
        try:
            async with asyncio.timeout(timeout):
                return await check.run(ctx)
        except TimeoutError:
            reason = f"did not finish within {timeout:g} s"
        except Exception as error:  # a bug in one check must not hide the others
            reason = f"check failed: {type(error).__name__}: {error}"
        return [Finding(check.id, Status.UNKNOWN, ctx.host, reason)]

    results = await asyncio.gather(*(one(c) for c in checks))
    return [finding for found in results for finding in found]
