"""The settings file: overrides take effect, and every mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetdeck.checks.config import Config, ConfigError, load_config
from fleetdeck.checks.database.config import DbThresholds
from fleetdeck.checks.model import Status
from fleetdeck.checks.settings import Limit


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleetdeck.toml"
    path.write_text(text)
    return path


def test_no_file_means_the_r04_defaults(tmp_path: Path) -> None:
    config = load_config()
    assert config == Config()
    assert config.thresholds.cpu == Limit(70, 90)
    assert config.thresholds.disk == Limit(80, 90)


def test_overrides_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[thresholds.disk]\nwarn = 70\ncrit = 85.5\n"
        "[thresholds.cpu]\nwindow = 120\n[alerts]\nfor = 5\n",
    )
    config = load_config(path, required=True)
    assert config.thresholds.disk == Limit(70, 85.5)
    assert config.thresholds.cpu_window == 120
    assert config.thresholds.cpu == Limit(70, 90)
    assert config.alert_for == 5


def test_database_thresholds_are_read_over_their_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[thresholds.database]\nidle_in_transaction = { warn = 0.5 }\ntop = 3\n"
        "[thresholds.database.long_query]\nwarn = 5\ncrit = 30\n",
    )
    database = load_config(path, required=True).database
    assert database.idle_in_transaction == Limit(0.5, 600)
    assert database.long_query == Limit(5, 30)
    assert database.top == 3
    assert database.connections == DbThresholds().connections == Limit(80, 90)
    assert Config().database == DbThresholds()


def test_the_default_location_is_the_user_config_dir(isolated_dirs: Path) -> None:
    path = isolated_dirs / "xdg_config_home" / "fleetdeck" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[thresholds.memory]\nwarn = 60\n")
    assert load_config().thresholds.memory == Limit(60, 90)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("[thresholds.disk]\nwarn = 80\ncrit = = 9\n", 3, None, "TOML syntax"),
        ("[thresholds.disk]\nwarn = 80\nwarm = 85\n", 3, "thresholds.disk.warm", "unknown key"),
        ("\n[thresholds.dsik]\nwarn = 1\n", 2, "thresholds.dsik", "unknown threshold"),
        ('[thresholds.cpu]\nwarn = "high"\n', 2, "thresholds.cpu.warn", "expected a number"),
        ("[thresholds.cpu]\nwarn = true\n", 2, "thresholds.cpu.warn", "expected a number"),
        ("[thresholds.memory]\nwarn = 95\ncrit = 90\n", 2, "thresholds.memory.warn", "above crit"),
        ("[thresholds.inodes]\ncrit = 120\n", 2, "thresholds.inodes.crit", "over 100"),
        ("colour = 'red'\n", 1, "colour", "unknown setting"),
        ("[thresholds.disk]\nwarn = nan\n", 2, "thresholds.disk.warn", "expected a number"),
        ("[alerts]\nfor = inf\n", 2, "alerts.for", "seconds"),
        ("[alerts]\n# how long\nfor = '5m'\n", 3, "alerts.for", "seconds"),
        (
            "[thresholds.time_to_full]\nwarn = 2\ncrit = 4\n",
            2,
            "thresholds.time_to_full.warn",
            "fewer hours is worse",
        ),
        ('[storage]\nmounts = "/srv"\n', 2, "storage.mounts", "list of absolute paths"),
        ('[storage]\nmounts = ["srv/data"]\n', 2, "storage.mounts", "absolute path"),
        ("[storage]\nlog_days = 0\n", 2, "storage.log_days", "from 1 to 3650"),
        (
            '[storage.hosts.web-01]\nbackup = ["/b"]\n',
            2,
            "storage.hosts.web-01.backup",
            "unknown key",
        ),
        ("[storage]\ngroups = 3\n", 2, "storage.groups", "expected tables"),
        # What the storage wizard's own parsers refuse is refused when the file is read.
        (
            '[storage]\nmounts = ["/"]\n[storage.hosts.vm]\nlogs = "/"\n',
            4,
            "storage.hosts.vm.logs",
            "give an absolute directory other than /, got '/'",
        ),
        (
            '[storage]\nbackups = ["/srv/*/db.gz"]\n',
            2,
            "storage.backups",
            "only the last part of the path may be a pattern",
        ),
        ("[storage]\nlog_days = 7.9\n", 2, "storage.log_days", "days from 1 to 3650, got 7.9"),
        ("[storage]\nlog_days = true\n", 2, "storage.log_days", "whole number of days"),
        ("[storage]\nbackup_max_age = 0\n", 2, "storage.backup_max_age", "from 0.01 to 87600"),
        ("[storage]\nbackup_max_age = nan\n", 2, "storage.backup_max_age", "87600, got nan"),
        ("[storage]\nusage = 'var'\n", 2, "storage.usage", "give an absolute path"),
        # [thresholds.database]: checks.database.config's own rules, with the settings file's lines.
        (
            "[thresholds.database]\ntop = 3\nidle = 60\n",
            3,
            "thresholds.database.idle",
            "unknown key (known: connect_seconds",
        ),
        (
            "[alerts]\nfor = 5\n[thresholds.database]\n"
            "long_query = { warn = 60 }\nconnections = { warn = 50, crit = 120 }\n",
            5,
            "thresholds.database.connections.crit",
            "a percentage cannot be over 100",
        ),
        (
            "[thresholds.database.idle_in_transaction]\n# seconds\nwarn = 900\n",
            3,
            "thresholds.database.idle_in_transaction.warn",
            "warn (900) is above crit (600)",
        ),
        ("[thresholds]\ndatabase = 80\n", 2, "thresholds.database", "expected a table"),
        ("[thresholds.databse]\ntop = 3\n", 1, "thresholds.databse", "known: cpu"),
    ],
)
def test_a_broken_file_names_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, required=True)
    error = caught.value
    assert (error.line, error.key) == (line, key)
    assert str(error).startswith(f"{path}:{line}: ")
    assert words in str(error)


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", required=True)


def test_storage_settings_add_up_from_everyone_to_group_to_host(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[storage]\nmounts = ["/", "/var/"]\nbackup_max_age = 24\nlog_days = 7\n'
        '[storage.groups.db]\nmounts = ["/var/lib/postgresql"]\nbackups = ["/srv/pg/*.gz"]\n'
        "backup_max_age = 6\n"
        '[storage.hosts."db 01"]\nbackups = ["/srv/extra"]\nlogs = "/var/log/pg"\n'
        "[thresholds.time_to_full]\nwarn = 48\n",
    )
    config = load_config(path, required=True)
    assert config.thresholds.time_to_full == Limit(48, 4, falling=True)
    db = config.storage.for_host("db 01", ("web", "db"))
    assert db.mounts == ("/", "/var", "/var/lib/postgresql")
    assert db.backups == ("/srv/pg/*.gz", "/srv/extra")
    assert (db.backup_max_age, db.log_days, db.logs) == (6.0, 7, "/var/log/pg")
    assert db.params() == {  # a list: each item ends in a line break
        "mounts": "/\n/var\n/var/lib/postgresql\n",
        "backups": "/srv/pg/*.gz\n/srv/extra\n",
        "backup_age": "6",
        "logs": "/var/log/pg",
        "older": "7",
    }
    other = config.storage.for_host("web-01", ("web",))
    assert other.mounts == ("/", "/var") and other.backups == () and other.backup_max_age == 24


def test_a_configured_path_with_a_comma_reaches_the_wizard_whole(tmp_path: Path) -> None:
    """A list from the file is one path per line: a comma in a path is no separator there.
    Typed text (the TUI field, one --backups) is still split at commas."""
    from fleetdeck.checks.catalog import configured_params
    from fleetdeck.checks.storage.wizard import STORAGE_WIZARD

    path = _write(tmp_path, '[storage]\nmounts = ["/"]\nbackups = ["/srv/data,old"]\n')
    config = load_config(path, required=True)
    params = configured_params(STORAGE_WIZARD, config, "vm", ())
    assert params["backups"] == "/srv/data,old" and params["mounts"] == "/"

    typed = STORAGE_WIZARD.parse_params({"backups": "/srv/a, /srv/b/*.gz"})
    assert typed["backups"] == "/srv/a\n/srv/b/*.gz"
    repeated = STORAGE_WIZARD.parse_params({"backups": "/srv/a\n/srv/data,old"})
    assert repeated["backups"] == "/srv/a\n/srv/data,old"


def test_the_journal_keeps_its_own_days(tmp_path: Path) -> None:
    path = _write(tmp_path, "[storage]\nlog_days = 7\njournal_days = 30\n")
    params = load_config(path, required=True).storage.for_host("any").params()
    assert (params["older"], params["journal_days"]) == ("7", "30")


def test_one_threshold_type_grades_rising_and_falling_figures() -> None:
    """Limit grades both kinds of figure: higher is worse (a percentage used) and, with
    `falling`, fewer is worse (hours left); each threshold itself already counts."""
    used = Limit(80, 90)
    assert [used.grade(v) for v in (None, 79.9, 80, 89.9, 90)] == [
        Status.OK,
        Status.OK,
        Status.WARN,
        Status.WARN,
        Status.CRIT,
    ]
    left = Limit(24, 4, falling=True)
    assert [left.grade(v) for v in (None, 24.1, 24, 4.1, 4)] == [
        Status.OK,
        Status.OK,
        Status.WARN,
        Status.WARN,
        Status.CRIT,
    ]
