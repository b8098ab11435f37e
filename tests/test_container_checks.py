"""The container checks and their fixes (runbooks C1-C5) against a real Docker engine: each
kind of trouble an operator meets (a failing healthcheck, a service that exited, a restart
loop, a memory limit nearly reached, memory growing steadily) gives its finding, and the
fixes go through the gate as the docker CLI on this machine's shell, pinned on the
container's id and start time: a restart brings an unhealthy container back to health and
is verified, a container removed before the fix runs aborts it. Every container is real,
made from the busybox image by `docker import`; the wizard is narrowed to this test's own
containers (`container` patterns), since other tests may share the engine."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fleetdeck.checks.actions import (
    ActionGate,
    ActionResult,
    ConfirmRequest,
    Decision,
    FixHost,
    Outcome,
)
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import ConfigError, Thresholds, parse_config
from fleetdeck.checks.containers.checks import judge_state
from fleetdeck.checks.containers.config import ContainerThresholds
from fleetdeck.checks.containers.history import ContainerHistory, history_for, memory_trend
from fleetdeck.checks.containers.intent import implied_stop
from fleetdeck.checks.containers.wizard import CONTAINERS_WIZARD
from fleetdeck.checks.model import CheckContext, Finding, Fix, Status
from fleetdeck.checks.wizards import StepState, WizardRun
from fleetdeck.hosts.docker.endpoint import DockerEndpoint
from fleetdeck.hosts.docker.link import (
    Container,
    DockerLink,
    DockerSettings,
    HandStop,
    Health,
    exit_recorded,
    hand_stop_from_events,
    parse_container,
)
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import LocalShell

from dockerd import SOCKET, Dockerd, DockerObjects, docker, memory_limit
from dockerd import docker_objects as docker_objects
from dockerd import dockerd as dockerd
from sshd import NAME_PREFIX

HOST = "here"
T = TypeVar("T")
MINE = f"{NAME_PREFIX}{os.getpid()}-*"
"""This test run's containers: the wizard looks at nothing else on a shared engine."""
# A service whose healthcheck passes while /tmp/ok exists, which its command makes at start;
# it ends at once on SIGTERM, so a restart takes no stop timeout.
UNHEALTHY = ["--health-cmd", "false", "--health-interval", "1s"]
COMPOSE = ["--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service"]
SERVICE = "trap 'exit 0' TERM; touch /tmp/ok; while :; do sleep 0.2; done"
HEALTH = ["--health-cmd", "test -f /tmp/ok", "--health-interval", "1s", "--health-retries", "1"]


async def until(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := await probe():
            return answer
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:g} s")


@pytest.fixture
async def link() -> AsyncIterator[DockerLink]:
    """This machine's engine, as `fleetdeck wizard containers` reaches it."""
    made = DockerLink(HOST, env={})
    yield made
    await made.close()


class Operator:
    """Says yes; keeps what it was shown."""

    def __init__(self) -> None:
        self.shown: list[list[str]] = []

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.shown.append(request.summary_lines())
        return Decision(True, HOST)


def _gate(tmp_path: Path, operator: Operator | None = None) -> ActionGate:
    return ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=operator or Operator())


def _ctx(link: DockerLink | None, limits: ContainerThresholds | None = None) -> CheckContext:
    thresholds = Thresholds(containers=limits or ContainerThresholds())
    params = {"container": MINE}
    return CheckContext(HOST, SampleHistory(size=2), thresholds, None, None, params, docker=link)


async def _wizard(link: DockerLink | None, limits: ContainerThresholds | None = None) -> WizardRun:
    run = WizardRun(CONTAINERS_WIZARD, _ctx(link, limits))
    await run.run()
    return run


def _found(run: WizardRun, check: str, target: str) -> Finding:
    findings = run.results[run.index_of(check)].findings
    for finding in findings:
        if finding.target == target:
            return finding
    raise AssertionError(
        f"no {check} finding on {target}: {[(f.target, f.summary) for f in findings]}"
    )


def _says(finding: Finding, status: Status, pattern: str) -> None:
    """The finding has this status, no fix, and a summary that matches `pattern`."""
    assert finding.status is status and not finding.fixes, finding
    assert re.match(pattern, finding.summary), finding.summary


def _fix(finding: Finding, fix_id: str) -> Fix:
    found = [fix for fix in finding.fixes if fix.id == fix_id]
    assert found, f"no {fix_id} offered on {finding.target}: {[x.id for x in finding.fixes]}"
    return found[0]


