"""What ``experiment`` shows while the study runs, and its results; the files are study_output.py's.

``RichListener`` is the engine's ``StudyListener`` on a console: notes as lines, waits as one live
progress bar. ``run_with_display(make_study, console)`` runs a study under it, SIGTERM acting as
Ctrl-C, and turns the interrupt into ``StudyInterrupted`` saying what was saved; the AWS and the
local fleet's paths both use it. ``show_results`` prints the sample's table and writes the files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from concurrency_observer.errors import StudyInterrupted
from concurrency_observer.study.loop import Study
from concurrency_observer.study.ports import StudyListener, WaitProgress
from concurrency_observer.study.signals import sigterm_as_interrupt
from concurrency_observer.study.state import StudyState
from concurrency_observer.study.summary import summarize


class RichListener:
    """Shows the engine's notes as lines and its waits as one live progress bar."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._label = ""

    def __enter__(self) -> RichListener:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def note(self, message: str) -> None:
        """A line above the progress bar."""
        self._bar.console.print(message, highlight=False)

    def progress(self, update: WaitProgress) -> None:
        """Move the bar; a new wait (another label) gets a fresh bar."""
        if self._task is None or update.label != self._label:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(update.label, total=update.total, detail="")
            self._label = update.label
        self._bar.update(
            self._task, completed=update.completed, total=update.total, detail=update.detail
        )


def run_with_display(make_study: Callable[[StudyListener], Study], console: Console) -> StudyState:
    """Run the study ``make_study`` builds around a live display; SIGTERM acts as Ctrl-C.

    The engine restores the original configuration before an interrupt reaches this function,
    which turns it into one line saying what was saved. The local fleet's path uses this too.
    """
    with RichListener(console) as listener, sigterm_as_interrupt():
        study = make_study(listener)
        try:
            return study.run()
        except KeyboardInterrupt:
            saved = len(study.store.load(study.plan).results)
            raise StudyInterrupted(
                f"interrupted; {saved} of {len(study.plan.runs())} repeats are saved in "
                f"{study.store.path.parent}: run the same command to continue"
            ) from None


def show_results(state: StudyState, directory: Path, console: Console) -> None:
    """Print the sample's table and write the CSV, JSON and PNG files."""
    from concurrency_observer.reporting.study_output import (  # noqa: PLC0415
        summary_table,
        write_study_outputs,
    )

    outputs = write_study_outputs(directory, state)
    console.print(summary_table(summarize(state.results), title="environments initialized"))
    console.print("wrote " + ", ".join(str(path) for path in outputs.all()))
