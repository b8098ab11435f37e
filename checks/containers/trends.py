"""The container checks that need time (runbooks C3, C5): restart loops, memory near the
limit, and memory growing steadily (the leak suspicion).

A restart loop is N restarts within M minutes. The engine counts restarts only in all, so
the count is taken from the link's `ContainerHistory`: restarts its readings saw happen in
the window. The console's containers pane reads every few seconds, so there the window is
covered; a single run (the command line) has no readings from before, so a container that
is restarting now, or has restarted and started again within the window, is read twice
`loop_probe` seconds apart, and the finding says what that showed and over how long: a WARN
("restarting now; 1 restart in 3 s watched"), and CRIT only once N restarts were seen. One
exception: a container created within the window has had every restart the engine counted
in it, so N of those are a loop at once, readings or not.

Memory near the limit is `docker stats`'s figure against the limit. The leak suspicion is the
least-squares slope of anonymous memory over the samples kept since the container last
started, when there are enough of them over a long enough span and a straight line explains
them well (R²): stated in MiB per minute, with the time left to the limit at that slope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetdeck.checks.containers.checks import ENGINE, ContainerCheck, Scan, describe, exit_words
from fleetdeck.checks.containers.fixes import MEMORY_SETTLE, NoFix
from fleetdeck.checks.containers.fixes import restart as restart_fix
from fleetdeck.checks.containers.fixes import stop as stop_fix
from fleetdeck.checks.containers.history import RestartWatch, memory_trend
from fleetdeck.checks.model import Evidence, Finding, Fix, Status
from fleetdeck.hosts.docker.link import Container, ContainerStats, State
from fleetdeck.hosts.units import human_bytes, human_duration

LOOP_ID = "container.restart_loop"
MEMORY_ID = "container.memory"
GROWTH_ID = "container.memory_growth"
LIVE = (State.RUNNING, State.RESTARTING)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def suspects(scan: Scan, found: Sequence[Container]) -> list[Container]:
    """Containers that may be in a restart loop now: restarting, or restarted by the engine
    and started again within the window (and the one a verification asks about)."""
    window = scan.limits.restart_window
    return [
        c
        for c in found
        if c.name == scan.focus
        or c.state is State.RESTARTING
        or (c.restart_count > 0 and c.state is State.RUNNING and (c.uptime() or 0) < window)
    ]


def judge_loop(c: Container, watch: RestartWatch, scan: Scan) -> tuple[Status, str] | None:
    window, most = scan.limits.restart_window, scan.limits.restarts
    if c.state not in LIVE:
        return None  # the engine is not restarting it (any more): the state step says why
    basis = (
        f"seen over {watch.readings} reading(s) in {human_duration(watch.watched)}"
        + ("" if watch.covers(window) else f" of the {_minutes(window)} window")
        + f"; the engine's count since it was created or last started by hand: {watch.count}"
    )
    last = f"last {exit_words(c.exit_code)}"
    age = c.age()
    if age is not None and age <= window and c.restart_count >= max(most, watch.restarts):
        # Created within the window: every restart the engine counted happened in it.
        summary = f"restart loop: {c.restart_count} restarts in {human_duration(age)}"
        said = f"the engine's count since it was created {human_duration(age)} ago"
        return Status.CRIT, f"{summary} ({last}; {said})"
    if watch.restarts >= most:
        summary = f"restart loop: {watch.restarts} restarts in the last {_minutes(window)}"
        return Status.CRIT, f"{summary} ({last}; {basis})"
    if c.state is State.RESTARTING or watch.restarts > 0:
        now = "restarting now" if c.state is State.RESTARTING else "restarted"
        summary = (
            f"{now}: {watch.restarts} restart(s) seen, fewer than the {most} in "
            f"{_minutes(window)} that make a loop so far"
        )
        return Status.WARN, f"{summary} ({last}; {basis})"
    return None


async def _loops(scan: Scan) -> list[Finding]:
    found = await scan.listing()
    watched = suspects(scan, found)
    probe = scan.limits.loop_probe
    latest = list(await asyncio.gather(*(scan.fresh(c) for c in watched)))
    short = [
        i
        for i, c in enumerate(latest)
        if c is not None
        and c.state in LIVE
        and scan.history.watched(c.id) < probe
        and (not scan.focus or c.name == scan.focus)
    ]
    if short and probe > 0:
        await asyncio.sleep(probe)
        again = await asyncio.gather(*(scan.fresh(watched[i]) for i in short))
        for i, c in zip(short, again, strict=True):
            latest[i] = c
    findings: list[Finding] = []
    for listed, c in zip(watched, latest, strict=True):
        focused = listed.name == scan.focus
        if c is None:
            if focused:
                said = "gone: no such container any more (removed)"
                findings.append(Finding(LOOP_ID, Status.UNKNOWN, listed.name, said))
            continue
        watch = scan.history.restarts(c.id, scan.limits.restart_window)
        verdict = judge_loop(c, watch, scan)
        if verdict is None:
            if focused:
                up = c.uptime()
                state = f"up {human_duration(up)}" if up is not None else c.state.value
                said = f"not restarting: {state}; restart count {c.restart_count}"
                findings.append(Finding(LOOP_ID, Status.OK, c.name, said))
            continue
        status, summary = verdict
        fixes: tuple[Fix, ...] = ()
        try:
            timeout = await scan.stop_timeout(c)
            fixes = (stop_fix(c, LOOP_ID, scan.argv(), stop_timeout=timeout),)
        except NoFix as why:
            summary += f"; no fix offered: {why}"
        findings.append(Finding(LOOP_ID, status, c.name, summary, (describe(c),), fixes))
    if scan.focus and not any(f.target == scan.focus for f in findings):
        said = "no container of that name now (removed, or renamed)"
        findings.append(Finding(LOOP_ID, Status.UNKNOWN, scan.focus, said))
    if not findings:
        limits = scan.limits
        said = (
            f"no restart loop ({limits.restarts} restarts in {_minutes(limits.restart_window)}) "
            f"among {len(found)} container(s); {len(watched)} had restarted lately and were "
            "watched"
        )
        findings.append(Finding(LOOP_ID, Status.OK, ENGINE, said))
    return findings


async def _stats(scan: Scan) -> tuple[list[Container], dict[str, ContainerStats]]:
    """The containers asked about, and every running container's stats (kept)."""
    everything = await scan.link.containers()
    stats = await scan.link.stats(everything)
    scan.history.add(everything, stats)
    return [c for c in everything if scan.wanted(c)], stats