async def _apply(
    gate: ActionGate, link: DockerLink, run: WizardRun, finding: Finding, fix_id: str
) -> ActionResult:
    index = run.index_of(finding.check)
    host = FixHost(HOST, LocalShell(HOST), None, docker=link)
    return await gate.apply(host, finding, _fix(finding, fix_id), run.verifier(index, finding))


def _name(cid: str) -> str:
    return docker("inspect", "--format", "{{.Name}}", cid).stdout.strip().lstrip("/")


# -- pure parts --------------------------------------------------------------------------------


def test_the_slope_is_least_squares_in_mib_per_minute_and_steadiness_is_its_fit() -> None:
    mib = 2**20
    steady = [(t * 10.0, 100 * mib + t * 10.0 * 2 * mib / 60) for t in range(31)]  # 2 MiB/min
    trend = memory_trend(steady, min_samples=6, min_span=300)
    assert trend is not None and abs(trend.mib_per_minute - 2.0) < 1e-9 and trend.fit > 0.999
    assert (trend.samples, trend.span) == (31, 300.0)
    # A collector's saw-tooth: up 30 MiB, back down, over and over: no line explains it.
    saw = [(t * 10.0, (100 + (t % 6) * 6) * mib) for t in range(31)]
    jagged = memory_trend(saw, min_samples=6, min_span=300)
    assert jagged is not None and jagged.fit < 0.2
    assert memory_trend(steady[:5], min_samples=6, min_span=10) is None  # too few samples
    assert memory_trend(steady[:10], min_samples=6, min_span=300) is None  # too short a span
    flat = memory_trend([(t, 5.0) for t in range(10)], min_samples=3, min_span=1)
    assert flat is not None and flat.rate == 0 and flat.fit == 0


def _container(count: int, started: str, state: str = "running") -> Container:
    return parse_container(
        {
            "Id": "c" * 64,
            "Name": "/loop",
            "RestartCount": count,
            "State": {"Status": state, "StartedAt": started},
        }
    )


def test_the_history_counts_restarts_it_saw_within_the_window_only() -> None:
    history = ContainerHistory()
    for at, count, started in [(0, 7, "a"), (100, 7, "a"), (200, 8, "b"), (650, 9, "c")]:
        history.add([_container(count, started)], at=at)
    seen = history.restarts("c" * 64, window=600, now=700)
    assert (seen.restarts, seen.count, seen.watched) == (2, 9, 550)  # 7 before it: the base
    assert history.restarts("c" * 64, window=100, now=700).restarts == 1
    history.add([_container(0, "d")], at=705)  # started by hand: the count starts again
    history.add([_container(2, "f")], at=710)
    assert history.restarts("c" * 64, window=600, now=710).restarts == 4
    history.add([], at=720)  # a full listing without it: forgotten
    assert "c" * 64 not in history


def test_a_stale_reading_with_a_lower_count_is_not_taken_for_a_start_by_hand() -> None:
    """The link serves inspects from a cache, so an older reading can come after a newer
    one: its lower count, with an older start, is skipped; a start by hand is newer."""
    history = ContainerHistory()
    readings = [
        (0, 5, "2026-12-07T03:00:05.5Z"),
        (1, 6, "2026-12-07T03:00:06.5Z"),
        (2, 5, "2026-12-07T03:00:05.5Z"),  # the cache's older inspect
        (3, 7, "2026-12-07T03:00:08.5Z"),
    ]
    for at, count, started in readings:
        history.add([_container(count, started)], at=at)
    assert history.restarts("c" * 64, window=600, now=3).restarts == 2  # 5 -> 6 -> 7
    history.add([_container(0, "2026-12-07T03:00:20Z")], at=20)  # docker start by hand
    history.add([_container(1, "2026-12-07T03:00:21Z")], at=21)
    assert history.restarts("c" * 64, window=600, now=21).restarts == 3  # not the hand's


