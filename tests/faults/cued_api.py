"""A fake Extensions API whose ``/event/next`` answers when the test says so, on 127.0.0.1.

``tests/unit/extension/fakes.py``'s ``FakeExtensionsApi`` plays a fixed script and then blocks
until released with an error. The fault tests also need to hand an event to an extension that is
already blocked in ``/event/next`` at a moment of their choosing (SHUTDOWN racing SIGTERM), so
here ``/event/next`` takes its answers from a queue the test fills at any time::

    with CuedExtensionsApi().running() as api:
        ...start the extension with AWS_LAMBDA_RUNTIME_API=api.address...
        api.wait_polling(1)                     # it is blocked in its first /event/next
        api.cue(shutdown_event(seconds=2))      # answered now

A cue is an event (a dict, sent as JSON), raw bytes (sent as is with 200), or an int (that error
status). Register answers 200 with ``fakes.EXTENSION_ID``; init/error and exit/error answer 202.
Every request is recorded, with its arrival time, as ``fakes.ReceivedRequest``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.unit.extension.fakes import (
    EXTENSION_ID,
    LocalServer,
    QuietHandler,
    ReceivedRequest,
    serving,
)

NEXT_PATH = "/2020-01-01/extension/event/next"
Cue = dict[str, object] | bytes | int
_STOPPING = object()


def shutdown_event(reason: str = "spindown", seconds: float = 2.0) -> dict[str, object]:
    """A SHUTDOWN event whose deadline is ``seconds`` from now (negative: already passed)."""
    deadline = int((time.time() + seconds) * 1000)
    return {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline}


def invoke_event(request_id: str = "r") -> dict[str, object]:
    """An INVOKE event with a deadline a few seconds away."""
    deadline = int((time.time() + 3) * 1000)
    return {"eventType": "INVOKE", "requestId": request_id, "deadlineMs": deadline}


class CuedExtensionsApi:
    """The Extensions API with a queue behind ``/event/next``; see the module docstring."""

    def __init__(self, cues: list[Cue] | None = None, *, when_empty: int | None = None) -> None:
        """``when_empty``: the status to answer when no cue is queued (``None``: wait for one)."""
        self.requests: list[ReceivedRequest] = []
        self._when_empty = when_empty
        self._queue: queue.Queue[object] = queue.Queue()
        for cue in cues or []:
            self._queue.put(cue)
        self._polls = threading.Condition()
        api = self

        class Handler(QuietHandler):
            def _record(self) -> ReceivedRequest:
                received = self.read_request()
                with api._polls:
                    api.requests.append(received)
                    api._polls.notify_all()
                return received

            def do_POST(self) -> None:
                if self._record().path.endswith("/extension/register"):
                    body = json.dumps({"functionName": "fn", "functionVersion": "$LATEST"})
                    self.reply(200, body.encode(), {"Lambda-Extension-Identifier": EXTENSION_ID})
                else:
                    self.reply(202, b'{"status":"OK"}')

            def do_GET(self) -> None:
                self._record()
                try:
                    cue = api._queue.get(block=api._when_empty is None)
                except queue.Empty:
                    cue = api._when_empty
                if cue is _STOPPING:
                    api._queue.put(_STOPPING)  # for the other blocked requests
                    self.close_connection = True
                    return
                if isinstance(cue, int):
                    self.reply(cue, b'{"errorType":"Cued"}')
                elif isinstance(cue, bytes):
                    self.reply(200, cue)
                else:
                    self.reply(200, json.dumps(cue).encode())

        self._server = LocalServer(Handler)
        self.address = self._server.address

    def cue(self, *cues: Cue) -> None:
        """Answer the next ``/event/next`` calls (a blocked one first) with ``cues``."""
        for cue in cues:
            self._queue.put(cue)

    def polls(self) -> list[ReceivedRequest]:
        """The ``/event/next`` requests so far."""
        with self._polls:
            return [r for r in self.requests if r.path == NEXT_PATH]

    def paths(self) -> list[str]:
        """Every path requested, in order."""
        with self._polls:
            return [r.path for r in self.requests]

    def wait_polling(self, count: int, timeout: float = 20.0) -> bool:
        """Block until ``/event/next`` has been called ``count`` times (``False`` on timeout)."""
        with self._polls:
            return self._polls.wait_for(
                lambda: sum(r.path == NEXT_PATH for r in self.requests) >= count, timeout
            )

    @contextmanager
    def running(self) -> Iterator[CuedExtensionsApi]:
        """Serve in a background thread for the block; blocked polls are dropped at the end."""
        # Closed first, so a client that retries is refused rather than left unanswered.
        with serving(self._server, after_close=lambda: self._queue.put(_STOPPING)):
            yield self