async def _restart(scan: Scan, c: Container, check: str, why: str) -> tuple[Fix, ...]:
    try:
        argv = scan.argv()
    except NoFix:
        return ()
    timeout = await scan.stop_timeout(c)
    return (restart_fix(c, check, argv, stop_timeout=timeout, settle=MEMORY_SETTLE, why=why),)


async def _memory(scan: Scan) -> list[Finding]:
    found, stats = await _stats(scan)
    findings: list[Finding] = []
    limited = [(c, s) for c in found if (s := stats.get(c.id)) and s.memory_limit]
    for c, s in limited:
        percent = s.memory_percent or 0.0
        status = scan.limits.memory.grade(percent)
        if status is Status.OK and c.name != scan.focus:
            continue
        summary = (
            f"{percent:.1f}% of its {human_bytes(s.memory_limit or 0)} memory limit in use "
            f"({human_bytes(s.memory_used)})"
        )
        fixes: tuple[Fix, ...] = ()
        if status is not Status.OK:
            summary += "; at the limit the kernel's OOM killer ends a process in it"
            why = "what it holds is freed, and if it leaks it grows back (see the growth step)"
            fixes = await _restart(scan, c, MEMORY_ID, why)
        evidence = Evidence(f"memory of {c.name} ({s.source})", _memory_lines(s))
        findings.append(Finding(MEMORY_ID, status, c.name, summary, (evidence,), fixes))
    if scan.focus and not any(f.target == scan.focus for f in findings):
        said = "not running, or no memory reading (restarting, or removed)"
        findings.append(Finding(MEMORY_ID, Status.UNKNOWN, scan.focus, said))
    if not findings:
        unlimited = sum(1 for c in found if c.id in stats) - len(limited)
        top = max(limited, key=lambda cs: cs[1].memory_percent or 0.0, default=None)
        said = f"{len(limited)} running container(s) with a memory limit, all under "
        said += f"{scan.limits.memory.warn:g}%"
        if top is not None:
            said += f" (the fullest: {top[0].name} at {top[1].memory_percent or 0:.1f}%)"
        said += f"; {unlimited} without a limit" if unlimited else ""
        findings.append(Finding(MEMORY_ID, Status.OK, ENGINE, said))
    return findings


