"""`[[sources.prometheus]]` and `[[sources.alertmanager]]` in the settings file: read with
their credentials' file or variable names (never a secret), and every mistake named by file,
line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetdeck.checks.config import ConfigError, load_config
from fleetdeck.checks.sources.config import pick_prometheus

GOOD = """\
[thresholds.cpu]
warn = 60

[[sources.prometheus]]
url = "http://prom.example:9090/"
token_file = "/etc/fleetdeck/prom.token"
job = "nodes"

[[sources.alertmanager]]
url = "https://am.example:9093"
username = "fleetdeck"
password_env = "AM_PASSWORD"
timeout = 5
"""


def test_sources_are_read_with_where_their_secrets_are(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD)
    sources = load_config(path).sources
    [prom] = sources.prometheus
    assert prom.http.url == "http://prom.example:9090" and prom.job == "nodes"
    assert prom.http.auth.token_file == Path("/etc/fleetdeck/prom.token")
    [am] = sources.alertmanager
    assert (am.url, am.timeout) == ("https://am.example:9093", 5.0)
    assert (am.auth.username, am.auth.password_env) == ("fleetdeck", "AM_PASSWORD")
    assert pick_prometheus(sources, None) == prom
    assert pick_prometheus(sources, "http://prom.example:9090") == prom
    other = pick_prometheus(sources, "http://other:9090/")
    assert other is not None and other.http.url == "http://other:9090" and other.job == "node"


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ('[[sources.prometheus]]\nurl = "http://u:secret@p:9090"\n', 2, "sources.prometheus[0].url",
         "no password in the URL"),
        ('[[sources.prometheus]]\nurl = "ftp://p"\n', 2, "sources.prometheus[0].url", "http://"),
        ('[[sources.prometheus]]\nurl = "http://p"\npassword = "x"\n', 3,
         "sources.prometheus[0].password", "unknown key"),
        ('[[sources.alertmanager]]\nurl = "http://a"\ntoken_file = "/t"\ntoken_env = "T"\n', 4,
         "sources.alertmanager[0].token_env", "not both"),
        ('[[sources.alertmanager]]\nurl = "http://a"\npassword_file = "/p"\n', 1,
         "sources.alertmanager[0]", "no username"),
        ('[[sources.alertmanager]]\nurl = "http://a"\ntimeout = 0\n', 3,
         "sources.alertmanager[0].timeout", "expected seconds"),
        ('[[sources.prometheus]]\nurl = "http://p"\n[[sources.prometheus]]\nurl = "ftp://q"\n', 4,
         "sources.prometheus[1].url", "http://"),
        ("[[sources.grafana]]\nurl = 'http://g'\n", 1, "sources.grafana", "unknown source"),
        ('[sources]\nprometheus = "http://p"\n', 2, "sources.prometheus", "[[sources.prometheus]]"),
    ],
)  # fmt: skip
def test_a_broken_source_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, problem: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.path, error.line, error.key) == (path, line, key), str(error)
    assert problem in error.problem
    assert "secret" not in str(error)
