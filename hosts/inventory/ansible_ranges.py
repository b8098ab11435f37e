"""Host patterns as Ansible expands them: `web[01:03]`, `db-[a:c]`, `[1:9:2]`, `host:2222`.

The same rules as Ansible's `expand_hostname_range` (zero padding from the begin's width,
letters from `string.ascii_letters`, the same refusals), sized before anything is built so
that a pattern past `hosts.inventory.limits.MAX_HOSTS_PER_RANGE` costs nothing.
"""

from __future__ import annotations

import re
import string

from fleetdeck.hosts.inventory.limits import MAX_HOSTS_PER_RANGE, LimitError


def split_port(pattern: str) -> tuple[str, int | None]:
    """`web[1:3]:2222` -> (`web[1:3]`, 2222); a colon inside a range is not a port."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|(.+):(\d+)", pattern)
    if not match:
        return pattern, None
    if match[1] is not None:
        return match[1], int(match[2])
    if ":" in re.sub(r"\[[^\]]*\]", "", match[3]):
        return pattern, None  # an IPv6 address, whose last group only looks like a port
    return match[3], int(match[4])


def expand(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03; `x[a:c]` -> xa, xb, xc; `[1:9:4]` -> 1, 5, 9.

    Sized before it is built: past MAX_HOSTS_PER_RANGE it raises LimitError (line unknown
    here) and a range Ansible would refuse raises ValueError with Ansible's reason.
    """
    parts: list[str | list[str]] = []
    rest, total = pattern, 1
    while "[" in rest:
        head, _, tail = rest.partition("[")
        spec, closed, rest = tail.partition("]")
        if not closed:
            raise ValueError(f"host range {pattern!r} has no closing ']'")
        seq = _range(spec)
        total *= len(seq)
        if total > MAX_HOSTS_PER_RANGE:
            raise LimitError(None, f"{pattern} expands past {MAX_HOSTS_PER_RANGE:,} hosts")
        parts += [head, seq]
    names = [""]
    for part in [*parts, rest]:
        if isinstance(part, str):
            names = [name + part for name in names]
        else:
            names = [name + item for name in names for item in part]
    return names


def _range(spec: str) -> list[str]:
    """One `[begin:end:step]` as Ansible reads it: numbers (zero-padded to the begin's width
    when it starts with 0) or single letters."""
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError("host range must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if not end:
        raise ValueError("host range must specify end value")
    if step == 0:
        raise ValueError("host range step cannot be zero")
    width = len(begin) if begin[0] == "0" and len(begin) > 1 else 0
    if width and width != len(end):
        raise ValueError("host range must specify equal-length begin and end formats")
    if begin in string.ascii_letters and end in string.ascii_letters:
        first, last = string.ascii_letters.index(begin), string.ascii_letters.index(end)
        if first > last:
            raise ValueError("host range must have begin <= end")
        return list(string.ascii_letters[first : last + 1 : step])
    numbers = range(int(begin), int(end) + 1, step)
    if len(numbers) > MAX_HOSTS_PER_RANGE:  # sized before it is built
        raise LimitError(None, f"[{spec}] expands past {MAX_HOSTS_PER_RANGE:,} hosts")
    return [str(n).zfill(width) for n in numbers]
