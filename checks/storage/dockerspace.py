"""Docker's disk use (runbook S1): what `docker system df` says images, containers, volumes
and the build cache hold, what `docker system prune -f` would win back, and that prune.

The prune is the plain one: stopped containers, dangling images, unused networks and dangling
build cache. Never `-a` (it would take every image no container uses, and the next deploy
pulls them again) and never `--volumes` (volumes hold data). What those two would free is
shown, not offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from fleetdeck.checks.hostcheck import ShellCheck, StepFailed
from fleetdeck.checks.hostcheck import evidence as _evidence
from fleetdeck.checks.hostcheck import run as _run
from fleetdeck.checks.model import CheckContext, Evidence, Finding, Fix, Pin, Risk, Status
from fleetdeck.checks.storage.cleanup import parse_size
from fleetdeck.hosts.linux.procfs import ParseError
from fleetdeck.hosts.shell import CommandResult, Shell
from fleetdeck.hosts.units import human_bytes

DOMAIN = "storage"
RECLAIM_MAX = 1 << 30
RECLAIM_SHARE = 0.10
"""Warn when the prune would win back 1 GiB, or 10 % of the filesystem holding Docker's root
directory if that is less: below that, stopped containers are not yet worth a thought. The
`docker_reclaim` parameter (bytes) sets another level."""
DF_TIMEOUT = 90.0
"""`docker system df` sizes every container's writable layer: slow on a busy host."""

