"""A moto CloudWatch over HTTPS on 127.0.0.1, so the ``cloudwatch`` sink pays for TLS as on AWS.

Against the harness's plain-http moto the sink never imports ``ssl``; on AWS it always does. This
server has a throwaway self-signed certificate for ``IP:127.0.0.1``; the extension trusts it
through ``SSL_CERT_FILE``, which OpenSSL reads even under ``python3 -I`` (the variable belongs
to OpenSSL, not to Python), so the extension's code runs unchanged, verification included.

(The harness's ``LocalCloudWatch`` takes no certificate; if it grows ``ssl_cert``/``ssl_key``,
this module can go.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from concurrency_observer.local import ports
from concurrency_observer.local.cloudwatch import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

_STARTUP_TIMEOUT_S = 60.0
_POLL_S = 0.05


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for ``127.0.0.1`` (``openssl``), valid for a day."""
    cert, key = directory / "moto-cert.pem", directory / "moto-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class HttpsCloudWatch:
    """``python -m moto.server`` with a certificate, on a free loopback port (context manager)."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = make_certificate(directory)
        self._log = directory / "moto-https.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def endpoint_url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        assert self._port is not None, "not started"
        return f"https://{ports.LOOPBACK}:{self._port}"

    def client(self) -> Any:
        """A boto3 CloudWatch client that trusts this server's certificate."""
        import boto3  # noqa: PLC0415 (heavy; only needed once the server runs)

        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )
        return session.client("cloudwatch", endpoint_url=self.endpoint_url, verify=str(self.cert))

    def __enter__(self) -> HttpsCloudWatch:
        self._port = ports.free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", ports.LOOPBACK, "-p", str(self._port)]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [*argv, "-c", str(self.cert), "-k", str(self.key)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log.read_text(errors="replace").strip().splitlines()[-3:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"moto over https did not start: {' | '.join(tail)}")
            time.sleep(_POLL_S)
        return self

    def _answers(self) -> bool:
        assert self._port is not None
        context = ssl.create_default_context(cafile=str(self.cert))
        try:
            raw = socket.create_connection((ports.LOOPBACK, self._port), timeout=1)
            with context.wrap_socket(raw, server_hostname=ports.LOOPBACK) as sock:
                sock.sendall(b"GET /moto-api/data.json HTTP/1.0\r\n\r\n")
                return bool(sock.recv(1))
        except OSError:
            return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._port is not None:
            ports.release_port(self._port)
            self._port = None
