"""The one masking function (checks.secrets.redact) on each form of password PostgreSQL
accepts, on URLs and settings, and on text built to make a regular expression backtrack.
The real sessions holding such text are in tests/test_hostile_pg.py."""

from __future__ import annotations

import time

import pytest

from fleetdeck.checks.secrets import redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("ALTER ROLE app PASSWORD 'it''s'", "ALTER ROLE app PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD E'it\\'s'", "ALTER ROLE app PASSWORD '***'"),
        (
            "ALTER ROLE app PASSWORD $$it's$$ VALID UNTIL 'x'",
            "ALTER ROLE app PASSWORD '***' VALID UNTIL 'x'",
        ),
        ("ALTER ROLE app PASSWORD $pw$a$$b$pw$", "ALTER ROLE app PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD U&'d\\0061t'", "ALTER ROLE app PASSWORD '***'"),
        ("alter role app password /* 'x' */ 'pw'", "alter role app password /* 'x' */ '***'"),
        ("ALTER ROLE app PASSWORD -- why\n 'pw'", "ALTER ROLE app PASSWORD -- why\n '***'"),
        ("CREATE ROLE a ENCRYPTED PASSWORD 'pw'", "CREATE ROLE a ENCRYPTED PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD 'cut sho", "ALTER ROLE app PASSWORD '***'"),
        ("ALTER ROLE app PASSWORD NULL", "ALTER ROLE app PASSWORD NULL"),
        ("OPTIONS (user 'a', password 'pw')", "OPTIONS (user 'a', password '***')"),
        ("dblink('postgres://u:p/w@h/db')", "dblink('postgres://u:***@h/db')"),
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "dblink_connect('host=a password=pw user=b')",
            "dblink_connect('host=a password=*** user=b')",
        ),
        ("dblink_connect('password=''a b'' host=a')", "dblink_connect('password=''***'' host=a')"),
        ("PGPASSWORD=pw psql", "PGPASSWORD=*** psql"),
        ('{"api_key": "a b"}', '{"api_key": "***"}'),
        ("SELECT 1 -- no secret here", "SELECT 1 -- no secret here"),
        ("PASSWORD /* a /* b */ 'x' */ 'pw' VALID", "PASSWORD /* a /* b */ 'x' */ '***' VALID"),
        ("PASSWORD 'p' -- c\n  'w' VALID UNTIL 'x'", "PASSWORD '***' VALID UNTIL 'x'"),
        ("PASSWORD 'p' 'w'", "PASSWORD '***' 'w'"),  # one line: no continuation, an error
        ("PASSWORD 'p\\'w'", "PASSWORD '***'"),  # standard_conforming_strings off
        ("PASSWORD E'p\\\\' VALID", "PASSWORD '***' VALID"),
        ("PASSWORD ''", "PASSWORD '***'"),
        ("password password 'pw'", "password password '***'"),
        ("PASSWORD NULL; SELECT 'shown'", "PASSWORD NULL; SELECT 'shown'"),
        ("OPTIONS (\"password\" 'pw')", "OPTIONS (\"password\" '***')"),
    ],
)
def test_each_form_of_a_password_is_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_known_secrets_are_masked_wherever_they_stand() -> None:
    assert redact("run with s3cr3t-value now", ["s3cr3t-value", "abc"]) == "run with *** now"


@pytest.mark.parametrize(
    "text",
    [
        "a://b:" + "c" * 50_000,
        "a://b:" * 10_000,
        "a://b:" * 100_000,  # 600 KB: a query as long as track_activity_query_size allows
        "a" * 50_000,
        "password" * 10_000,
        "password/*" * 5_000,
        "password--" * 5_000,
        "password " * 10_000,
        "password '" + "''" * 20_000,
        '"password" : ' * 5_000,
        "PASSWORD " + "/**/ " * 10_000 + "x",
        "password /*" * 5_000,
        "password " + "/*" * 20_000,
        "password 'a'\n" * 5_000,
        "password -- x\n" * 5_000,
        "password '" + "\\" * 50_000,
    ],
)
def test_masking_takes_linear_time_on_text_built_to_backtrack(text: str) -> None:
    """Query text and command output are the host's to choose: 50 KB of it must never
    stall the console (before the bounds, `a://b:ccc...` took minutes, and before the
    comments were scanned `PASSWORD /**/ /**/ ... x`, 40 comments long, took hours)."""
    started = time.monotonic()
    redact(text)
    assert time.monotonic() - started < 1.0
