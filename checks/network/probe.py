"""Network probes that run on the host being diagnosed: a DNS query and a TCP connect.

This file is sent as it is to the host (`python3 -c <this file> dns NAME ...`) and must run
there with nothing but the standard library of any Python 3.6 or newer. It prints one JSON
object. It is also imported here, so its packet code is unit-tested like any parser.

Asking each configured resolver directly, instead of calling getaddrinfo alone, is what
tells "no resolver answers" from "the name does not exist" (NXDOMAIN): the C library
reports both as the same failure. Each resolver is asked the way the C library asks: for
every name of the search expansion in turn (computed by the caller from resolv.conf), A and
AAAA together, until one has an address.
"""

import json
import random
import socket
import struct
import sys
import threading
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
QTYPES = {"A": 1, "AAAA": 28}


def build_query(name, query_id, qtype=1):
    """A DNS query for `name` (type A by default), recursion desired."""
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
    labels = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not raw or len(raw) > 63:
            raise ValueError(f"bad label in name: {name!r}")
        labels += bytes([len(raw)]) + raw
    return header + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _skip_name(data, offset):
    while True:
        if offset >= len(data):
            raise ValueError("name runs past the packet")
        length = data[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse_response(data, query_id):
    """(rcode name, [IPv4 and IPv6 addresses]) from a response; ValueError if it is not one."""
    if len(data) < 12:
        raise ValueError(f"short DNS response ({len(data)} bytes)")
    got_id, flags, qdcount, ancount, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if got_id != query_id:
        raise ValueError(f"response id {got_id} does not match query {query_id}")
    if not flags & 0x8000:
        raise ValueError("not a response")
    rcode = RCODES.get(flags & 0x000F, f"RCODE{flags & 0x000F}")
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        if offset + 10 > len(data):
            raise ValueError("answer runs past the packet")
        rtype, _rclass, _ttl, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        rdata = data[offset : offset + rdlength]
        if rtype == 1 and rdlength == 4:
            addresses.append(socket.inet_ntoa(rdata))
        elif rtype == 28 and rdlength == 16:
            addresses.append(socket.inet_ntop(socket.AF_INET6, rdata))
        offset += rdlength
    return rcode, addresses


def _exchange(sock, name, timeout):
    """A and AAAA for one name on a connected socket: {"A": (rcode, addrs), "AAAA": ...}."""
    pending = {}
    for qtype, number in QTYPES.items():
        query_id = random.randint(0, 0xFFFF)
        while query_id in pending:
            query_id = random.randint(0, 0xFFFF)
        pending[query_id] = qtype
        sock.send(build_query(name, query_id, number))
    deadline = time.monotonic() + timeout
    said: dict[str, tuple[str, list[str]]] = {}  # never evaluated: fine on 3.6
    while pending:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            if not said:
                raise
            # Some servers (or middleboxes) drop AAAA queries: what did come back counts.
            said.update((qtype, ("TIMEOUT", [])) for qtype in pending.values())
            break
        answered = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        if answered not in pending:
            continue  # a late answer to an earlier question
        said[pending.pop(answered)] = parse_response(data, answered)
    return said


def _status(said):
    """One name's outcome from its A and AAAA answers: answer, nodata, nxdomain or an rcode."""
    addresses = [a for _rcode, found in said.values() for a in found]
    rcodes = [rcode for rcode, _found in said.values()]
    if addresses:
        return "answer", addresses
    if "NOERROR" in rcodes:
        return "nodata", []
    if all(rcode == "NXDOMAIN" for rcode in rcodes):
        return "nxdomain", []
    failed = [rcode for rcode in rcodes if rcode not in ("NOERROR", "NXDOMAIN")]
    return failed[0].lower(), []


def ask(server, names, timeout):
    """One resolver, asked over UDP for each name in turn until one has an address."""
    result = {"server": server, "status": "error", "name": None, "addresses": [], "ms": None}
    tried = []
    started = time.monotonic()
    try:
        family, kind, proto, _c, address = socket.getaddrinfo(
            server, 53, 0, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
        )[0]
        with socket.socket(family, kind, proto) as sock:
            sock.connect(address)  # connected: an ICMP port-unreachable comes back as refused
            for name in names:
                status, addresses = _status(_exchange(sock, name, timeout))
                tried.append({"name": name, "status": status})
                if status == "answer":
                    result.update(name=name, addresses=addresses)
                    break
    except socket.timeout:
        result.update(status="timeout", error=f"no answer within {timeout:g}s")
    except ConnectionRefusedError:
        result.update(status="refused", error="port 53 refused (nothing listens there)")
    except (OSError, ValueError) as error:
        result.update(status="error", error=str(error))
    else:
        statuses = [t["status"] for t in tried]
        if "answer" in statuses:
            result["status"] = "answer"
        elif "nodata" in statuses:
            result["status"] = "nodata"  # the name exists (some expansion), without addresses
        elif statuses and all(status == "nxdomain" for status in statuses):
            result["status"] = "nxdomain"
        else:
            result["status"] = next((s for s in statuses if s != "nxdomain"), "error")
    result["tried"] = tried
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def system_lookup(name, timeout):
    """getaddrinfo as programs on the host see it (/etc/hosts, nsswitch), bounded in time."""
    box: dict[str, object] = {"addresses": [], "error": None}  # never evaluated: fine on 3.6

    def lookup():
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
            box["addresses"] = sorted({info[4][0] for info in infos})
        except OSError as error:
            box["error"] = str(error)

    started = time.monotonic()
    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    ms = round((time.monotonic() - started) * 1000, 1)
    if worker.is_alive():
        return {"addresses": [], "error": f"no answer within {timeout:g}s", "ms": ms}
    return {"addresses": box.get("addresses", []), "error": box.get("error"), "ms": ms}


def dns(name, timeout, names, servers):
    """Each resolver asked for `names` (the search expansion of `name`), and getaddrinfo."""
    return {
        "name": name,
        "servers": [ask(server, names, timeout) for server in servers],
        "system": system_lookup(name, timeout * max(1, len(servers)) * max(1, len(names))),
    }


ERRNO_WORDS = {
    "ECONNREFUSED": "refused",
    "EHOSTUNREACH": "no route to host",
    "ENETUNREACH": "network unreachable",
    "ETIMEDOUT": "timeout",
}


MAX_ADDRESSES = 3
"""Addresses of a name tried in turn, as clients do (curl, ssh, browsers): `localhost` is ::1
first on Debian, and a service on 127.0.0.1 alone still answers them on the next."""


def _connect(info, timeout):
    """One connect attempt: None if it worked, else why in the words ERRNO_WORDS uses."""
    family, kind, proto, _c, address = info
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
    except socket.timeout:  # TimeoutError from Python 3.10 on, its own class before
        return "timeout"
    except OSError as error:
        import errno as errno_names

        name = errno_names.errorcode.get(error.errno or 0, "")
        return ERRNO_WORDS.get(name, error.strerror or str(error))
    return None


def tcp(host, port, timeout):
    """Connect to host:port as a client would: each address the name has in getaddrinfo's
    order (at most MAX_ADDRESSES), until one answers. The address that answered (or the
    first), whether one did, how long the attempt that decided took, and every try."""
    result = {"host": host, "port": port, "address": None, "ok": False, "ms": None, "error": None}
    tried = []
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as error:
        result["error"] = f"cannot resolve {host}: {error.strerror}"
        infos = []
    seen: list[str] = []  # never evaluated: fine on 3.6
    for info in infos:
        address = str(info[4][0])
        if address in seen or len(seen) == MAX_ADDRESSES:
            continue
        seen.append(address)
        started = time.monotonic()
        why = _connect(info, timeout)
        tried.append({"address": address, "error": why})
        if why is None:
            result.update(address=address, ok=True, error=None)
            break
        if result["address"] is None:
            result.update(address=address, error=why)
    result["tried"] = tried
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def main(argv):
    if len(argv) >= 4 and argv[0] == "dns":
        out = dns(argv[1], float(argv[2]), argv[3].split(","), argv[4:])
    elif len(argv) == 4 and argv[0] == "tcp":
        out = tcp(argv[1], int(argv[2]), float(argv[3]))
    else:
        sys.stderr.write(
            "usage: netprobe dns NAME TIMEOUT NAME,... [SERVER...] | tcp HOST PORT TIMEOUT\n"
        )
        return 2
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
