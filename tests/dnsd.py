"""A tiny authoritative DNS server for tests: A and AAAA records from the command line.

    python tests/dnsd.py ADDRESS PORT name=1.2.3.4 [name=2001:db8::1 ...]

A name may be given more than once; an IPv6 address makes an AAAA record. A known name
asked for a type it has no record of gets an empty answer (NODATA), an unknown one
NXDOMAIN. It prints "ready" once bound, then answers UDP queries until killed. Run it
inside a namespace host (`ip netns exec NS python dnsd.py ...`) to give that lab a real
resolver.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

A, AAAA = 1, 28


def _question(data: bytes) -> tuple[str, int, int]:
    """(name, type, end offset of the question)."""
    labels, offset = [], 12
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    qtype = struct.unpack("!H", data[offset + 1 : offset + 3])[0]
    return ".".join(labels).lower(), qtype, offset + 5


def answer(data: bytes, records: dict[str, list[str]]) -> bytes:
    query_id = struct.unpack("!H", data[:2])[0]
    name, qtype, end = _question(data)
    question = data[12:end]
    if name not in records:
        return struct.pack("!HHHHHH", query_id, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
    packed = [
        ipaddress.ip_address(address).packed
        for address in records[name]
        if (qtype, ipaddress.ip_address(address).version) in ((A, 4), (AAAA, 6))
    ]
    header = struct.pack("!HHHHHH", query_id, 0x8180, 1, len(packed), 0, 0)  # none: NODATA
    rrs = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata for rdata in packed
    )
    return header + question + rrs


def main(argv: list[str]) -> int:
    address, port, *pairs = argv
    records: dict[str, list[str]] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        records.setdefault(name.lower().rstrip("."), []).append(value)
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
