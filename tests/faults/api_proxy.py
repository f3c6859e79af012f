"""Faults between the extension and the real RIE: a proxy in front of the RIE's Extensions API.

The RIE gives each extension ``AWS_LAMBDA_RUNTIME_API``. ``wrapped_layer`` copies the built layer
and puts a small wrapper in ``extensions/`` that writes that address to a file, points the
variable at an ``ExtensionsApiProxy`` and execs the real launcher (moved to ``/opt/real/``, where
it still finds the code and keeps its name). The proxy forwards every request to the RIE, except
those its script says to fail: so the extension, unchanged, meets a failing register or
``/event/next`` while the RIE, the runtime and the invokes are real::

    with ExtensionsApiProxy(tmp_path, fail={"register": [500, 500]}).running() as proxy:
        layer = wrapped_layer(layer_dir, tmp_path / "opt", proxy)
        ...LambdaEnvironment(layer, ...)...

``telemetry_bodies`` makes the proxy take the Telemetry API subscription itself (200, never
forwarded: the RIE then posts nothing) and post those bodies to the extension's listener, for
what Lambda could deliver: nothing, or junk.

``patch_module`` plants a bug in the copy's code (and drops its ``.pyc``), for the paths an
unexpected exception takes.
"""

from __future__ import annotations

import http.client
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from concurrency_observer.layer import EXTENSION_NAME
from tests.unit.extension.fakes import LocalServer, QuietHandler, serving

# Request kinds the script names: the path's last part (``event/next`` is ``next``).
REGISTER = "register"
NEXT = "next"
# A register whose body asks for INVOKE (the fallback's SHUTDOWN-only one is not this).
REGISTER_INVOKE = "register-invoke"
TELEMETRY = "telemetry"  # PUT /2022-07-01/telemetry


class ExtensionsApiProxy:
    """Forwards to the RIE's Extensions API; ``fail`` maps a request kind to statuses answered
    instead of forwarding, one per request of that kind, in order (a status of 0: for ever)."""

    def __init__(
        self,
        work_dir: Path,
        fail: dict[str, list[int]] | None = None,
        *,
        telemetry_bodies: list[bytes] | None = None,
    ) -> None:
        self.upstream_file = work_dir / "upstream"
        self.telemetry_bodies = telemetry_bodies
        self.posted: list[int] = []  # the listener's answers to the bodies posted
        self.fail = {kind: list(statuses) for kind, statuses in (fail or {}).items()}
        self.failed: list[str] = []
        self.forwarded: list[str] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            upstream: http.client.HTTPConnection | None = None

            def _relay(self) -> None:
                received = self.read_request()
                kind = proxy.kind(received.path, received.body)
                status = proxy.scripted_failure(kind)
                if status is not None:
                    self.reply(status, b'{"errorType":"Proxy.Injected"}')
                    return
                if kind == TELEMETRY and proxy.telemetry_bodies is not None:
                    self.reply(200, b"OK")
                    destination = json.loads(received.body)["destination"]["URI"]
                    threading.Thread(target=proxy.post_bodies, args=(destination,)).start()
                    return
                if self.upstream is None:
                    host, port = proxy.upstream_file.read_text().strip().rsplit(":", 1)
                    self.upstream = http.client.HTTPConnection(host, int(port))
                headers = {
                    name: value
                    for name, value in received.headers.items()
                    if name.lower() not in ("host", "connection")
                }
                self.upstream.request(received.method, received.path, received.body, headers)
                response = self.upstream.getresponse()
                body = response.read()
                with proxy._lock:
                    proxy.forwarded.append(kind)
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._relay()

            def finish(self) -> None:
                super().finish()
                if self.upstream is not None:
                    self.upstream.close()

            def do_POST(self) -> None:
                self._relay()

            def do_PUT(self) -> None:
                self._relay()

        self._server = LocalServer(Handler)
        self.address = self._server.address

    def kind(self, path: str, body: bytes) -> str:
        """The request kind of ``path`` (and, for a register, of its events)."""
        if path.endswith("/register"):
            return REGISTER_INVOKE if b"INVOKE" in body else REGISTER
        if path.endswith("/event/next"):
            return NEXT
        if path.endswith("/telemetry"):
            return TELEMETRY
        return path.rsplit("/", 2)[-2] if path.count("/") >= 2 else path

    def scripted_failure(self, kind: str) -> int | None:
        """The status to fail a request of ``kind`` with, or ``None`` to forward it."""
        kinds = [kind, REGISTER] if kind == REGISTER_INVOKE else [kind]
        with self._lock:
            for candidate in kinds:
                statuses = self.fail.get(candidate)
                if statuses:
                    status = statuses[0]
                    if status != 0:
                        statuses.pop(0)
                    self.failed.append(kind)
                    return status if status != 0 else 500
        return None

    def post_bodies(self, destination: str) -> None:
        """POST each scripted body to the listener (sandbox.localdomain is 127.0.0.1 here)."""
        port = int(destination.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for body in self.telemetry_bodies or []:
                connection.request("POST", "/", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                with self._lock:
                    self.posted.append(response.status)
        finally:
            connection.close()

    @contextmanager
    def running(self) -> Iterator[ExtensionsApiProxy]:
        """Serve in a background thread for the block."""
        with serving(self._server):
            yield self


def wrapped_layer(
    layer_dir: Path, target: Path, proxy: ExtensionsApiProxy | None, **environ: str
) -> Path:
    """A copy of ``layer_dir`` at ``target`` whose extension talks to ``proxy`` (``None``: to the
    RIE); ``environ`` is exported to the extension as well (after the RIE's own variables)."""
    shutil.copytree(layer_dir, target, symlinks=True)
    real = target / "real"
    real.mkdir(mode=0o755)
    launcher = target / "extensions" / EXTENSION_NAME
    launcher.rename(real / EXTENSION_NAME)
    exports = "".join(f"export {name}='{value}'\n" for name, value in environ.items())
    if proxy is not None:
        exports += (
            f'echo "$AWS_LAMBDA_RUNTIME_API" > {proxy.upstream_file}\n'
            f"export AWS_LAMBDA_RUNTIME_API={proxy.address}\n"
        )
    launcher.write_text(f'#!/bin/sh\n{exports}exec /opt/real/{EXTENSION_NAME} "$@"\n')
    launcher.chmod(0o755)
    return target


def patch_module(layer: Path, module: str, code: str) -> None:
    """Append ``code`` to the extension module ``module`` (e.g. ``extension.config``) of a layer
    copy, and drop its compiled ``.pyc`` so the change is what runs."""
    parts = module.split(".")
    package = layer / EXTENSION_NAME / "concurrency_observer" / Path(*parts[:-1])
    source = package / f"{parts[-1]}.py"
    source.write_text(source.read_text() + "\n" + code + "\n")
    for compiled in (package / "__pycache__").glob(f"{parts[-1]}.*.pyc"):
        compiled.unlink()
