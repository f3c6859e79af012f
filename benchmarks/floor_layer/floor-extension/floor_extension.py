"""The floor: the least a Python external extension can do, with ``socket`` and ``json`` only.

It registers for INVOKE and SHUTDOWN, then loops on ``/event/next`` over one keep-alive HTTP/1.1
connection and exits 0 on SHUTDOWN. Nothing else: no configuration, no records, no logging. What
it costs an environment is what any Python extension must pay, so it is the yardstick the
benchmark holds ours against. Run by its launcher as ``python3 -I -S -B floor_extension.py NAME``.
"""

from __future__ import annotations

import json
import os  # free: socket imports it anyway
import socket
import sys

API = "/2020-01-01/extension"


def _request(
    conn: socket.socket, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on ``conn`` and read the whole response (status, headers, body)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: runtime\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    conn.sendall(head.encode() + b"\r\n" + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"{method} {path}: connection closed")
        data += chunk
    raw_head, _, data = data.partition(b"\r\n\r\n")
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    length = int(response_headers.get("content-length", "0"))
    while len(data) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"{method} {path}: connection closed")
        data += chunk
    return int(status_line.split(" ")[1]), response_headers, data[:length]


def main() -> int:
    """Register, then wait for events until SHUTDOWN; the exit code for the process."""
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    name = sys.argv[1] if len(sys.argv) > 1 else "floor-extension"
    conn = socket.create_connection((host, int(port)))
    body = json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode()
    status, headers, reply = _request(
        conn, "POST", f"{API}/register", {"Lambda-Extension-Name": name}, body
    )
    if status != 200:
        print(f"[floor] register: HTTP {status} {reply!r}", file=sys.stderr)
        return 1
    identifier = {"Lambda-Extension-Identifier": headers["lambda-extension-identifier"]}
    while True:
        status, _, reply = _request(conn, "GET", f"{API}/event/next", identifier)
        if status != 200:
            print(f"[floor] next: HTTP {status} {reply!r}", file=sys.stderr)
            return 1
        if json.loads(reply).get("eventType") == "SHUTDOWN":
            return 0


if __name__ == "__main__":
    sys.exit(main())