def test_container_thresholds_are_read_from_the_settings_file_with_file_and_line() -> None:
    path = Path("/etc/fleetdeck/config.toml")
    config = parse_config(
        "[thresholds.containers]\nmemory = { warn = 70, crit = 95 }\nrestarts = 5\n"
        "restart_window = 300\nleak_rate = 0.5\ntime_to_limit = { warn = 48, crit = 6 }\n"
        'oneshot = ["backup-*", "migrate"]\n',
        path,
    )
    limits = config.thresholds.containers
    assert (limits.memory.warn, limits.memory.crit, limits.restarts) == (70, 95, 5)
    assert (limits.restart_window, limits.leak_rate, limits.time_to_limit.crit) == (300, 0.5, 6)
    assert limits.leak_samples == ContainerThresholds().leak_samples
    assert limits.oneshot == ("backup-*", "migrate")
    for text, said in [
        ("[thresholds.containers]\nrestarts = 0\n", ":2: thresholds.containers.restarts:"),
        ("[thresholds.containers]\n\nmemory = { warn = 95, crit = 90 }\n", ":3: thresholds."),
        ("[thresholds.containers]\ntime_to_limit = { warn = 2, crit = 6 }\n", "fewer is worse"),
        ("[thresholds.containers]\nleak_fit = 1.5\n", "from 0 to 1"),
        ("[thresholds.containers]\nloop = 3\n", "unknown key (known: memory,"),
        ('[thresholds.containers]\noneshot = "backup"\n', "a list of names or globs"),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, path)
        assert said in str(caught.value), str(caught.value)


def _event(action: str, nanos: int, **attributes: str) -> dict[str, Any]:
    """One container event as GET /events decodes it (Docker 20.10, API 1.41)."""
    actor = {"ID": "c1", "Attributes": {"name": "web", **attributes}}
    return {"Type": "container", "Action": action, "Actor": actor, "timeNano": nanos}


def test_a_stop_by_hand_is_read_from_the_engines_kill_and_stop_events() -> None:
    second = 1_000_000_000
    stopped = [  # `docker stop -t 1`, as recorded on a real engine
        _event("start", 10 * second),
        _event("kill", 20 * second, signal="15"),
        _event("kill", 21 * second, signal="9"),
        _event("die", 21 * second + 5, exitCode="137"),
        _event("stop", 21 * second + 9),
    ]
    found = hand_stop_from_events(list(reversed(stopped)))  # the order given does not count
    assert found is not None and found.how == "docker stop" and found.signals == ("15", "9")
    assert found.words() == "docker stop at 1970-01-01 00:00:20 UTC (SIGTERM, then SIGKILL)"
    killed = [_event("kill", 5 * second, signal="9"), _event("die", 6 * second, exitCode="137")]
    assert hand_stop_from_events(killed) == HandStop(
        "docker kill", datetime.fromtimestamp(5, UTC), ("9",)
    )
    # Ended on its own: a die alone; a kill before an earlier run's die is that run's.
    assert hand_stop_from_events([_event("die", second, exitCode="3")]) is None
    earlier = [_event("kill", 1, signal="9"), _event("die", 2), _event("die", 3 * second)]
    assert hand_stop_from_events(earlier) is None
    assert hand_stop_from_events([]) is None
    # A signal sent to reload (SIGHUP) long before an exit of its own did not end the run;
    # one the process ended of (exit 128 + 1), or that an exit followed promptly, did.
    reload = _event("kill", 5 * second, signal="1")
    assert hand_stop_from_events([reload, _event("die", 500 * second, exitCode="3")]) is None
    hup = hand_stop_from_events([reload, _event("die", 600 * second, exitCode="129")])
    assert hup is not None and hup.words().endswith("(SIGHUP)")
    assert hand_stop_from_events([reload, _event("die", 7 * second, exitCode="0")]) is not None
    # `docker stop` while it waited to be restarted: no kill, a stop seconds after the die.
    waiting = [_event("die", second, exitCode="1"), _event("stop", 9 * second)]
    assert hand_stop_from_events(waiting) == HandStop("docker stop", datetime.fromtimestamp(9, UTC))
    # Whether the record reaches back to the exit: only then does "no stop" mean a crash.
    assert exit_recorded([_event("die", second, exitCode="3")]) and exit_recorded(stopped)
    assert not exit_recorded([]) and not exit_recorded([_event("kill", 1, signal="1")])


