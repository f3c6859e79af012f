"""SIGTERM and Ctrl-C in a real process: the study stops and the original config is restored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from concurrency_observer.study.signals import interrupts_deferred

# A study whose READY wait takes 60 real seconds: the test signals it during that wait.
SCRIPT = textwrap.dedent(
    """
    import signal
    import sys
    from pathlib import Path
    from concurrency_observer.study.state import StateStore
    from concurrency_observer.study.signals import sigterm_as_interrupt
    from concurrency_observer.study.plan import StudyPlan
    from concurrency_observer.study.loop import Study
    from concurrency_observer.study.clock import SystemClock
    from tests.unit.study.test_study import FakeFleet

    class Printer:
        def note(self, message):
            print(message, flush=True)
        def progress(self, update):
            pass

    # A job started in the background by a non-interactive shell (as CI may run the suite)
    # inherits SIGINT ignored, and Python then keeps it ignored: put Ctrl-C's handler back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    fleet = FakeFleet(SystemClock(), config=7, ready_after=60.0)
    plan = StudyPlan({"function": "f"}, (3,), 1, cooldown=0)
    try:
        with sigterm_as_interrupt():
            Study(plan, fleet, fleet, StateStore(Path(sys.argv[1])), Printer(), SystemClock()).run()
    except KeyboardInterrupt:
        print(f"interrupted; config now {fleet.config}", flush=True)
        sys.exit(3)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_wait_restores_the_original(tmp_path: Path, signum: int) -> None:
    """Signalled while waiting for READY, the study puts the original 7 back and exits."""
    repo = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if "putting provisioned concurrency 3" in line:
            process.send_signal(signum)
            break
    output, _ = process.communicate(timeout=30)
    lines += output.splitlines()
    assert process.returncode == 3
    assert lines[-2:] == ["restored 7", "interrupted; config now 7"]


def test_a_signal_during_the_restore_is_deferred() -> None:
    """Inside ``interrupts_deferred`` Ctrl-C only calls the callback; then the handler is back."""
    before = signal.getsignal(signal.SIGINT)
    calls: list[str] = []
    with interrupts_deferred(lambda: calls.append("deferred")):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
    assert calls == ["deferred"]
    assert signal.getsignal(signal.SIGINT) is before
