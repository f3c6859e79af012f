"""A CloudWatch that answers after a delay: a proxy on 127.0.0.1 in front of the local moto server.

Each POST is read whole, held ``delay_s``, then forwarded to moto and its answer returned, so the
data are stored as with moto alone and read back the same way. 60 ms is about what PutMetricData
takes from a Lambda function to a regional endpoint, TLS included, on a new connection.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@contextmanager
def slow_cloudwatch(moto_url: str, delay_s: float) -> Iterator[str]:
    """Serve the delaying proxy for the block; yields its URL."""
    target = urlsplit(moto_url)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay_s)
            upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request("POST", self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                status, payload = answer.status, answer.read()
                kind = answer.getheader("Content-Type", "text/xml")
            finally:
                upstream.close()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