def test_an_exited_unless_stopped_container_without_events_was_stopped_through_docker() -> None:
    """The engine restarts an always or unless-stopped container unless it was stopped
    through Docker: exited, with no start error, it was, even when the engine's events no
    longer go back that far. An exit they do show, with no kill or stop, ended under
    another policy (`docker update` since); a failed restart (State.Error) or another
    policy says nothing."""
    state = {"Status": "exited", "ExitCode": 137, "FinishedAt": "2026-12-07T18:41:34.5Z"}

    def inspect(policy: str, error: str = "", restarts: int = 0) -> Container:
        return parse_container(
            {"Id": "c1", "Name": "/web", "RestartCount": restarts,
             "State": {**state, "Error": error},
             "HostConfig": {"RestartPolicy": {"Name": policy}}}
        )  # fmt: skip

    for policy in ("always", "unless-stopped"):
        implied = implied_stop(inspect(policy), recorded=False)
        assert implied is not None and implied.at is None
        assert implied.words().startswith("through Docker: the engine would have started it")
        assert implied_stop(inspect(policy), recorded=True) is None  # crashed, updated since
    failed = inspect("unless-stopped", error="OCI runtime create failed")
    assert implied_stop(failed, recorded=False) is None
    for policy in ("on-failure", "no"):
        assert implied_stop(inspect(policy, restarts=2), recorded=False) is None
    said = judge_state(inspect("always"), False, implied_stop(inspect("always"), recorded=False))
    assert said is not None and said[0] is Status.OK and said[2] == ""


# -- no engine -----------------------------------------------------------------------------------


async def test_no_docker_is_ok_a_dead_hung_or_named_missing_engine_is_crit_and_it_stops(
    tmp_path: Path,
) -> None:
    """No Docker at all is a plain OK (a host without it stays healthy); an engine the
    inventory names that is missing, stopped (a socket nobody listens on) or hung (one that
    takes connections and never answers) is CRIT; either way the later steps are skipped."""
    absent = DockerLink(HOST, env={"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"})
    none = DockerLink(HOST, DockerEndpoint.parse("none"))
    named = DockerLink(HOST, DockerEndpoint.parse(f"unix://{tmp_path}/docker.sock"))
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(dead))
    stopped = DockerLink(HOST, DockerEndpoint.parse(f"unix://{dead}"))
    mute = socket.socket(socket.AF_UNIX)
    mute.bind(str(tmp_path / "hung.sock"))
    mute.listen(64)  # connections queue up in the kernel; nothing ever reads them
    hung = DockerLink(
        HOST,
        DockerEndpoint.parse(f"unix://{tmp_path}/hung.sock"),
        settings=DockerSettings(timeout=1.0),
    )
    try:
        for made, status, said in [
            (absent, Status.OK, "no Docker on this host: no Docker socket: no socket at"),
            (none, Status.OK, "no Docker on this host: no Docker endpoint: the inventory says"),
            (named, Status.CRIT, "no Docker socket: no socket at"),
            (stopped, Status.CRIT, "not running: "),
            (hung, Status.CRIT, "no answer: the engine took the connection but sent nothing"),
        ]:
            started = time.monotonic()
            run = await _wizard(made)
            assert time.monotonic() - started < 10
            (engine,) = run.results[0].findings
            assert (engine.status, engine.target) == (status, "docker"), engine
            assert engine.summary.startswith(said), engine.summary
            assert engine.evidence[0].output.startswith(f"{HOST}: Docker")
            later = run.results[1:]
            assert all(r.state is StepState.SKIPPED for r in later)
            assert run.exit_code == status.exit_code  # no Docker: the host stays OK
    finally:
        await asyncio.gather(*(m.close() for m in (absent, none, named, stopped, hung)))
        mute.close()


# -- a real engine -------------------------------------------------------------------------------


