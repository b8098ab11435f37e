"""Imported inventories resolve as the tools that own the formats resolve them.

Each Ansible inventory here is also read by real `ansible-inventory --list` (ansible-core from
the test extra), and each ssh_config by real `ssh -G HOST -F FILE`; fleetdeck's address, port,
user, key files (and, for ssh, ProxyJump) must agree host by host. The inventories are built
so that each precedence rule decides at least one value.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetdeck.hosts.inventory.load import load_inventory
from fleetdeck.hosts.inventory.records import HostSpec

from conftest import require_binary

# Ansible's precedence, one rule per host:
# - web01..03: host var (port) over [web:vars] over [prod:vars] (parent) over [all:vars]
# - db-a..c (a letter range): [db:vars] user over [prod:vars]; key file from [prod:vars]
# - odd1/5/9 (a stepped range): only [all:vars] and a deeper group [dc:children]
# - twice: named in [web] and again in [alpha]: its own later value wins
# - sib: in [alpha] and [zeta] at the same depth: zeta (later by name) wins
# - prio: in [alpha] and [zeta], alpha with ansible_group_priority 10: alpha wins
# - ported:2201 -- a port in the host pattern
# - mail: ungrouped, only [all:vars]
INI = """mail.example.com
ported.example.com:2201 ansible_user='quoted'

[all:vars]
ansible_user=ops
ansible_port=2200
ansible_ssh_private_key_file=/keys/all

[web]
web[01:03].example.com ansible_port=2222
twice ansible_host=10.0.0.1

[web:vars]
ansible_user=webops

[db]
db-[a:c]
odd[1:9:4]

[db:vars]
ansible_user="dbops"

[prod:children]
web
db

[prod:vars]
ansible_user=produser
ansible_ssh_private_key_file=/keys/prod
ansible_host=prod.example.com

[dc:children]
prod

[dc:vars]
ansible_port=2000

[alpha]
twice ansible_host=10.0.0.2
sib
prio

[zeta]
sib
prio

[alpha:vars]
ansible_host=alpha.example.com
ansible_user=alpha

[zeta:vars]
ansible_host=zeta.example.com
ansible_user=zeta
ansible_port=2999

[alpha2:children]
alpha

[alpha2:vars]
ansible_ssh_private_key_file=/keys/alpha2
"""

INI_PRIORITY = """[alpha]
prio
[zeta]
prio
[alpha:vars]
ansible_group_priority=10
ansible_user=alpha
ansible_ssh_private_key_file=~/.ssh/alpha
[zeta:vars]
ansible_user=zeta
ansible_ssh_private_key_file=~/.ssh/zeta
[all:vars]
ansible_port=2022
"""

# A diamond: leaf is below `left` (depth 1) and below `deep` (depth 3 under top > mid):
# its depth is 4, and `deep`'s value beats `left`'s even though `left` sorts first by name.
YAML = """all:
  vars: &common
    ansible_user: everyone
    ansible_port: 2200
  hosts:
    lone:
      ansible_host: 192.0.2.1
  children:
    left:
      vars:
        ansible_user: left
        ansible_ssh_private_key_file: /keys/left
      children:
        leaf:
          hosts:
            leaf-[01:02]:
    top:
      vars:
        ansible_host: top.example.com
      children:
        mid:
          vars:
            ansible_user: mid
          children:
            deep:
              vars:
                ansible_user: deep
                ansible_port: 2301
              children:
                leaf:
                  vars:
                    ansible_host: leaf.example.com
              hosts:
                deep-[a:b]:
                  ansible_port: 2302
                "ported:2022":
    siblings:
      children:
        beta:
          hosts:
            sib:
          vars: {ansible_user: beta, ansible_port: 2401}
        alpha:
          hosts:
            sib:
              ansible_host: sib.example.com
          vars:
            <<: *common
            ansible_user: alpha
            ansible_group_priority: 5
