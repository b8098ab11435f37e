"""OpenSSH's pattern rules, as readconf.c and match.c apply them: `Host` patterns, `Match`
pattern-lists and criteria, and %-token expansion. Pure functions, for `hosts.inventory.ssh_config`.
"""

from __future__ import annotations

import re

NO_ARGUMENT = {"all", "canonical", "final"}


def criteria(args: tuple[str, ...]) -> list[tuple[bool, str, str | None]]:
    """A `Match` line's criteria: (negated, name, argument); `all`, `canonical` and `final`
    take no argument."""
    words, out = list(args), []
    while words:
        word = words.pop(0)
        name = word.lstrip("!").lower()
        argument = None if name in NO_ARGUMENT or not words else words.pop(0)
        out.append((word.startswith("!"), name, argument))
    return out


def wildcard(name: str, pattern: str, fold: bool = False) -> bool:
    """ssh's match_pattern: `*` and `?` only (`[` is an ordinary character).

    Matched greedily with one remembered star, in time linear in name x pattern: a pattern
    such as `*a*a*a*a*b` cannot make it backtrack for ever, as a regular expression would.
    """
    if fold:
        name, pattern = name.lower(), pattern.lower()
    if "*" not in pattern and "?" not in pattern:
        return name == pattern
    at = step = 0
    star, resume = -1, 0
    while at < len(name):
        if step < len(pattern) and pattern[step] in ("?", name[at]):
            at, step = at + 1, step + 1
        elif step < len(pattern) and pattern[step] == "*":
            star, resume, step = step, at, step + 1
        elif star >= 0:
            resume += 1
            at, step = resume, star + 1
        else:
            return False
    return pattern[step:].strip("*") == ""


def host_matches(alias: str, patterns: tuple[str, ...]) -> bool:
    """A `Host` line: some pattern matches the alias and no negated one does."""
    positive = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if wildcard(alias, pattern[1:]):
                return False
        elif wildcard(alias, pattern):
            positive = True
    return positive


def pattern_list(name: str, patterns: str) -> bool:
    """ssh's match_pattern_list (case-insensitive): comma-separated, `!` negates."""
    positive = False
    for pattern in patterns.split(","):
        if pattern.startswith("!"):
            if wildcard(name, pattern[1:], fold=True):
                return False
        elif wildcard(name, pattern, fold=True):
            positive = True
    return positive


def percent_expand(text: str, tokens: dict[str, str]) -> str:
    """ssh's percent_expand for the tokens given; `%%` is a percent sign, others stay."""
    return re.sub(r"%(.)", lambda m: "%" if m[1] == "%" else tokens.get(m[1], m[0]), text)