async def test_unhealthy_exited_looping_oom_and_nearly_full_containers_each_have_a_finding(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink
) -> None:
    probe = "echo \"db down\"; printf '\\033[2J'; exit 1"
    sick = docker_objects.start(
        "sleep", "3600", flags=["--health-cmd", probe, "--health-interval", "1s"], what="sick"
    )
    gave_up = docker_objects.start("sh", "-c", "exit 3", flags=["--restart", "on-failure:1"])
    job = docker_objects.start(
        "sh", "-c", "exit 2", flags=[*COMPOSE[:-1], f"{COMPOSE[-1]}=migrate"]
    )
    done = docker_objects.start("true")  # exit 0, no restart policy: as it should be
    loops = docker_objects.start("sh", "-c", "exit 1", flags=["--restart", "always"])
    oom = docker_objects.start(
        "sh", "-c", "head -c 24m /dev/zero > /dev/shm/fill", flags=memory_limit("16m")
    )
    full = docker_objects.start(
        "sh", "-c", "head -c 14m /dev/zero > /dev/shm/fill; sleep 3600", flags=memory_limit("16m")
    )
    fine = docker_objects.start("sleep", "3600", flags=["--memory", "64m"])

    unmet: list[str] = []

    async def settled() -> bool:
        found = {c.id: c for c in await link.containers()}
        wanted = {
            "sick unhealthy": found[sick].health is Health.UNHEALTHY,
            "gave_up exited": found[gave_up].state.value == "exited",
            "gave_up restarted once": found[gave_up].restart_count == 1,
            "oom exited": found[oom].state.value == "exited",
            # The engine records the OOM kill apart from the exit, a moment later on a busy
            # host (see DockerSettings.oom_settle): wait for its final word.
            "oom marked OOM-killed": found[oom].oom_killed,
            "loops restarted 3 times": found[loops].restart_count >= 3,
        }
        unmet[:] = [what for what, met in wanted.items() if not met]
        return not unmet

    try:
        await until(settled, "the containers reached their states", timeout=60)
    except pytest.fail.Exception:
        engine = docker("inspect", "--format", "{{.Name}} {{.State.Status}} "
                        "{{.RestartCount}} {{json .State.Health}}", sick, gave_up, oom, loops,
                        check=False).stdout  # fmt: skip
        pytest.fail(f"not reached: {unmet}; the engine says:\n{engine}")
    await asyncio.sleep(1.5)  # the memory container has filled its /dev/shm by now
    run = await _wizard(link)
    names = {cid: _name(cid) for cid in (sick, gave_up, job, done, loops, oom, full, fine)}

    engine = run.results[0].findings[0]
    assert engine.status is Status.OK and f"Docker {dockerd.version}" in engine.summary
    assert f"8 container(s) matching {MINE}" in engine.summary

    unhealthy = _found(run, "container.state", names[sick])
    assert unhealthy.status is Status.CRIT
    assert unhealthy.summary.startswith("unhealthy: ") and "failed probe(s) in a row" in (
        unhealthy.summary
    )
    assert "last: db down \\x1b[2J" in unhealthy.summary  # printable: no escape reaches a screen
    restart = _fix(unhealthy, "container.restart")
    assert restart.commands == (("docker", "-H", f"unix://{SOCKET}", "restart", "-t", "10", sick),)
    pinned = ("--type", "container", "--format", "{{.Id}} {{.State.StartedAt}}", sick)
    assert restart.pin.argv[-5:] == pinned
    assert restart.risk.value == "disruptive" and "restart count" not in restart.impact

    stopped = _found(run, "container.state", names[gave_up])
    assert stopped.status is Status.CRIT
    assert stopped.summary.startswith("exited (exit code 3, ")
    assert stopped.summary.endswith(
        "its restart policy (on-failure:1) says it should run after a failure; "
        "the engine gave up after 1 restart(s)"
    )
    assert _fix(stopped, "container.start").risk.value == "safe"
    failed_job = _found(run, "container.state", names[job])
    assert failed_job.status is Status.CRIT
    assert failed_job.summary.endswith(": compose service shop/migrate failed")
    killed = _found(run, "container.state", names[oom])
    assert killed.status is Status.WARN  # a job nothing restarts: worth knowing, not an outage
    assert killed.summary.startswith("OOM-killed (exit code 137 (SIGKILL), ")
    assert "memory limit 16.0 MiB; nothing restarts it" in killed.summary and not killed.fixes
    state_targets = {f.target for f in run.results[run.index_of("container.state")].findings}
    assert names[done] not in state_targets and names[fine] not in state_targets

    # Created seconds ago: each restart the engine counted is inside the 10-minute window,
    # so a single run (no readings from before) already knows it is a loop.
    loop = _found(run, "container.restart_loop", names[loops])
    assert loop.status is Status.CRIT, loop.summary
    assert re.match(r"restart loop: \d+ restarts in \d+s \(last exit code 1; ", loop.summary)
    assert "the engine's count since it was created " in loop.summary
    stop = _fix(loop, "container.stop")
    assert stop.pin.value == loops  # a loop's start time changes with every attempt
    assert "leaves it stopped" in stop.impact

    near = _found(run, "container.memory", names[full])
    assert near.status in (Status.WARN, Status.CRIT), near.summary
    said = r"(8\d|9\d)\.\d% of its 16\.0 MiB memory limit in use \(1\d\.\d MiB\); at the"
    assert re.match(said, near.summary), near.summary
    assert _fix(near, "container.restart").settle == 15.0
    memory_targets = {f.target for f in run.results[run.index_of("container.memory")].findings}
    assert names[fine] not in memory_targets

    growth = run.results[run.index_of("container.memory_growth")].findings
    assert [f.status for f in growth] == [Status.OK]  # one reading: nothing to judge
    assert "not judged yet: a trend needs 6 samples" in growth[0].summary
    assert run.exit_code == 2