"""


def _ansible_inventory() -> str:
    if importlib.util.find_spec("ansible") is None:
        # Fail, not skip: a skipped agreement test would pass CI with nothing compared.
        pytest.fail("ansible-core cannot be imported: pip install -e '.[test]' installs it")
    beside = Path(sys.executable).parent / "ansible-inventory"
    found = str(beside) if beside.exists() else shutil.which("ansible-inventory")
    if found is None:
        pytest.fail("ansible-core is importable but ansible-inventory is not on PATH")
    return found


def ansible_hostvars(path: Path, plugin: str, home: Path) -> dict[str, dict[str, object]]:
    """`ansible-inventory -i FILE --list`'s variables per host, with only `plugin` enabled
    and a parse failure an error (never an empty inventory that would agree with anything)."""
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_INVENTORY_ENABLED": plugin,
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [_ansible_inventory(), "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    return listed["_meta"]["hostvars"]


def _as_ansible_sees(host: HostSpec) -> tuple[object, ...]:
    return (host.address, host.port, host.user, host.identity_files[:1] or None)


def _expected(name: str, variables: dict[str, object]) -> tuple[object, ...]:
    key = variables.get("ansible_ssh_private_key_file")
    return (
        variables.get("ansible_host", name),
        variables.get("ansible_port", 22),
        variables.get("ansible_user"),
        (key,) if key is not None else None,
    )


@pytest.mark.parametrize(
    ("name", "text", "plugin"),
    [("fleet.ini", INI, "ini"), ("priority.ini", INI_PRIORITY, "ini"), ("fleet.yml", YAML, "yaml")],
    ids=["ini", "ini-priority", "yaml"],
)
def test_ansible_inventories_resolve_as_ansible_inventory_does(
    tmp_path: Path, name: str, text: str, plugin: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    ansible = ansible_hostvars(path, plugin, tmp_path)
    ours = {h.name: h for h in load_inventory([path]).hosts}
    assert set(ours) == set(ansible)
    disagreements = {
        host: (_as_ansible_sees(ours[host]), _expected(host, variables))
        for host, variables in ansible.items()
        if _as_ansible_sees(ours[host]) != _expected(host, variables)
    }
    assert disagreements == {}
    # Every rule above decided something: the values are not all one default.
    assert len({_as_ansible_sees(h) for h in ours.values()}) >= min(len(ours), 3)


def test_all_vars_in_ini_reach_every_host(tmp_path: Path) -> None:
    """The report's case: `[all:vars] ansible_user=ops` gives every host the user ops."""
    from conftest import fleetdeck_bin

    path = tmp_path / "inv.ini"
    path.write_text("[all:vars]\nansible_user=ops\n\n[web]\nweb-1\nweb-2\n")
    ansible = ansible_hostvars(path, "ini", tmp_path)
    assert {v["ansible_user"] for v in ansible.values()} == {"ops"}
    done = subprocess.run(
        [fleetdeck_bin(), "hosts", "-i", str(path), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert [(h["name"], h["user"]) for h in json.loads(done.stdout)] == [
        ("web-1", "ops"),
        ("web-2", "ops"),
    ]


# ssh_config rules, one host each:
# - web-1: first value wins (its own block over web-*; Host * last); %h and %r in IdentityFile
# - web-legacy: negated out of web-*, so Host * gives its user
# - db-1, db-2: from an Include (absolute path), HostName with %h, ProxyJump; a second
#   Include inside web-2's block gives db-2 nothing (ssh reads it as never matching)
# - gate: Match host (the HostName so far) and Match originalhost pick different values
# - Upper: Host patterns are case-sensitive, Match lists are not
# - web-2 (not web-1, whose HostName is 10.1.0.1): Match user (the User so far) and !host
# - plain: only the global lines before any Host, and Host *
SSH_CONFIG = """Port 2022
Include {include}

Host web-1
    HostName 10.1.0.1
    IdentityFile ~/.ssh/%h-%r

Host web-* !web-legacy
    User deploy
    Port 2200
    IdentityFile /keys/web-%n-%p

Host web-legacy
    HostName legacy.example.com

Host web-2

Include {conditional}

Host gate
    HostName gate.internal.example

Match originalhost gate
    User viaalias

Match host *.internal.example
    User viahostname
    ProxyJump jump@bastion:2222

Match originalhost upper user fallback
    HostName upper-matched.example

Match user deploy !host 10.*
    ProxyJump viauser.example

Host Upper plain

Host [literal]
    HostName bracket.example

Match all
    IdentityFile /keys/all-%%-%u

Host *
    User fallback
    IdentityFile ~/.ssh/id_ed25519
"""

INCLUDED = """Host db-1 db-2
    HostName %h.db.example
    ProxyJump bastion.example:2200,other.example
Host db-1
    User dba
"""

_DEFAULT_KEYS = tuple(
    f"~/.ssh/{n}"
    for n in ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss")
)


def ssh_g(alias: str, config: Path) -> dict[str, list[str]]:
    ssh = require_binary("ssh", "openssh-client")
    done = subprocess.run(
        [ssh, "-G", alias, "-F", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key, []).append(value)
    return out


def _ssh_tokens(path: str, alias: str, answer: dict[str, list[str]]) -> str:
    """An IdentityFile as ssh will open it: `ssh -G` prints it before its %-tokens are
    expanded, with the values it resolved for them."""
    tokens = {
        "h": answer["hostname"][0],
        "r": answer["user"][0],
        "p": answer["port"][0],
        "n": alias,
        "u": getpass.getuser(),
    }
    return re.sub(r"%(.)", lambda m: "%" if m[1] == "%" else tokens.get(m[1], m[0]), path)


def test_ssh_config_resolves_as_ssh_g_does(tmp_path: Path) -> None:
    included = tmp_path / "conf.d" / "db.conf"
    included.parent.mkdir()
    included.write_text(INCLUDED)
    config = tmp_path / "config"
    conditional = tmp_path / "conditional.conf"
    conditional.write_text("Host db-2\n    User only-inside-web-2\n    Port 2999\n")
    config.write_text(
        SSH_CONFIG.format(include=tmp_path / "conf.d" / "*.conf", conditional=conditional)
    )
    inventory = load_inventory([config])
    ours = {h.name: h for h in inventory.hosts}
    assert set(ours) == {"web-1", "web-2", "web-legacy", "gate", "Upper", "plain", "[literal]"} | {
        "db-1",
        "db-2",
    }
    for alias, host in ours.items():
        answer = ssh_g(alias, config)
        identities = tuple(_ssh_tokens(p, alias, answer) for p in answer["identityfile"])
        if not host.identity_files and identities[: len(_DEFAULT_KEYS)] == _DEFAULT_KEYS:
            identities = ()  # ssh's own defaults, which fleetdeck leaves to asyncssh
        theirs = (
            answer["hostname"][0],
            int(answer["port"][0]),
            answer["user"][0],
            identities,
            answer.get("proxyjump", [None])[0],
        )
        mine = (
            host.address,
            host.port,
            host.user or getpass.getuser(),
            host.identity_files,
            host.jump,
        )
        assert mine == theirs, alias
    assert (ours["gate"].user, ours["gate"].jump) == ("viaalias", "jump@bastion:2222")
    assert (ours["db-2"].user, ours["db-2"].port) == ("fallback", 2022)
    assert (ours["web-2"].jump, ours["web-1"].jump) == ("viauser.example", None)
    assert ours["web-1"].identity_files[0] == "~/.ssh/10.1.0.1-deploy"
    warnings = [str(w) for w in inventory.warnings]
    assert any("identity file ~/.ssh/10.1.0.1-deploy does not exist" in w for w in warnings)


def test_ssh_config_match_needing_a_connection_is_skipped_with_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text('Host a\n  HostName a.example\nMatch exec "true" host *\n  User x\n')
    inventory = load_inventory([config])
    assert inventory.hosts[0].user is None
    assert [str(w) for w in inventory.warnings] == [
        f"{config}:3: Match exec needs a live connection: this block is skipped (ssh may apply it)"
    ]
