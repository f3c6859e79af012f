"""The Extensions API and the signals misbehaving: races, late deadlines, repeats, a vanished API.

The extension runs as Lambda runs it (a process from the built layer) against a
``CuedExtensionsApi`` on 127.0.0.1, so a test can hand it an event at a chosen moment, and it
delivers with the cloudwatch sink to a ``FaultyCloudWatch`` that counts every datum. What
``tests/unit/extension`` already covers (one malformed or unknown event in process, SIGTERM while
waiting, SIGTERM during the SHUTDOWN delivery, a 500ing ``/event/next`` giving up, a refused
registration) is not repeated.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from pathlib import Path

import pytest

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.local import readback
from tests.faults.cued_api import CuedExtensionsApi, invoke_event, shutdown_event
from tests.faults.faulty_cloudwatch import ACCEPT, Datum, FaultyCloudWatch, slow
from tests.faults.helpers import (
    PROCESS_FUNCTION_NAME,
    ExtensionExit,
    data_of,
    extension_environ,
    finish,
    start_extension,
)

SIGTERM_BUDGET_S = 0.5  # CONCURRENCY_OBSERVER_SIGTERM_BUDGET_MS's default
# Process scheduling on a busy 2-core machine. Generous, yet each bound still fails if SIGTERM
# waited for what it must cut short (the rest of a 1.6 s backoff, a poll, a slow answer).
SLACK_S = 0.7


def records(data: list[Datum]) -> tuple[list[Datum], list[Datum]]:
    """The init and the shutdown data of the ``[FunctionName]`` set (one per record sent)."""
    return (
        data_of(data, schema.ENVIRONMENT_INIT, PROCESS_FUNCTION_NAME),
        data_of(data, schema.ENVIRONMENT_SHUTDOWN, PROCESS_FUNCTION_NAME),
    )


def shutdown_reasons(data: list[Datum]) -> list[str | None]:
    """The ShutdownReason of each EnvironmentShutdown datum that has one."""
    return [
        d.dimension(schema.SHUTDOWN_REASON)
        for d in data
        if d.name == schema.ENVIRONMENT_SHUTDOWN and d.dimension(schema.SHUTDOWN_REASON)
    ]


def summary_lines(ended: ExtensionExit) -> list[str]:
    """The shutdown summary lines the extension wrote (exactly one is the promise)."""
    return [line for line in ended.lines if " INFO shutdown (" in line]


@pytest.mark.parametrize("gap_ms", [0, 2, 10])
@pytest.mark.parametrize("first", ["shutdown", "sigterm"])
def test_sigterm_and_shutdown_together(layer_dir: Path, first: str, gap_ms: int) -> None:
    """SHUTDOWN and SIGTERM a few ms apart, either first: one shutdown record, exit 0 in time."""
    with (
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi([invoke_event()]).running() as api,
    ):
        process = start_extension(layer_dir, extension_environ(api.address, cloudwatch.url))
        assert api.wait_polling(2), "the extension never blocked on /event/next"
        event = shutdown_event(seconds=2)
        if first == "shutdown":
            api.cue(event)
            time.sleep(gap_ms / 1000)
            process.send_signal(signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
            time.sleep(gap_ms / 1000)
            api.cue(event)
        ended = finish(process)
    assert ended.code == 0, ended.stderr
    assert ended.exited_at * 1000 < int(str(event["deadlineMs"]))
    inits, shutdowns = records(cloudwatch.accepted_data())
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert len(shutdown_reasons(cloudwatch.accepted_data())) == 1
    assert len(summary_lines(ended)) == 1


def test_sigterm_during_init_delivery(layer_dir: Path) -> None:
    """SIGTERM while the init record is in flight: it lands, then the shutdown, and no poll."""
    with (
        FaultyCloudWatch([slow(0.3)], then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi().running() as api,
    ):
        # Provisioned: its init record goes out in init (on-demand, it waits for shutdown).
        environ = extension_environ(
            api.address, cloudwatch.url, AWS_LAMBDA_INITIALIZATION_TYPE="provisioned-concurrency"
        )
        process = start_extension(layer_dir, environ)
        assert cloudwatch.wait_for_requests(1, timeout=20)
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        ended = finish(process)
    assert ended.code == 0, ended.stderr
    assert ended.exited_at - signalled < 0.3 + SIGTERM_BUDGET_S + SLACK_S
    assert api.polls() == []  # straight from init to shutdown: Lambda wanted it gone
    data = cloudwatch.accepted_data()
    inits, shutdowns = records(data)
    assert (len(inits), len(shutdowns)) == (1, 1)
    assert shutdown_reasons(data) == ["sigterm"]


@pytest.mark.parametrize("init_type", ["provisioned-concurrency", "on-demand"])
@pytest.mark.parametrize("seconds", [0.15, 0.0, -1.0], ids=["150ms-left", "now", "passed"])
def test_shutdown_with_a_close_deadline(layer_dir: Path, seconds: float, init_type: str) -> None:
    """A SHUTDOWN whose deadline is close or gone: exit by it; deliver if any time is left (the
    on-demand init record goes with the shutdown one: both, or neither)."""
    with (
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi([invoke_event()]).running() as api,
    ):
        environ = extension_environ(
            api.address, cloudwatch.url, AWS_LAMBDA_INITIALIZATION_TYPE=init_type
        )
        process = start_extension(layer_dir, environ)
        assert api.wait_polling(2)
        served = time.time()
        event = shutdown_event(seconds=seconds)
        api.cue(event)
        ended = finish(process)
    assert ended.code == 0, ended.stderr
    deadline = int(str(event["deadlineMs"])) / 1000
    assert ended.exited_at < max(deadline, served + 0.1) + 0.1  # + the pipe's EOF, measured late
    inits, shutdowns = records(cloudwatch.accepted_data())
    (summary,) = summary_lines(ended)
    if seconds > 0:
        assert len(shutdowns) == 1, summary  # 150 ms is plenty for a local CloudWatch
    else:
        assert shutdowns == []
        lost = "lost init+shutdown" if init_type == "on-demand" else "lost shutdown"
        assert lost in summary
        assert "deadline" in summary
    if init_type == "on-demand":
        assert len(inits) == len(shutdowns)  # one request carries both
    else:
        assert len(inits) == 1


def test_second_shutdown_is_never_acted_on(layer_dir: Path) -> None:
    """Two SHUTDOWN events queued: the first ends the extension; one shutdown record in all."""
    cues = [invoke_event(), shutdown_event(), shutdown_event(reason="timeout")]
    with (
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi(list(cues)).running() as api,
    ):
        ended = finish(start_extension(layer_dir, extension_environ(api.address, cloudwatch.url)))
    assert ended.code == 0, ended.stderr
    assert len(api.polls()) == 2
    assert shutdown_reasons(cloudwatch.accepted_data()) == ["spindown"]
    assert len(summary_lines(ended)) == 1


def test_sigterm_cuts_a_next_backoff_short(layer_dir: Path) -> None:
    """/event/next failing: growing gaps between polls (no busy loop); SIGTERM ends it at once."""
    failures = 8  # backoffs 0.05, 0.1, ... 3.2 s: the sixth is 1.6 s long
    with (
        FaultyCloudWatch(then=ACCEPT).running() as cloudwatch,
        CuedExtensionsApi([500] * failures).running() as api,
    ):
        process = start_extension(layer_dir, extension_environ(api.address, cloudwatch.url))
        assert api.wait_polling(6)
        time.sleep(0.1)  # inside the 1.6 s backoff
        signalled = time.time()
        process.send_signal(signal.SIGTERM)
        ended = finish(process)
    assert ended.code == 0, ended.stderr
    assert ended.exited_at - signalled < SIGTERM_BUDGET_S + SLACK_S
    polls = [r.at for r in api.polls()]
    assert len(polls) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert all(gap >= 0.05 * 2**i * 0.9 for i, gap in enumerate(gaps)), gaps
    assert shutdown_reasons(cloudwatch.accepted_data()) == ["sigterm"]
    # Failures 1, 2 and 4 of the streak are logged: a lasting outage costs few lines.
    assert len([line for line in ended.lines if "/event/next failed" in line]) == 3


def test_extensions_api_vanishing_is_survived(capsys: pytest.CaptureFixture[str]) -> None:
    """The API goes away mid-life: polling goes on (capped backoff); SIGTERM writes the record."""
    sleeps: list[float] = []
    lines: list[str] = []
    outcome: list[int] = []
    interruptions = Interruptions()

    def sleep(seconds: float) -> None:
        """Recorded, not slept; Lambda's SIGTERM comes at the 30th backoff."""
        sleeps.append(seconds)
        if len(sleeps) == 30:
            interruptions.on_sigterm(15, None)

    with CuedExtensionsApi([invoke_event()]).running() as api:
        config, _ = Config.from_environ(
            {
                "CONCURRENCY_OBSERVER_SINK": "emf",
                "CONCURRENCY_OBSERVER_METRICS": "full",
                "AWS_LAMBDA_RUNTIME_API": api.address,
            }
        )
        client = ExtensionsApi(api.address)

        def extension() -> None:
            outcome.append(
                run(
                    config,
                    client,
                    "concurrency-observer",
                    Logger("DEBUG", lines.append),
                    interruptions,
                    started_wall=time.time(),
                    started_mono=time.monotonic(),
                    sleep=sleep,
                )
            )

        thread = threading.Thread(target=extension)
        thread.start()
        assert api.wait_polling(2)  # the INVOKE was served; the second poll is blocked
    # The server is closed: the blocked poll is dropped and every new connection refused.
    thread.join(timeout=20)
    client.close()
    assert outcome == [0]
    assert len(sleeps) == 30
    assert max(sleeps) == 5.0  # capped, and still polling
    documents = readback.emf_documents(capsys.readouterr().out)
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert documents[1][schema.SHUTDOWN_REASON] == "sigterm"
    assert documents[1][schema.ENVIRONMENT_INVOCATIONS] == 1
    assert any("/event/next failed (16 in a row)" in line for line in lines)