async def test_a_container_stopped_by_hand_is_ok_and_one_that_crashed_shows_its_log(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink
) -> None:
    """`docker stop` on an unless-stopped service and `docker kill` on a plain one are the
    operator's intent: OK, no start offered. A `docker run -d` that exited 3 is a WARN with
    its status, when it ended and its last log lines; exit 0 is a job that ended well; a
    label or a `oneshot` setting silences a job's failure."""
    service = docker_objects.start("sleep", "3600", flags=["--restart", "unless-stopped"])
    plain = docker_objects.start("sleep", "3600")
    crash = "exec 2>&1; echo starting; echo 'config: no such file' >&2; printf 'bad \\033[2J\\n'"
    crash += "; exit 3"
    crashed = docker_objects.start("sh", "-c", crash)
    done = docker_objects.start("true")
    labelled = docker_objects.start(
        "sh", "-c", "exit 4", flags=["--label", "fleetdeck.oneshot=true"]
    )
    nightly = docker_objects.start("sh", "-c", "exit 5", what="nightly")
    updated = docker_objects.start("sh", "-c", "exit 6", what="updated")
    docker("stop", "-t", "1", service)
    docker("kill", plain)
    for cid in (crashed, done, labelled, nightly, updated):
        await until(lambda cid=cid: _state(link, cid, "exited"), "the jobs ended")
    # A policy set after the crash: the engine does not start it, and its events show the
    # exit with no stop before it: it crashed, and is not taken for stopped by hand.
    docker("update", "--restart", "always", updated)
    every = (service, plain, crashed, done, labelled, nightly, updated)
    names = {cid: _name(cid) for cid in every}

    limits = ContainerThresholds(oneshot=(f"{NAME_PREFIX}{os.getpid()}-nightly-*",))
    run = await _wizard(link, limits)
    _says(
        _found(run, "container.state", names[service]),
        Status.OK,
        r"stopped by hand \(docker stop at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
        r"\(SIGTERM, then SIGKILL\); exit code 137 \(SIGKILL\), \d+s ago\): its restart "
        r"policy \(unless-stopped\) leaves it stopped; docker start ",
    )
    killed = _found(run, "container.state", names[plain])
    assert killed.status is Status.OK and killed.summary.startswith("stopped by hand (docker kill")

    failed = _found(run, "container.state", names[crashed])
    _says(
        failed,
        Status.WARN,
        r"exited with exit code 3 at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+s ago, and "
        r"nothing restarts it \(restart policy no\); a job\? label it fleetdeck.oneshot=true; "
        r"last log line: bad \\x1b\[2J$",
    )
    crashed_always = _found(run, "container.state", names[updated])
    assert crashed_always.status is Status.CRIT, crashed_always
    assert crashed_always.summary.startswith("exited (exit code 6"), crashed_always.summary
    assert "its restart policy (always) says it should run" in crashed_always.summary
    assert [fix.id for fix in crashed_always.fixes] == ["container.start"]
    tail = failed.evidence[-1]
    assert tail.source == f"docker logs --tail 10 {names[crashed]}"
    assert tail.output == "starting\nconfig: no such file\nbad \\x1b[2J"  # one pipe: in order
    targets = {f.target for f in run.results[run.index_of("container.state")].findings}
    assert not targets & {names[done], names[labelled], names[nightly]}

    calm = await _wizard(link, ContainerThresholds(oneshot=("*",)))  # the crash silenced too
    kept = calm.results[calm.index_of("container.state")].findings
    assert {f.target for f in kept} == {names[service], names[plain], names[updated]}
    statuses = {f.target: f.status for f in kept}  # a policy that says run is no job
    assert statuses == {names[service]: Status.OK, names[plain]: Status.OK,
                        names[updated]: Status.CRIT}  # fmt: skip


async def test_a_crash_long_after_a_reload_signal_is_a_crash_not_a_stop_by_hand(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink
) -> None:
    """`docker kill -s HUP` asks a service to reload; it goes on, and exits 3 on its own
    11 s later: that exit is a crash (WARN with its status and log), not "stopped by hand"."""
    script = "trap 'echo reloaded' HUP; i=0; while [ $i -lt 11 ]; do sleep 1; i=$((i+1)); done"
    service = docker_objects.start("sh", "-c", f"{script}; echo 'lost the config' >&2; exit 3")
    await until(lambda: _state(link, service, "running"), "it runs")
    docker("kill", "-s", "HUP", service)
    await until(lambda: _state(link, service, "exited"), "it ended", timeout=60)

    run = await _wizard(link)
    crashed = _found(run, "container.state", _name(service))
    assert crashed.status is Status.WARN, crashed
    assert crashed.summary.startswith("exited with exit code 3 at "), crashed.summary
    assert crashed.summary.endswith("last log line: lost the config"), crashed.summary


