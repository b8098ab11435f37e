"""Hostile or careless inventory and settings files are refused with `FILE:LINE: ...` and the
documented exit status, in bounded time and memory: never a traceback, a hang or gigabytes.

Each file is read by the real `fleetdeck` in a child process whose address space is capped
(RLIMIT_AS) and which must finish within a timeout; before these bounds, `web[01:99999999]`
took 5.1 GB in 20 s and a self-referencing YAML alias never finished.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetdeck.checks.config import ConfigError, parse_config
from fleetdeck.hosts.inventory.limits import (
    MAX_FILE_BYTES,
    MAX_HOSTS,
    MAX_HOSTS_PER_RANGE,
    MAX_NAMES_EXPANDED,
    MAX_NESTING,
    MAX_YAML_NODES,
)
from fleetdeck.hosts.inventory.load import load_inventory
from fleetdeck.hosts.inventory.records import InventoryError

from conftest import fleetdeck_bin

EXAMPLES = 100_000 if os.environ.get("FLEETDECK_FUZZ") == "deep" else 300
"""Random files per reader property test: 300 in the suite, 100,000 with FLEETDECK_FUZZ=deep,
the same switch as the host-output parsers' (tests/test_parser_bytes.py)."""
MEMORY_CAP = 512 * 2**20  # fleetdeck itself needs under 256 MiB
TIME_CAP = 60.0  # seconds, on a loaded 2-core machine; each case takes about one


