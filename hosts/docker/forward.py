"""`forward`: a remote host's Docker engine reached through the host's own asyncssh
connection: a unix socket in a private 0700 directory here, forwarded to the socket (or port)
there; when sshd cannot open it, the host itself is asked why (missing, not a socket, denied).

Apart from `hosts.docker.endpoint`, which the inventory imports, so reading an inventory never
loads asyncssh or the SSH shell; `DockerLink` imports this module only when it dials over SSH.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable

import asyncssh

from fleetdeck.hosts.docker.endpoint import DockerError, DockerFailure, Route
from fleetdeck.hosts.ssh import SSHShell

__all__ = ["forward"]


async def forward(
    opener: Callable[[], Awaitable[asyncssh.SSHClientConnection]],
    route: Route,
    host: str,
    timeout: float,
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHListener, str]:
    """(connection, listener, private directory) of a forward of the route's socket or port
    on the remote host to `<directory>/docker.sock` here (0700: only this user may dial it).
    The remote end is tried first, so a missing, refused or denied socket is a DockerError
    naming the cause, not a connection the SDK sees closed without a word."""
    where = route.where(host)
    try:
        connection = await opener()  # bounded by its own connect timeout: never cut it short
    except Exception as error:  # the opener's own (SampleError, ConnectError)
        raise DockerError(where, DockerFailure.SSH, f"no SSH connection: {error}") from None
    try:
        async with asyncio.timeout(timeout):
            if route.is_unix:
                _, writer = await connection.open_unix_connection(route.path)
            else:
                _, writer = await connection.open_connection(*route.tcp_address)
            writer.close()
    except asyncssh.ChannelOpenError as error:
        raise await _why_refused(connection, route, host, error.reason, timeout) from None
    except TimeoutError:
        raise DockerError(
            where, DockerFailure.TIMEOUT, f"sshd did not open {route.url} within {timeout:g} s"
        ) from None
    except (OSError, asyncssh.Error) as error:
        reason = getattr(error, "reason", None) or str(error)
        raise DockerError(where, DockerFailure.SSH, str(reason)) from None
    directory = tempfile.mkdtemp(prefix="fleetdeck-docker-")  # mode 0700
    local = os.path.join(directory, "docker.sock")
    try:
        if route.is_unix:
            listener = await connection.forward_local_path(local, route.path)
        else:
            listener = await connection.forward_local_path_to_port(local, *route.tcp_address)
    except (OSError, asyncssh.Error) as error:
        shutil.rmtree(directory, ignore_errors=True)
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        raise DockerError(where, DockerFailure.SSH, f"SSH forward: {reason}") from None
    return connection, listener, directory


_WHY = """p=$1
if [ ! -e "$p" ]; then echo missing
elif [ ! -S "$p" ]; then echo notsocket
elif [ ! -r "$p" ] || [ ! -w "$p" ]; then echo denied "$(id -un)" "$(stat -c %U:%G:%a "$p")"
else echo refused; fi"""


async def _why_refused(
    connection: asyncssh.SSHClientConnection, route: Route, host: str, reason: str, timeout: float
) -> DockerError:
    """Why the host's sshd could not open its Docker socket, asked of the host itself."""
    where = route.where(host)
    if not route.is_unix:
        address = "{}:{}".format(*route.tcp_address)
        return DockerError(where, DockerFailure.REFUSED, f"nothing listens on {address} there")
    path = route.path
    try:
        answer = await SSHShell(host, connection).run(
            ["sh", "-c", _WHY, "sh", path], timeout=timeout
        )
        words = answer.stdout.split()
    except Exception:  # the question is a courtesy; sshd's reason stands
        words = []
    if words[:1] == ["missing"]:
        return DockerError(
            where,
            DockerFailure.NOT_FOUND,
            f"no socket at {path} on {host}: Docker is not installed or not running there",
        )
    if words[:1] == ["notsocket"]:
        return DockerError(where, DockerFailure.CONFIG, f"{path} on {host} is not a socket")
    if words[:1] == ["denied"]:
        user = words[1] if len(words) > 1 else "the SSH user"
        owner, _, mode = (words[2] if len(words) > 2 else "?:?:?").rpartition(":")
        group = owner.partition(":")[2] or "docker"
        return DockerError(
            where,
            DockerFailure.DENIED,
            f"user {user} may not use {path} on {host} ({owner}, mode {mode}): add {user} "
            f"to group {group} there, or log in as a user who may",
        )
    if words[:1] == ["refused"]:
        return DockerError(
            where, DockerFailure.REFUSED, f"nothing listens at {path} on {host} (Docker stopped)"
        )
    return DockerError(where, DockerFailure.SSH, f"sshd could not open {path}: {reason}")