async def test_a_crash_loop_stopped_while_it_waits_to_restart_is_stopped_by_hand(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink
) -> None:
    """`docker stop` on a crash loop between two attempts: the engine records its `stop`
    after the last crash's `die` (no kill: there is no process), and the check reads it as
    a stop by hand, no start offered (which would start the loop again), not the crash."""
    loop = docker_objects.start("sh", "-c", "exit 1", flags=["--restart", "always"])

    async def waiting_long() -> bool:
        """Over 2 s into a wait of 3.2 s or more (the 6th: 0.1 s, doubled each time): the
        stop comes later than the engine's `stop` event follows a `die` of its own."""
        found = await link.inspect(loop)
        waited = datetime.now(UTC) - (found.finished_at if found else None or datetime.now(UTC))
        return (
            found is not None
            and found.state.value == "restarting"
            and found.restart_count >= 6
            and timedelta(seconds=2.2) < waited < timedelta(seconds=2.9)
        )

    await until(waiting_long, "it waits to restart", timeout=60)
    docker("stop", "-t", "1", loop)
    await until(lambda: _state(link, loop, "exited"), "it stopped")

    run = await _wizard(link)
    stopped = _found(run, "container.state", _name(loop))
    assert stopped.status is Status.OK and not stopped.fixes, stopped
    assert stopped.summary.startswith("stopped by hand (docker stop at "), stopped.summary


async def test_restart_brings_an_unhealthy_container_back_to_health_and_is_verified(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink, tmp_path: Path
) -> None:
    cid = docker_objects.start(
        "sh", "-c", SERVICE, flags=[*HEALTH, "--stop-timeout", "3"], what="web"
    )
    name = _name(cid)
    await until(lambda: _health(link, cid, Health.HEALTHY), "the service became healthy")
    docker("exec", cid, "rm", "/tmp/ok")
    await until(lambda: _health(link, cid, Health.UNHEALTHY), "the service became unhealthy")
    before = docker("inspect", "--format", "{{.State.StartedAt}}", cid).stdout.strip()

    run = await _wizard(link)
    finding = _found(run, "container.state", name)
    assert finding.status is Status.CRIT and "unhealthy" in finding.summary
    operator = Operator()
    started = time.monotonic()
    result = await _apply(_gate(tmp_path, operator), link, run, finding, "container.restart")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert time.monotonic() - started < 30
    assert result.after is not None and result.after.summary.startswith("running, healthy, up ")
    after = docker("inspect", "--format", "{{.State.StartedAt}} {{.State.Health.Status}}", cid)
    assert after.stdout.split()[1] == "healthy" and after.stdout.split()[0] != before

    shown = "\n".join(operator.shown[0])
    assert f"  $ docker -H unix://{SOCKET} restart -t 3 {cid}" in shown
    assert f"pinned: container {name}'s id and start time = {cid} {before}" in shown
    assert "risk:    disruptive" in shown and "verified once its healthcheck passes" in shown
    (finished,) = [r for r in _records(tmp_path) if r.get("event") == "finished"]
    assert finished["outcome"] == "verified" and finished["commands"] == [
        f"docker -H unix://{SOCKET} restart -t 3 {cid}"
    ]
    assert finished["verification"]["before"]["status"] == "CRIT"


async def test_a_container_removed_between_the_listing_and_the_fix_aborts_it(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink, tmp_path: Path
) -> None:
    cid = docker_objects.start("sleep", "3600", flags=UNHEALTHY)
    await until(lambda: _health(link, cid, Health.UNHEALTHY), "the container became unhealthy")
    run = await _wizard(link)
    finding = _found(run, "container.state", _name(cid))
    docker("rm", "-f", cid)  # someone else's cleanup, between the wizard and the yes

    result = await _apply(_gate(tmp_path), link, run, finding, "container.restart")
    assert result.outcome is Outcome.ABORTED, result.message
    assert "changed since the fix was offered" in result.message
    assert "gone (" in result.message and "No such container" in result.message
    assert not result.runs
    (record,) = _records(tmp_path)
    assert record["outcome"] == "aborted"


