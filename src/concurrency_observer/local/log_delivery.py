"""Lambda's log delivery, emulated: each environment's output into CloudWatch Logs (moto's).

On Lambda, whatever the runtime and the extensions write on stdout and stderr reaches the
function's log group, ``/aws/lambda/<function>``, in a stream of the environment's own named
``YYYY/MM/DD/[<version>]<32 hex>``. The RIE only writes it to its own output, so the harness does
the delivery: when an environment is closed, ``LambdaLogDelivery.deliver`` puts every line of its
output into a new stream of that group, on the embedded moto server (which serves Logs on the
CloudWatch endpoint) or an external endpoint, with the RIE's own init and invocation lines
rewritten as Lambda's platform lines in the function's log format (``local.lambda_log_lines``).

Each event is stamped at the close, the environment's shutdown: the record line, the one that
matters to ``report``, is written at SHUTDOWN, so its stamp is where Lambda would put it. Delivery
never fails the run: an error is counted (``failures``) and the lines are lost, as Lambda would
lose them if the log group could not be written.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Final

from concurrency_observer.aws.records import default_log_group
from concurrency_observer.local.lambda_log_lines import LogSettings, lambda_lines

# PutLogEvents limits: 10,000 events and 1,048,576 bytes a call (each event counts 26 bytes more).
_MAX_EVENTS: Final = 10_000
_MAX_BATCH_BYTES: Final = 1_048_576
_EVENT_OVERHEAD: Final = 26
_MAX_EVENT_BYTES: Final = 256 * 1024 - _EVENT_OVERHEAD


def stream_name(version: str, moment: datetime) -> str:
    """A Lambda-like stream name: ``2026/12/02/[$LATEST]`` and 32 hex digits."""
    return f"{moment:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


def batches(lines: Sequence[str]) -> Iterator[list[str]]:
    """``lines`` in PutLogEvents-sized groups (each line cut to the largest event allowed)."""
    batch: list[str] = []
    size = 0
    for line in lines:
        message = line.encode("utf-8")[:_MAX_EVENT_BYTES].decode("utf-8", "ignore")
        cost = len(message.encode("utf-8")) + _EVENT_OVERHEAD
        if batch and (len(batch) >= _MAX_EVENTS or size + cost > _MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += cost
    if batch:
        yield batch


class LambdaLogDelivery:
    """Delivers environments' output into ``/aws/lambda/<function>``; thread-safe."""

    def __init__(
        self,
        logs: Any,
        function_name: str,
        version: str = "$LATEST",
        log_settings: LogSettings | None = None,
    ) -> None:
        """``logs``: a boto3 CloudWatch Logs client (the local one: ``local.cloudwatch``);
        ``log_settings``: the log format the platform's lines are written in (default text)."""
        self.logs = logs
        self.log_settings = log_settings or LogSettings()
        self.log_group = default_log_group(function_name)
        self.version = version
        self.streams = 0
        self.failures = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._group_ready = False

    def _ensure_group(self) -> None:
        with self._lock:
            if self._group_ready:
                return
            with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                self.logs.create_log_group(logGroupName=self.log_group)
            self._group_ready = True

    def deliver(
        self, output: str, stamp: float | None = None, *, first_init_held: bool = False
    ) -> str | None:
        """Put ``output``'s non-empty lines in a new stream, stamped at ``stamp`` (default now).

        ``first_init_held``: the environment was initialized ahead of its first request
        (provisioned, proactive), whose REPORT then has no Init Duration. Returns the stream's
        name, or None when nothing was delivered (an error is counted).
        """
        at = time.time() if stamp is None else stamp
        made = lambda_lines(output, self.log_settings, at, first_init_held=first_init_held)
        lines = [line for line in made if line.strip()]
        if not lines:
            return None
        moment = datetime.fromtimestamp(at, timezone.utc)
        stamp_ms = int(moment.timestamp() * 1000)
        name = stream_name(self.version, moment)
        try:
            self._ensure_group()
            self.logs.create_log_stream(logGroupName=self.log_group, logStreamName=name)
            for batch in batches(lines):
                self.logs.put_log_events(
                    logGroupName=self.log_group,
                    logStreamName=name,
                    logEvents=[{"timestamp": stamp_ms, "message": line} for line in batch],
                )
        except Exception as error:
            with self._lock:
                self.failures += 1
                self.errors.append(f"{type(error).__name__}: {error}")
            return None
        with self._lock:
            self.streams += 1
        return name
