"""Masking secrets in text a person or a file will see: query text from pg_stat_activity,
commands and messages in the audit log, connection strings in errors.

One function, `redact`, for the database pane, the wizards and the audit log, so a form of
password one of them knows is known to all. It masks, in order: values the caller knows to be
secret; the password in a URL (`postgres://user:pw@host`); a password literal after the SQL
keyword PASSWORD in every form PostgreSQL accepts (`'..'`, `E'..'`, `U&'..'`, `$$..$$`,
`$tag$..$tag$`, with comments before it, nested or not, a constant continued on the next
line, backslash escapes); and `password=...`-like settings (conninfo strings, environment
variables, JSON keys). Query text is any database user's to write, so every pattern here
costs linear time on any text (the literals are found by a scan, not one expression).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_URL = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]{0,31}://[^\s:/@]{1,256}:)(?:(?!://)[^\s@]){1,1024}(?P<tail>@)",
    re.I,
)
"""scheme://user:password@host: the password may hold any character but space and @ (and
does not run into the next URL). Each part is bounded, and a try ends at the next `://`, so
text of many URL starts costs linear time, never quadratic."""

_KEYWORD = re.compile(r'\bpassword|"password"', re.I)
"""PASSWORD before its literal: ALTER ROLE .. [ENCRYPTED] PASSWORD <literal>; a foreign
server's OPTIONS (password <literal>), its option name quoted or not."""
_COMMENT_MARK = re.compile(r"/\*|\*/")
_QUOTED = r"'(?:[^'\\]|\\.|'')*(?P<closed>')?"
"""'..' with '' inside, and backslash escapes too (E'..', or any literal where
standard_conforming_strings is off): at worst a few characters after a backslash are masked
with it, never a password shown. A literal cut short (pg_stat_activity keeps the first
track_activity_query_size bytes) is masked to its end."""
_STRING = re.compile(rf"(?:[eE]|[uU]&)?{_QUOTED}")  # U&'..' (a UESCAPE clause follows)
_CONTINUED = re.compile(_QUOTED)
_DOLLAR = re.compile(r"\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*|)\$.*?(?:\$(?P=tag)\$|\Z)", re.S)
"""$$..$$ and $tag$..$tag$."""

_WORDS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|auth)"
_SETTING = re.compile(
    rf"(?P<head>(?<![\w.-])[\w.-]{{0,64}}{_WORDS}[\w.-]{{0,64}}"
    r"[\"']?[ \t]{0,16}[=:][ \t]{0,16})"
    r"(?:(?P<q>''|[\"'])(?:\\.|(?!(?P=q)).)*(?P=q)?|[^\s\"',;&)]+)",
    re.I | re.S,
)
"""password=x, PGPASSWORD=x, "token": "x", password='a b' (a conninfo's quoted value, its
quotes doubled when the conninfo is itself inside an SQL literal)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secrets masked: known values verbatim, then anything shaped like one."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL.sub(rf"\g<head>{MASK}\g<tail>", text)
    text = _sql_passwords_masked(text)
    return _SETTING.sub(_masked_setting, text)


def _masked_setting(match: re.Match[str]) -> str:
    """A setting's value masked, its quotes kept: `password: '***'`."""
    quote = match["q"] or ""
    return f"{match['head']}{quote}{MASK}{quote}"


def _sql_passwords_masked(text: str) -> str:
    """Each literal after the keyword PASSWORD replaced by '***'. Scanned, not one regular
    expression: the white space and comments (which nest) between keyword and literal made
    one backtrack exponentially (`PASSWORD /**/ /**/ ...` of 150 bytes took minutes)."""
    kept: list[str] = []
    done = 0
    at = 0
    while keyword := _KEYWORD.search(text, at):
        start = _past_gap(text, keyword.end())
        end = _literal_end(text, start)
        if end is None:
            at = max(start, keyword.end())  # a keyword inside the gap's comments is no keyword
            continue
        kept += [text[done:start], f"'{MASK}'"]
        done = at = end
    return "".join(kept) + text[done:]


def _past_gap(text: str, at: int, *, block_comments: bool = True) -> int:
    """Where the next token starts after `at`: past white space, `--` comments and, unless
    told not to, /* */ comments, which nest in PostgreSQL."""
    while at < len(text):
        if text[at].isspace():
            at += 1
        elif text.startswith("--", at):
            newline = text.find("\n", at)
            at = len(text) if newline < 0 else newline + 1
        elif block_comments and text.startswith("/*", at):
            at = _comment_end(text, at)
        else:
            break
    return at


def _comment_end(text: str, at: int) -> int:
    """The end of the /* comment that starts at `at` (its nested comments within it)."""
    depth = 0
    for mark in _COMMENT_MARK.finditer(text, at):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return len(text)


def _literal_end(text: str, at: int) -> int | None:
    """The end of the string constant that starts at `at`, or None if none does. Constants
    separated by white space holding a newline are one constant in SQL ('pass'\n'word')."""
    if dollar := _DOLLAR.match(text, at):
        return dollar.end()
    string = _STRING.match(text, at)
    if string is None:
        return None
    end = string.end()
    while string["closed"]:
        after = _past_gap(text, end, block_comments=False)
        if "\n" not in text[end:after] or not text.startswith("'", after):
            break
        string = _CONTINUED.match(text, after)
        assert string is not None  # it starts with a quote
        end = string.end()
    return end
