"""Headless Chromium driven over the DevTools protocol, for tests of `fleetdeck serve`.

Debian's `chromium` (scripts/test installs it) runs with a fresh profile, no network
features of its own (no sync, component updates, QUIC or background requests), and the
DevTools endpoint on a loopback port; the test talks to it through aiohttp's websocket
client: open a page, evaluate JavaScript in it, take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Page:
    """One tab, spoken to over its DevTools websocket: calls wait for their replies, and the
    events in between are queued for `event`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            waiting = self._replies.pop(data.get("id", -1), None)
            if waiting is not None:
                waiting.set_result(data)
            elif "method" in data:
                self._events.put_nowait(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        reply = self._replies[number] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": number, "method": method, "params": params})
        async with asyncio.timeout(60):
            data = await reply
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return dict(data["result"])

    async def event(self, timeout: float) -> dict[str, Any] | None:
        """The next event (Network.*, Page.* once enabled), or None after `timeout` s."""
        try:
            async with asyncio.timeout(timeout):
                return await self._events.get()
        except TimeoutError:
            return None

    async def settle(self, quiet: float = 1.0, longest: float = 15.0) -> None:
        """Let the page finish drawing: until no event came for `quiet` s (at most `longest`)."""
        deadline = time.monotonic() + longest
        while time.monotonic() < deadline and await self.event(quiet) is not None:
            pass

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self._reader.cancel()


@asynccontextmanager
async def chromium(binary: str, width: int, height: int) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab of this size; killed (its whole process
    group) and its profile removed on the way out."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
            f"--window-size={width},{height}", "about:blank",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as session:
                target = await _first_page(session, port, process)
                async with session.ws_connect(target, max_msg_size=0) as ws:
                    page = Page(ws)
                    try:
                        yield page
                    finally:
                        page.close()
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _first_page(
    session: aiohttp.ClientSession, port: int, process: asyncio.subprocess.Process
) -> str:
    """The blank tab's DevTools websocket, once Chromium answers (bounded: 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        try:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [t for t in await response.json() if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("chromium's DevTools endpoint did not answer in 60 s")
