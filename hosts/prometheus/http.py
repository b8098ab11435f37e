"""The HTTP under every Prometheus and Alertmanager call: JSON in and out, bounded.

The standard library's urllib, run in a worker thread, is enough here: the APIs are a few
JSON endpoints on one base URL, with no streaming, no HTTP/2 and no connection pool worth
having at one request per source per refresh. Each request has a socket timeout (so the
thread ends by itself) and an outer `asyncio.timeout` (so the loop never waits longer); a
body larger than `max_bytes` is refused before it is parsed. Proxies from the environment are
ignored: a monitoring source is reached directly, as Prometheus's own clients do.

Credentials are read when a request is made, from a file or an environment variable named in
the settings, never from the settings file itself; they never appear in an error message.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 10.0
MAX_BYTES = 32 * 1024 * 1024
"""The largest answer read: a 1,000-host fleet's node metrics are a few megabytes of JSON."""
SECRET_MAX = 64 * 1024
EXCERPT = 200


class SourceError(Exception):
    """A source could not be asked or its answer not read; the message names the URL and the
    cause (never a credential)."""

    def __init__(self, url: str, cause: str) -> None:
        self.url, self.cause = url, cause
        super().__init__(f"{url}: {cause}")


class SourceGarbage(SourceError):
    """The source answered, but not with what its API promises."""


@dataclass(frozen=True, slots=True)
class Auth:
    """How to authenticate to a source: a bearer token, or a user name and password, each
    secret from a file or an environment variable (named here; the secret itself is not)."""

    token_file: Path | None = None
    token_env: str | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None

    def header(self, url: str) -> str | None:
        """The Authorization header's value, read now; None without credentials."""
        token = _secret(url, "token", self.token_file, self.token_env)
        if token is not None:
            return f"Bearer {token}"
        if self.username is None:
            return None
        password = _secret(url, "password", self.password_file, self.password_env) or ""
        pair = f"{self.username}:{password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def _secret(url: str, what: str, path: Path | None, env: str | None) -> str | None:
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = handle.read(SECRET_MAX + 1)
        except OSError as error:
            raise SourceError(
                url, f"cannot read the {what} file {path}: {error.strerror}"
            ) from None
        if len(data) > SECRET_MAX:
            raise SourceError(url, f"the {what} file {path} is over {SECRET_MAX} bytes")
        return data.decode("utf-8", "replace").strip()
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise SourceError(url, f"the {what} variable {env} is not set")
        return value.strip()
    return None


def printable_excerpt(data: bytes) -> str:
    """The start of a body, decoded with replacement and on one line, for an error message."""
    text = data[:EXCERPT].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text + ("..." if len(data) > EXCERPT else "")


@dataclass(frozen=True, slots=True)
class HttpSource:
    """One source's base URL, credentials and bounds; `call` does one request."""

    url: str
    auth: Auth = field(default_factory=Auth)
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = MAX_BYTES

    def endpoint(self, path: str, params: dict[str, str] | None = None) -> str:
        base = self.url.rstrip("/") + path
        return f"{base}?{urllib.parse.urlencode(params)}" if params else base

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: object = None,
    ) -> Any:
        """One request; the decoded JSON answer (None for an empty body). Raises
        `SourceError` (unreachable, refused, HTTP error, timeout) or `SourceGarbage`."""
        url = self.endpoint(path, params)
        headers = {"Accept": "application/json"}
        auth = self.auth.header(self.url)
        if auth is not None:
            headers["Authorization"] = auth
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                return await asyncio.to_thread(self._fetch_json, request)
        except TimeoutError:
            raise SourceError(url, f"no answer in {self.timeout:g} s") from None

    def _fetch_json(self, request: urllib.request.Request) -> Any:
        """The answer decoded in the worker thread too (megabytes for a fleet's batch)."""
        raw = self._fetch(request)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            excerpt = printable_excerpt(raw)
            raise SourceGarbage(request.full_url, f"not JSON: {excerpt!r}") from None

    def _fetch(self, request: urllib.request.Request) -> bytes:
        url = request.full_url
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > self.max_bytes:
                    too_big = f"answer of {length} bytes, over the {self.max_bytes} allowed"
                    raise SourceGarbage(url, too_big)
                raw: bytes = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as error:
            detail = printable_excerpt(error.read(EXCERPT + 1))
            cause = f"HTTP {error.code} {error.reason}"
            if error.code in (401, 403):
                cause += " (check the source's token or password)"
            raise SourceError(url, f"{cause}: {detail}" if detail else cause) from None
        except urllib.error.URLError as error:
            reason = error.reason
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
            raise SourceError(url, f"unreachable: {text}") from None
        except TimeoutError:
            raise SourceError(url, f"no answer in {self.timeout:g} s") from None
        except http.client.HTTPException as error:
            raise SourceGarbage(url, f"not an HTTP answer: {type(error).__name__}") from None
        except (ConnectionError, OSError) as error:
            raise SourceError(url, f"connection failed: {error.strerror or error}") from None
        if len(raw) > self.max_bytes:
            raise SourceGarbage(url, f"answer over the {self.max_bytes} bytes allowed")
        return raw
