"""Real Prometheus, Alertmanager and node_exporter for tests, on loopback.

`PromStack` starts Debian's three binaries (prometheus, prometheus-alertmanager,
prometheus-node-exporter) as this test run's own processes, each with its configuration and
data in a temporary directory and listening on a free 127.0.0.1 port; never the machine's
systemd units (Debian's postinst cannot start them here anyway: policy-rc.d denies it and
systemd is not PID 1). Prometheus scrapes node_exporter and a port where nothing listens
(a target that is down) every second, evaluates two rules every second (one that always
fires, one on node_exporter's `up`), and sends its alerts to the Alertmanager. Its API
requires basic auth (a bcrypt hash in its web config, the password in a file), so every test
also goes through fleetdeck's credential handling. Everything stops at the end of the module
(SIGTERM, then SIGKILL).

Use it as `from prom import prom_stack as prom_stack`.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgserver import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

BINARIES = ("prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "amtool")
USER = "fleetdeck"
START_TIMEOUT = 60.0
COLLECTORS = ("cpu", "meminfo", "loadavg", "filesystem", "netdev", "uname", "os", "stat")


@dataclass
class PromStack:
    """The three running services, their URLs and the Prometheus password file."""

    prometheus: str
    alertmanager: str
    node_exporter: str
    password_file: Path
    dead_target: str
    directory: Path
    processes: list[subprocess.Popen[bytes]]

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def amtool(self, *args: str) -> str:
        """amtool's output for one command against this Alertmanager."""
        result = subprocess.run(
            ["amtool", f"--alertmanager.url={self.alertmanager}", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"amtool {args}: {result.stderr}"
        return result.stdout

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _need_binaries() -> None:
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: ./scripts/test installs them (apt-get install "
            "--no-install-recommends prometheus prometheus-alertmanager prometheus-node-exporter)"
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, auth: str = "") -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited with {process.returncode}: {log.read_text()[-2000:]}")
        request = urllib.request.Request(url)
        if auth:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready in {START_TIMEOUT:g} s: {log.read_text()[-2000:]}")


def start_stack(directory: Path) -> PromStack:
    """Start node_exporter, Alertmanager and Prometheus in `directory`; wait until ready."""
    _need_binaries()
    processes: list[subprocess.Popen[bytes]] = []
    node_port, am_port, prom_port, dead_port = free_port(), free_port(), free_port(), free_port()
    password = secrets.token_urlsafe(16)
    password_file = directory / "prometheus.password"
    password_file.write_text(password + "\n")

    def spawn(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (directory / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        processes.append(process)
        return process

    node = spawn(
        "node_exporter",
        [
            "prometheus-node-exporter",
            f"--web.listen-address=127.0.0.1:{node_port}",
            "--collector.disable-defaults",
            *(
                f"--collector.{c}"
                for c in (
                    "cpu",
                    "meminfo",
                    "loadavg",
                    "filesystem",
                    "netdev",
                    "uname",
                    "os",
                    "stat",
                )
            ),
        ],
    )
    (directory / "alertmanager.yml").write_text(
        "route:\n  receiver: nobody\n  group_wait: 0s\n  group_interval: 1s\n"
        "receivers:\n  - name: nobody\n"
    )
    am = spawn(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
    )
    (directory / "rules.yml").write_text(
        "groups:\n"
        "  - name: fleetdeck-test\n"
        "    interval: 1s\n"
        "    rules:\n"
        "      - alert: FleetdeckAlwaysFiring\n"
        "        expr: vector(1) > 0\n"
        "        for: 0s\n"
        "        labels: {severity: warning, instance: testhost}\n"
        "        annotations: {summary: 'a rule that always fires'}\n"
        "      - alert: NodeExporterUp\n"
        '        expr: up{job="node"} == 1\n'
        "        for: 0s\n"
        "        labels: {severity: critical}\n"
        "        annotations: {summary: 'node_exporter {{ $labels.instance }} is up'}\n"
    )
    (directory / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{directory / 'rules.yml'}']\n"
        "alerting:\n  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]\n"
        "scrape_configs:\n"
        f"  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n"
        f"  - job_name: dead\n    static_configs: [{{targets: ['127.0.0.1:{dead_port}']}}]\n"
    )
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
    (directory / "web.yml").write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    prom = spawn(
        "prometheus",
        [
            "prometheus",
            f"--config.file={directory / 'prometheus.yml'}",
            f"--web.config.file={directory / 'web.yml'}",
            f"--storage.tsdb.path={directory / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            # An alert sent before the Alertmanager was found is sent again a second later,
            # not a minute later (the default)
            "--rules.alert.resend-delay=1s",
        ],
    )
    stack = PromStack(
        prometheus=f"http://127.0.0.1:{prom_port}",
        alertmanager=f"http://127.0.0.1:{am_port}",
        node_exporter=f"http://127.0.0.1:{node_port}",
        password_file=password_file,
        dead_target=f"127.0.0.1:{dead_port}",
        directory=directory,
        processes=processes,
    )
    try:
        basic = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
        _wait_ready(stack.node_exporter + "/metrics", node, directory / "node_exporter.log")
        _wait_ready(stack.alertmanager + "/-/ready", am, directory / "alertmanager.log")
        _wait_ready(stack.prometheus + "/-/ready", prom, directory / "prometheus.log", basic)
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="module")
def prom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    stack = start_stack(tmp_path_factory.mktemp("prom"))
    try:
        yield stack
    finally:
        stack.stop()