_STOPPED = ("--filter", "status=created", "--filter", "status=exited", "--filter", "status=dead")
_PIN_SCRIPT = (
    "set -e\n"
    f"c=$(docker ps -a -q --no-trunc {' '.join(_STOPPED)})\n"
    "i=$(docker images -q --no-trunc --filter dangling=true)\n"
    'printf \'stopped containers:\\n%s\\ndangling images:\\n%s\\n\' "$c" "$i"\n'
)
PIN_ARGV = ("sh", "-c", _PIN_SCRIPT)
"""A fixed script (nothing from the host pasted in): the ids the prune would remove."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGTPEZY]?)(i?)B\s*(?:\(\d+%\))?\s*$")
_POWERS = {"": 0, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6, "Z": 7, "Y": 8}


def parse_docker_size(text: str) -> int:
    """Docker's human sizes, `8.389MB`, `0B`, `1.2GB (50%)`: decimal units (go-units'
    HumanSize); binary ones (`KiB`) are read too."""
    match = _SIZE.match(text)
    if match is None:
        raise ParseError(f"not a docker size: {text!r}")
    number, prefix, binary = match.groups()
    return round(float(number) * (1024 if binary else 1000) ** _POWERS[prefix])


@dataclass(frozen=True, slots=True)
class DfRow:
    """One line of `docker system df`."""

    kind: str
    """Images, Containers, Local Volumes or Build Cache."""
    total: int
    active: int
    size: int
    reclaimable: int


def _row(kind: str, total: str, active: str, size: str, reclaimable: str) -> DfRow:
    if not (total.isdecimal() and active.isdecimal()):
        raise ParseError(f"docker system df: counts for {kind} are {total!r}, {active!r}")
    return DfRow(
        kind, int(total), int(active), parse_docker_size(size), parse_docker_size(reclaimable)
    )


def parse_df_json(text: str) -> list[DfRow]:
    """`docker system df --format '{{json .}}'`: one JSON object per line (docker 17.06 on)."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            rows.append(
                _row(
                    str(data["Type"]),
                    str(data["TotalCount"]),
                    str(data["Active"]),
                    str(data["Size"]),
                    str(data["Reclaimable"]),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ParseError(f"docker system df: {line[:80]!r}: {error}") from None
    if not rows:
        raise ParseError("docker system df printed nothing")
    return rows


_TABLE_ROW = re.compile(r"^(.+?)\s{2,}(\d+)\s+(\d+)\s+(\S+)\s+(\S+(?:\s\(\d+%\))?)\s*$")


def parse_df_table(text: str) -> list[DfRow]:
    """`docker system df` as a table (a CLI without `--format` for it)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("TYPE"):
        raise ParseError("docker system df: no TYPE header")
    rows = []
    for line in lines[1:]:
        match = _TABLE_ROW.match(line)
        if match is None:
            raise ParseError(f"docker system df: {line[:80]!r}")
        rows.append(_row(*match.groups()))
    return rows


@dataclass(frozen=True, slots=True)
class PruneList:
    """What the prune would remove, by id (the pin's text, parsed)."""

    containers: tuple[str, ...]
    images: tuple[str, ...]


def parse_prune_list(text: str) -> PruneList:
    containers: list[str] = []
    images: list[str] = []
    into = None
    for line in text.splitlines():
        if line == "stopped containers:":
            into = containers
        elif line == "dangling images:":
            into = images
        elif line.strip() and into is not None:
            into.append(line.strip())
    return PruneList(tuple(containers), tuple(images))


def prune_frees(rows: Sequence[DfRow], dangling: int) -> int:
    """What `docker system prune -f` frees, by docker's own figures: stopped containers'
    layers, the build cache docker calls reclaimable, and the dangling images (`dangling`,
    their sizes, at most what docker counts reclaimable in images)."""
    by = {row.kind: row for row in rows}
    images = by.get("Images")
    cut = min(dangling, images.reclaimable) if images else 0
    return sum(by[k].reclaimable for k in ("Containers", "Build Cache") if k in by) + cut


def _level(text: str, name: str) -> int:
    """A size parameter, parsed again: a caller may hand it over as typed (`500M`)."""
    try:
        return int(parse_size(text))
    except ValueError as error:
        raise StepFailed(f"{name} {text!r}: {error}") from None


def _why(result: CommandResult) -> str:
    """Docker's own message: its last line (warnings about config files come first)."""
    lines = [line for line in (result.stderr or result.stdout).strip().splitlines() if line]
    return lines[-1] if lines else f"exit status {result.exit_status}"


async def _df(shell: Shell) -> tuple[CommandResult, list[DfRow]]:
    result = await _run(shell, ("docker", "system", "df", "--format", "{{json .}}"), DF_TIMEOUT)
    if result.ok:
        return result, parse_df_json(result.stdout)
    if "unknown flag" in result.stderr:  # an old CLI: the table it prints is parsed instead
        result = await _run(shell, ("docker", "system", "df"), DF_TIMEOUT)
        if result.ok:
            return result, parse_df_table(result.stdout)
    return result, []


_NO_DAEMON = re.compile(r"Cannot connect to the Docker daemon at unix://(/\S+?)\.? Is the docker")
DEFAULT_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock"})
"""Where a docker CLI left to its defaults looks for the engine."""


async def _no_engine(shell: Shell, df: CommandResult) -> str | None:
    """Why there is no engine to ask, where the CLI looked in the default place and found no
    socket at all (as the container checks' "no Docker on this host"): a socket that is
    there but does not answer, or one set by DOCKER_HOST or a context, is the engine's
    trouble, not its absence."""
    said = _NO_DAEMON.search(df.stderr)
    if said is None or said[1] not in DEFAULT_SOCKETS:
        return None
    exists = await _run(shell, ("test", "-e", said[1]))
    return f"{said[1]} does not exist" if exists.exit_status == 1 else None


async def _dangling_sizes(shell: Shell) -> int:
    argv = ("docker", "images", "--filter", "dangling=true", "--format", "{{.Size}}")
    result = await _run(shell, argv, 30)
    if not result.ok:
        raise StepFailed(f"docker cannot list dangling images: {_why(result)}")
    return sum(parse_docker_size(line) for line in result.stdout.split())


async def _root(shell: Shell) -> tuple[str, int | None]:
    """Docker's root directory and the size of the filesystem holding it."""
    info = await _run(shell, ("docker", "info", "--format", "{{.DockerRootDir}}"), 30)
    root = info.stdout.strip() if info.ok else ""
    if not root.startswith("/"):
        return "", None
    df = await _run(shell, ("df", "-P", "-B1", root))
    fields = df.stdout.splitlines()[-1].split() if df.ok and df.stdout else []
    return root, int(fields[1]) if len(fields) > 1 and fields[1].isdecimal() else None


def _describe(rows: Sequence[DfRow]) -> str:
    names = {"Images": "images", "Containers": "containers", "Local Volumes": "volumes"}
    return ", ".join(f"{names.get(r.kind, r.kind.lower())} {human_bytes(r.size)}" for r in rows)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


async def _check_docker_space(ctx: CheckContext, shell: Shell) -> list[Finding]:
    df, rows = await _df(shell)
    if df.exit_status == 127:
        summary = f"no docker CLI on {ctx.host}"
        return [Finding("docker.space", Status.OK, ctx.host, summary, (_evidence(df),))]
    if not df.ok and (absent := await _no_engine(shell, df)) is not None:
        summary = f"no Docker engine on {ctx.host}: {absent}, and only the docker CLI is installed"
        return [Finding("docker.space", Status.OK, ctx.host, summary, (_evidence(df),))]
    if not df.ok:
        summary = f"docker on {ctx.host} does not answer: {_why(df)}"
        return [Finding("docker.space", Status.UNKNOWN, ctx.host, summary, (_evidence(df),))]
    listed = await _run(shell, PIN_ARGV, 30)
    if not listed.ok:
        raise StepFailed(f"docker cannot list stopped containers and images: {_why(listed)}")
    pinned = listed.stdout.strip()
    doomed = parse_prune_list(pinned)
    dangling = await _dangling_sizes(shell) if doomed.images else 0
    frees = prune_frees(rows, dangling)
    root, fs_size = await _root(shell)
    target = root or ctx.host
    limit = min(RECLAIM_MAX, int(fs_size * RECLAIM_SHARE)) if fs_size else RECLAIM_MAX
    if ctx.params.get("docker_reclaim"):
        limit = _level(ctx.params["docker_reclaim"], "docker_reclaim")
    evidence = (_evidence(df), Evidence("docker: what a prune removes", pinned))
    what = f"{_plural(len(doomed.containers), 'stopped container')}, "
    what += _plural(len(doomed.images), "dangling image")
    summary = f"Docker uses {human_bytes(sum(row.size for row in rows))} ({_describe(rows)}); "
    summary += f"docker system prune would free about {human_bytes(frees)} ({what})"
    by = {row.kind: row for row in rows}
    unused = (
        by["Images"].reclaimable - min(dangling, by["Images"].reclaimable) if "Images" in by else 0
    )
    volumes = by["Local Volumes"].reclaimable if "Local Volumes" in by else 0
    left = [f"{human_bytes(unused)} in unused images (prune -a)"] if unused > 0 else []
    left += [f"{human_bytes(volumes)} in unused volumes (--volumes)"] if volumes > 0 else []
    if left:
        summary += f"; not offered: {', '.join(left)}"
    summary += f"; it warns at {human_bytes(limit)}"
    if frees < limit or frees <= 0:
        return [Finding("docker.space", Status.OK, target, summary, evidence)]
    fix = Fix(
        id="docker.space.prune",
        title=f"docker system prune on {ctx.host}: {what}",
        risk=Risk.DESTRUCTIVE,
        commands=(("docker", "system", "prune", "-f"),),
        target=target,
        pin=Pin("the stopped containers and dangling images (ids)", PIN_ARGV, pinned),
        verify="docker.space",
        frees=frees if root else None,
        frees_on=root,
        timeout=600.0,
        impact=(
            f"deletes for good {what} (ids in the evidence), every unused network and the "
            f"dangling build cache; frees about {human_bytes(frees)} by docker system df's "
            "figures. A stopped container's logs and files go with it. Running containers, "
            "tagged images and volumes are kept."
        ),
    )
    return [Finding("docker.space", Status.WARN, target, summary, evidence, (fix,))]


DOCKER_SPACE = ShellCheck("docker.space", "Docker disk use", _check_docker_space, DOMAIN)
