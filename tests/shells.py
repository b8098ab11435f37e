"""This machine's shell, with a few commands answered otherwise: a recorded text where the
kernel has nothing to show (md RAID), a refusal (dmesg_restrict), a file that is not ours
to edit (/etc/fstab), or every command run under a prefix (`setpriv` to nobody, `env PATH=`).
Everything not answered runs here for real."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import replace

from fleetdeck.hosts.shell import CommandResult, LocalShell

HOST = socket.gethostname()
Answer = Callable[[tuple[str, ...]], CommandResult | None]


def answered(argv: Sequence[str], status: int, out: str, err: str = "") -> CommandResult:
    return CommandResult(tuple(argv), status, out, err, 0.0)


class LocalWith:
    """`LocalShell` where `answer(argv)` may answer a command instead (None: run it), and
    the commands it runs go under `prefix`; results name the command as it was asked."""

    def __init__(self, answer: Answer | None = None, prefix: Sequence[str] = ()) -> None:
        self.answer = answer
        self.prefix = tuple(prefix)
        self.local = LocalShell(HOST)

    @property
    def host(self) -> str:
        return HOST

    async def run(
        self, argv: Sequence[str], *, timeout: float = 10.0, stdin: str | None = None
    ) -> CommandResult:
        key = tuple(argv)
        given = self.answer(key) if self.answer is not None else None
        if given is not None:
            return given
        result = await self.local.run((*self.prefix, *key), timeout=timeout, stdin=stdin)
        return replace(result, argv=key)


def prefixed(*prefix: str) -> LocalWith:
    """Every command under `prefix` (`setpriv --reuid=65534 ...`, `env PATH=/nowhere`)."""
    return LocalWith(prefix=prefix)


def with_file(path: str, text: str | None) -> LocalWith:
    """`cat PATH` answers `text`, or permission denied when it is None."""

    def answer(argv: tuple[str, ...]) -> CommandResult | None:
        if argv != ("cat", path):
            return None
        if text is None:
            return answered(argv, 1, "", f"cat: {path}: Permission denied")
        return answered(argv, 0, text)

    return LocalWith(answer)
