"""Hosts from an OpenSSH client config (`~/.ssh/config`), resolved as `ssh -G HOST` does.

Every alias named without wildcards in a `Host` line is a host. For each, the file is read
top to bottom as ssh reads it: a `Host` or `Match` line decides whether the lines after it
apply, the first value of each keyword wins (IdentityFile adds up), and `Include` is read
where it stands (relative paths from ~/.ssh), inside a block only when the block applies.
`Host` patterns use `*`, `?` and `!`, matched against the alias as typed; `Match` criteria
`all`, `host` (the HostName so far), `originalhost`, `user` and `localuser` are evaluated;
`exec`, `canonical`, `final`, `localnetwork` and `tagged` need a live connection, so their
blocks are skipped with a warning. HostName expands `%h`; IdentityFile expands `%h`, `%r`,
`%p`, `%n`, `%u`, `%d`, `%l`, `%L`, `%i` and `%%` as ssh does.
"""

from __future__ import annotations

import glob
import heapq
import os
import pwd
import re
import shlex
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fleetdeck.hosts.inventory.limits import MAX_HOSTS, LimitError, read_bounded
from fleetdeck.hosts.inventory.records import (
    HostSpec,
    InventoryProblem,
    Origin,
    Parsed,
    missing_identity,
    parse_port,
)
from fleetdeck.hosts.inventory.ssh_match import criteria, host_matches, pattern_list, percent_expand

KNOWN = {"hostname", "user", "port", "proxyjump", "identityfile"}
MAX_INCLUDE_DEPTH = 16  # ssh's own limit
MAX_STEPS = 5_000_000
"""Lines of wildcard, Match and Include blocks read while resolving every alias (each alias
reads all of them, and only its own literal Host blocks): past it, resolving would take
minutes, so the file is refused instead."""
EVALUATED = {"host", "originalhost", "user", "localuser"}
UNEVALUATED = {"exec", "canonical", "final", "localnetwork", "tagged"}


@dataclass(frozen=True, slots=True)
class Line:
    """One line that matters: a keyword and its words, or an Include's start or end."""

    origin: Origin
    keyword: str
    args: tuple[str, ...]


@dataclass
class _State:
    """What ssh knows about one alias while it reads the config."""

    alias: str
    values: dict[str, Line] = field(default_factory=dict)
    identities: list[Line] = field(default_factory=list)

    def hostname(self) -> str:
        """The HostName so far (its `%h` expanded, lowercased as ssh does), else the alias."""
        written = self.values.get("hostname")
        return (
            percent_expand(written.args[0], {"h": self.alias}) if written else self.alias
        ).lower()

    def user(self) -> str:
        written = self.values.get("user")
        return written.args[0] if written else local_user()


def local_user() -> str:
    """This user's name as ssh takes it: from the password database, not $USER."""
    return pwd.getpwuid(os.getuid()).pw_name


def parse(path: Path, text: str) -> Parsed:
    found = Parsed()
    lines = _lines(path, text, found, depth=0)
    for line in lines:
        if line.keyword == "match":
            _warn_unevaluated(line, found)
    segments = _segments(lines)
    aliases: dict[str, Origin] = {}
    named: dict[str, list[int]] = {}  # alias -> the literal Host blocks naming it
    general: list[int] = []  # blocks every alias must read: wildcards, Match, Include
    for index, segment in enumerate(segments):
        if segment.literal is None:
            general.append(index)
            continue
        for alias in segment.literal:
            aliases.setdefault(alias, segment.header.origin if segment.header else Origin(path))
            named.setdefault(alias, []).append(index)
    if len(aliases) > MAX_HOSTS:
        found.errors.append(InventoryProblem(Origin(path), None, f"more than {MAX_HOSTS:,} hosts"))
        return found
    work = len(aliases) * sum(1 + len(segments[i].lines) for i in general)
    if work > MAX_STEPS:
        shared = sum(1 for i in general if segments[i].header)
        problem = (
            f"{len(aliases):,} hosts x {shared:,} wildcard, Match or Include blocks "
            "is too much to resolve"
        )
        found.errors.append(InventoryProblem(Origin(path), None, problem))
        return found
    for alias, origin in aliases.items():
        blocks = heapq.merge(general, named[alias])
        found.hosts.append(_host(_read(alias, segments, blocks), origin, found))
    return found


@dataclass(frozen=True, slots=True)
class _Segment:
    """A Host or Match line (or an Include's start or end) and the lines up to the next."""

    header: Line | None  # None: the lines before the first Host
    lines: tuple[Line, ...]
    literal: frozenset[str] | None
    """The aliases a Host line names when none of its patterns is a wildcard or a negation:
    only those aliases need to read this block. None: every alias must."""


_HEADERS = {"host", "match", "include", "end-include"}


def _segments(lines: list[Line]) -> list[_Segment]:
    """The lines cut into blocks, each starting at a header (Host, Match, Include markers)."""
    cuts = [i for i, line in enumerate(lines) if line.keyword in _HEADERS]
    out = [_Segment(None, tuple(lines[: cuts[0] if cuts else len(lines)]), None)]
    for start, stop in zip(cuts, [*cuts[1:], len(lines)][: len(cuts)], strict=True):
        header = lines[start]
        literal = None
        if header.keyword == "host" and not any(c in "".join(header.args) for c in "*?!"):
            literal = frozenset(header.args)
        out.append(_Segment(header, tuple(lines[start + 1 : stop]), literal))
    return out