async def test_a_stopped_service_is_started_and_verified_once_it_stays_up(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink, tmp_path: Path
) -> None:
    """A compose service that failed once (its first run exits 3, later runs keep going):
    the start fix is verified only after it has stayed up a few seconds."""
    once = "test -f /tmp/ran && exec sleep 3600; touch /tmp/ran; exit 3"
    cid = docker_objects.start("sh", "-c", once, flags=[*COMPOSE[:-1], f"{COMPOSE[-1]}=api"])
    await until(lambda: _state(link, cid, "exited"), "the service exited")
    run = await _wizard(link)
    finding = _found(run, "container.state", _name(cid))
    assert finding.status is Status.CRIT
    started = time.monotonic()
    result = await _apply(_gate(tmp_path), link, run, finding, "container.start")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert time.monotonic() - started >= 5.0  # STABLE: up five seconds, not one
    assert result.after is not None and result.after.summary.startswith("running, up ")


async def test_stopping_a_restart_loop_is_verified_when_it_no_longer_restarts(
    dockerd: Dockerd, docker_objects: DockerObjects, link: DockerLink, tmp_path: Path
) -> None:
    cid = docker_objects.start("sh", "-c", "exit 1", flags=["--restart", "always"])
    await until(lambda: _restarted(link, cid, 2), "the container restarted twice")
    run = await _wizard(link)
    finding = _found(run, "container.restart_loop", _name(cid))
    result = await _apply(_gate(tmp_path), link, run, finding, "container.stop")
    assert result.outcome is Outcome.VERIFIED, result.message
    assert result.after is not None and result.after.summary.startswith("not restarting: exited")
    assert docker("inspect", "--format", "{{.State.Status}}", cid).stdout.strip() == "exited"


async def test_memory_growing_in_steps_is_a_leak_suspicion_stated_with_its_slope(
    dockerd: Dockerd, docker_objects: DockerObjects
) -> None:
    """A process that allocates 1 MiB more every 0.3 s, read the way the containers pane
    reads (every 0.5 s) into the link's history; the thresholds ask for a short trend."""
    grow = (
        'awk \'BEGIN { for (i = 0; i < 40; i++) { a[i] = sprintf("%1048576s", i); '
        'system("sleep 0.3") } system("sleep 3600") }\''
    )
    cid = docker_objects.start("sh", "-c", grow, flags=["--memory", "256m"])
    steady = docker_objects.start("sleep", "3600")
    link = DockerLink(HOST, env={}, settings=DockerSettings(stats_from="cgroup"))
    history = history_for(link)  # the one the check reads, keeping every sample
    history.gap = 0.0
    limits = ContainerThresholds(leak_samples=8, leak_span=4.0, leak_rate=5.0)
    try:
        for _ in range(12):
            found = await link.containers()
            history.add(found, await link.stats(found))
            await asyncio.sleep(0.5)
        run = WizardRun(CONTAINERS_WIZARD, _ctx(link, limits))
        await run.run()
        leak = _found(run, "container.memory_growth", _name(cid))
        assert leak.status is Status.CRIT, leak.summary  # its limit within the hour at that
        assert leak.summary.startswith("leak suspected: anonymous memory growing steadily, +")
        rate = float(leak.summary.split(", +")[1].split(" MiB/min")[0])
        assert 100 < rate < 300, leak.summary  # 1 MiB per 0.3 s is 200 MiB/min
        assert "R² 0.9" in leak.summary or "R² 1.00" in leak.summary
        # (256 - 24) MiB at 200 MiB/min: a minute or so
        assert re.search(r"its 256\.0 MiB limit in about (1m \d+s|[45]\ds)$", leak.summary)
        assert _fix(leak, "container.restart").id == "container.restart"
        growth = {f.target for f in run.results[run.index_of("container.memory_growth")].findings}
        assert _name(steady) not in growth
    finally:
        await link.close()


async def _health(link: DockerLink, cid: str, health: Health) -> bool:
    found = await link.inspect(cid)
    return found is not None and found.health is health


async def _state(link: DockerLink, cid: str, state: str) -> bool:
    found = await link.inspect(cid)
    return found is not None and found.state.value == state


async def _restarted(link: DockerLink, cid: str, times: int) -> bool:
    found = await link.inspect(cid)
    return found is not None and found.restart_count >= times


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
