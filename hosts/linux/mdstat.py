"""Linux software RAID state from /proc/mdstat: arrays, members, health, rebuild progress.

A pure parser, like those in `hosts.linux.procfs`: text in, data out. The layout read is the one
the kernel's `md_seq_show()` prints:

    md0 : active raid1 sdc1[2] sdb1[1](F) sda1[0]
          976630464 blocks super 1.2 [2/1] [U_]
          [=======>.............]  recovery = 38.4% (375348736/976630464) finish=52.3min ...
          bitmap: 8/8 pages [32KB], 65536KB chunk

Lines it cannot read are skipped; a text with no sign of being mdstat raises `ParseError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetdeck.hosts.linux.procfs import ParseError

__all__ = ["MdArray", "MdMember", "parse_mdstat"]

# Flags the kernel appends to a member: (W)rite-mostly, (J)ournal, (F)aulty, (S)pare,
# (R)eplacement. A faulty member gets no (S) or (R) after its (F).
_MEMBER = re.compile(
    r"^(?P<name>[^\s\[\]()]+)\[(?P<index>\d{1,9})\](?P<flags>(?:\([A-Z]\))*)$", re.ASCII
)
# Array names are md<N>, md_d<N> (old partitionable arrays) or md_<name>; a stricter name
# keeps "mdadm: cannot open ..." from reading as an array.
_HEADER = re.compile(
    r"^(?P<name>md(?:\d+|_[\w.-]+))\s*:\s*(?P<state>[a-z][a-z-]*)(?P<rest>(?:\s.*)?)$", re.ASCII
)
_STATUS = re.compile(
    r"\[(?P<expected>\d{1,9})/(?P<working>\d{1,9})\]\s*\[(?P<map>[U_]*)\]", re.ASCII
)
_BLOCKS = re.compile(r"^\s+(?P<blocks>\d{1,20}) blocks\b", re.ASCII)
_SUPER = re.compile(r"\bsuper (?P<super>\S+)", re.ASCII)
_PROGRESS = re.compile(
    r"\b(?P<op>resync|recovery|reshape|check|repair)\s*=\s*(?P<pct>\d{1,3}(?:\.\d{1,3})?)%",
    re.ASCII,
)
_FINISH = re.compile(r"\bfinish=(?P<minutes>\d{1,12}(?:\.\d{1,3})?)min\b", re.ASCII)
_SPEED = re.compile(r"\bspeed=(?P<speed>\d{1,15})K/sec\b", re.ASCII)
# Printed instead of a progress bar while an operation waits: DELAYED behind another array
# on the same disks, PENDING until the array is next written, REMOTE on another cluster node.
_WAITING = re.compile(
    r"\b(?P<op>resync|recover|reshape)=(?P<state>DELAYED|PENDING|REMOTE)\b", re.ASCII
)


@dataclass(frozen=True, slots=True)
class MdMember:
    """One component device of an array, as `sda1[0](F)`."""

    name: str  # "sda1", "nvme0n1p2", "dm-3"
    index: int  # the kernel's descriptor number: stable per member, not its slot
    failed: bool
    spare: bool  # not in a slot; every member of an inactive array shows as one
    write_mostly: bool = False
    replacement: bool = False  # being built to replace another member in its slot
    journal: bool = False  # a RAID4/5/6 write journal device


@dataclass(frozen=True, slots=True)
class MdArray:
    """One md array: state, level, members, health and any resync or rebuild running."""

    name: str  # "md0"
    state: str  # "active", "inactive", "active (auto-read-only)", "active (read-only)"
    level: str | None  # "raid1"; None while inactive
    members: tuple[MdMember, ...]
    devices_expected: int | None  # from [2/1]
    devices_working: int | None
    status_map: str | None  # "U_": one letter per slot, "_" for a missing or failed member
    operation: str | None  # "resync", "recovery", "reshape", "check" ("repair" prints resync)
    progress: float | None  # percent, to one decimal as the kernel prints it
    finish_minutes: float | None  # the kernel's estimate at the current speed
    speed_kib_s: int | None
    blocks: int | None = None  # size in KiB; of an inactive array, its members' total
    superblock: str | None = None  # "1.2", "external:imsm"; None for the old 0.90 format
    operation_state: str | None = None  # "DELAYED", "PENDING" or "REMOTE" when it waits

    @property
    def degraded(self) -> bool:
        """Running without full redundancy: fewer working devices than slots."""
        if (
            self.devices_expected is not None
            and self.devices_working is not None
            and self.devices_working < self.devices_expected
        ):
            return True
        return self.status_map is not None and "_" in self.status_map

    @property
    def failed_members(self) -> tuple[MdMember, ...]:
        """Members the kernel has marked faulty, still listed until they are removed."""
        return tuple(m for m in self.members if m.failed)


def _member(token: str) -> MdMember | None:
    match = _MEMBER.match(token)
    if match is None:
        return None
    flags = match["flags"]
    return MdMember(
        name=match["name"],
        index=int(match["index"]),
        failed="(F)" in flags,
        spare="(S)" in flags,
        write_mostly="(W)" in flags,
        replacement="(R)" in flags,
        journal="(J)" in flags,
    )


def _header(match: re.Match[str]) -> tuple[str, str | None, tuple[MdMember, ...]]:
    """State, level and members from an array's first line."""
    state = [match["state"]]
    tokens = match["rest"].split()
    while tokens and tokens[0].startswith("(") and tokens[0].endswith(")"):
        state.append(tokens.pop(0))  # "(auto-read-only)", "(read-only)"
    level: str | None = None
    members: list[MdMember] = []
    for token in tokens:
        if (member := _member(token)) is not None:
            members.append(member)
        elif level is None and not members and "[" not in token:
            level = token
    return " ".join(state), level, tuple(members)


