"""A PNG chart: live environments over time, split by init type, and the lifetime survival curve.

matplotlib is imported when a chart is drawn, not at module load (it costs ~0.5 s), and through
its object-oriented API with the Agg canvas: no pyplot, so no global backend state is touched.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from concurrency_observer.errors import UserError
from concurrency_observer.figures.report_document import Report

_SIZE_INCHES = (10.0, 8.0)
_DPI = 100


def time_format(span: timedelta) -> str:
    """The time axis' labels for a window of ``span``: seconds for minutes, the day for days."""
    if span <= timedelta(minutes=10):  # a local simulation: otherwise every tick reads the same
        return "%H:%M:%S"
    if span <= timedelta(days=1):
        return "%H:%M"
    return "%m-%d %H:%M"


def write_chart(report: Report, path: Path) -> Path:
    """Draw the live series to ``path`` (PNG); raises ``UserError`` if it can't be written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.dates import DateFormatter  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes, survival_axes = figure.subplots(2, 1, height_ratios=(3, 2))
    # Each point is the count at the end of its period: draw it across the period, and close
    # the last step at the window's end.
    # matplotlib converts datetimes itself; its stubs only declare numeric arrays.
    times: list[Any] = [point.timestamp for point in report.live] + [report.window.end]
    totals = [point.total for point in report.live]
    init_types = report.init_types
    if init_types:
        stacks = [[point.by_init_type.get(t, 0) for point in report.live] for t in init_types]
        axes.stackplot(
            times,
            *[values + values[-1:] for values in stacks],
            labels=init_types,
            step="post",
            alpha=0.6,
        )
    axes.step(times, totals + totals[-1:], where="post", color="black", linewidth=1.5, label="all")
    peaks = [point.peak for point in report.live]
    if peaks and all(peak is not None for peak in peaks):
        # From the records: the most alive at once in each period, which the ends can miss.
        shown = [int(peak or 0) for peak in peaks]
        axes.step(
            times,
            shown + shown[-1:],
            where="post",
            color="black",
            linestyle=":",
            linewidth=1.0,
            label="most at once in the period",
        )
    if report.provisioned is not None:
        axes.axhline(
            report.provisioned,
            color="tab:red",
            linestyle="--",
            label=f"provisioned concurrency requested ({report.provisioned})",
        )
    who = report.function_name + (f" version {report.version}" if report.version else "")
    axes.set_title(f"Live execution environments: {who}")
    axes.set_xlabel("time (UTC)")
    span = report.window.end - report.window.start
    axes.xaxis.set_major_formatter(DateFormatter(time_format(span)))  # type: ignore[no-untyped-call]
    axes.set_ylabel("environments")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    # Outside the axes, so it never hides the peak.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    for label in axes.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    _draw_survival(survival_axes, report)
    try:
        figure.savefig(path, format="png")
    except OSError as exc:
        raise UserError(f"cannot write the chart to {path}: {exc.strerror or exc}") from exc
    return path


def _draw_survival(axes: Any, report: Report) -> None:
    """Share of the environments that shut down in the window which lived at least t."""
    curve = report.lifetime_survival
    quantiles = report.lifetime_quantiles
    axes.set_title("Lifetime survival (environments shut down in the window)")
    axes.set_xlabel("lifetime (seconds)")
    axes.set_ylabel("share still alive")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    if not curve or quantiles is None:
        axes.text(0.5, 0.5, "no lifetimes in the window", ha="center", transform=axes.transAxes)
        return
    seconds = [point[0] for point in curve]
    shares = [point[1] for point in curve]
    # Between two known percentiles the share is only known to lie in between: a step.
    axes.step(seconds, shares, where="post", color="tab:blue", marker="o", markersize=3)
    axes.set_xlim(left=0)
    axes.annotate(
        f"from {quantiles.source}",
        xy=(0.99, 0.95),
        xycoords="axes fraction",
        ha="right",
        va="top",
        fontsize="small",
    )
