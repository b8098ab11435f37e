"""What the host's disks are, from sysfs: real hardware that may speak SMART, disks a
hypervisor emulates (virtio, Xen, VMware, Hyper-V, QEMU, cloud volumes), flash cards that
speak no SMART, and devices the kernel makes itself (loop, zram, device-mapper, md).

`SYSFS_SCRIPT` prints one block of `key value` lines per entry of /sys/block (its root is
its first argument, so a recorded tree reads as the host's does); `parse_block_devices` is
the pure parser, and `disk_kind` says what a device is and from which attribute.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from fleetdeck.hosts.linux.procfs import ParseError

__all__ = ["SYSFS_SCRIPT", "BlockDevice", "DiskKind", "disk_kind", "parse_block_devices"]

SYSFS_SCRIPT = r"""
root=$(readlink -f "${1:-/sys}") || exit 1
[ -d "$root/block" ] || { echo "no $root/block" >&2; exit 1; }
for b in "$root"/block/*; do
  [ -e "$b" ] || continue
  p=$(readlink -f "$b")
  printf '@ %s\npath %s\n' "${b##*/}" "${p#"$root"}"
  if [ -e "$b/device" ]; then
    d=$(readlink -f "$b/device"); printf 'device %s\n' "${d#"$root"}"
    l=$(readlink "$b/device/driver") && printf 'driver %s\n' "${l##*/}"
    for f in vendor model transport; do
      [ -r "$b/device/$f" ] && printf '%s %s\n' "$f" "$(head -c 200 "$b/device/$f")"
    done
  fi
  [ -r "$b/queue/rotational" ] && printf 'rotational %s\n' "$(cat "$b/queue/rotational")"
  for s in "$b"/slaves/*; do [ -e "$s" ] && printf 'slave %s\n' "${s##*/}"; done
done
exit 0
"""
"""Every /sys/block entry: its sysfs path, and where it has one its device's path, driver,
vendor, model and transport (NVMe); its rotational flag and the devices it sits on."""


class DiskKind(enum.StrEnum):
    """What a block device is, for the question "can SMART be read from it?"."""

    KERNEL = "made by the kernel"
    """loop, zram, ram, nbd, device-mapper, md: no disk of its own (stacked ones sit on
    `slaves`, which are listed in their own right)."""
    VIRTUAL = "virtual"
    """Emulated by a hypervisor or served over a cloud's network: no SMART to read."""
    NO_SMART = "no SMART"
    """Real, but of a kind that has no SMART (SD cards and eMMC)."""
    PHYSICAL = "physical"


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """One /sys/block entry, as `SYSFS_SCRIPT` printed it (paths relative to the sysfs root)."""

    name: str
    path: str = ""
    device: str = ""
    driver: str = ""
    vendor: str = ""
    model: str = ""
    transport: str = ""
    rotational: str = ""
    slaves: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """One line of evidence: what it is, and the attributes that said so."""
        kind, why = disk_kind(self)
        said = [f"{self.name}: {kind.value} ({why})"]
        said += [f"{k} {v}" for k, v in self._attributes() if v]
        if self.slaves:
            said.append(f"over {', '.join(self.slaves)}")
        return ", ".join(said)

    def _attributes(self) -> tuple[tuple[str, str], ...]:
        return (
            ("driver", self.driver),
            ("vendor", self.vendor),
            ("model", self.model),
            ("transport", self.transport),
            ("rotational", self.rotational),
        )


