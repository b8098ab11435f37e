"""Inventories as operators already have them: fleetdeck TOML, ssh_config, Ansible INI and YAML.

Every mistake names the file, the line and the host; what fleetdeck does not use is a warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetdeck.hosts.inventory.load import detect_format, load_inventory
from fleetdeck.hosts.inventory.records import InventoryError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "id_ops"
    path.write_text("not really a key, but readable\n")
    return path


def test_toml_hosts_defaults_groups_and_tiers(tmp_path: Path, key: Path) -> None:
    path = _write(
        tmp_path,
        "fleet.toml",
        f"""
[defaults]
user = "ops"
tier = "staging"
identity_file = "{key}"

[[host]]
name = "bastion"
address = "203.0.113.10"
port = 2222

[[host]]
name = "web-01"
address = "10.0.0.11"
jump = "bastion"
tags = ["web", "nginx"]
tier = "prod"
user = "deploy"

[groups]
frontend = ["web-01"]
""",
    )
    inventory = load_inventory([path])
    bastion, web = inventory.hosts
    assert (bastion.address, bastion.port, bastion.user, bastion.tier) == (
        "203.0.113.10", 2222, "ops", "staging",
    )  # fmt: skip
    assert (web.user, web.jump, web.tier, web.groups) == (
        "deploy",
        "bastion",
        "prod",
        ("frontend",),
    )
    assert web.identity_files == (str(key),)
    assert web.origin is not None and web.origin.line == 13
    assert [h.name for h in inventory.select(tag="web")] == ["web-01"]
    assert [h.name for h in inventory.select(tag="frontend")] == ["web-01"]


def test_ssh_config_with_wildcards_and_include(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(
        tmp_path,
        ".ssh/conf.d/db.conf",
        "Host db-1 db-2\n    HostName %h.internal.example\n    ProxyJump bastion\n",
    )
    config = _write(
        tmp_path,
        ".ssh/config",
        """# operator's config
