"""Prometheus and Alertmanager as sources, against the real services of tests/prom.py: their
alerts and targets read back, silences made and expired through the gate (seen by amtool),
a fleet sampled through PromQL agreeing with node_exporter's own /metrics, and every failure
(bad auth, nothing listening, an answer that is not the API's) an error naming the URL."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prom import USER, PromStack
from prom import prom_stack as prom_stack

from fleetdeck.checks.actions import ActionGate, ConfirmRequest, Decision, Outcome
from fleetdeck.checks.audit import AuditLog
from fleetdeck.checks.config import Config
from fleetdeck.checks.model import Fix, Status
from fleetdeck.checks.sources.alerts import (
    ALERT_CHECK,
    SOURCE_CHECK,
    TARGET_CHECK,
    SourceAlert,
    counts,
    read_alertmanager,
    read_prometheus,
)
from fleetdeck.checks.sources.config import PromSource
from fleetdeck.checks.sources.silence import (
    CreateSilence,
    alert_finding,
    expire_fix,
    silence_host,
    silence_verifier,
)
from fleetdeck.hosts.inventory.records import HostSpec, Inventory
from fleetdeck.hosts.prometheus import Alertmanager, Auth, HttpSource, Prometheus, SourceError
from fleetdeck.hosts.prometheus.api import parse_vector
from fleetdeck.hosts.prometheus.http import SourceGarbage
from fleetdeck.hosts.prometheus.sampler import PromFleet, PromSampler
from fleetdeck.hosts.samplers import SampleError
from fleetdeck.hosts.ssh import SSHOptions
from fleetdeck.tui.app import Settings
from fleetdeck.tui.cli import main
from fleetdeck.tui.host_screen import HostScreen
from fleetdeck.tui.prom_fleet import discover, make_prom_fleet_app
from fleetdeck.widgets import HostHeader

T = TypeVar("T")
DEADLINE = 60.0


async def eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool], what: str) -> T:
    """Read until `ok` holds (Prometheus evaluates and sends every second); fail naming what
    was waited for and the last reading."""
    end = time.monotonic() + DEADLINE
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still {value!r} after {DEADLINE:g} s")
        await asyncio.sleep(0.5)


def prometheus(stack: PromStack, **auth: object) -> Prometheus:
    given = auth or {"username": USER, "password_file": stack.password_file}
    return Prometheus(HttpSource(stack.prometheus, Auth(**given)))  # type: ignore[arg-type]


def alertmanager(stack: PromStack) -> Alertmanager:
    return Alertmanager(HttpSource(stack.alertmanager))


async def firing(stack: PromStack) -> SourceAlert:
    am = alertmanager(stack)

    async def read() -> list[SourceAlert]:
        alerts, problems = await read_alertmanager(am)
        assert not problems, problems
        return alerts

    alerts = await eventually(
        read, lambda a: any(x.name == "FleetdeckAlwaysFiring" for x in a), "the rule's alert"
    )
    return next(a for a in alerts if a.name == "FleetdeckAlwaysFiring")


def _comment(fix: Fix) -> str:
    """The comment a silence fix writes (with its own token): how its silence is found."""
    step = fix.statements[0].query
    assert isinstance(step, CreateSilence)
    return step.comment


class Yes:
    def __init__(self) -> None:
        self.shown: list[list[str]] = []

    async def __call__(self, request: ConfirmRequest) -> Decision:
        self.shown.append(request.summary_lines())
        return Decision(True)


def node_metrics(stack: PromStack) -> dict[str, list[tuple[dict[str, str], float]]]:
    """node_exporter's own /metrics, read directly: name -> [(labels, value)]."""
    text = urllib.request.urlopen(stack.node_exporter + "/metrics", timeout=10).read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or line.startswith("#"):
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        found.setdefault(match[1], []).append((labels, float(match[3])))
    return found


async def test_alertmanager_alerts_read_back_with_labels_state_and_source(
    prom_stack: PromStack,
) -> None:
    alert = await firing(prom_stack)
    assert alert.source == prom_stack.alertmanager
    assert alert.labels["severity"] == "warning" and alert.severity is Status.WARN
    assert alert.instance == "testhost"
    assert alert.summary == "a rule that always fires"
    assert alert.state == "active" and not alert.silenced
    assert alert.generator_url.startswith("http") and "graph" in alert.generator_url
    assert alert.starts_at and alert.fingerprint


