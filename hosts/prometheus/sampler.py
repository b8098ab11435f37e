"""A fleet watched through Prometheus: node_exporter's metrics for every host in a few
PromQL queries per refresh, cut into one `Sample` per host.

`PromFleet` holds the batch: one refresh asks Prometheus six instant queries (targets' `up`,
CPU, memory, load, network, filesystems) for the whole fleet at once, and every host's
`PromSampler` takes its part of the same batch; a refresh asked for while one is under way
waits for it, and a batch younger than `max_age` is reused. A thousand hosts cost six
queries, not a thousand SSH sessions. The counters stay raw, as every sampler's do, so
rates come from `hosts.metrics` the same way.

A host is a node_exporter target: its `instance` label (without the port, unless two targets
share a host name) in the scrape job `job` ("node" by default). A target that Prometheus
cannot scrape (`up` is 0), or that is missing from the batch, samples as an error naming the
source, so the host shows as down or stale, never as healthy.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fleetdeck.hosts.prometheus.api import Prometheus, VectorItem
from fleetdeck.hosts.prometheus.http import SourceError, SourceGarbage
from fleetdeck.hosts.sample import (
    CpuTimes,
    HostInfo,
    LoadAvg,
    Memory,
    Mount,
    NetCounters,
    Sample,
)
from fleetdeck.hosts.samplers import NOT_SAMPLED, SampleError, SampleGarbage
from fleetdeck.hosts.shell import Shell

_FSTYPES = "|".join(sorted(NOT_SAMPLED | {"tmpfs", "nsfs", "fuse.lxcfs"}))
MEMORY = ("MemTotal", "MemAvailable", "SwapTotal", "SwapFree")
NET = {
    "receive_bytes": "rx_bytes",
    "transmit_bytes": "tx_bytes",
    "receive_packets": "rx_packets",
    "transmit_packets": "tx_packets",
    "receive_errs": "rx_errors",
    "transmit_errs": "tx_errors",
    "receive_drop": "rx_drops",
    "transmit_drop": "tx_drops",
}
FS = ("size_bytes", "free_bytes", "avail_bytes", "files", "files_free")
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def fleet_queries(job: str) -> dict[str, str]:
    """The batch's PromQL, one query per kind of figure for every target of `job`."""
    sel = f'job="{_escape(job)}"'
    return {
        "up": f"up{{{sel}}}",
        "cpu": f"node_cpu_seconds_total{{{sel}}}",
        "memory": f'{{__name__=~"node_memory_({"|".join(MEMORY)})_bytes",{sel}}}',
        "load": f'{{__name__=~"node_load(1|5|15)",{sel}}}',
        "net": (f'{{__name__=~"node_network_({"|".join(NET)})_total",{sel},device!="lo"}}'),
        "fs": f'{{__name__=~"node_filesystem_({"|".join(FS)})",{sel},fstype!~"{_FSTYPES}"}}',
    }