Include conf.d/*.conf

Host bastion
    HostName 198.51.100.7
    User jump
    Port 2200

Host web-* !web-legacy
    User deploy

Host web-1
    HostName 10.1.0.1
    IdentityFile ~/.ssh/web

Match host foo exec "true"
    User nobody

Host *
    User fallback
    Port 22
    IdentityFile ~/.ssh/id_ed25519
""",
    )
    assert detect_format(config, config.read_text()) == "ssh-config"
    from fleetdeck.hosts.inventory import ssh_config

    found = ssh_config.parse(config, config.read_text())
    hosts = {h.name: h for h in found.hosts}
    assert set(hosts) == {"bastion", "db-1", "db-2", "web-1"}  # wildcard blocks are no hosts
    assert (hosts["bastion"].address, hosts["bastion"].user, hosts["bastion"].port) == (
        "198.51.100.7", "jump", 2200,
    )  # fmt: skip
    assert hosts["db-1"].address == "db-1.internal.example"
    assert hosts["db-2"].jump == "bastion"
    assert hosts["db-2"].user == "fallback"
    assert hosts["db-1"].origin is not None and hosts["db-1"].origin.path.name == "db.conf"
    assert (hosts["web-1"].user, hosts["web-1"].address) == ("deploy", "10.1.0.1")
    assert hosts["web-1"].identity_files == ("~/.ssh/web", "~/.ssh/id_ed25519")
    match_warnings = [w for w in found.warnings if "Match" in w.problem]
    assert [str(w.origin).rsplit(":", 1)[1] for w in match_warnings] == ["16"]
    assert "Match exec needs a live connection" in match_warnings[0].problem


def test_ansible_ini_with_children_vars_and_ranges(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "hosts.ini",
        """mail.example.com

[web]
web[01:03].example.com ansible_user=deploy
web-canary ansible_host=10.0.0.99 ansible_port=2222 http_port=8080

[db]
db-1 ansible_host=10.0.1.1

[prod:children]
web
db

[prod:vars]
ansible_user=ops
ansible_ssh_private_key_file=/nonexistent/key
ntp_server=ntp.example.com
""",
    )
    from fleetdeck.hosts.inventory import ansible

    found = ansible.parse_ini(path, path.read_text())
    hosts = {h.name: h for h in found.hosts}
    assert set(hosts) == {
        "mail.example.com", "web01.example.com", "web02.example.com", "web03.example.com",
        "web-canary", "db-1",
    }  # fmt: skip
    assert hosts["web02.example.com"].user == "deploy"  # host var beats group var
    assert hosts["db-1"].user == "ops"
    assert hosts["db-1"].groups == ("db", "prod")
    assert (hosts["web-canary"].address, hosts["web-canary"].port) == ("10.0.0.99", 2222)
    assert hosts["db-1"].origin is not None and hosts["db-1"].origin.line == 8
    warned = {w.problem.split("'")[1]: w for w in found.warnings if "variable" in w.problem}
    assert set(warned) == {"http_port", "ntp_server"}
    assert warned["http_port"].host == "web-canary" and warned["http_port"].origin.line == 5
    missing = [str(w) for w in load_inventory([path]).warnings if "identity file" in w.problem]
    assert missing == [
        f"{path}:16: host 'web01.example.com': identity file /nonexistent/key does not exist "
        "(going on without it, as ssh does)"
    ]  # once for the line that sets it, not once per host of the group


def test_ansible_yaml(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "inventory.yml",
        """all:
  hosts:
    jump-1:
      ansible_host: 192.0.2.1
  children:
    app:
      hosts:
        app-[1:2]:
      vars:
        ansible_user: app
        ansible_port: 2022
""",
    )
    inventory = load_inventory([path])
    hosts = {h.name: h for h in inventory.hosts}
    assert set(hosts) == {"jump-1", "app-1", "app-2"}
    assert (hosts["app-2"].user, hosts["app-2"].port, hosts["app-2"].groups) == (
        "app", 2022, ("app",),
    )  # fmt: skip
    assert hosts["jump-1"].address == "192.0.2.1"
    assert hosts["jump-1"].origin is not None and hosts["jump-1"].origin.line == 3


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "a.toml",
            '[[host]]\nname = "a"\n\n[[host]]\nname = "a"\n',
            r"a.toml:5: host 'a': duplicate host name \(first at .*a.toml:2\)",
        ),
        ("b.toml", '[[host]]\nname = "b"\nport = 70000\n', r"b.toml:2: host 'b': bad port 70000"),
        (
            "c.toml",
            '[[host]]\nname = "c"\njump = "ghost"\n',
            r"c.toml:2: host 'c': jump host 'ghost' is not in the inventory",
        ),
        (
            "e.toml",
            '[[host]]\nname = "e"\ntier = "production"\n',
            r"e.toml:2: host 'e': unknown tier 'production'",
        ),
        ("f.ini", "[web]\nweb-1 ansible_port=http\n", r"f.ini:2: host 'web-1': bad port 'http'"),
        ("config", "Host g\n  Port 0\n", r"config:1: host 'g': bad port '0'"),
        ("h.toml", "[[host]\nname = 'h'\n", r"h.toml:1: TOML"),
        ("i.toml", "host = [1]\n", r"i.toml:1: hosts must be \[\[host\]\] tables"),
        ("j.toml", "defaults = 1\n", r"j.toml:1: defaults must be a table such as \[defaults\]"),
        (
            "k.toml",
            '[[host]]\nname = "k"\njump = 1\n',
            r"k.toml:2: host 'k': jump must be a string",
        ),
        ("l.toml", "[groups]\nweb = 'l'\n", r"l.toml:1: group 'web' must be a list of strings"),
    ],
)
def test_broken_inventories_name_file_line_and_host(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(InventoryError, match=expected):
        load_inventory([path])


def test_duplicates_across_files_and_unreadable_files_are_all_reported(tmp_path: Path) -> None:
    toml = _write(tmp_path, "a.toml", '[[host]]\nname = "web-1"\n')
    ssh = _write(tmp_path, "ssh/config", "Host web-1\n  HostName 10.0.0.1\n")
    missing = tmp_path / "nope.ini"
    with pytest.raises(InventoryError) as caught:
        load_inventory([toml, ssh, missing])
    messages = [str(p) for p in caught.value.problems]
    assert any("nope.ini: cannot read: No such file" in m for m in messages)
    assert any(m.startswith(f"{ssh}:1: host 'web-1': duplicate host name") for m in messages)


def test_fleetdeck_hosts_lists_json_and_reports_problems(tmp_path: Path) -> None:
    import json
    import subprocess

    from conftest import fleetdeck_bin

    good = _write(tmp_path, "hosts.ini", "[web]\nweb-[1:2] ansible_user=deploy color=blue\n")
    result = subprocess.run(
        [fleetdeck_bin(), "hosts", "-i", str(good), "--json"], capture_output=True, text=True
    )
    assert result.returncode == 0
    listed = json.loads(result.stdout)
    assert [(h["name"], h["user"], h["groups"]) for h in listed] == [
        ("web-1", "deploy", ["web"]),
        ("web-2", "deploy", ["web"]),
    ]
    assert f"warning: {good}:2: host 'web-1': variable 'color'" in result.stderr
    bad = _write(tmp_path, "bad.toml", '[[host]]\nname = "x"\nport = "ssh"\n')
    result = subprocess.run(
        [fleetdeck_bin(), "hosts", "-i", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"{bad}:2: host 'x': bad port 'ssh'" in result.stderr


def test_a_toml_host_lists_its_postgresql_targets(tmp_path: Path) -> None:
    from fleetdeck.hosts.postgres.targets import PgTarget

    path = _write(
        tmp_path,
        "fleet.toml",
        """
[[host]]
name = "db-01"
address = "10.0.0.21"

[[host.postgres]]
dbname = "orders"
user = "monitor"
port = 5432          # on the host: reached through the host's SSH connection
password_env = "FLEETDECK_PG_ORDERS"

[[host.postgres]]
name = "billing"
service = "billing"
sslmode = "verify-full"

[[host]]
name = "web-01"
postgres = { host = "10.0.0.30", dbname = "sessions" }
""",
    )
    db, web = load_inventory([path]).hosts
    assert db.postgres == (
        PgTarget(dbname="orders", user="monitor", port=5432, password_env="FLEETDECK_PG_ORDERS"),
        PgTarget(name="billing", service="billing", sslmode="verify-full"),
    )
    assert [t.label for t in db.postgres] == ["orders", "billing"]
    assert web.postgres == (PgTarget(host="10.0.0.30", dbname="sessions"),)
    assert web.port == 22 and web.origin is not None and web.origin.line == 18


def test_a_password_in_the_inventory_is_an_error_that_does_not_repeat_it(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "fleet.toml",
        """[[host]]
name = "db-01"

[[host.postgres]]
dbname = "orders"
user = "monitor"
password = "hunter2-orders"

[[host]]
name = "db-02"
postgres = [{ dbname = "billing", password = "hunter2-billing" }]
""",
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory([path])
    messages = [str(p) for p in caught.value.problems]
    rule = (
        "postgres target: a password in the inventory is not allowed: passwords come from "
        "~/.pgpass, PGPASSFILE, a pg_service file or password_env, never the inventory"
    )
    assert messages == [f"{path}:7: host 'db-01': {rule}", f"{path}:11: host 'db-02': {rule}"]
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ('sslmode = "always"', "sslmode must be one of disable, allow, prefer, require,"),
        ('password_env = "s3cret value!"', "password_env must be the NAME of an environment"),
        ('pasword = "x"', "unknown key 'pasword'"),
        ("port = 0", "bad port 0"),
        ("dbname = 5", "dbname must be a non-empty string"),
    ],
)
def test_a_broken_postgresql_target_names_its_line(
    tmp_path: Path, target: str, expected: str
) -> None:
    path = _write(tmp_path, "db.toml", f'[[host]]\nname = "db"\n\n[[host.postgres]]\n{target}\n')
    with pytest.raises(InventoryError) as caught:
        load_inventory([path])
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:4: host 'db': ")
    assert expected in str(problem)
    assert "s3cret" not in str(problem)
