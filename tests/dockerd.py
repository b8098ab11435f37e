"""A real Docker engine for the tests, a small image to run in it, and containers that are
always removed.

`dockerd` (session fixture) uses the engine that answers `docker info`, or starts Debian's
`dockerd` on /var/run/docker.sock when none does. One it starts keeps its data root on a tmpfs
of its own (space a test frees is measured where nothing else writes), and adds no iptables
rules, no bridge and no IP forwarding: the root network namespace's firewall and routes are
never touched. It is stopped at the end of the session only if this session started it.

`TEST_IMAGE` is made with `docker import` from Debian's busybox-static (/bin/busybox and a
symlink per applet, `CMD ["sh"]`), so no registry is needed.

`docker_objects` (function fixture) creates containers and images named `fdt<pid>-...` for one
test and removes them afterwards, pass or fail; the session removes a crashed run's leftovers.
Containers run with `--network none`, so even a system engine's bridge gets no new links.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import os
import re
import signal
import struct
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import require_binary, require_root
from sshd import NAME_PREFIX, _is_live_python

SOCKET = "/var/run/docker.sock"
TEST_IMAGE = "fleetdeck-test/busybox:latest"
BUSYBOX = Path("/bin/busybox")
STATE_DIR = Path("/run/fleetdeck-test-dockerd")
"""The engine this fixture starts keeps everything here: data root (a tmpfs), exec root,
pid file, log."""
DATA_SIZE = "2g"
START_TIMEOUT = 30.0

_STALE = re.compile(rf"^/?{NAME_PREFIX}(\d+)-")
_counter = itertools.count(1)


class DockerdError(RuntimeError):
    """The engine could not be started or used; the message says what and why."""


def docker(
    *args: str, input: bytes | None = None, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against the test engine."""
    done = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout)
    result = subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode()
    )
    if check and result.returncode != 0:
        raise DockerdError(f"`docker {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _answers() -> tuple[str, str] | None:
    """(server version, root directory) of the engine docker talks to, or None."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        info = docker("info", "--format", "{{.ServerVersion}} {{.DockerRootDir}}", check=False)
        version, _, root = info.stdout.strip().partition(" ")
        if info.returncode == 0 and version and root.startswith("/"):
            return version, root
    return None


def is_static(path: Path) -> bool:
    """Whether an ELF64 binary has no interpreter (PT_INTERP): it runs in an empty image."""
    data = path.read_bytes()
    if data[:5] != b"\x7fELF\x02":
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    size, count = struct.unpack_from("<HH", data, 0x36)
    types = (struct.unpack_from("<I", data, phoff + i * size)[0] for i in range(count))
    return 3 not in types


def busybox_tar(busybox: Path = BUSYBOX) -> bytes:
    """An image root: bin/busybox, bin/<applet> -> busybox for each applet, an empty /tmp."""
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777)):
            entry = tarfile.TarInfo(name)
            entry.type, entry.mode = tarfile.DIRTYPE, mode
            tar.addfile(entry)
        tar.add(str(busybox), "bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
                tar.addfile(link)
    return out.getvalue()


def files_tar(files: Mapping[str, bytes]) -> bytes:
    """A tar of regular files, name -> content."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(content), 0o644
            tar.addfile(entry, io.BytesIO(content))
    return out.getvalue()


def import_image(tag: str, root: bytes) -> str:
    """`docker import` a root filesystem (a tar) as `tag`; returns the image id."""
    done = docker("import", "--change", 'CMD ["sh"]', "-", tag, input=root)
    return done.stdout.strip()


def _mounted(path: Path) -> bool:
    return any(
        line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines()
    )


class _Engine:
    """A dockerd this session started: its process and tmpfs."""

    def __init__(self) -> None:
        require_root("start dockerd")
        dockerd = require_binary("dockerd", "docker.io")
        require_binary("containerd", "containerd")
        require_binary("runc", "runc")
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        data = STATE_DIR / "data"
        if _mounted(data):  # a crashed session's engine is gone (none answered): reuse nothing
            subprocess.run(["umount", "--recursive", "--lazy", str(data)], check=False)
        data.mkdir(mode=0o710, exist_ok=True)
        _mount("-t", "tmpfs", "-o", f"size={DATA_SIZE},mode=0710", "fleetdeck-dockerd", str(data))
        self.log = STATE_DIR / "dockerd.log"
        argv = [dockerd, "--host", f"unix://{SOCKET}", "--data-root", str(data)]
        argv += ["--exec-root", str(STATE_DIR / "exec"), "--pidfile", str(STATE_DIR / "pid")]
        argv += ["--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while _answers() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").splitlines()[-8:]
                self.stop()
                state = "exited" if self.process.returncode is not None else "did not answer"
                raise DockerdError(
                    f"dockerd {state} within {START_TIMEOUT:g} s: " + "\n".join(tail)
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # it stops its containerd and containers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        data = STATE_DIR / "data"
        if _mounted(data):
            umount = subprocess.run(["umount", "--recursive", str(data)], check=False)
            if umount.returncode != 0:
                subprocess.run(["umount", "--recursive", "--lazy", str(data)], check=False)


def _mount(*argv: str) -> None:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise DockerdError(f"mount {' '.join(argv)}: {done.stderr.strip()}")


def clean_stale() -> list[str]:
    """Remove containers named `fdt<pid>-...` whose run is gone; returns their names."""
    names = docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    stale = [n for n in names if (m := _STALE.match(n)) and not _is_live_python(int(m[1]))]
    if stale:
        docker("rm", "-f", *stale, check=False)
    return stale


@dataclass(frozen=True, slots=True)
class Dockerd:
    """The engine the tests use."""

    version: str
    root_dir: str
    """Docker's root directory (`docker info`'s DockerRootDir)."""
    started: bool
    """Whether this session started it (and stops it at the end)."""
    image: str = TEST_IMAGE


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """The engine answering on the default socket, started if need be, with `TEST_IMAGE`."""
    require_binary("docker", "docker.io")
    if not BUSYBOX.exists() or not is_static(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing or not static: apt-get install busybox-static")
    engine = None
    with (STATE_DIR.parent / "fleetdeck-test-dockerd.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions at once start one engine, not two
        if _answers() is None:
            try:
                engine = _Engine()
            except DockerdError as error:
                pytest.fail(str(error))
    try:
        answer = _answers()
        if answer is None:
            pytest.fail("docker stopped answering right after it started")
        clean_stale()
        if docker("image", "inspect", TEST_IMAGE, check=False).returncode != 0:
            import_image(TEST_IMAGE, busybox_tar())
        yield Dockerd(answer[0], answer[1], engine is not None)
    finally:
        if engine is not None:
            engine.stop()


def memory_limit(size: str) -> list[str]:
    """`docker run` flags for a hard memory limit with no swap. The engine's default
    allowance is twice `--memory` in memory and swap together: on a host with swap, a
    container filling its /dev/shm past the limit is swapped, not OOM-killed (CI's machine
    let 24 MiB through a 16 MiB limit and the container exited 0), and a nearly full one
    reads less than it holds."""
    return ["--memory", size, "--memory-swap", size, "--memory-swappiness", "0"]


class DockerObjects:
    """Containers and images made for one test, all removed by `remove_all()`."""

    def __init__(self, engine: Dockerd) -> None:
        self.engine = engine
        self.containers: list[str] = []
        self.images: list[str] = []

    def name(self, what: str) -> str:
        return f"{NAME_PREFIX}{os.getpid()}-{what}-{next(_counter)}"

    def run(self, *command: str, what: str = "c", detach: bool = False, image: str = "") -> str:
        """`docker run` a container (to its end unless `detach`); returns its full id."""
        name = self.name(what)
        self.containers.append(name)  # before it exists: a failed run still gets removed
        flags = ["-d"] if detach else []
        docker(
            "run", "--name", name, "--network", "none", *flags, image or self.engine.image, *command
        )
        return docker("inspect", "--format", "{{.Id}}", name).stdout.strip()

    def start(self, *command: str, flags: Sequence[str] = (), what: str = "c") -> str:
        """`docker run -d` with more `docker run` flags before the image (`--health-cmd`,
        `--restart`, `--memory`, `--label`...); returns the container's full id."""
        name = self.name(what)
        self.containers.append(name)
        docker(
            "run", "-d", "--name", name, "--network", "none", *flags, self.engine.image, *command
        )
        return docker("inspect", "--format", "{{.Id}}", name).stdout.strip()

    def image(self, what: str, files: Mapping[str, bytes]) -> str:
        """A tagged image holding `files`; returns its id."""
        tag = f"{self.name(what)}:latest"
        self.images.append(tag)
        image_id = import_image(tag, files_tar(files))
        self.images.append(image_id)  # the id too: re-tagging may leave it dangling
        return image_id

    def remove_all(self) -> None:
        if self.containers:
            docker("rm", "-f", *self.containers, check=False)
        for image in reversed(self.images):
            docker("rmi", "-f", image, check=False)


@pytest.fixture
def docker_objects(dockerd: Dockerd) -> Iterator[DockerObjects]:
    made = DockerObjects(dockerd)
    try:
        yield made
    finally:
        made.remove_all()
