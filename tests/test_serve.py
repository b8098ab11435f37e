"""`fleetdeck serve` as a person meets it: a real server process on a free loopback port, a
real headless Chromium opening the URL it printed, and requests without the token refused.

The browser test saves its screenshot and looks at it two ways: what the page received over
its websocket (the war room's banner, read-only) and what it drew (a screen of many colours,
not a blank page); and it checks that the page asked nothing of any other host (no CDN).
FLEETDECK_WRITE_SCREENSHOTS=1 also writes the screenshot to screenshots/ for the README.
"""

from __future__ import annotations

import asyncio
import base64
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import aiohttp
import pytest
from browser import chromium, free_port
from PIL import Image
from war_room_data import build_state

from fleetdeck.tui.cli import build_parser
from fleetdeck.tui.serve import console_argv

from conftest import REPO, fleetdeck_bin, require_binary

SHOT = REPO / "screenshots" / "serve-war-room-chromium.png"


ANSI = re.compile(r"\x1b\[[0-9;?$<>]*[a-zA-Z]|\x1b\][^\x07]*\x07")
"""The escape sequences between the words of what the console sends the page."""
WANTED = ("FLEETDECK WAR ROOM", "READ-ONLY", "Checkout database out of disk", "Alerts")


def _shows(received: str, wanted: Sequence[str]) -> bool:
    text = ANSI.sub("", received)
    return all(w in text for w in wanted)


class Served:
    def __init__(self, url: str, token: str, output: list[str]) -> None:
        self.url = url
        self.token = token
        self.base = url.split("/?", 1)[0]
        self.output = output


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`fleetdeck serve --war-room` on a free loopback port, over a war room's state written
    now; stopped (its whole process group, consoles included) afterwards."""
    audit = tmp_path / "audit.jsonl"
    build_state(audit, now=time.time())
    port = free_port()
    process = subprocess.Popen(
        [fleetdeck_bin(), "serve", "--war-room", "--port", str(port), "--audit-log", str(audit)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    everything: list[str] = []  # every line, as the server goes on logging

    def read(stdout: IO[str]) -> None:
        for line in stdout:
            everything.append(line)
            lines.put(line)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            output.append(line)
            found = re.search(r"open (http://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, f"serve printed no URL in 60 s: {''.join(output)}"
        yield Served(url, url.split("token=", 1)[1], everything)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_serve_listens_on_loopback_with_a_token_and_runs_the_war_room_read_only(
    served: Served,
) -> None:
    assert served.base.startswith("http://127.0.0.1:")
    assert len(served.token) >= 32
    said = "".join(served.output)
    assert "--war-room --read-only" in said


async def test_requests_without_the_token_are_refused(served: Served) -> None:
    """403 for the page, its script and its websocket without the token or with a wrong
    one; the page itself with it; and the cookie it sets lets the page's own requests in."""
    # unsafe: keep cookies of an IP address (127.0.0.1), as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        for path in ("/", "/static/js/textual.js", "/ws", "/?token=not-the-token"):
            async with session.get(served.base + path) as response:
                assert response.status == 403, path
                assert "access token" in await response.text()
        async with session.get(served.url) as response:
            assert response.status == 200
            page = await response.text()
        async with session.get(served.base + "/static/js/textual.js") as response:
            assert response.status == 200  # the cookie set with the page
    # Every address in the page is this server's: no CDN, no web font from elsewhere.
    addresses = re.findall(r'(?:src|href)="([^"]+)"|url\("?([^")]+)', page)
    assert addresses
    for pair in addresses:
        address = pair[0] or pair[1]
        assert address.startswith(served.base), address
    assert "googleapis" not in page
    # The access log names each request, never the token (the terminal showed it once).
    for _ in range(100):  # the access log's line is written after the response
        if any("token=***" in line for line in served.output):
            break
        await asyncio.sleep(0.05)
    logged = "".join(served.output[2:])
    assert "GET /?token=***" in logged and served.token not in logged


async def test_websocket_from_another_site_is_refused(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Origin": "http://evil.example"}
        async with session.get(f"{served.base}/ws?token={served.token}", headers=headers) as r:
            assert r.status == 403


async def test_the_war_room_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    """Chromium opens the printed URL: the console behind it sends the war room (its banner
    says read-only) over the websocket, the page draws it, and every request the page made
    went to this server."""
    binary = require_binary("chromium", "chromium")
    requested: list[str] = []
    received = ""
    async with chromium(binary, 1600, 1000) as page:
        await page.call("Network.enable")
        await page.call("Page.navigate", url=served.url)
        deadline = time.monotonic() + 90
        while not _shows(received, WANTED) and time.monotonic() < deadline:
            event = await page.event(timeout=max(deadline - time.monotonic(), 0.1))
            if event is None:
                break
            params = event.get("params", {})
            if event.get("method") == "Network.requestWillBeSent":
                requested.append(params["request"]["url"])
            if event.get("method") == "Network.webSocketFrameReceived":
                frame = params["response"]
                data = frame["payloadData"]
                raw = base64.b64decode(data) if frame.get("opcode") == 2 else data.encode()
                received += raw.decode("utf-8", "replace")
        text = ANSI.sub("", received)
        for wanted in WANTED:
            assert wanted in text
        await page.settle()
        shot = tmp_path / "serve.png"
        await page.screenshot(shot)
    assert requested
    for url in requested:
        assert url.startswith((served.base, served.base.replace("http", "ws"))), url
    image = Image.open(shot).convert("RGB")
    assert image.size[0] == 1600
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the page is blank or nearly so"
    background = max(colours)[0]
    drawn = sum(count for count, _ in colours) - background
    assert drawn > image.size[0] * image.size[1] // 20, "too little drawn to be the war room"
    if os.environ.get("FLEETDECK_WRITE_SCREENSHOTS"):
        SHOT.write_bytes(shot.read_bytes())


def test_serve_runs_the_console_read_only_unless_fixes_are_allowed() -> None:
    def argv(*words: str) -> list[str]:
        return console_argv(build_parser().parse_args(["serve", *words]))

    assert argv()[-1] == "--read-only"
    assert "--read-only" not in argv("--allow-fixes")
    assert argv("--war-room", "--allow-fixes")[-2:] == ["--war-room", "--read-only"]
    given = argv("-i", "inv.toml", "--tag", "web", "--audit-log", "a.jsonl")
    assert given[given.index("--inventory") + 1] == "inv.toml"
    assert given[given.index("--tag") + 1] == "web"
    assert given[given.index("--audit-log") + 1] == "a.jsonl"
    top = console_argv(build_parser().parse_args(["-w", "--interval", "5", "serve"]))
    assert "--war-room" in top and top[top.index("--interval") + 1] == "5.0"
    prom = ["--prometheus", "http://127.0.0.1:9090", "serve"]
    assert "--prometheus=http://127.0.0.1:9090" in console_argv(build_parser().parse_args(prom))
    settings_first = build_parser().parse_args(["--prometheus", "--interval", "2", "serve"])
    assert "--prometheus" in console_argv(settings_first)  # the settings' first Prometheus


def test_a_port_in_use_is_a_clear_error_and_no_url(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [fleetdeck_bin(), "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    assert "token=" not in result.stdout
