"""SSH connections to inventory hosts (asyncssh): strict host keys, jump chains, clear states.

`connect_host` opens one connection, through the host's ProxyJump chain if it has one, and
turns every way that can fail into a `ConnectError` whose `state` the Fleet screen shows
(auth failed, refused, timeout, name not resolved, host key unknown, host key changed).
Host keys are checked against known_hosts and never accepted silently; `accept_new`
mirrors OpenSSH's StrictHostKeyChecking=accept-new: an unknown key is added to the file,
a changed one is still refused.
"""

from __future__ import annotations

import asyncio
import enum
import os
import shlex
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from fleetdeck.hosts.inventory.records import HostSpec, Inventory, split_jumps
from fleetdeck.hosts.shell import (
    CommandResult,
    CommandTimeout,
    OutputLost,
    ShellError,
    decoded,
    encoded,
)

CONNECT_TIMEOUT = 10.0
KEEPALIVE_INTERVAL = 15.0
KEEPALIVE_COUNT = 3


class ConnState(enum.StrEnum):
    """Where a host's connection stands, in the words the Fleet screen uses."""

    CONNECTING = "connecting"
    UP = "up"
    AUTH_FAILED = "auth failed"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    NAME_NOT_RESOLVED = "name not resolved"
    HOST_KEY_UNKNOWN = "host key unknown"
    HOST_KEY_CHANGED = "host key changed"
    DOWN = "down"


class ConnectError(Exception):
    """A host could not be reached; `state` says how, the message says what to do."""

    def __init__(self, host: str, state: ConnState, detail: str) -> None:
        self.host = host
        self.state = state
        self.detail = detail
        super().__init__(f"{host}: {state.value}: {detail}")


@dataclass(frozen=True, slots=True)
class SSHOptions:
    """How fleetdeck connects: which known_hosts, whether unknown keys may be added."""

    known_hosts: Path = Path("~/.ssh/known_hosts")
    accept_new: bool = False
    connect_timeout: float = CONNECT_TIMEOUT
    keepalive_interval: float = KEEPALIVE_INTERVAL
    agent: bool = True

    @property
    def known_hosts_path(self) -> Path:
        return Path(os.path.expanduser(self.known_hosts))


class _HostKeyCheck(asyncssh.SSHClient):
    """Remembers the key a server offered; adds it to known_hosts only under accept_new and
    only when the file has no key at all for that host (a changed key is never added)."""

    def __init__(self, target: str, options: SSHOptions, known_before: bool) -> None:
        self.target = target
        self.options = options
        self.known_before = known_before
        self.offered: asyncssh.SSHKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        if not self.options.accept_new or self.known_before:
            return False
        path = self.options.known_hosts_path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = host if port == 22 else f"[{host}]:{port}"
        entry = f"{name} {key.export_public_key().decode().strip()}\n"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(entry)
            handle.flush()
            os.fsync(handle.fileno())
        return True


_parsed_known_hosts: dict[Path, tuple[float, int, asyncssh.SSHKnownHosts]] = {}


def _known_hosts(options: SSHOptions) -> asyncssh.SSHKnownHosts:
    """The parsed known_hosts file, kept until it changes: a fleet (re)connecting would
    otherwise parse it twice per attempt. A missing file means no trusted keys at all,
    never ssh's default file instead."""
    path = options.known_hosts_path
    try:
        stat = path.stat()
    except OSError:
        return asyncssh.import_known_hosts("")
    cached = _parsed_known_hosts.get(path)
    if cached is None or cached[:2] != (stat.st_mtime, stat.st_size):
        try:
            parsed = asyncssh.read_known_hosts(str(path))
        except (OSError, ValueError):
            parsed = asyncssh.import_known_hosts("")
        cached = (stat.st_mtime, stat.st_size, parsed)
        _parsed_known_hosts[path] = cached
    return cached[2]


def _known_keys(options: SSHOptions, host: str, port: int) -> bool:
    """Whether known_hosts holds any key for this host and port."""
    trusted, ca, *_ = _known_hosts(options).match(host, "", port)
    return bool(trusted or ca)


