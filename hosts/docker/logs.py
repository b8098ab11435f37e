"""`LogStream`: one container's log, read in a thread of its own, bounded, and stopped by
shutting its socket down.

The SDK's log stream is a blocking read that may wait for hours while it follows, so it gets
a thread of its own rather than one of the link's few pool threads; lines cross to the loop
through a queue of at most QUEUED_LINES, and a line without end comes in MAX_LINE pieces, so
memory stays bounded whatever the container writes. Apart from `hosts.docker.link` (which makes
streams with `DockerLink.logs` and re-exports these names) because the thread hand-over is
an idea of its own; the stream uses only the link's public side, `StreamOwner` (`client`,
`failure`, `settings`, `streams`, `where`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from fleetdeck.hosts.docker.dial import GRACE, quiet
from fleetdeck.hosts.docker.endpoint import DockerError, DockerFailure
from fleetdeck.hosts.docker.settings import DockerSettings

__all__ = ["MAX_LINE", "QUEUED_LINES", "LogStream"]

MAX_LINE = 65536
"""The longest piece of a line handed over; a longer line comes in pieces, so a log without
newlines never grows a buffer without end."""
QUEUED_LINES = 1000
"""Lines read ahead of the consumer before the reading thread waits: the memory bound."""
_END = object()


class StreamOwner(Protocol):
    """What a stream needs of the link that opened it (`DockerLink` is one): its client,
    its limits, the set of its open streams, and how it names and words a failure."""

    host: str
    settings: DockerSettings
    streams: set[LogStream]

    @property
    def where(self) -> str: ...

    async def client(self) -> Any: ...

    def failure(self, error: BaseException) -> DockerError: ...


class LogStream:
    """A container's log lines, raw bytes without the newline (stdout and stderr together;
    invalid UTF-8 and escape sequences as the container wrote them: render them safely).

        async with link.logs(container_id, tail=200, follow=True) as lines:
            async for line in lines:
                ...

    A thread of its own reads the engine's stream (it may wait for hours while following);
    leaving the block, `aclose()` or `link.close()` shuts the socket under that blocked read,
    so the thread ends at once. At most `log_streams` are open per link (else BUSY)."""

    def __init__(self, link: StreamOwner, container_id: str, options: dict[str, Any]) -> None:
        self.link = link
        self.container_id = container_id
        self.options = options
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED_LINES)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._opened: asyncio.Future[None] | None = None
        self._holds_slot = False

    async def __aenter__(self) -> LogStream:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> LogStream:
        return self

    async def __anext__(self) -> bytes:
        if self._opened is None and self._stop.is_set():
            raise StopAsyncIteration  # closed before it was ever opened
        await self.open()
        item = await self._queue.get()
        if not isinstance(item, bytes):
            self._queue.put_nowait(_END)  # and again for any later call
            raise StopAsyncIteration
        self._room.release()
        return item

    async def open(self) -> None:
        """Ask the engine for the log (once); `DockerError` GONE, TIMEOUT, BUSY... if not."""
        if self._opened is not None:
            return await asyncio.shield(self._opened)
        link, loop = self.link, asyncio.get_running_loop()
        self._opened = opened = loop.create_future()
        opened.add_done_callback(lambda f: f.cancelled() or f.exception())  # always retrieved
        try:
            if sum(s._holds_slot for s in link.streams) >= link.settings.log_streams:
                open_now = link.settings.log_streams
                raise DockerError(link.where, DockerFailure.BUSY, f"{open_now} are open already")
            self._holds_slot = True
            link.streams.add(self)
            api = await link.client()
            name = f"docker-logs-{link.host}"
            thread = threading.Thread(target=self._pump, args=(api, loop), name=name, daemon=True)
            thread.start()
            limit = link.settings.timeout * 2 + GRACE  # the request, then the tty inspect
            try:
                await asyncio.wait_for(asyncio.shield(opened), limit)
            except TimeoutError:
                raise DockerError(link.where, DockerFailure.TIMEOUT, quiet(limit)) from None
        except BaseException as error:
            if not opened.done() and isinstance(error, Exception):
                opened.set_exception(error)
            opened.cancel()  # cancelled while opening: a later open() says so too
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop reading (idempotent); lines still queued are dropped."""
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()  # shuts the socket down: the blocked read returns
        self.link.streams.discard(self)
        self._holds_slot = False
        self._queue.put_nowait(_END)

    def _pump(self, api: Any, loop: asyncio.AbstractEventLoop) -> None:
        """(Its thread.) Open the stream, cut what comes into lines, hand them to the loop."""
        try:
            response = api.logs(self.container_id, stream=True, **self.options)
        except Exception as error:  # handed to the loop as a DockerError
            _soon(loop, self._settle, self.link.failure(error))
            return
        with self._lock:
            self._response = response
        _soon(loop, self._settle, None)
        try:
            if self._lines(response, loop):
                _soon(loop, self._queue.put_nowait, _END)
        finally:
            with contextlib.suppress(Exception):
                response.close()

    def _lines(self, response: Any, loop: asyncio.AbstractEventLoop) -> bool:
        """(Its thread.) Cut the stream into lines and hand them over; False once closed."""
        line = bytearray()
        with contextlib.suppress(Exception):  # a closed or broken stream simply ends
            for chunk in response if not self._stop.is_set() else ():
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    line += chunk[start:end]
                    if not self._hand(loop, line):
                        return False
                    start = end + 1
                line += chunk[start:]
                while len(line) >= MAX_LINE:
                    if not self._hand(loop, line[:MAX_LINE]):
                        return False
                    del line[:MAX_LINE]
        return not line or self._hand(loop, line)

    def _hand(self, loop: asyncio.AbstractEventLoop, line: bytearray) -> bool:
        """Give the loop one line (then empty `line`), waiting while QUEUED_LINES wait
        unread; False when the stream was closed meanwhile."""
        whole = bytes(line)
        line.clear()
        while not self._room.acquire(timeout=0.25):
            if self._stop.is_set() or loop.is_closed():
                return False
        return not self._stop.is_set() and _soon(loop, self._queue.put_nowait, whole)

    def _settle(self, error: DockerError | None) -> None:
        if self._opened is not None and not self._opened.done():
            if error is None:
                self._opened.set_result(None)
            else:
                self._opened.set_exception(error)


def _soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> bool:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop has closed
        return False
    return True