def _lines(path: Path, text: str, found: Parsed, depth: int) -> list[Line]:
    """The file's lines with Includes read in place, between `include` and `end-include`
    markers so that resolving can restore the including block's state after them."""
    out: list[Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"(\S+?)(?:\s*=\s*|\s+|$)(.*)$", stripped)
        keyword, rest = (match[1], match[2]) if match else (stripped, "")
        origin = Origin(path, number)
        try:
            args = tuple(shlex.split(rest, comments=True))
        except ValueError as error:
            found.errors.append(InventoryProblem(origin, None, f"cannot read this line: {error}"))
            continue
        if keyword.lower() != "include":
            out.append(Line(origin, keyword.lower(), args))
        elif depth >= MAX_INCLUDE_DEPTH:
            found.errors.append(InventoryProblem(origin, None, "Include nested too deeply"))
        else:
            out.append(Line(origin, "include", args))
            out += _included(origin, args, found, depth)
            out.append(Line(origin, "end-include", ()))
    return out


def _included(origin: Origin, patterns: tuple[str, ...], found: Parsed, depth: int) -> list[Line]:
    out: list[Line] = []
    for pattern in patterns:
        full = os.path.expanduser(pattern)
        if not os.path.isabs(full):
            full = os.path.join(os.path.expanduser("~/.ssh"), full)
        for included in sorted(glob.glob(full)):
            try:
                content = read_bounded(Path(included))
            except LimitError as error:
                problem = f"Include {included}: {error.problem}"
                found.errors.append(InventoryProblem(origin, None, problem))
                continue
            except (OSError, UnicodeDecodeError) as error:
                problem = f"cannot read Include {included}: {error}"
                found.errors.append(InventoryProblem(origin, None, problem))
                continue
            out += _lines(Path(included), content, found, depth + 1)
    return out


def _warn_unevaluated(line: Line, found: Parsed) -> None:
    names = {name for _, name, _ in criteria(line.args)}
    if unevaluated := sorted(names & UNEVALUATED):
        problem = (
            f"Match {', '.join(unevaluated)} needs a live connection: "
            "this block is skipped (ssh may apply it)"
        )
        found.warnings.append(InventoryProblem(line.origin, None, problem))
    elif unknown := sorted(names - EVALUATED - {"all"}):
        problem = f"Match {', '.join(unknown)} is not a criterion ssh knows: block skipped"
        found.warnings.append(InventoryProblem(line.origin, None, problem))


def _read(alias: str, segments: list[_Segment], blocks: Iterable[int]) -> _State:
    """Read the config for one alias, as ssh's readconf.c does, visiting only the blocks
    that can apply (a skipped literal Host block for other names leaves the state inactive).
    An Include in a block that does not apply is read with nothing in it matching (ssh's
    SSHCONF_NEVERMATCH)."""
    state = _State(alias)
    active, never, previous = True, False, -1
    saved: list[tuple[bool, bool]] = []
    for index in blocks:
        segment = segments[index]
        active = active and index == previous + 1
        previous = index
        header = segment.header
        if header is None:
            active = True
        elif header.keyword == "host":
            active = not never and host_matches(alias, header.args)
        elif header.keyword == "match":
            active = not never and _match_matches(state, header.args)
        elif header.keyword == "include":
            saved.append((active, never))
            never = never or not active
        else:  # end-include
            active, never = saved.pop()
        for line in segment.lines if active else ():
            if not line.args:
                continue
            if line.keyword == "identityfile":
                state.identities.append(line)
            elif line.keyword in KNOWN:
                state.values.setdefault(line.keyword, line)
    return state


def _match_matches(state: _State, args: tuple[str, ...]) -> bool:
    """A `Match` line: every criterion holds; one needing a live connection never does."""
    subjects = {
        "host": state.hostname,
        "originalhost": lambda: state.alias,
        "user": state.user,
        "localuser": local_user,
    }
    for negated, name, argument in criteria(args):
        if name == "all":
            continue
        if name not in subjects or argument is None:
            return False
        if pattern_list(subjects[name](), argument) == negated:
            return False
    return True


def _host(state: _State, origin: Origin, found: Parsed) -> HostSpec:
    values = state.values
    alias = state.alias
    port_line = values.get("port")
    port = parse_port(port_line.args[0], origin, alias, found) if port_line else 22
    jump = values["proxyjump"].args[0] if "proxyjump" in values else None
    tokens = {
        "h": state.hostname(),
        "r": state.user(),
        "p": str(port),
        "n": alias,
        "u": local_user(),
        "d": pwd.getpwuid(os.getuid()).pw_dir,
        "l": socket.gethostname().split(".")[0],
        "L": socket.gethostname(),
        "i": str(os.getuid()),
    }
    identities: list[str] = []
    for line in state.identities:
        if line.args[0].lower() == "none":
            continue
        identity = percent_expand(line.args[0], tokens)
        identities.append(identity)
        missing_identity(identity, line.origin, alias, found)
    return HostSpec(
        name=alias,
        address=state.hostname(),
        port=port,
        user=values["user"].args[0] if "user" in values else None,
        jump=None if jump is None or jump.lower() == "none" else jump,
        identity_files=tuple(dict.fromkeys(identities)),
        origin=origin,
    )
