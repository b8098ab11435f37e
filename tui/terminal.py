"""Text on the operator's terminal: every line the headless commands write goes through
`checks.model.printable`, so nothing a host, a database or a file name holds can retitle,
clear or rewrite the terminal it is read on. No Textual here (the console draws its own)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from fleetdeck.checks.model import printable


class Printable:
    """A text stream that shows control characters as escapes (\\x1b): what it is handed
    reaches the terminal as text, never as a command to it. JSON is unchanged by it, as
    `json.dumps` escapes every control character itself (and, ASCII only, the rest)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        """False: what is written here is escaped, so it is no terminal to style. Rich (the
        console's error report on exit) then writes plain text, not colour codes that would
        reach the reader as `\x1b[1;31m` in the traceback."""
        return False

    def __getattr__(self, name: str) -> Any:  # fileno, encoding ... as the stream's
        return getattr(self._stream, name)


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """stdout and stderr through `Printable` while the block runs: the command's output,
    its warnings and error messages, argparse's complaints about a typed argument."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Printable(sys.stdout), Printable(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