_VIRTUAL_DRIVERS = {
    "virtio_blk": "virtio",
    "vbd": "Xen",
    "xen_blkfront": "Xen",
    "xen-vbd": "Xen",
    "rbd": "Ceph RBD",
    "vmw_pvscsi": "VMware",
}
"""Drivers (the device's `driver` link) that only ever serve emulated or network disks."""
_VIRTUAL_PATHS = (
    (re.compile(r"/virtio\d+/"), "virtio"),
    (re.compile(r"/VMBUS:|/vmbus_", re.IGNORECASE), "Hyper-V"),
    (re.compile(r"/vbd-\d+/|/xen/"), "Xen"),
)
"""Where on the device tree a disk hangs: a SCSI disk behind virtio-scsi or Hyper-V's
storvsc has a plain `sd` driver, and only its parents tell."""
_VIRTUAL_MODELS = re.compile(
    r"\bQEMU\b|\bVMware\b|\bVBOX\b|VirtualBox|\bMsft\b.*Virtual|Virtual disk|"
    r"Amazon Elastic Block Store|PersistentDisk|nvme_card-pd|\bXen\b|Red Hat VirtIO|"
    r"Virtual HD|\bVirtual NVMe\b|\bBlockVolume\b",
    re.IGNORECASE,
)
"""Vendor and model strings hypervisors and clouds give their emulated disks (SCSI/ATA
`vendor` + `model`, NVMe controller `model`): QEMU HARDDISK, VMware Virtual disk, Msft
Virtual Disk, VBOX HARDDISK, Amazon Elastic Block Store (NVMe), Google PersistentDisk and
nvme_card-pd, ORACLE BlockVolume. A real NVMe drive says its maker's model, and so does a real
disk a hypervisor passes through (virtio-scsi's scsi-block): SMART reaches it."""
_NO_SMART_DRIVERS = {"mmcblk": "SD card or eMMC"}


def disk_kind(disk: BlockDevice) -> tuple[DiskKind, str]:
    """What `disk` is, and the attribute that says so (for the evidence)."""
    # NVMe with native multipath puts its namespaces under a virtual subsystem device; the
    # subsystem's model is the drive's.
    nvme_head = "/nvme-subsystem/" in disk.path
    if disk.path.startswith("/devices/virtual/") and not nvme_head:
        return DiskKind.KERNEL, "no device of its own"
    if disk.driver in _VIRTUAL_DRIVERS:
        return DiskKind.VIRTUAL, f"{_VIRTUAL_DRIVERS[disk.driver]}: driver {disk.driver}"
    named = f"{disk.vendor} {disk.model}".strip()
    emulated = bool(_VIRTUAL_MODELS.search(named))
    for pattern, what in _VIRTUAL_PATHS:
        if found := pattern.search(disk.device + "/"):
            if what == "virtio" and named and not emulated:
                # virtio-scsi serves QEMU's own disks, or passes a real one through
                # (scsi-block), which keeps its maker's name and answers SMART.
                return DiskKind.PHYSICAL, f"model {named!r}, passed through virtio-scsi"
            return DiskKind.VIRTUAL, f"{what}: {found[0].strip('/')} in its device path"
    if emulated:
        return DiskKind.VIRTUAL, f"model {named!r}"
    if disk.transport == "loop":
        return DiskKind.VIRTUAL, "NVMe over the kernel's loop transport"
    if disk.driver in _NO_SMART_DRIVERS:
        return DiskKind.NO_SMART, f"{_NO_SMART_DRIVERS[disk.driver]}: driver {disk.driver}"
    where = disk.device or disk.path
    return DiskKind.PHYSICAL, f"model {named!r}" if named else f"attached at {where}"


_KEYS = frozenset({"path", "device", "driver", "vendor", "model", "transport", "rotational"})


def parse_block_devices(text: str) -> tuple[BlockDevice, ...]:
    """`SYSFS_SCRIPT`'s output, one `BlockDevice` per `@ NAME` block; unknown lines are
    skipped. Text with no block at all raises `ParseError` (an empty /sys/block prints
    nothing, which is an empty tuple)."""
    found: list[BlockDevice] = []
    fields: dict[str, str] = {}
    slaves: list[str] = []

    def close() -> None:
        if fields:
            found.append(BlockDevice(slaves=tuple(slaves), **fields))

    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "@" and value:
            close()
            fields, slaves = {"name": value}, []
        elif fields and key in _KEYS:
            fields[key] = value
        elif fields and key == "slave" and value:
            slaves.append(value)
    close()
    if text.strip() and not found:
        raise ParseError(f"no block device in the sysfs listing: {text.strip()[:80]!r}")
    return tuple(found)