def run_capped(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`fleetdeck ARGS` with its address space capped; its result and how long it took."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    started = time.monotonic()
    done = subprocess.run(
        [fleetdeck_bin(), *args],
        capture_output=True,
        text=True,
        timeout=TIME_CAP,
        preexec_fn=cap,
    )
    return done, time.monotonic() - started


def _laughs() -> str:
    """The "billion laughs": nine levels of nine aliases to the level below."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _nested_yaml(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}leaf\n"


def _many_ranges(count: int, prefix: str = "h") -> str:
    return "[g]\n" + "".join(f"{prefix}{k}-[00001:10000]\n" for k in range(count))


CASES: dict[str, tuple[str, str | Callable[[], str], str]] = {
    # name: (file name, text, expected message after "FILE:")
    "range": (
        "range.ini",
        "[web]\nweb[00000001:99999999]\n",
        rf"2: \[00000001:99999999\] expands past {MAX_HOSTS_PER_RANGE:,} hosts",
    ),
    "ranges multiplied": (
        "product.ini",
        "[web]\nx[000:999]-y[000:999]\n",
        rf"2: x\[000:999\]-y\[000:999\] expands past {MAX_HOSTS_PER_RANGE:,} hosts",
    ),
    "hosts in one file": (
        "total.ini",
        lambda: _many_ranges(11),
        rf"12: more than {MAX_HOSTS:,} hosts in one file",
    ),
    "the same range again and again": (
        "repeat.ini",
        lambda: "[web]\n" + "web[00001:10000]\n" * 200,
        rf"102: host patterns name more than {MAX_NAMES_EXPANDED:,} hosts, repeats counted",
    ),
    "yaml range": (
        "range.yml",
        "all:\n  hosts:\n    'web[0000000:9999999]':\n",
        rf"3: \[0000000:9999999\] expands past {MAX_HOSTS_PER_RANGE:,} hosts",
    ),
    "self-referencing alias": (
        "alias.yml",
        "a: &a [*a, *a]\n",
        r"1: YAML alias \*a refers to itself",
    ),
    "billion laughs": (
        "laughs.yml",
        _laughs,
        rf"\d+: YAML stands for more than {MAX_YAML_NODES:,} values",
    ),
    "nested yaml": (
        "deep.yml",
        lambda: _nested_yaml(500),
        rf"{MAX_NESTING + 1}: YAML nested more than {MAX_NESTING} deep",
    ),
    "nested yaml flow": ("flow.yml", "a: " + "[" * 5000, r"1: YAML: .*nesting depth"),
    "nested toml": (
        "deep.toml",
        "[[host]]\nname = 'a'\nx = " + "[" * 5000,
        rf"3: nested more than {MAX_NESTING} deep",
    ),
    "nested inline toml": (
        "inline.toml",
        "a = " + "{b = " * 5000,
        rf"1: nested more than {MAX_NESTING} deep",
    ),
    "group loop": (
        "loop.ini",
        "[a:children]\nb\n[b:children]\na\n[a]\nh1\n",
        r"1: child groups form a loop: a, b",
    ),
    "step zero": ("step.ini", "[web]\nweb[1:9:0]\n", r"2: cannot read: host range step"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_inventory_is_refused_at_its_line_in_bounded_memory_and_time(
    tmp_path: Path, case: str
) -> None:
    name, text, expected = CASES[case]
    path = tmp_path / name
    path.write_text(text() if callable(text) else text)
    done, took = run_capped("hosts", "-i", str(path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert re.search(rf"^fleetdeck: {re.escape(str(path))}:{expected}", done.stderr, re.M), (
        done.stderr[-2000:]
    )
    assert took < TIME_CAP


def test_check_refuses_the_same_with_its_own_exit_status(tmp_path: Path) -> None:
    """`check` keeps the Nagios convention: an unusable inventory is UNKNOWN (3)."""
    path = tmp_path / "range.ini"
    path.write_text("[web]\nweb[00000001:99999999]\n")
    done, _ = run_capped("check", "-i", str(path), "--json")
    assert done.returncode == 3
    assert f"{path}:2: [00000001:99999999] expands past" in done.stderr


def test_hosts_in_all_files_together_are_bounded(tmp_path: Path) -> None:
    first, second = tmp_path / "a.ini", tmp_path / "b.ini"
    first.write_text(_many_ranges(6, "a"))
    second.write_text(_many_ranges(6, "b"))
    done, _ = run_capped("hosts", "-i", str(first), "-i", str(second))
    assert done.returncode == 2
    assert f"{second}: more than {MAX_HOSTS:,} hosts in all the inventory files" in done.stderr


@pytest.mark.parametrize("name", ["huge.ini", "huge.toml", "config"])
def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with path.open("wb") as stream:  # sparse: the test writes nothing of it
        stream.truncate(64 * 2**30)
    done, took = run_capped("hosts", "-i", str(path))
    assert done.returncode == 2
    limit = MAX_FILE_BYTES // 2**20
    assert f"fleetdeck: {path}: file is over {limit} MiB: refused unread" in done.stderr
    assert took < TIME_CAP


def test_settings_are_bounded_too(tmp_path: Path) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("[thresholds.cpu]\nwarn = " + "[" * 5000 + "\n")
    done, _ = run_capped("check", "--config", str(deep), "--json")
    assert done.returncode == 3
    assert f"fleetdeck: {deep}:2: nested more than {MAX_NESTING} deep" in done.stderr
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as stream:
        stream.truncate(MAX_FILE_BYTES + 1)
    done, _ = run_capped("check", "--config", str(huge), "--json")
    assert done.returncode == 3
    assert f"fleetdeck: {huge}: file is over" in done.stderr
    assert "Traceback" not in done.stderr


def test_ssh_config_with_too_many_wildcard_blocks_for_its_hosts_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config"
    hosts = "".join(f"Host h{i}\n" for i in range(5000))
    wildcards = "".join(f"Host w{i}*\n  User x\n" for i in range(5000))
    path.write_text(hosts + wildcards)
    done, took = run_capped("hosts", "-i", str(path))
    assert done.returncode == 2
    assert f"{path}: 5,000 hosts x 5,000 wildcard, Match or Include blocks" in done.stderr
    assert took < TIME_CAP


def test_a_large_generated_ssh_config_still_resolves_quickly(tmp_path: Path) -> None:
    """Five thousand literal Host blocks (a generated config) read only their own block and
    the few wildcard ones, so the bound never refuses an ordinary big fleet."""
    path = tmp_path / "config"
    blocks = "".join(f"Host h{i}\n  HostName 10.0.{i // 250}.{i % 250}\n" for i in range(5000))
    path.write_text(blocks + "Host h1*\n  User one\nHost *\n  Port 2222\n")
    inventory = load_inventory([path])
    hosts = {h.name: h for h in inventory.hosts}
    assert len(hosts) == 5000
    assert (hosts["h17"].address, hosts["h17"].user, hosts["h17"].port) == (
        "10.0.0.17",
        "one",
        2222,
    )
    assert hosts["h2"].user is None


TOKENS = [
    *"[]{}:,=*&!?#-'\"\n\t ahost_1.%\\",
    *("web", "ansible_", "ansible_port=", "ansible_user=", ":children", ":vars", "all:"),
    *("hosts:", "children:", "vars:", "  ", "Host ", "Match ", "Include ", "IdentityFile "),
    *("[[host]]", "[defaults]", "[groups]", "name = ", "tags = ", "identity_file = ", '"x"'),
    *("[thresholds.cpu]", "warn = ", "[storage]", "1", "[1:3]", "&a ", "*a"),
]
TEXT = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.one_of(TEXT.map(str.encode), st.binary(max_size=300)),
    suffix=st.sampled_from([".ini", ".yml", ".toml", ""]),
)
def test_any_text_or_bytes_are_an_inventory_or_a_clean_refusal(
    tmp_path: Path, data: bytes, suffix: str
) -> None:
    path = tmp_path / f"inventory{suffix}"
    path.write_bytes(data)
    try:
        load_inventory([path])
    except InventoryError as error:
        assert all(str(p.origin).startswith(str(path)) for p in error.problems)


@settings(max_examples=EXAMPLES, deadline=None)
@given(text=TEXT)
def test_any_text_is_settings_or_a_clean_refusal(text: str) -> None:
    try:
        parse_config(text, Path("config.toml"))
    except ConfigError as error:
        assert str(error).startswith("config.toml")


def test_brackets_in_toml_strings_and_comments_are_not_nesting() -> None:
    from fleetdeck.hosts.inventory.limits import toml_too_deep

    opened = "[" * (MAX_NESTING + 1)
    text = (
        f"a = \"{opened}\"\nb = '{opened}'\n# {opened}\n"
        f'c = """\n{opened}\n"""\nd = \'\'\'{opened}\'\'\'\ne = "\\"{opened}"\n'
    )
    assert toml_too_deep(text) is None
    nested = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert toml_too_deep(f"{text}f = {nested}\n") is None
    assert toml_too_deep(f"{text}g = [{nested}]\n") == 9  # the line after the 8 above


def test_yaml_anchors_used_within_the_budget_are_fine() -> None:
    """Ansible inventories share variables with anchors and merge keys: allowed, and the
    lines of keys come back by their path."""
    from fleetdeck.hosts.inventory.yaml_scan import scan_yaml

    lines = scan_yaml(
        "all:\n  vars: &common\n    ansible_user: ops\n  children:\n    web:\n"
        "      vars:\n        <<: *common\n      hosts:\n        web-1:\n"
    )
    assert lines[("all", "vars", "ansible_user")] == 3
    assert lines[("all", "children", "web", "hosts", "web-1")] == 9
