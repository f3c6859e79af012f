"""An embedded CloudWatch for the local environments: a moto server on 127.0.0.1.

``LocalCloudWatch`` runs ``python -m moto.server -H 127.0.0.1 -p <free port>`` as a child process,
waits until it answers, and always stops it (context manager, and ``atexit``)::

    with LocalCloudWatch() as cloudwatch:
        settings = EnvironmentSettings(cloudwatch_endpoint=cloudwatch.endpoint_url)
        ...
        client = cloudwatch.client()          # boto3 CloudWatch client, dummy credentials

A child process rather than moto's in-process ``ThreadedMotoServer``: the caller (simulate, the
fleet, the benchmarks) times invocations, and a server answering PutMetricData from many
environments in the same interpreter would compete with it for the GIL; a child also cannot leak
moto's global state or threads into the caller, and stops for sure with a signal.

``cloudwatch_endpoint(url)`` gives an external endpoint (``--endpoint-url``) the same shape: it
yields the URL and starts nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from concurrency_observer.errors import EnvironmentUnfit
from concurrency_observer.local import ports

DEFAULT_REGION: Final = "us-east-1"
# moto accepts any credentials; these are never real ones and never the host's.
DUMMY_ACCESS_KEY_ID: Final = "AKIALOCALSIMULATION"
DUMMY_SECRET_ACCESS_KEY: Final = "local-simulation-secret"  # noqa: S105 (not a secret)
_START_ATTEMPTS: Final = 3
# An unsigned ListMetrics: moto routes by the credential scope's service and checks no signature.
_LIST_METRICS: Final = "Action=ListMetrics&Version=2010-08-01"
_LIST_METRICS_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Authorization": (
        f"AWS4-HMAC-SHA256 Credential={DUMMY_ACCESS_KEY_ID}/20200101/{DEFAULT_REGION}/"
        "monitoring/aws4_request, SignedHeaders=host, Signature=0"
    ),
}
_POLL_S: Final = 0.05


def cloudwatch_client(endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 CloudWatch client for ``endpoint_url`` with dummy credentials (not the host's)."""
    return client_for("cloudwatch", endpoint_url, region)


def client_for(service: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client of ``service`` (cloudwatch, logs) for ``endpoint_url``, dummy credentials.

    moto serves CloudWatch Logs on the same endpoint as CloudWatch (it routes by the request).
    """
    import boto3  # noqa: PLC0415 (heavy; only the local commands need it)
    from botocore.config import Config  # noqa: PLC0415

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        region_name=region,
    )
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)
    return session.client(service, endpoint_url=endpoint_url, config=config)


class LocalCloudWatch:
    """A moto server on ``127.0.0.1:<free port>``; ``endpoint_url`` once started."""

    def __init__(self, region: str = DEFAULT_REGION, startup_timeout: float = 60.0) -> None:
        self.region = region
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._log_dir: Path | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._port is None:
            raise EnvironmentUnfit("the local CloudWatch is not running")
        return f"http://{ports.LOOPBACK}:{self._port}"

    def client(self) -> Any:
        """A boto3 CloudWatch client for this server."""
        return cloudwatch_client(self.endpoint_url, self.region)

    def start(self) -> LocalCloudWatch:
        """Start moto and wait until it answers HTTP; ``EnvironmentUnfit`` if it cannot."""
        self._log_dir = Path(tempfile.mkdtemp(prefix="concurrency-observer-moto-"))
        log_path = self._log_dir / "moto.log"
        for _attempt in range(_START_ATTEMPTS):
            self._port = ports.free_port()
            with log_path.open("wb") as log:
                self._process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "moto.server",
                        "-H",
                        ports.LOOPBACK,
                        "-p",
                        str(self._port),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,
                )
            _LIVE.add(self)
            if self._wait_ready(time.monotonic() + self.startup_timeout):
                return self
            output = log_path.read_text(errors="replace")
            self._stop_process(timeout=5.0)
            if "Address already in use" not in output and "address already in use" not in output:
                tail = " | ".join(output.strip().splitlines()[-3:]) or "no output"
                self.stop()
                raise EnvironmentUnfit(f"the local CloudWatch (moto server) did not start: {tail}")
        self.stop()
        raise EnvironmentUnfit("the local CloudWatch (moto server) found no free port")

    def _wait_ready(self, deadline: float) -> bool:
        assert self._process is not None
        assert self._port is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            # Ours, not a process that took the port first (moto would then fail to bind).
            if ports.listened_by(self._process.pid, self._port) and _serves_cloudwatch(self._port):
                return True
            time.sleep(_POLL_S)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``), remove its log; repeatable."""
        self._stop_process(timeout)
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def _stop_process(self, timeout: float) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        if self._port is not None:
            ports.release_port(self._port)
            self._port = None
        _LIVE.discard(self)

    def __enter__(self) -> LocalCloudWatch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _serves_cloudwatch(port: int) -> bool:
    """Whether the server answers a CloudWatch ListMetrics with 200.

    Also the warm-up: moto loads its CloudWatch backend on the first CloudWatch request (~250 ms
    here, more under load), longer than the extension's init budget (400 ms by default) may allow.
    """
    connection = http.client.HTTPConnection(ports.LOOPBACK, port, timeout=10)
    try:
        connection.request("POST", "/", body=_LIST_METRICS, headers=_LIST_METRICS_HEADERS)
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return response.status == 200


@contextlib.contextmanager
def cloudwatch_endpoint(
    endpoint_url: str | None = None, region: str = DEFAULT_REGION
) -> Iterator[str]:
    """Yield ``endpoint_url`` as is, or the URL of an embedded moto server stopped on exit."""
    if endpoint_url is not None:
        yield endpoint_url
        return
    with LocalCloudWatch(region) as local:
        yield local.endpoint_url


_LIVE: set[LocalCloudWatch] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_LIVE):
        server.stop(timeout=1.0)