def info_queries(job: str) -> dict[str, str]:
    sel = f'job="{_escape(job)}"'
    return {
        "uname": f"node_uname_info{{{sel}}}",
        "os": f"node_os_info{{{sel}}}",
        "boot": f"node_boot_time_seconds{{{sel}}}",
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def host_names(instances: Iterable[str]) -> dict[str, str]:
    """instance -> host name: the instance without its port, unless that would make two
    targets one host (two exporters on one machine keep their ports)."""
    instances = sorted(set(instances))
    bare = {i: _strip_port(i) for i in instances}
    counts: dict[str, int] = defaultdict(int)
    for name in bare.values():
        counts[name] += 1
    return {i: (bare[i] if counts[bare[i]] == 1 else i) for i in instances}


def _strip_port(instance: str) -> str:
    if instance.startswith("["):  # [::1]:9100
        return instance[1 : instance.find("]")] if "]" in instance else instance
    host, sep, port = instance.rpartition(":")
    return host if sep and port.isdigit() else instance


@dataclass(frozen=True, slots=True)
class HostFigures:
    """One host's part of a batch: its target's health and its series by query."""

    up: float | None = None
    series: Mapping[str, list[VectorItem]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """One refresh of the whole fleet: when it was taken and every host's figures."""

    at: float
    hosts: Mapping[str, HostFigures]


def split_batch(answers: Mapping[str, list[VectorItem]], at: float) -> Batch:
    """Cut the fleet's query answers into each host's figures (a pure function)."""
    names = host_names(
        item.labels.get("instance", "") for items in answers.values() for item in items
    )
    ups: dict[str, float] = {}
    series: dict[str, dict[str, list[VectorItem]]] = defaultdict(lambda: defaultdict(list))
    for kind, items in answers.items():
        for item in items:
            host = names[item.labels.get("instance", "")]
            if kind == "up":
                ups[host] = item.value
            else:
                series[host][kind].append(item)
    hosts = {
        host: HostFigures(ups.get(host), dict(series.get(host, {})))
        for host in set(ups) | set(series)
    }
    return Batch(at, hosts)


def to_sample(figures: HostFigures, at: float) -> Sample:
    """One host's figures as a `Sample` (raw counters, as node_exporter exports them)."""
    cores: dict[str, dict[str, float]] = defaultdict(dict)
    for item in figures.series.get("cpu", []):
        mode = item.labels.get("mode", "")
        if mode in CPU_MODES:
            cores[item.labels.get("cpu", "")][mode] = item.value
    core_times = tuple(CpuTimes(**cores[c]) for c in sorted(cores, key=_cpu_order))
    total = CpuTimes(**{mode: sum(getattr(c, mode) for c in core_times) for mode in CPU_MODES})
    metric = {
        item.labels.get("__name__", ""): item.value for item in figures.series.get("memory", [])
    }
    if f"node_memory_{MEMORY[0]}_bytes" not in metric:
        raise ValueError("no node_memory_MemTotal_bytes")
    memory = Memory(*(int(metric.get(f"node_memory_{name}_bytes", 0)) for name in MEMORY))
    loads = {item.labels.get("__name__", ""): item.value for item in figures.series.get("load", [])}
    load = LoadAvg(
        loads.get("node_load1", 0.0), loads.get("node_load5", 0.0), loads.get("node_load15", 0.0)
    )
    nets: dict[str, dict[str, int]] = defaultdict(dict)
    for item in figures.series.get("net", []):
        name = item.labels.get("__name__", "").removeprefix("node_network_").removesuffix("_total")
        if name in NET:
            nets[item.labels.get("device", "")][NET[name]] = int(item.value)
    mounts: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for item in figures.series.get("fs", []):
        key = (
            item.labels.get("mountpoint", ""),
            item.labels.get("device", ""),
            item.labels.get("fstype", ""),
        )
        mounts[key][item.labels.get("__name__", "").removeprefix("node_filesystem_")] = item.value
    return Sample(
        at=at,
        cpu=total,
        cores=core_times,
        memory=memory,
        load=load,
        nets=tuple(NetCounters(name, **counters) for name, counters in sorted(nets.items())),
        mounts=tuple(_mount(key, values) for key, values in sorted(mounts.items())),
    )


def _cpu_order(cpu: str) -> tuple[int, str]:
    return (int(cpu), cpu) if cpu.isdigit() else (1 << 30, cpu)


def _mount(key: tuple[str, str, str], values: Mapping[str, float]) -> Mount:
    mountpoint, device, fstype = key
    size, free = int(values.get("size_bytes", 0)), int(values.get("free_bytes", 0))
    files, files_free = values.get("files"), values.get("files_free")
    inodes_total = inodes_used = None
    if files is not None and files_free is not None and 0 <= files_free <= files and files > 0:
        inodes_total, inodes_used = int(files), int(files - files_free)  # else no inode limit
    return Mount(
        mountpoint=mountpoint,
        device=device,
        fstype=fstype,
        total=size,
        used=max(size - free, 0),
        free=int(values.get("avail_bytes", 0)),
        inodes_total=inodes_total,
        inodes_used=inodes_used,
    )


class PromFleet:
    """The fleet as one Prometheus sees it: the batch every host's sampler shares."""

    def __init__(self, prometheus: Prometheus, job: str = "node", max_age: float = 1.0) -> None:
        self.prometheus = prometheus
        self.job = job
        self.max_age = max_age
        self.refreshes = 0
        self._batch: Batch | None = None
        self._taken = 0.0
        self._pending: asyncio.Task[Batch] | None = None
        self._info_task: asyncio.Task[dict[str, HostInfo]] | None = None

    @property
    def url(self) -> str:
        return self.prometheus.url

    async def batch(self) -> Batch:
        """The fleet's latest figures: the last batch if young enough, else the one being
        taken, else a new one."""
        if self._batch is not None and time.monotonic() - self._taken < self.max_age:
            return self._batch
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._refresh())
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> Batch:
        queries = fleet_queries(self.job)
        at = time.time()
        answers = await asyncio.gather(*(self.prometheus.query(q) for q in queries.values()))
        batch = split_batch(dict(zip(queries, answers, strict=True)), at)
        self._batch, self._taken = batch, time.monotonic()
        self.refreshes += 1
        return batch

    async def hosts(self) -> list[str]:
        """The hosts Prometheus scrapes node_exporter on (its targets in `job`)."""
        return sorted((await self.batch()).hosts)

    async def info(self, host: str) -> HostInfo | None:
        """What node_exporter says a host is (uname, OS, boot time): asked once for the
        whole fleet, however many hosts' watches ask at the same moment (a thousand watches
        starting together would otherwise send three thousand queries)."""
        task = self._info_task
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            self._info_task = task = asyncio.create_task(self._read_info())
        return (await asyncio.shield(task)).get(host)

    async def _read_info(self) -> dict[str, HostInfo]:
        queries = info_queries(self.job)
        answers = await asyncio.gather(*(self.prometheus.query(q) for q in queries.values()))
        found = dict(zip(queries, answers, strict=True))
        names = host_names(i.labels.get("instance", "") for a in answers for i in a)

        def by_host(kind: str) -> dict[str, VectorItem]:
            return {names[i.labels.get("instance", "")]: i for i in found[kind]}

        uname, os_info, boot = by_host("uname"), by_host("os"), by_host("boot")
        info = {}
        for name in uname.keys() | os_info.keys() | boot.keys():
            system = uname[name].labels if name in uname else {}
            release = os_info[name].labels if name in os_info else {}
            info[name] = HostInfo(
                hostname=system.get("nodename", name),
                os=release.get("pretty_name", release.get("name", "")),
                kernel=system.get("release", ""),
                boot_time=boot[name].value if name in boot else 0.0,
            )
        return info


class ShellLink(Protocol):
    """A host's SSH link (`hosts.link.HostLink`), for wizards and fixes."""

    async def shell(self) -> Shell: ...


class PromSampler:
    """One host of a `PromFleet`: its part of the shared batch as a `Sample`. Wizards and
    fixes need a shell: the host's SSH link when it is also in the inventory."""

    processes = False  # node_exporter has no process list; Prometheus is not asked for one

    def __init__(self, fleet: PromFleet, host: str, link: ShellLink | None = None) -> None:
        self.fleet = fleet
        self.host = host
        self.link = link

    @property
    def spec(self) -> object | None:
        """The inventory's entry for the host (its tier, its databases), when it has one."""
        return getattr(self.link, "spec", None)

    @property
    def connection(self) -> object | None:
        """The SSH link's connection getter, for a forward to the host's Docker engine or
        database. Without it a host from the inventory would be given a Docker link with no
        SSH under it, which dials this machine's engine in its name."""
        return getattr(self.link, "connection", None)

    async def sample(self) -> Sample:
        try:
            batch = await self.fleet.batch()
        except SourceGarbage as error:
            raise SampleGarbage(f"{self.host}: Prometheus {error}") from None
        except SourceError as error:
            raise SampleError(f"{self.host}: Prometheus {error}") from None
        figures = batch.hosts.get(self.host)
        if figures is None:
            raise SampleError(f"{self.host}: not a target of {self.fleet.url} any more")
        if figures.up is not None and figures.up < 1:
            raise SampleError(f"{self.host}: down: {self.fleet.url} cannot scrape it (up = 0)")
        try:
            return to_sample(figures, batch.at)
        except (ValueError, TypeError) as error:
            raise SampleGarbage(f"{self.host}: {self.fleet.url}: odd figures: {error}") from None

    async def describe(self) -> HostInfo:
        info = await self.fleet.info(self.host)
        if info is None:
            raise SampleError(f"{self.host}: {self.fleet.url} has no node_uname_info for it")
        return info

    async def shell(self) -> Shell:
        """The host's shell over its SSH link, for a wizard or a fix."""
        if self.link is None:
            raise SampleError(
                f"{self.host} is watched through Prometheus ({self.fleet.url}) and is not in "
                "the inventory: fleetdeck has no SSH link to it for wizards and fixes; add it "
                "to the inventory (same name) to use them"
            )
        return await self.link.shell()
