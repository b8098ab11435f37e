"""SMART only where a disk can have it: this VM's own virtio disk read from its sysfs, here
and over SSH from a namespace host (which sees the same sysfs), and recorded sysfs trees
(tests/data/sysfs) for the other kinds of host, read by the same script."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from fleetdeck.checks.config import Config
from fleetdeck.checks.model import CheckContext, Status
from fleetdeck.checks.storage.smart import SMART, SYSFS_ARGV
from fleetdeck.hosts.linux.disks import BlockDevice, DiskKind, disk_kind, parse_block_devices
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.metrics import SampleHistory
from fleetdeck.hosts.shell import CommandResult, LocalShell, Shell

from shells import LocalWith, answered
from sshd import NetnsHost, SshKeys, write_known_hosts

SYSFS = Path(__file__).parent / "data" / "sysfs"
HOST = socket.gethostname()
NO_SMARTCTL = ("env", "PATH=/nonexistent")
"""Run smartctl where it is really not installed, whatever this machine has."""


def context(shell: Shell) -> CheckContext:
    return CheckContext(HOST, SampleHistory(size=2), Config().thresholds, shell, None, {})


def recorded_host(tree: str, smartctl: Callable[[tuple[str, ...]], CommandResult | None]) -> Shell:
    """This machine, with /sys read from the recorded tree `tree` (the real script, run on
    real files) and `smartctl` answered by `smartctl(argv)` (None: run it, not installed)."""
    local = LocalShell(HOST)

    class Recorded(LocalWith):
        async def run(
            self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
        ) -> CommandResult:
            key = tuple(argv)
            if key == SYSFS_ARGV:
                result = await local.run((*key[:-1], str(SYSFS / tree)), timeout=timeout)
                return CommandResult(key, result.exit_status, result.stdout, result.stderr, 0.0)
            if key[0] == "smartctl":
                given = smartctl(key)
                if given is not None:
                    return given
                result = await local.run((*NO_SMARTCTL, *key), timeout=timeout)
                return CommandResult(key, result.exit_status, result.stdout, result.stderr, 0.0)
            return await super().run(argv, timeout=timeout, stdin=stdin)

    return Recorded()


def not_installed(argv: tuple[str, ...]) -> None:
    return None


def this_machines_virtio_disks() -> list[str]:
    """The virtio disks this machine has; the test fails saying why where it has none."""
    disks = [
        block.name
        for block in sorted(Path("/sys/block").iterdir())
        if (block / "device" / "driver").resolve().name == "virtio_blk"
    ]
    if not disks:
        pytest.fail("this test expects a VM with virtio disks (/sys/block/vd*), as CI's is")
    return disks


async def test_this_vms_virtio_disks_have_no_smart_to_read() -> None:
    disks = this_machines_virtio_disks()
    (finding,) = await SMART.run(context(LocalShell(HOST)))
    assert finding.status is Status.OK, finding
    assert finding.summary == f"not applicable: virtual disks only ({', '.join(disks)})"
    (evidence,) = finding.evidence
    assert f"{disks[0]}: virtual (virtio: driver virtio_blk)" in evidence.output


async def test_smart_over_ssh_reads_the_namespace_hosts_sysfs(
    netns_hosts: Callable[[int], list[NetnsHost]], ssh_keys: SshKeys, tmp_path: Path
) -> None:
    from fleetdeck.hosts.inventory.records import HostSpec
    from fleetdeck.hosts.ssh import SSHOptions, SSHShell, connect_host

    disks = this_machines_virtio_disks()
    (host,) = netns_hosts(1)
    spec = HostSpec(host.name, host.address, host.port, user="root",
                    identity_files=(str(ssh_keys.client_key),))  # fmt: skip
    options = SSHOptions(known_hosts=write_known_hosts(tmp_path / "known", host))
    connection = await connect_host(spec, options)
    try:
        (finding,) = await SMART.run(context(SSHShell(host.name, connection)))
    finally:
        connection.close()
    assert finding.status is Status.OK, finding
    assert finding.summary == f"not applicable: virtual disks only ({', '.join(disks)})"


@pytest.mark.parametrize(
    ("tree", "summary", "said"),
    [
        ("xen", "virtual disks only (xvda)", "xvda: virtual (Xen: driver vbd)"),
        ("vmware", "virtual disks only (sda)", "model 'VMware Virtual disk'"),
        ("hyperv", "virtual disks only (sda, sdb)", "sda: virtual (Hyper-V: VMBUS:"),
        ("qemu-virtio-scsi", "virtual disks only (sda)", "(virtio: virtio2 in its device path)"),
        ("aws-nitro", "virtual disks only (nvme0n1)", "model 'Amazon Elastic Block Store'"),
        ("kvm-lvm", "virtual disks only (vda)", "stacked: dm-0 over vda2; dm-1 over vda2"),
        ("sdcard", "no disk here reports SMART (mmcblk0 (SD/eMMC))", "SD card or eMMC"),
        ("loop-only", "no disks, only block devices the kernel makes (loop0, loop1)", "loop0"),
    ],
)
async def test_hosts_without_a_real_disk_are_ok_whether_or_not_smartctl_is_there(
    tree: str, summary: str, said: str
) -> None:
    asked: list[tuple[str, ...]] = []

    def smartctl(argv: tuple[str, ...]) -> None:
        asked.append(argv)

    (finding,) = await SMART.run(context(recorded_host(tree, smartctl)))
    assert (finding.status, finding.summary) == (Status.OK, f"not applicable: {summary}")
    assert said in finding.evidence[0].output
    assert asked == []  # decided from sysfs, not from smartctl's absence


async def test_real_disks_without_smartctl_are_unknown_saying_what_to_install() -> None:
    (finding,) = await SMART.run(context(recorded_host("metal", not_installed)))
    assert finding.status is Status.UNKNOWN
    assert finding.summary == (
        f"smartctl is not installed on {HOST} (Debian: smartmontools), so the SMART health "
        "of nvme0n1, sda, sdb is not known"
    )
    output = finding.evidence[0].output
    assert "sda: physical (model 'ATA Samsung SSD 860')" in output
    assert "stacked: md0 over sda1, sdb1" in output


SCAN = (
    "/dev/sda -d sat # /dev/sda [SAT], ATA device\n/dev/nvme0 -d nvme # /dev/nvme0, NVMe device\n"
)
PASSED = "SMART overall-health self-assessment test result: PASSED\n"
FAILED = "SMART overall-health self-assessment test result: FAILED!\n"


@pytest.mark.parametrize(("nvme", "status"), [(PASSED, Status.OK), (FAILED, Status.CRIT)])
async def test_real_disks_are_asked_and_a_failing_one_is_critical(
    nvme: str, status: Status
) -> None:
    def smartctl(argv: tuple[str, ...]) -> CommandResult:
        if argv == ("smartctl", "--scan"):
            return answered(argv, 0, SCAN)
        return answered(argv, 0, nvme if "/dev/nvme0" in argv else PASSED)

    found = {f.target: f for f in await SMART.run(context(recorded_host("metal", smartctl)))}
    assert {t: f.status for t, f in found.items()} == {
        "/dev/sda -d sat": Status.OK,
        "/dev/nvme0 -d nvme": status,
    }


async def test_a_real_disk_passed_through_virtio_scsi_is_asked() -> None:
    """A SATA SSD a KVM guest gets through virtio-scsi (scsi-block) keeps its maker's name,
    and smartctl reaches it: it is no virtual disk, so SMART is not skipped as not applicable."""
    scan = "/dev/sda -d scsi # /dev/sda, SCSI device\n"

    def smartctl(argv: tuple[str, ...]) -> CommandResult:
        return answered(argv, 0, scan if argv == ("smartctl", "--scan") else PASSED)

    (unknown,) = await SMART.run(context(recorded_host("qemu-passthrough", not_installed)))
    assert unknown.status is Status.UNKNOWN, unknown
    assert "so the SMART health of sda is not known" in unknown.summary
    assert "passed through virtio-scsi" in unknown.evidence[0].output
    (finding,) = await SMART.run(context(recorded_host("qemu-passthrough", smartctl)))
    assert (finding.status, finding.summary) == (Status.OK, "/dev/sda -d scsi: health PASSED")


async def test_a_virtual_disk_smartctl_lists_beside_a_real_one_is_not_asked() -> None:
    """smartctl --scan lists a QEMU disk behind virtio-scsi too; sysfs says it is virtual."""
    asked: list[tuple[str, ...]] = []
    scan = "/dev/sda -d scsi # /dev/sda, SCSI device\n"

    def smartctl(argv: tuple[str, ...]) -> CommandResult:
        asked.append(argv)
        return answered(argv, 0, scan if argv == ("smartctl", "--scan") else PASSED)

    (finding,) = await SMART.run(context(recorded_host("qemu-virtio-scsi", smartctl)))
    assert finding.status is Status.OK and asked == []


@pytest.mark.parametrize(
    ("disk", "kind"),
    [
        (BlockDevice("vda", "/devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
                     "/devices/pci0000:00/0000:00:02.0/virtio1", "virtio_blk"), DiskKind.VIRTUAL),
        (BlockDevice("nvme0n1", "/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1",
                     "/devices/pci0000:00/0000:00:04.0/nvme/nvme0", model="QEMU NVMe Ctrl"),
         DiskKind.VIRTUAL),
        (BlockDevice("nvme0n1", "/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1",
                     "/devices/pci0000:00/0000:00:04.0/nvme/nvme0", model="WD_BLACK SN850X",
                     transport="pcie"), DiskKind.PHYSICAL),
        (BlockDevice("sda", "/devices/pci0000:00/0000:00:01.1/ata1/host0/target0:0:0/0:0:0:0/"
                     "block/sda", "/devices/pci0000:00/0000:00:01.1/ata1/host0/target0:0:0/"
                     "0:0:0:0", "sd", "ATA", "VBOX HARDDISK"), DiskKind.VIRTUAL),
        (BlockDevice("zram0", "/devices/virtual/block/zram0"), DiskKind.KERNEL),
    ],
)  # fmt: skip
def test_what_a_disk_is_follows_its_driver_path_and_model(
    disk: BlockDevice, kind: DiskKind
) -> None:
    assert disk_kind(disk)[0] is kind


def test_the_sysfs_listing_is_read_strictly() -> None:
    assert parse_block_devices("") == ()
    (disk,) = parse_block_devices("@ vda\npath /devices/x/block/vda\nslave a\nslave b\nnoise\n")
    assert disk == BlockDevice("vda", "/devices/x/block/vda", slaves=("a", "b"))
    with pytest.raises(ParseError):
        parse_block_devices("sh: 1: readlink: not found\n")