def _hop_spec(hop: str, inventory: Inventory | None) -> HostSpec:
    """A jump hop as a HostSpec: an inventory host by name, else [user@]address[:port]."""
    known = inventory.host(hop) if inventory else None
    if known is not None:
        return known
    user, _, rest = hop.rpartition("@")
    address, _, port = rest.partition(":")
    if rest.startswith("["):  # [v6::addr]:port
        address, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    return HostSpec(name=hop, address=address, port=int(port or 22), user=user or None)


async def connect_host(
    spec: HostSpec,
    options: SSHOptions,
    inventory: Inventory | None = None,
    tunnel: asyncssh.SSHClientConnection | None = None,
) -> asyncssh.SSHClientConnection:
    """Connect to one host, through its jump chain; raise `ConnectError` on any failure."""
    hops = [_hop_spec(h, inventory) for h in split_jumps(spec.jump)]
    opened: list[asyncssh.SSHClientConnection] = []
    try:
        for hop in hops:
            tunnel = await _connect_one(hop, options, tunnel, via=spec.name)
            opened.append(tunnel)
        return await _connect_one(spec, options, tunnel)
    except BaseException:
        for conn in reversed(opened):
            conn.close()
        raise


async def _connect_one(
    spec: HostSpec,
    options: SSHOptions,
    tunnel: asyncssh.SSHClientConnection | None,
    via: str | None = None,
) -> asyncssh.SSHClientConnection:
    who = spec.name if via is None else f"{via} (jump host {spec.name})"
    known_before = _known_keys(options, spec.address, spec.port)
    checker = _HostKeyCheck(spec.name, options, known_before)
    kwargs = _connect_options(spec, options, tunnel, checker)
    try:
        return await asyncssh.connect(spec.address, **kwargs)
    except asyncssh.HostKeyNotVerifiable:
        raise _host_key_error(who, spec, checker, options) from None
    except asyncssh.PermissionDenied as error:
        raise ConnectError(
            who, ConnState.AUTH_FAILED, f"the server refused every key offered ({error.reason})"
        ) from None
    except ConnectionRefusedError:
        raise ConnectError(
            who, ConnState.REFUSED, f"nothing listens on {spec.address} port {spec.port}"
        ) from None
    except (TimeoutError, asyncssh.ConnectionLost) as error:
        detail = f"no answer from {spec.address}:{spec.port} within {options.connect_timeout:g} s"
        if isinstance(error, asyncssh.ConnectionLost):
            detail = f"connection lost during the handshake ({error.reason})"
        raise ConnectError(who, ConnState.TIMEOUT, detail) from None
    except socket.gaierror as error:
        raise ConnectError(
            who,
            ConnState.NAME_NOT_RESOLVED,
            f"{spec.address!r} does not resolve ({error.strerror})",
        ) from None
    except asyncssh.ChannelOpenError as error:  # a jump host could not reach the next hop
        raise ConnectError(
            who, ConnState.DOWN, f"the jump host could not connect: {error.reason}"
        ) from None
    except (OSError, asyncssh.Error) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
        raise ConnectError(who, ConnState.DOWN, str(reason)) from None


def _connect_options(
    spec: HostSpec,
    options: SSHOptions,
    tunnel: asyncssh.SSHClientConnection | None,
    checker: _HostKeyCheck,
) -> dict[str, object]:
    """asyncssh.connect arguments: timeouts and keepalive always on, our known_hosts only."""
    keys = [str(Path(k).expanduser()) for k in spec.identity_files]
    kwargs: dict[str, object] = {
        "port": spec.port,
        "known_hosts": _known_hosts(options),
        "client_factory": lambda: checker,
        "connect_timeout": options.connect_timeout,
        "keepalive_interval": options.keepalive_interval,
        "keepalive_count_max": KEEPALIVE_COUNT,
        "tunnel": tunnel,
        "config": [],  # ours is the inventory; don't let ~/.ssh/config reinterpret it
    }
    if spec.user:
        kwargs["username"] = spec.user
    if keys:
        kwargs["client_keys"] = keys
    if not options.agent:
        kwargs["agent_path"] = None
    return kwargs