def _array(match: re.Match[str], body: list[str]) -> MdArray:
    state, level, members = _header(match)
    text = "\n".join(body)
    status = _STATUS.search(text)
    blocks = next((b for line in body if (b := _BLOCKS.match(line))), None)
    superblock = next((s for line in body if (s := _SUPER.search(line))), None)
    progress = _PROGRESS.search(text)
    waiting = _WAITING.search(text)
    operation: str | None = None
    if progress is not None:
        operation = progress["op"]
    elif waiting is not None:
        operation = "recovery" if waiting["op"] == "recover" else waiting["op"]
    finish = _FINISH.search(text) if progress else None
    speed = _SPEED.search(text) if progress else None
    return MdArray(
        name=match["name"],
        state=state,
        level=level,
        members=members,
        devices_expected=int(status["expected"]) if status else None,
        devices_working=int(status["working"]) if status else None,
        status_map=status["map"] if status else None,
        operation=operation,
        progress=float(progress["pct"]) if progress else None,
        finish_minutes=float(finish["minutes"]) if finish else None,
        speed_kib_s=int(speed["speed"]) if speed else None,
        blocks=int(blocks["blocks"]) if blocks else None,
        superblock=superblock["super"] if superblock else None,
        operation_state=waiting["state"] if waiting and not progress else None,
    )


def parse_mdstat(text: str) -> list[MdArray]:
    """Every md array in /proc/mdstat, in the kernel's order; [] when there are none."""
    arrays: list[MdArray] = []
    current: tuple[re.Match[str], list[str]] | None = None
    looks_like_mdstat = False
    for line in text.splitlines():
        if line.startswith(("Personalities", "unused devices")):
            looks_like_mdstat = True
            if current is not None:
                arrays.append(_array(*current))
                current = None
        elif (match := _HEADER.match(line.rstrip())) is not None:
            looks_like_mdstat = True
            if current is not None:
                arrays.append(_array(*current))
            current = (match, [])
        elif current is not None:
            current[1].append(line)
    if current is not None:
        arrays.append(_array(*current))
    if not looks_like_mdstat:
        raise ParseError(
            f"/proc/mdstat: no 'Personalities' line and no 'mdN : ' array, got {text[:40]!r}"
        )
    return arrays
