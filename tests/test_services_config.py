"""The [services] settings: merged per group and host like [storage], handed to the service
wizard, and refused with the file, line and key when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetdeck.checks.catalog import DOMAINS, WIZARDS, configured_params, domain_params
from fleetdeck.checks.config import ConfigError, load_config
from fleetdeck.checks.services.config import ServicesConfig

SETTINGS = """\
[services]
units = ["nginx", "postgresql@15-main"]
log_minutes = 30

[[services.recovery]]
unit = "app"
ports = ["db.internal:5432"]
disks = ["/var/lib/app/"]
clean = [{ run = ["rm", "-f", "/var/lib/app/stale.lock"], check = [
  "test", "!", "-e", "/var/lib/app/stale.lock"] }]

[[services.http]]
url = "http://127.0.0.1:8080/health"

[[services.http]]
url = "http://127.0.0.1:8081/ready"
unit = "app"

[services.groups.web]
units = ["php8.2-fpm"]
restarts = 5

[[services.groups.web.http]]
url = "http://127.0.0.1:9000/ping"
expect = 204
unit = "php8.2-fpm"

[services.hosts.web-01]
units = ["nginx"]
log_minutes = 5
"""


def test_settings_merge_from_everyone_through_groups_to_the_host(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(SETTINGS)
    config = load_config(path, required=True)
    services = config.domains["services"]
    assert isinstance(services, ServicesConfig)
    web01 = services.for_host("web-01", ["web"])
    assert web01.units == ("nginx.service", "postgresql@15-main.service", "php8.2-fpm.service")
    assert (web01.restarts, web01.log_minutes) == (5, 5.0)
    other = services.for_host("db-01", ["db"])
    assert (other.restarts, other.log_minutes) == (None, 30.0)
    params = configured_params(WIZARDS["service"], config, "web-01", ["web"])
    (entry,) = json.loads(params["recovery"])
    assert entry["unit"] == "app.service" and entry["disks"] == ["/var/lib/app"]
    assert entry["clean"][0]["run"] == ["rm", "-f", "/var/lib/app/stale.lock"]
    # The periodic sweep gets the settings the wizard does not take too (through the seam).
    domain = next(d for d in DOMAINS if d.name == "services")
    swept = domain_params(domain, config, "web-01", ["web"])
    assert swept["units"] == "nginx.service\npostgresql@15-main.service\nphp8.2-fpm.service\n"
    assert (swept["restarts"], swept["log_minutes"], swept["recovery"]) == (
        "5",
        "5",
        params["recovery"],
    )


def test_endpoints_that_name_a_unit_reach_its_checks_and_the_wizard_as_health(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(SETTINGS)
    config = load_config(path, required=True)
    domain = next(d for d in DOMAINS if d.name == "services")
    web = json.loads(domain_params(domain, config, "web-01", ["web"])["health"])
    assert [(e["unit"], e["url"], e["expect"]) for e in web] == [
        ("app.service", "http://127.0.0.1:8081/ready", 200),
        ("php8.2-fpm.service", "http://127.0.0.1:9000/ping", 204),
    ]  # the endpoint without a unit stays http.health's alone
    wizard = configured_params(WIZARDS["service"], config, "web-01", ["web"])
    assert json.loads(wizard["health"]) == web
    other = json.loads(domain_params(domain, config, "db-01", ["db"])["health"])
    assert [e["unit"] for e in other] == ["app.service"]
    with pytest.raises(ValueError, match=r"health\[0\]\.unit: missing"):
        WIZARDS["service"].parse_params({"health": '[{"url": "http://127.0.0.1/"}]'})


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('units = ["-rf"]', "services.units", "a unit name"),
        ('units = "nginx"', "services.units", "expected a list of unit names"),
        ("restarts = 0", "services.restarts", "from 1 to"),
        ("restarts = true", "services.restarts", "expected a number"),
        ('log_files = ["var/log"]', "services.log_files", "absolute path"),
        ("colour = 1", "services.colour", "unknown key"),
        ('[[services.recovery]]\nunit = "app"\nports = ["db"]', "services.recovery[0].ports",
         "HOST:PORT"),
        ('[[services.recovery]]\nunit = "app"\nclean = [{ run = "rm -rf /x", check = ["true"] }]',
         "services.recovery[0].clean[0].run", "list of arguments"),
        ('[[services.recovery]]\nunit = "app"\nclean = [{ run = ["rm", "x"] }]',
         "services.recovery[0].clean[0]", "check"),
        ('[[services.http]]\nurl = "http://127.0.0.1/"\nunit = "-rf"', "services.http[0].unit",
         "a unit name"),
        ('[[services.http]]\nurl = "http://127.0.0.1/"\nunit = 5', "services.http[0].unit",
         "expected text"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[services]\n{text}\n" if not text.startswith("[[") else f"{text}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, required=True)
    assert raised.value.key == key and words in raised.value.problem
    assert str(path) in str(raised.value)
