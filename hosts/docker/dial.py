"""Dialling a Docker engine, and its failures in an operator's words.

`open_client` (run in one of the link's pool threads) makes the SDK's low-level client at the
API version both sides speak; its first request is the engine's version, so a dead engine
fails at dial time. `classify` turns whatever the SDK, requests, urllib3 or the OS raised into
a `DockerFailure` and a sentence naming the cause (which socket, which user, which group).
Apart from `DockerLink` so the link reads as what it does, not how each failure is worded;
`hosts.docker.link` re-exports the public names.

The SDK (docker, requests, urllib3: about 7 MiB and 0.1 s) is imported when a client is
first made, and not at all for a local socket that is not there: a console on a host without
Docker says so without loading it. `classify` looks for the SDK's exceptions only once the
SDK is loaded, since before that nothing can have raised one.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import sys
from collections.abc import Callable, Iterator
from typing import Any

from fleetdeck.hosts.docker.endpoint import DockerFailure, Route
from fleetdeck.hosts.docker.records import EngineInfo
from fleetdeck.hosts.docker.settings import DockerSettings

__all__ = ["GRACE", "classify", "open_client", "quiet"]

GRACE = 1.0
"""Seconds past the SDK's own timeout before the outer limit gives up on a call."""


def open_client(url: str, route: Route, settings: DockerSettings) -> tuple[Any, EngineInfo]:
    """(In a pool thread.) A low-level client at the engine's API version (at most the
    SDK's), and the engine's version: the first request, so a dead engine fails here. A
    local socket that does not exist fails here too, before the SDK is imported."""
    if url.startswith("unix://") and not os.path.exists(path := url.removeprefix("unix://")):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    import docker
    import docker.tls

    tls: Any = False
    if route.tls is not None and url.startswith("tcp://"):
        files = route.tls
        cert = (files.cert, files.key) if files.cert and files.key else None
        tls = docker.tls.TLSConfig(client_cert=cert, ca_cert=files.ca, verify=files.verify)
    size = settings.workers + settings.log_streams + settings.stats_concurrency
    common: dict[str, Any] = {"timeout": settings.timeout, "tls": tls, "max_pool_size": size}
    oldest = docker.constants.MINIMUM_DOCKER_API_VERSION
    probe = docker.APIClient(base_url=url, version=oldest, **common)
    try:
        version = probe.version(api_version=False)
    finally:
        probe.close()
    theirs = str(version.get("ApiVersion") or oldest)
    ours = docker.constants.DEFAULT_DOCKER_API_VERSION
    use = ours if docker.utils.version_lt(ours, theirs) else theirs
    api = docker.APIClient(base_url=url, version=use, **common)
    info = EngineInfo(
        str(version.get("Version", "?")),
        use,
        str(version.get("Os", "")),
        str(version.get("Arch", "")),
    )
    return api, info


def classify(error: BaseException, route: Route, timeout: float) -> tuple[DockerFailure, str]:
    """The cause of a failed SDK call, and a sentence saying it to an operator."""
    chain = list(_chain(error))
    place = route.path if route.is_unix else route.url
    sdk = "docker.errors" in sys.modules
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
    lost: tuple[type[BaseException], ...] = (ConnectionError,)
    if sdk:
        import docker.errors
        import requests

        timeouts, lost = (*timeouts, requests.Timeout), (*lost, requests.ConnectionError)
    for cause in chain:
        if sdk and isinstance(cause, docker.errors.NotFound):
            return DockerFailure.GONE, f"no such container ({cause.explanation})"
        if sdk and isinstance(cause, docker.errors.APIError):
            return DockerFailure.API, str(cause.explanation or cause)
    for cause in chain:
        if isinstance(cause, timeouts):
            return DockerFailure.TIMEOUT, quiet(timeout)
        if isinstance(cause, PermissionError):
            return DockerFailure.DENIED, _denied(route)
        if isinstance(cause, FileNotFoundError) and not route.via_ssh:
            why = "Docker is not installed or not running here"
            return DockerFailure.NOT_FOUND, f"no socket at {place}: {why}"
        if isinstance(cause, ConnectionRefusedError) and not route.via_ssh:
            return DockerFailure.REFUSED, f"nothing listens at {place} (connection refused)"
    for cause in chain:
        if isinstance(cause, lost):
            return DockerFailure.LOST, f"the engine closed the connection ({cause})"
        if sdk and isinstance(cause, docker.errors.DockerException):
            return DockerFailure.CONFIG, str(cause)
    return DockerFailure.API, f"{type(error).__name__}: {error}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    """An exception and all it wraps: causes, contexts, urllib3's reasons, exception args."""
    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += list(current.args)


def quiet(seconds: float) -> str:
    """What a TIMEOUT says."""
    return (
        f"the engine took the connection but sent nothing within {seconds:g} s "
        "(hung, overloaded or stopped)"
    )


def _denied(route: Route) -> str:
    """Who is refused which socket, and the usual way in."""
    user = _name(lambda: pwd.getpwuid(os.geteuid()).pw_name, os.geteuid())
    if route.via_ssh or not route.is_unix:
        return f"the engine at {route.url} refused user {user}"
    try:
        info = os.stat(route.path)
    except OSError:
        return f"user {user} may not reach {route.path} (a directory on the way is closed)"
    owner = _name(lambda: pwd.getpwuid(info.st_uid).pw_name, info.st_uid)
    group = _name(lambda: grp.getgrgid(info.st_gid).gr_name, info.st_gid)
    return (
        f"user {user} may not use {route.path} ({owner}:{group}, mode "
        f"{stat.S_IMODE(info.st_mode):o}): add {user} to group {group}, or point "
        "DOCKER_HOST or a docker context at a socket it may use"
    )


def _name(lookup: Callable[[], str], number: int) -> str:
    try:
        return lookup()
    except KeyError:
        return str(number)