async def test_prometheus_firing_alerts_and_targets_health_are_findings(
    prom_stack: PromStack,
) -> None:
    prom = prometheus(prom_stack)

    def settled(findings: list) -> bool:  # type: ignore[type-arg]
        targets = {f.target: f.status for f in findings if f.check == TARGET_CHECK}
        alerts = {f.target for f in findings if f.check == ALERT_CHECK}
        return (
            Status.UNKNOWN not in targets.values()
            and len(targets) == 2
            and "FleetdeckAlwaysFiring testhost" in alerts
        )

    findings = await eventually(lambda: read_prometheus(prom), settled, "targets scraped")
    by_target = {f.target: f for f in findings}
    node = next(f for f in findings if f.check == TARGET_CHECK and f.target.startswith("node "))
    assert node.status is Status.OK, node  # the healthy case is quiet
    dead = by_target[f"dead {prom_stack.dead_target}"]
    assert dead.status is Status.CRIT and "connection refused" in dead.summary, dead
    rule = by_target["FleetdeckAlwaysFiring testhost"]
    assert rule.status is Status.WARN and rule.summary == "a rule that always fires"
    up = next(f for f in findings if f.check == ALERT_CHECK and f.target.startswith("NodeExp"))
    assert up.status is Status.CRIT


async def test_a_silence_made_through_the_gate_is_in_alertmanager_and_expires_through_it(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    am = alertmanager(prom_stack)
    alert = await firing(prom_stack)
    finding = alert_finding(alert, 600, "tester", "known noise")
    fix = finding.fixes[0]
    confirm = Yes()
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=confirm)
    result = await gate.apply(silence_host(am), finding, fix, silence_verifier(am, fix))
    assert result.outcome is Outcome.VERIFIED, result.message
    assert any('alertname="FleetdeckAlwaysFiring"' in line for line in confirm.shown[0])
    # The operator reads an API call on the Alertmanager, not a psql statement.
    steps = [line for line in confirm.shown[0] if line.startswith("  ") and "silence" in line]
    assert steps and all(line.startswith("  api> ") for line in steps), confirm.shown[0]
    silence_id = result.after.summary.split()[1] if result.after else ""

    listed = prom_stack.amtool("silence", "query", "-o", "json")
    ours = [s for s in json.loads(listed) if s["id"] == silence_id]
    assert ours and ours[0]["createdBy"] == "tester", listed
    assert ours[0]["comment"].endswith("known noise")
    silenced = await eventually(
        lambda: read_alertmanager(am),
        lambda r: any(silence_id in a.silenced_by for a in r[0]),
        "the alert muted by the new silence",
    )
    assert counts(silenced[0]).endswith("1 silenced"), counts(silenced[0])

    silence = await am.silence(silence_id)
    assert silence.state == "active"
    end = expire_fix(silence, am.url)
    done = await gate.apply(silence_host(am), finding, end, silence_verifier(am, end))
    assert done.outcome is Outcome.VERIFIED, done.message
    assert (await am.silence(silence_id)).state == "expired"
    assert silence_id not in prom_stack.amtool("silence", "query", "-q")
    assert silence_id in prom_stack.amtool("silence", "query", "--expired", "-q")

    records = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    events = [(r["fix"], r["event"], r.get("outcome")) for r in records]
    assert events == [
        ("am.silence.create", "started", None),
        ("am.silence.create", "finished", "verified"),
        ("am.silence.expire", "started", None),
        ("am.silence.expire", "finished", "verified"),
    ]


async def test_read_only_refuses_a_silence_and_alertmanager_gets_none(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    am = alertmanager(prom_stack)
    alert = await firing(prom_stack)
    finding = alert_finding(alert, 600, "tester")
    fix = finding.fixes[0]
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=Yes(), read_only=True)
    result = await gate.apply(silence_host(am), finding, fix, silence_verifier(am, fix))
    assert result.outcome is Outcome.REFUSED
    assert not [s for s in await am.silences() if s.comment == _comment(fix)]


