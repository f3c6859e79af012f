"""Property: whatever ``/event/next`` answers, the loop never lets an exception out.

``tests/unit/extension/test_events.py`` checks the parser alone on arbitrary bytes and fields.
Here the whole lifecycle loop (``run``: register, init record, event loop, shutdown record) is
driven through a real HTTP fake of the Extensions API with arbitrary sequences of answers: valid
events with arbitrary extra fields (huge, fractional, negative or non-numeric deadlines included),
unknown event types, malformed bodies and error statuses, then a SHUTDOWN. The outcome must follow
from the sequence alone: exactly one init and one shutdown record, the INVOKEs counted before the
SHUTDOWN, exit code 0: however many failures come in a row, the loop polls again.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concurrency_observer import schema
from concurrency_observer.extension.config import Config
from concurrency_observer.extension.event_loop import run
from concurrency_observer.extension.extensions_api import ExtensionsApi
from concurrency_observer.extension.interruptions import Interruptions
from concurrency_observer.extension.log import Logger
from concurrency_observer.local import readback
from tests.faults.cued_api import Cue, CuedExtensionsApi

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
# Deadlines as Lambda sends them (epoch ms) and as it never should.
deadlines = st.one_of(
    st.integers(min_value=0, max_value=2 * 10**12),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # beyond a float's range
    st.floats(),
    json_values,
)


def event(event_type: str) -> st.SearchStrategy[dict[str, object]]:
    """An event of ``event_type`` with arbitrary (or missing) other fields."""
    return st.fixed_dictionaries(
        {"eventType": st.just(event_type)},
        optional={
            "deadlineMs": deadlines,
            "requestId": json_values,
            "shutdownReason": json_values,
            "tracing": json_values,
        },
    )


unknown_types = st.text(min_size=1, max_size=20).filter(lambda t: t not in ("INVOKE", "SHUTDOWN"))
answers = st.one_of(
    event("INVOKE"),
    unknown_types.flatmap(event),
    st.binary(max_size=40),  # mostly not JSON at all
    st.sampled_from([b"[]", b"null", b"{}", b'{"eventType": 7}', b'"INVOKE"', b"[" * 100000]),
    st.sampled_from([400, 403, 404, 500, 502, 503]),
)


RUNAWAY = 200  # backoffs after which the test stops a loop that missed its SHUTDOWN


def expected(cues: list[Cue]) -> int:
    """INVOKEs counted for ``cues`` followed by a SHUTDOWN, by the documented rules.

    An oracle independent of the parser: an answer is an event when it is a 200 whose body is a
    JSON object with a non-empty string ``eventType``; anything else is a failure, skipped.
    """
    invokes = 0
    for cue in cues:
        event_type = None
        if isinstance(cue, dict):
            event_type = cue["eventType"]
        elif isinstance(cue, bytes):
            try:
                document = json.loads(cue)
            except (ValueError, RecursionError):
                document = None
            if isinstance(document, dict) and isinstance(document.get("eventType"), str):
                event_type = document["eventType"] or None
        if event_type is None:
            continue
        if event_type == "SHUTDOWN":
            return invokes
        invokes += event_type == "INVOKE"
    return invokes


@settings(
    max_examples=60,
    deadline=None,  # each example starts an HTTP server and exchanges a dozen requests
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(answers, max_size=14), event("SHUTDOWN"))
def test_any_answers_end_in_one_init_and_one_shutdown(
    cues: list[Cue], shutdown: dict[str, object]
) -> None:
    """Arbitrary /event/next answers: no exception escapes, one init and one shutdown record."""
    lines: list[str] = []
    sleeps: list[float] = []
    stdout = io.StringIO()
    interruptions = Interruptions()

    def sleep(seconds: float) -> None:
        """Recorded, not slept; a runaway loop is ended by SIGTERM (and fails the reason check)."""
        sleeps.append(seconds)
        if len(sleeps) > RUNAWAY:
            interruptions.on_sigterm(15, None)

    # After the script, errors: an extension that missed the SHUTDOWN backs off until stopped.
    with CuedExtensionsApi([*cues, shutdown], when_empty=500).running() as api:
        config, _ = Config.from_environ(
            {
                "CONCURRENCY_OBSERVER_SINK": "emf",
                "CONCURRENCY_OBSERVER_METRICS": "full",
                "AWS_LAMBDA_RUNTIME_API": api.address,
            }
        )
        client = ExtensionsApi(api.address)
        try:
            with redirect_stdout(stdout):
                code = run(
                    config,
                    client,
                    "concurrency-observer",
                    Logger("DEBUG", lines.append),
                    interruptions,
                    started_wall=time.time(),
                    started_mono=time.monotonic(),
                    sleep=sleep,
                )
        finally:
            client.close()
    assert code == 0, lines
    documents = readback.emf_documents(stdout.getvalue())
    assert [schema.ENVIRONMENT_INIT in d for d in documents] == [True, False]
    assert documents[1][schema.ENVIRONMENT_SHUTDOWN] == 1
    assert documents[1][schema.SHUTDOWN_REASON] != "sigterm", lines  # SHUTDOWN was reached
    assert documents[1][schema.ENVIRONMENT_INVOCATIONS] == expected(cues)
    assert all(seconds <= 5.0 for seconds in sleeps)
    assert all("\n" not in line[:-1] for line in lines)
