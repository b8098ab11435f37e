"""Where a host's Docker engine answers, and how a Docker failure reads to an operator.

A TOML host may say `docker = ...`:

    "ssh"            the host's /var/run/docker.sock, reached through the host's own SSH
                     connection (a forwarded unix socket: no second login, no paramiko)
    "unix:///path"   a socket on the host (through its SSH connection when it is remote)
    "tcp://addr:port" a plain-TCP engine as the host sees it (through SSH when remote)
    "context:NAME"   a docker context of this machine (~/.docker/contexts), dialled from here
    "none"           no Docker on this host: nothing is tried and the pane says so

No `docker` key is the default: on this machine `DOCKER_HOST`, else the context that
`DOCKER_CONTEXT` or the docker config's `currentContext` names (config.json, then
contexts/meta/<sha256 of the name>/meta.json), else /var/run/docker.sock: the docker CLI's
order. On a remote host, "ssh". `ssh://` is refused on purpose: the docker
SDK would open a second login through paramiko, around our known_hosts and keepalives.

This module only reads text and small files: the inventory imports it, so it imports neither
asyncssh nor the docker SDK nor the SSH shell (`hosts.docker.forward` reaches a remote engine
through the host's SSH connection, `hosts.docker.dial` dials).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = "/var/run/docker.sock"
SPELLINGS = '"ssh", "unix:///path", "tcp://address:port", "context:NAME" or "none"'


class DockerFailure(enum.StrEnum):
    """Why Docker could not be used on a host, in an operator's words."""

    NO_ENDPOINT = "no Docker endpoint"
    NOT_FOUND = "no Docker socket"
    DENIED = "permission denied"
    REFUSED = "not running"
    TIMEOUT = "no answer"
    SSH = "SSH forward failed"
    LOST = "connection lost"
    GONE = "container gone"
    BUSY = "too many log streams"
    CONFIG = "configuration"
    API = "Docker error"


class DockerError(Exception):
    """A Docker failure: `where` names the host and endpoint, `failure` the cause."""

    def __init__(self, where: str, failure: DockerFailure, detail: str) -> None:
        self.where = where
        self.failure = failure
        self.detail = detail
        super().__init__(f"{where}: {failure.value}: {detail}")


