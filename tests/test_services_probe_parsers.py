"""The services probes' parsers on recorded host output (tests/data/services), and held by
property tests to their contract: any text gives data or ParseError, never another error."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetdeck.checks.services.probe_config import parse_probes
from fleetdeck.checks.settings import Limit, value_error
from fleetdeck.hosts.certs import read_certificates
from fleetdeck.hosts.linux.accesslog import parse_access_log
from fleetdeck.hosts.linux.authlog import line_time, parse_failed_logins
from fleetdeck.hosts.linux.limits import (
    parse_fd_counts,
    parse_file_nr,
    parse_grep_values,
    parse_open_files_limit,
    parse_process_limits,
)
from fleetdeck.hosts.linux.netstat import parse_proc_netstat, parse_ss_listeners
from fleetdeck.hosts.linux.ping import parse_ping
from fleetdeck.hosts.linux.procfs import ParseError

DATA = Path(__file__).parent / "data" / "services"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_recorded_netstat_ss_limits_file_nr_and_ping() -> None:
    counters = parse_proc_netstat(recorded("proc-net-netstat.txt"))
    assert {"TcpExtListenOverflows", "TcpExtListenDrops", "IpExtInOctets"} <= set(counters)
    listeners = parse_ss_listeners(recorded("ss-ltnH.txt"))
    assert any(x.local == "0.0.0.0:2024" and x.backlog == 128 for x in listeners)
    assert parse_open_files_limit(recorded("proc-limits.txt")) == (65536, 65536)
    files = parse_file_nr(recorded("file-nr.txt"))
    assert (files.allocated, files.maximum) == (2038, 2466239)
    ping = parse_ping(recorded("ping.txt"))
    assert (ping.sent, ping.received, ping.loss, len(ping.times)) == (5, 5, 0.0, 5)
    assert ping.rtt is not None and ping.jitter is not None


def test_recorded_sshd_lines_count_each_failed_connection_once_within_the_hour() -> None:
    text = recorded("auth.log")
    now = line_time(text.splitlines()[-1], 0)
    assert now is not None
    failures = parse_failed_logins(text, now - 3600, now)
    assert [(f.user, f.address) for f in failures] == [("root", "10.231.126.1")] * 3
    assert len({f.port for f in failures}) == 3
    # The whole file, the two-hours-old password failure included.
    assert len(parse_failed_logins(text, 0, now)) == 4


def test_classic_syslog_times_take_the_year_that_puts_them_in_the_past() -> None:
    new_year = datetime(2027, 1, 1, 0, 5, tzinfo=UTC).timestamp()
    when = line_time("Dec 31 23:59:00 h sshd[1]: x", new_year)
    assert when == datetime(2026, 12, 31, 23, 59, tzinfo=UTC).timestamp()
    assert line_time("Feb 30 10:00:00 h sshd[1]: x", new_year) is None


def test_access_log_lines_of_other_formats_are_left_out() -> None:
    text = (
        '10.0.0.7 - - [07/Dec/2026:21:00:00 +0000] "GET /a HTTP/1.1" 401 5 "-" "curl"\n'
        '10.0.0.8 - bob [07/Dec/2026:21:00:01 +0100] "GET /b \\"q\\" HTTP/1.1" 200 5\n'
        "127.0.0.1 - - [07/Dec/2026 21:00:00] GET / 200\n"
    )
    found = parse_access_log(text, 0)
    assert [(r.address, r.status) for r in found] == [("10.0.0.7", 401), ("10.0.0.8", 200)]


def test_process_limits_sections_and_descriptor_counts() -> None:
    limits = recorded("proc-limits.txt")
    found = parse_process_limits(f"==> 12 nginx\n{limits}==> 13 gone\n==> x bad\n")
    assert list(found) == [12] and found[12].name == "nginx" and found[12].soft == 65536
    assert parse_fd_counts("   3000 12\n      4 13\nnoise\n") == {12: 3000, 13: 4}
    values = parse_grep_values("/proc/sys/net/core/somaxconn:4096\n/proc/sys/fs/file-nr:1\t0\t9\n")
    assert values == {"/proc/sys/net/core/somaxconn": "4096", "/proc/sys/fs/file-nr": "1\t0\t9"}


@given(st.text())
def test_parsers_never_raise_but_parse_error(text: str) -> None:
    for strict in (parse_proc_netstat, parse_ping, parse_file_nr, parse_open_files_limit):
        with contextlib.suppress(ParseError):
            strict(text)
    parse_ss_listeners(text)
    parse_fd_counts(text)
    parse_process_limits(text)
    parse_grep_values(text)
    parse_access_log(text, 0)
    parse_failed_logins(text, 0, 2e9)


@given(st.lists(st.sampled_from(recorded("auth.log").splitlines()), max_size=40), st.text())
def test_failed_logins_never_outnumber_connections_whatever_is_mixed_in(
    lines: list[str], noise: str
) -> None:
    text = "\n".join([*lines, noise])
    failures = parse_failed_logins(text, 0, 2e9)
    assert len(failures) == len({(f.address, f.port) for f in failures}) <= len(lines) + 1


@given(st.text(max_size=300))
def test_certificate_reader_says_value_error_or_reads(text: str) -> None:
    pem = f"-----BEGIN CERTIFICATE-----\n{text}\n-----END CERTIFICATE-----"
    with contextlib.suppress(ValueError):
        read_certificates(pem)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"http": [{"url": "ftp://x/"}]}, "services.http[0].url: expected an http:// or https://"),
        ({"http": [{"expect": 200}]}, "services.http[0].url: missing"),
        ({"http": [{"url": "http://a/", "warn_ms": 900, "crit_ms": 100}]}, "warn_ms (900)"),
        ({"tls": [{"endpoint": "a:443", "files": ["/x"]}]}, "services.tls[0]: give either"),
        ({"tls": [{"endpoint": "a"}]}, "services.tls[0].endpoint: expected HOST:PORT"),
        ({"tls": [{"files": ["/etc/*/x.pem"]}]}, "only the last part of the path may be"),
        ({"security": {"failed": 3}}, "services.security.failed: unknown key"),
        ({"limits": {"fds": {"warn": 120}}}, "services.limits.fds.warn: a percentage"),
        ({"groups": {"web": {"http": {"url": "http://a/"}}}}, "services.groups.web.http:"),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=None) as raised:
        parse_probes(table, value_error)
    assert problem in str(raised.value), raised.value


def test_settings_add_up_from_everyone_through_groups_to_the_host() -> None:
    config = parse_probes(
        {
            "units": ["nginx"],  # the other reader's key: left alone here
            "http": [{"url": "http://127.0.0.1:8080/health", "body": "ok"}],
            "security": {"failed_logins": {"warn": 5}},
            "groups": {
                "web": {
                    "http": [{"url": "https://127.0.0.1/health", "expect": 204}],
                    "limits": {"fds": {"warn": 60, "crit": 90}},
                }
            },
            "hosts": {
                "web-01": {
                    "tls": [{"endpoint": "[::1]:8443", "name": "api.test"}],
                    "security": {"access_logs": ["/var/log/nginx/access.log"]},
                }
            },
        },
        value_error,
    )
    host = config.for_host("web-01", ["web"])
    assert [e.url for e in host.http] == [
        "http://127.0.0.1:8080/health",
        "https://127.0.0.1/health",
    ]
    assert host.http[1].expect == 204 and host.http[0].body == "ok"
    assert host.tls[0].endpoint == "[::1]:8443" and host.tls[0].warn_days == 30
    assert host.limits.fds == Limit(60, 90)
    assert host.security.failed_logins == Limit(5, 100)
    assert host.security.access_logs == ("/var/log/nginx/access.log",)
    assert config.for_host("db-01").http == config.everyone.http
