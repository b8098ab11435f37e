"""Hosts and how to reach them: shells, samplers, samples, the parsers of host output.

No Textual and no checks here: this layer runs headless and under the tests on its own.
"""

from fleetdeck.hosts.metrics import Rates, SampleHistory, counter_delta, cpu_percent, rates
from fleetdeck.hosts.proc_sampler import ProcSampler
from fleetdeck.hosts.sample import (
    CpuTimes,
    DiskCounters,
    HostInfo,
    LoadAvg,
    Memory,
    Mount,
    NetCounters,
    ProcessInfo,
    Sample,
)
from fleetdeck.hosts.samplers import PsutilSampler, SampleError, Sampler
from fleetdeck.hosts.shell import CommandResult, CommandTimeout, LocalShell, Shell, ShellError

__all__ = [
    "CommandResult",
    "CommandTimeout",
    "CpuTimes",
    "DiskCounters",
    "HostInfo",
    "LoadAvg",
    "LocalShell",
    "Memory",
    "Mount",
    "NetCounters",
    "ProcSampler",
    "ProcessInfo",
    "PsutilSampler",
    "Rates",
    "Sample",
    "SampleError",
    "SampleHistory",
    "Sampler",
    "Shell",
    "ShellError",
    "counter_delta",
    "cpu_percent",
    "rates",
]