class EndpointKind(enum.StrEnum):
    SSH = "ssh"
    UNIX = "unix"
    TCP = "tcp"
    CONTEXT = "context"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class DockerEndpoint:
    """A host's Docker endpoint as the inventory writes it (not yet resolved or dialled)."""

    kind: EndpointKind
    address: str = ""
    """The socket path (UNIX), `host:port` (TCP) or context name (CONTEXT); else empty."""

    def __str__(self) -> str:
        if self.kind is EndpointKind.UNIX:
            return f"unix://{self.address}"
        if self.kind is EndpointKind.TCP:
            return f"tcp://{self.address}"
        if self.kind is EndpointKind.CONTEXT:
            return f"context:{self.address}"
        return self.kind.value

    @classmethod
    def parse(cls, text: str) -> DockerEndpoint:
        """An inventory value as an endpoint; `ValueError` saying what to write otherwise."""
        value = text.strip()
        lower = value.lower()
        if lower in ("ssh", "none"):
            return cls(EndpointKind(lower))
        if lower.startswith("ssh://"):
            raise ValueError(
                f"{value!r} would make the docker SDK open a second SSH login: write "
                '"ssh" and fleetdeck forwards the socket over the host\'s own connection'
            )
        if lower.startswith("unix://"):
            path = value[len("unix://") :]
            if not path.startswith("/"):
                raise ValueError(f"{value!r}: a unix socket needs an absolute path (unix:///…)")
            return cls(EndpointKind.UNIX, path)
        if lower.startswith("tcp://"):
            address = value[len("tcp://") :].rstrip("/")
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"{value!r}: write tcp://address:port (port 1-65535)")
            return cls(EndpointKind.TCP, address)
        if lower.startswith("context:") and value[len("context:") :].strip():
            return cls(EndpointKind.CONTEXT, value[len("context:") :].strip())
        raise ValueError(f"unknown Docker endpoint {value!r}: use {SPELLINGS}")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Client TLS for a TCP engine (from a context's tls directory or DOCKER_CERT_PATH)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """A resolved endpoint: what to dial, from where, and how it was chosen."""

    url: str
    """`unix:///path` or `tcp://address:port`, as seen from the engine's host."""
    via_ssh: bool
    """Dialled on the remote host through its SSH connection (a forwarded socket/port)."""
    source: str
    """What chose it, for messages: `inventory`, `DOCKER_HOST`, `context prod`, `default`."""
    tls: TlsFiles | None = None

    @property
    def is_unix(self) -> bool:
        return self.url.startswith("unix://")

    @property
    def path(self) -> str:
        """The socket path of a unix route."""
        return self.url[len("unix://") :]

    @property
    def tcp_address(self) -> tuple[str, int]:
        host, _, port = self.url[len("tcp://") :].rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def on_host(self) -> bool:
        """Whether the engine runs on the host its shell reaches (so that host's cgroup
        files are the containers'): a socket there, or anything through its SSH."""
        return self.via_ssh or self.is_unix

    def where(self, host: str) -> str:
        """How messages name it: `web-01: Docker at unix:///var/run/docker.sock (SSH)`."""
        how = " through the host's SSH connection" if self.via_ssh else ""
        chosen = "" if self.source in ("inventory", "default") else f" from {self.source}"
        return f"{host}: Docker at {self.url}{how}{chosen}"


def resolve(
    endpoint: DockerEndpoint | None,
    *,
    host: str,
    remote: bool,
    env: Mapping[str, str] | None = None,
) -> Route:
    """The route to a host's engine; `DockerError` (NO_ENDPOINT, CONFIG) when there is none."""
    env = os.environ if env is None else env
    where = f"{host}: Docker"
    kind = endpoint.kind if endpoint is not None else None
    if kind is EndpointKind.NONE:
        raise DockerError(where, DockerFailure.NO_ENDPOINT, 'the inventory says docker = "none"')
    if endpoint is not None and kind is EndpointKind.UNIX:
        return Route(f"unix://{endpoint.address}", remote, "inventory")
    if endpoint is not None and kind is EndpointKind.TCP:
        return Route(f"tcp://{endpoint.address}", remote, "inventory")
    if endpoint is not None and kind is EndpointKind.CONTEXT:
        return _from_context(endpoint.address, where, env)
    if remote or kind is EndpointKind.SSH:
        return Route(f"unix://{DEFAULT_SOCKET}", remote, "default")
    if env.get("DOCKER_HOST"):  # the CLI's order: it wins over DOCKER_CONTEXT too
        return _checked(env["DOCKER_HOST"], "DOCKER_HOST", _env_tls(env), where)
    name = env.get("DOCKER_CONTEXT") or current_context(config_dir(env))
    if name and name != "default":
        return _from_context(name, where, env)
    return Route(f"unix://{DEFAULT_SOCKET}", False, "default")


def config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's configuration directory: DOCKER_CONFIG, else ~/.docker."""
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker").expanduser()


def current_context(directory: Path) -> str | None:
    """`currentContext` of config.json (None: no file, unreadable, or not set)."""
    try:
        value = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = value.get("currentContext") if isinstance(value, dict) else None
    return name if isinstance(name, str) and name else None


def context_id(name: str) -> str:
    """The directory a context's files live in: the sha256 of its name (as the CLI does)."""
    return hashlib.sha256(name.encode()).hexdigest()


def parse_context_meta(text: str) -> tuple[str, bool]:
    """(Endpoints.docker.Host, SkipTLSVerify) of a context's meta.json; `ValueError`
    saying what is wrong otherwise."""
    data = json.loads(text)
    docker = data.get("Endpoints", {}).get("docker") if isinstance(data, dict) else None
    url = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(url, str) or not url:
        raise ValueError("it has no Endpoints.docker.Host")
    return url, bool(docker.get("SkipTLSVerify")) if isinstance(docker, dict) else False


def _from_context(name: str, where: str, env: Mapping[str, str]) -> Route:
    if name == "default":
        if env.get("DOCKER_HOST"):
            return _checked(env["DOCKER_HOST"], "DOCKER_HOST", _env_tls(env), where)
        return Route(f"unix://{DEFAULT_SOCKET}", False, "context default")
    directory = config_dir(env) / "contexts"
    meta = directory / "meta" / context_id(name) / "meta.json"
    try:
        url, skip_verify = parse_context_meta(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DockerError(
            where, DockerFailure.CONFIG, f"no docker context {name!r} ({meta} does not exist)"
        ) from None
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise DockerError(
            where, DockerFailure.CONFIG, f"docker context {name!r}: {meta}: {reason}"
        ) from None
    tls_dir = directory / "tls" / context_id(name) / "docker"
    files = {f: str(tls_dir / f"{f}.pem") for f in ("ca", "cert", "key")}
    present = {f: p for f, p in files.items() if Path(p).is_file()}
    tls = TlsFiles(**present, verify=not skip_verify) if present or skip_verify else None
    return _checked(url, f"context {name}", tls, where)


def _checked(url: str, source: str, tls: TlsFiles | None, where: str) -> Route:
    """A DOCKER_HOST or context URL as a route, refusing what fleetdeck does not dial."""
    try:
        endpoint = DockerEndpoint.parse(url)
    except ValueError as error:
        raise DockerError(where, DockerFailure.CONFIG, f"{source}: {error}") from None
    if endpoint.kind not in (EndpointKind.UNIX, EndpointKind.TCP):
        raise DockerError(where, DockerFailure.CONFIG, f"{source}: use unix:// or tcp://")
    return Route(str(endpoint), False, source, tls if endpoint.kind is EndpointKind.TCP else None)


def _env_tls(env: Mapping[str, str]) -> TlsFiles | None:
    """DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, as the docker CLI reads them."""
    if not env.get("DOCKER_TLS_VERIFY") and not env.get("DOCKER_CERT_PATH"):
        return None
    base = Path(env.get("DOCKER_CERT_PATH") or config_dir(env)).expanduser()
    present = {f: str(base / f"{f}.pem") for f in ("ca", "cert", "key")}
    present = {f: p for f, p in present.items() if Path(p).is_file()}
    return TlsFiles(**present, verify=bool(env.get("DOCKER_TLS_VERIFY")))
