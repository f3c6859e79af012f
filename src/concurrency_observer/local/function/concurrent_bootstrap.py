#!/usr/bin/env python3
"""A minimal Lambda runtime serving several invocations at once, for Lambda Managed Instances.

The RIE's LMI mode runs ``/var/task/bootstrap`` as an unprivileged user, which cannot read this
machine's own virtualenv; so this runtime is one standard-library file run by the system's
``python3``. It starts ``AWS_LAMBDA_MAX_CONCURRENCY`` threads, each looping on the Runtime API's
``/next``, as LMI runtimes do. Event (keys optional): ``{"sleep_ms": 250}``. The answer says which
process and thread served the invocation, and how many invocations were in flight with it.
"""

import http.client
import json
import os
import threading
import time

BASE = "/2018-06-01/runtime/invocation"
MAX_SLEEP_MS = 60_000
_lock = threading.Lock()
_in_flight = 0


def serve_forever() -> None:
    """One worker: take the next invocation, answer it, repeat."""
    global _in_flight
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port))
    while True:
        connection.request("GET", BASE + "/next")
        response = connection.getresponse()
        body = response.read()
        request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
        with _lock:
            _in_flight += 1
            concurrent = _in_flight
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            event = {}
        sleep_ms = event.get("sleep_ms", 0) if isinstance(event, dict) else 0
        if isinstance(sleep_ms, int | float) and sleep_ms > 0:
            time.sleep(min(float(sleep_ms), MAX_SLEEP_MS) / 1000)
        with _lock:
            _in_flight -= 1
        answer = {"pid": os.getpid(), "thread": threading.get_ident(), "concurrent": concurrent}
        connection.request("POST", f"{BASE}/{request_id}/response", body=json.dumps(answer))
        connection.getresponse().read()


if __name__ == "__main__":
    workers = max(1, int(os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1))
    for _ in range(workers - 1):
        threading.Thread(target=serve_forever, daemon=True).start()
    serve_forever()
