"""A tiny authoritative DNS server for tests: A records from the command line, NXDOMAIN else.

    python tests/dnsd.py ADDRESS PORT name=1.2.3.4 [name=5.6.7.8 ...]

It prints "ready" once bound, then answers UDP queries until killed. Run it inside a
namespace host (`ip netns exec NS python dnsd.py ...`) to give that lab a real resolver.
"""

from __future__ import annotations

import socket
import struct
import sys


def _question(data: bytes) -> tuple[str, int, int]:
    """(name, type, end offset of the question)."""
    labels, offset = [], 12
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    qtype = struct.unpack("!H", data[offset + 1 : offset + 3])[0]
    return ".".join(labels).lower(), qtype, offset + 5


def answer(data: bytes, records: dict[str, str]) -> bytes:
    query_id = struct.unpack("!H", data[:2])[0]
    name, qtype, end = _question(data)
    question = data[12:end]
    address = records.get(name)
    if address is None:
        header = struct.pack("!HHHHHH", query_id, 0x8183, 1, 0, 0, 0)  # NXDOMAIN
        return header + question
    if qtype != 1:
        return struct.pack("!HHHHHH", query_id, 0x8180, 1, 0, 0, 0) + question  # no data
    header = struct.pack("!HHHHHH", query_id, 0x8180, 1, 1, 0, 0)
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    return header + question + record


def main(argv: list[str]) -> int:
    address, port, *pairs = argv
    records = dict(pair.split("=", 1) for pair in pairs)
    records = {name.lower().rstrip("."): value for name, value in records.items()}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, int(port)))
        print("ready", flush=True)
        while True:
            data, peer = sock.recvfrom(4096)
            try:
                sock.sendto(answer(data, records), peer)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