def _host_key_error(
    who: str, spec: HostSpec, checker: _HostKeyCheck, options: SSHOptions
) -> ConnectError:
    offered = checker.offered
    fingerprint = offered.get_fingerprint("sha256") if offered is not None else "unknown"
    where = spec.address if spec.port == 22 else f"[{spec.address}]:{spec.port}"
    if checker.known_before:
        return ConnectError(
            who,
            ConnState.HOST_KEY_CHANGED,
            f"the host key is not the one in {options.known_hosts_path} (offered {fingerprint}). "
            "This may be an attack, or the host was reinstalled: check with its owner, then "
            f"remove the old key with: ssh-keygen -R '{where}' -f {options.known_hosts_path}",
        )
    return ConnectError(
        who,
        ConnState.HOST_KEY_UNKNOWN,
        f"no key for {where} in {options.known_hosts_path} (offered {fingerprint}). "
        "Check the fingerprint with the host's owner, then add it (ssh-keyscan), "
        "or run with --accept-new to add unknown keys",
    )


REMOTE_KILL_GRACE = 5.0
"""Seconds past a command's timeout before we stop waiting for the host to report it."""


class SSHShell:
    """A `Shell` over one asyncssh connection: argv lists joined with shlex, a timeout each."""

    def __init__(self, host: str, connection: asyncssh.SSHClientConnection) -> None:
        self._host = host
        self.connection = connection

    @property
    def host(self) -> str:
        return self._host

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        if not argv:
            raise ShellError(self._host, argv, "empty command")
        started = time.monotonic()
        # Closing the channel does not stop a remote command, so the host's own timeout(1)
        # kills it at the deadline; ours, a little later, only covers a host that went quiet.
        # The command goes as bytes: an argv element read from the host's output (a name that
        # is not UTF-8, kept as surrogates) reaches the host as the bytes it came as.
        command = encoded(shlex.join(["timeout", "-s", "KILL", f"{timeout:g}", *argv]))
        try:
            async with asyncio.timeout(timeout + REMOTE_KILL_GRACE):
                # encoding=None: bytes back, decoded here with replacement. asyncssh's own
                # strict UTF-8 decoding closes the whole connection on one bad byte.
                result = await self.connection.run(
                    command,  # asyncssh sends bytes as they are
                    input=None if stdin is None else encoded(stdin),
                    check=False,
                    encoding=None,
                )
        except TimeoutError:
            raise CommandTimeout(self._host, argv, timeout, killed=False) from None
        except (OSError, asyncssh.Error) as error:
            reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            raise OutputLost(self._host, argv, f"SSH: {reason}") from None
        status = _exit_status(result)
        if status in (137, -9) and time.monotonic() - started >= timeout - 0.05:
            raise CommandTimeout(self._host, argv, timeout)  # timeout(1) killed it there
        if result.exit_status is None and not result.exit_signal:
            # The channel closed before the host said how the command ended: the connection
            # dropped, and whatever output came is not the whole of it.
            raise OutputLost(self._host, argv, "SSH: the connection closed before it finished")
        out = _bytes(result.stdout)
        return CommandResult(
            argv=tuple(argv),
            exit_status=status,
            stdout=decoded(out),
            stderr=decoded(_bytes(result.stderr)),
            duration=time.monotonic() - started,
            raw_stdout=out,
        )


def _exit_status(result: asyncssh.SSHCompletedProcess) -> int:
    """The exit status, or minus the signal number when the command died of a signal
    (as subprocess reports it locally); -1 when the host said neither."""
    if result.exit_status is not None and result.exit_status >= 0:
        return result.exit_status
    if result.exit_signal:
        try:
            return -int(signal.Signals[f"SIG{result.exit_signal[0]}"])
        except (KeyError, ValueError):
            return -1
    return -1


def _bytes(value: str | bytes | None) -> bytes:
    """A channel's output as bytes (asyncssh gives bytes with encoding=None)."""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else encoded(value)