async def test_a_silence_for_an_alert_that_is_gone_is_aborted_by_its_pin(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    am = alertmanager(prom_stack)
    alert = await firing(prom_stack)
    from dataclasses import replace

    gone = replace(alert, fingerprint="0000000000000000")
    finding = alert_finding(gone, 600, "tester")
    fix = finding.fixes[0]
    gate = ActionGate(audit=AuditLog(tmp_path / "audit.jsonl"), confirm=Yes())
    result = await gate.apply(silence_host(am), finding, fix, silence_verifier(am, fix))
    assert result.outcome is Outcome.ABORTED, result.message
    assert not [s for s in await am.silences() if s.comment == _comment(fix)]


async def test_a_wrong_password_is_an_error_naming_the_url_and_unknown(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    prom = prometheus(prom_stack, username=USER, password_file=wrong)
    with pytest.raises(SourceError) as caught:
        await prom.query("up")
    assert prom_stack.prometheus in str(caught.value) and "HTTP 401" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    [finding] = await read_prometheus(prom)
    assert finding.check == SOURCE_CHECK and finding.status is Status.UNKNOWN
    assert prom_stack.prometheus in finding.summary


async def test_credentials_missing_from_env_or_file_are_named(
    prom_stack: PromStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FD_TEST_TOKEN", raising=False)
    with pytest.raises(SourceError, match="variable FD_TEST_TOKEN is not set"):
        await prometheus(prom_stack, token_env="FD_TEST_TOKEN").query("up")
    with pytest.raises(SourceError, match=r"cannot read the password file .*nothing-here"):
        await prometheus(prom_stack, username=USER, password_file=tmp_path / "nothing-here").query(
            "up"
        )
    monkeypatch.setenv("FD_TEST_PASSWORD", prom_stack.password)
    items = await prometheus(prom_stack, username=USER, password_env="FD_TEST_PASSWORD").query(
        "vector(7)"
    )
    assert [i.value for i in items] == [7.0]


async def test_nothing_listening_is_unreachable_naming_the_url(prom_stack: PromStack) -> None:
    url = f"http://{prom_stack.dead_target}"
    alerts, problems = await read_alertmanager(Alertmanager(HttpSource(url, timeout=5)))
    assert alerts == []
    [problem] = problems
    assert problem.status is Status.UNKNOWN
    assert url in problem.summary and "unreachable" in problem.summary, problem.summary


async def test_an_answer_that_is_not_the_api_is_garbage_naming_the_url(
    prom_stack: PromStack,
) -> None:
    # node_exporter answers every path with its page, not Alertmanager's JSON
    wrong = Alertmanager(HttpSource(prom_stack.node_exporter))
    with pytest.raises(SourceError) as caught:
        await wrong.alerts()
    assert prom_stack.node_exporter in str(caught.value)
    auth = Auth(username=USER, password_file=prom_stack.password_file)
    small = Prometheus(HttpSource(prom_stack.prometheus, auth, max_bytes=10))
    with pytest.raises(SourceGarbage, match="over the 10 "):
        await small.query("up")


def test_odd_json_is_garbage_with_the_reason() -> None:
    url = "http://prom.example/api/v1/query"
    with pytest.raises(SourceGarbage, match="expected a vector, got 'matrix'"):
        parse_vector(url, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(SourceGarbage, match="status 'error': bad query"):
        parse_vector(url, {"status": "error", "error": "bad query"})
    with pytest.raises(SourceGarbage, match="is not a number"):
        parse_vector(
            url,
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]},
            },
        )
    nan = {"metric": {"instance": "a"}, "value": [1, "NaN"]}
    answer = {"status": "success", "data": {"resultType": "vector", "result": [nan]}}
    assert parse_vector(url, answer) == []  # no figure, not a zero


async def test_the_promql_fleet_samples_agree_with_node_exporters_own_metrics(
    prom_stack: PromStack,
) -> None:
    fleet = PromFleet(prometheus(prom_stack), job="node", max_age=60)
    hosts = await eventually(fleet.hosts, lambda h: h == ["127.0.0.1"], "node_exporter target")
    fleet.max_age = 60.0
    one, two = PromSampler(fleet, hosts[0]), PromSampler(fleet, hosts[0])
    refreshes = fleet.refreshes
    sample, again = await asyncio.gather(one.sample(), two.sample())
    assert fleet.refreshes - refreshes <= 1  # one batch for both, not one query set each
    assert sample == again
    own = node_metrics(prom_stack)

    memory = {n: vs[0][1] for n, vs in own.items() if n.startswith("node_memory_")}
    assert sample.memory.total == memory["node_memory_MemTotal_bytes"]
    assert sample.memory.swap_total == memory["node_memory_SwapTotal_bytes"]
    assert abs(sample.memory.available - memory["node_memory_MemAvailable_bytes"]) < 256 << 20
    cpus = {labels["cpu"] for labels, _ in own["node_cpu_seconds_total"]}
    assert len(sample.cores) == len(cpus)
    idle = sum(v for labels, v in own["node_cpu_seconds_total"] if labels["mode"] == "idle")
    assert 0 <= idle - sample.cpu.idle < 30 * len(cpus)  # counters only grow; a scrape ago
    [(_, load1)] = own["node_load1"]
    assert abs(sample.load.one - load1) < 2.0
    sizes = {labels["mountpoint"]: v for labels, v in own["node_filesystem_size_bytes"]}
    # Other test runs on this machine mount and unmount, add and remove links, between the
    # batch and this reading: what is in both must agree, and most of it must be in both.
    mounts = [m for m in sample.mounts if m.mountpoint in sizes]
    assert len(mounts) * 2 > len(sample.mounts), (sample.mounts, sizes)
    for mount in mounts:
        assert mount.total == sizes[mount.mountpoint], mount
        assert 0 <= mount.free <= mount.total - mount.used, mount
    rx = {labels["device"]: v for labels, v in own["node_network_receive_bytes_total"]}
    nets = [n for n in sample.nets if n.name in rx]
    assert (
        nets
        and len(nets) * 2 > len(sample.nets)
        and "lo" not in rx.keys() & {n.name for n in sample.nets}
    )
    for net in nets:
        assert 0 <= rx[net.name] - net.rx_bytes < 1 << 30
    info = await one.describe()
    [(uname, _)] = own["node_uname_info"]
    assert (info.hostname, info.kernel) == (uname["nodename"], uname["release"])
    [(_, boot)] = own["node_boot_time_seconds"]
    assert info.boot_time == boot


async def test_a_target_prometheus_cannot_scrape_samples_as_down_naming_the_source(
    prom_stack: PromStack,
) -> None:
    fleet = PromFleet(prometheus(prom_stack), job="dead")
    hosts = await eventually(fleet.hosts, lambda h: h == ["127.0.0.1"], "the dead target")
    with pytest.raises(SampleError, match=f"down: {re.escape(prom_stack.prometheus)}"):
        await PromSampler(fleet, hosts[0]).sample()
    lonely = PromSampler(fleet, hosts[0])
    with pytest.raises(SampleError, match="not in the inventory"):
        await lonely.shell()


async def test_the_console_watches_prometheus_hosts_and_says_which_have_no_ssh(
    prom_stack: PromStack,
) -> None:
    source = PromSource(
        HttpSource(
            prom_stack.prometheus, Auth(username=USER, password_file=prom_stack.password_file)
        )
    )
    hosts = await eventually(lambda: discover(source), lambda h: h == ["127.0.0.1"], "hosts")
    app = make_prom_fleet_app(Settings(interval=0.5), Config(), source, hosts)
    async with app.run_test(size=(100, 30)) as pilot:
        [watch] = app.watches  # one host: its Host screen, as for one SSH host
        assert isinstance(app.screen, HostScreen)
        header = app.screen.query_one(HostHeader)
        waited = 0.0
        while watch.polls < 2 or header.info is None:
            assert waited < DEADLINE, f"no samples from Prometheus: {watch.error}"
            await pilot.pause(0.2)
            waited += 0.2
        assert watch.error is None and watch.rates is not None
        assert header.info.hostname == socket.gethostname()
        with pytest.raises(SampleError, match="not in the inventory"):
            await app.access(watch).fix_host()

    spec = HostSpec("web-01", "127.0.0.1", 22, "root")
    with_ssh = make_prom_fleet_app(
        Settings(), Config(), source, hosts, Inventory((spec,)), SSHOptions()
    )
    [watch] = with_ssh.watches
    assert isinstance(watch.sampler, PromSampler) and watch.sampler.spec is spec
    # Its Docker engine and databases are reached through that SSH link, never this machine.
    access = with_ssh.access(watch)
    assert access.ssh is not None and access.has_shell


def test_the_console_refuses_to_start_on_a_prometheus_it_cannot_read(
    prom_stack: PromStack, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"http://{prom_stack.dead_target}"
    assert main(["--prometheus", dead]) == 2
    assert f"fleetdeck: Prometheus: {dead}/api/v1/query" in capsys.readouterr().err
    assert main(["--prometheus", prom_stack.prometheus]) == 2  # no credentials given: 401
    assert "HTTP 401" in capsys.readouterr().err
    assert main(["--prometheus"]) == 2  # no URL and no [[sources.prometheus]]
    assert "needs [[sources.prometheus]]" in capsys.readouterr().err
