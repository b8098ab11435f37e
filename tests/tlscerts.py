"""Certificates made by the real `openssl` command for the TLS tests: a root CA, an
intermediate CA signed by it, and leaf certificates signed by the intermediate, with the
validity dates and names each story needs (valid, expiring in 5 days, expired, another
name). `openssl ca` is used for the leaves since it alone (in OpenSSL 3.0) sets a start and
end date in the past."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args[:2])} failed: {result.stderr.strip()}")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%SZ")


_CA_CONFIG = """
[ca]
default_ca = here
[here]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
[leaf]
basicConstraints = critical,CA:false
subjectAltName = ${{ENV::SAN}}
[intermediate]
basicConstraints = critical,CA:true,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
"""


@dataclass(frozen=True)
class Leaf:
    cert: Path
    key: Path
    chain: Path
    """The leaf then the intermediate: what a well-configured server sends."""


class Authority:
    """A root CA and an intermediate CA in `directory`, signing leaves on demand."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "issued").mkdir(exist_ok=True)
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")
        (directory / "ca.cnf").write_text(_CA_CONFIG.format(dir=directory))
        self.root = directory / "root.pem"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "root.key", "-out", "root.pem", "-days", "3650", "-subj", "/CN=Test Root CA",
            cwd=directory,
        )  # fmt: skip
        self.intermediate = directory / "intermediate.pem"
        self.sign("intermediate", "Test Intermediate CA", extensions="intermediate",
                  issuer=("root.pem", "root.key"), days=(-1, 1000))  # fmt: skip

    def sign(
        self,
        name: str,
        common_name: str,
        *,
        san: str = "DNS:localhost",
        days: tuple[int, int] = (-1, 90),
        extensions: str = "leaf",
        issuer: tuple[str, str] = ("intermediate.pem", "intermediate.key"),
    ) -> Leaf:
        """A key and a certificate valid from `days[0]` to `days[1]` days from now."""
        now = datetime.now(UTC)
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={common_name}",
            cwd=self.dir,
        )  # fmt: skip
        env_san = san
        result = subprocess.run(
            [
                "openssl",
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-notext",
                "-cert",
                issuer[0],
                "-keyfile",
                issuer[1],
                "-extensions",
                extensions,
                "-startdate",
                _stamp(now + timedelta(days=days[0])),
                "-enddate",
                _stamp(now + timedelta(days=days[1])),
                "-in",
                f"{name}.csr",
                "-out",
                f"{name}.pem",
            ],
            cwd=self.dir,
            capture_output=True,
            text=True,
            env={"SAN": env_san, "PATH": "/usr/bin:/bin"},
        )
        if result.returncode != 0:
            pytest.fail(f"openssl ca for {name} failed: {result.stderr.strip()}")
        cert = self.dir / f"{name}.pem"
        chain = self.dir / f"{name}-chain.pem"
        intermediate = self.dir / issuer[0] if extensions == "leaf" else None
        chain.write_text(cert.read_text() + (intermediate.read_text() if intermediate else ""))
        return Leaf(cert, self.dir / f"{name}.key", chain)