def _memory_lines(s: ContainerStats) -> str:
    limit = human_bytes(s.memory_limit) if s.memory_limit else "none"
    anon = human_bytes(s.memory_anon) if s.memory_anon is not None else "not reported"
    return (
        f"in use {human_bytes(s.memory_used)} (usage less inactive page cache)\n"
        f"usage {human_bytes(s.memory_usage)}; anonymous {anon}; limit {limit}"
    )


async def _growth(scan: Scan) -> list[Finding]:
    found, stats = await _stats(scan)
    limits = scan.limits
    findings: list[Finding] = []
    judged = few = 0
    for c in found:
        if c.id not in stats:
            continue
        points = scan.history.memory(c.id)
        trend = memory_trend(
            [(p.at, p.value) for p in points], limits.leak_samples, limits.leak_span
        )
        focused = c.name == scan.focus
        if trend is None:
            few += 1
            if focused:
                span = points[-1].at - points[0].at if len(points) > 1 else 0.0
                said = (
                    f"not judged yet: {len(points)} sample(s) over {human_duration(span)} since "
                    f"it last started (needs {limits.leak_samples} over "
                    f"{human_duration(limits.leak_span)})"
                )
                findings.append(Finding(GROWTH_ID, Status.OK, c.name, said))
            continue
        judged += 1
        rate = trend.mib_per_minute
        steady = rate >= limits.leak_rate and trend.fit >= limits.leak_fit
        line = (
            f"{rate:+.1f} MiB/min over {human_duration(trend.span)} ({trend.samples} samples, "
            f"R² {trend.fit:.2f})"
        )
        if not steady:
            if focused:
                findings.append(
                    Finding(GROWTH_ID, Status.OK, c.name, f"not growing steadily: {line}")
                )
            continue
        last = points[-1]
        kind = "anonymous memory" if stats[c.id].memory_anon is not None else "memory in use"
        summary = (
            f"leak suspected: {kind} growing steadily, {line}; {human_bytes(last.used)} in use"
        )
        hours = None
        if last.limit:
            hours = max(last.limit - last.used, 0) / trend.rate / 3600
            summary += (
                f", its {human_bytes(last.limit)} limit in about {human_duration(hours * 3600)}"
            )
        else:
            summary += ", and no limit: it can grow into the host's memory"
        status = max(Status.WARN, limits.time_to_limit.grade(hours), key=lambda s: s.rank)
        why = "it buys time: memory starts afresh, and a leak grows back at the same rate"
        fixes = await _restart(scan, c, GROWTH_ID, why)
        evidence = Evidence(
            f"memory samples of {c.name} since it started",
            "\n".join(
                f"{p.at - points[0].at:8.1f} s  {human_bytes(p.value)}  "
                f"(in use {human_bytes(p.used)})"
                for p in points[-20:]
            ),
        )
        findings.append(Finding(GROWTH_ID, status, c.name, summary, (evidence,), fixes))
    if scan.focus and not any(f.target == scan.focus for f in findings):
        said = "not running, or no memory reading (restarting, or removed)"
        findings.append(Finding(GROWTH_ID, Status.UNKNOWN, scan.focus, said))
    if not findings:
        said = (
            f"no steady growth (>= {limits.leak_rate:g} MiB/min, R² >= {limits.leak_fit:g}) "
            f"among {judged} container(s) with enough samples"
        )
        if few:
            said += (
                f"; {few} not judged yet: a trend needs {limits.leak_samples} samples over "
                f"{human_duration(limits.leak_span)} since the container started (the "
                "console's containers pane keeps them; one run of the wizard has one)"
            )
        findings.append(Finding(GROWTH_ID, Status.OK, ENGINE, said))
    return findings


LOOP_CHECK = ContainerCheck(LOOP_ID, "Restart loops", _loops)
MEMORY_CHECK = ContainerCheck(MEMORY_ID, "Memory against the limit", _memory)
GROWTH_CHECK = ContainerCheck(GROWTH_ID, "Memory growing steadily (leak suspicion)", _growth)
