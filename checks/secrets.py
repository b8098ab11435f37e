"""Masking secrets in text a person or a file will see: query text from pg_stat_activity,
commands and messages in the audit log, connection strings in errors.

One function, `redact`, for the database pane, the wizards and the audit log, so a form of
password one of them knows is known to all. It masks, in order: values the caller knows to be
secret; the password in a URL (`postgres://user:pw@host`); a password literal after the SQL
keyword PASSWORD in every form PostgreSQL accepts (`'..'`, `E'..'`, `U&'..'`, `$$..$$`,
`$tag$..$tag$`, with comments before it); and `password=...`-like settings (conninfo
strings, environment variables, JSON keys).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

_URL = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]{0,31}://[^\s:/@]{1,256}:)[^\s@]{1,1024}(?P<tail>@)", re.I
)
"""scheme://user:password@host: the password may hold any character but space and @. Each
part is bounded, so a long run of text costs linear time, never quadratic."""

_GAP = r"(?:\s|--[^\n]{0,1024}(?:\n|$)|/\*.{0,1024}?\*/)*"
"""What may stand between PASSWORD and its literal: white space and comments of both kinds
(bounded, so text full of unclosed comments costs linear time)."""
_LITERAL = (
    r"(?:[eE]'(?:[^'\\]|\\.|'')*'?"  # E'..', backslash escapes
    r"|[uU]&'(?:[^']|'')*'?"  # U&'..' (its UESCAPE clause, if any, follows)
    r"|'(?:[^']|'')*'?"  # '..', '' inside
    r"|\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*|)\$.*?(?:\$(?P=tag)\$|\Z))"  # $$..$$, $tag$..$tag$
)
_SQL_PASSWORD = re.compile(rf"(?P<head>\bpassword{_GAP})(?:{_LITERAL})", re.I | re.S)
"""ALTER ROLE .. [ENCRYPTED] PASSWORD <literal>; OPTIONS (password <literal>). A literal cut
short (pg_stat_activity keeps the first track_activity_query_size bytes) is masked to its end."""

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
    text = _SQL_PASSWORD.sub(rf"\g<head>'{MASK}'", text)
    return _SETTING.sub(_masked_setting, text)


def _masked_setting(match: re.Match[str]) -> str:
    """A setting's value masked, its quotes kept: `password: '***'`."""
    quote = match["q"] or ""
    return f"{match['head']}{quote}{MASK}{quote}"
