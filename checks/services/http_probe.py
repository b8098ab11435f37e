"""An HTTP probe that runs on the host being checked when it has python3 and no curl.

Sent as it is (`python3 -c <this file> URL SECONDS`), it needs only the standard library of
Python 3.6 or newer, follows no redirect (a redirect is reported, not taken) and prints one
JSON object in the shape `checks.services.http` reads from curl too: status, seconds,
location, the first 4 KiB of the body, and on failure the kind of error (timeout, tls,
connect, resolve, other) with its message.
"""

import http.client
import json
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

BODY_LIMIT = 4096


def probe(url, seconds):
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    started = time.monotonic()
    answer = {"status": None, "seconds": 0.0, "location": "", "body": "", "kind": "", "error": ""}
    try:
        connection = kind(parts.hostname, parts.port, timeout=seconds)
        connection.request("GET", path, headers={"User-Agent": "fleetdeck-probe"})
        response = connection.getresponse()
        answer["status"] = response.status
        answer["location"] = response.getheader("Location") or ""
        answer["body"] = response.read(BODY_LIMIT).decode("utf-8", "replace")
    except socket.timeout as error:
        answer.update(kind="timeout", error=str(error) or "timed out")
    except ssl.SSLError as error:
        answer.update(kind="tls", error=str(error))
    except socket.gaierror as error:
        answer.update(kind="resolve", error=str(error))
    except OSError as error:
        answer.update(kind="connect", error=str(error))
    except Exception as error:  # a broken answer is reported, never a traceback
        answer.update(kind="other", error=repr(error))
    answer["seconds"] = time.monotonic() - started
    return answer


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], float(sys.argv[2]))))
