"""Lambda's own lines made from the RIE's output, in both log formats, as the harness delivers."""

from __future__ import annotations

import json

import pytest

from concurrency_observer.figures.platform_lines import accounts
from concurrency_observer.local.lambda_log_lines import (
    LOG_FORMAT_JSON,
    LOG_FORMAT_TEXT,
    LogSettings,
    lambda_lines,
)

REGISTERED = (
    "04 Dec 2026 16:55:32,210 [INFO] (rapid) External agent concurrency-observer registered"
)
REQUEST = "0a1b2c3d-0000-4000-8000-00000000abcd"
WAITED_FOR = "\n".join(
    [
        "04 Dec 2026 16:55:32,203 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
        REGISTERED,
        "04 Dec 2026 16:55:32,300 [INFO] (rapid) INIT RTDONE(status: success)",
        "04 Dec 2026 16:55:32,301 [INFO] (rapid) INIT REPORT(durationMs: 97.500000)",
        f"START RequestId: {REQUEST} Version: $LATEST",
        "the function's own line",
        f"END RequestId: {REQUEST}",
        # The RIE's own first REPORT, with its meaningless Init Duration first.
        f"REPORT RequestId: {REQUEST}\tInit Duration: 0.04 ms\tDuration: 301.25 ms\t"
        "Billed Duration: 302 ms\tMemory Size: 128 MB\tMax Memory Used: 128 MB\t",
        f"START RequestId: {REQUEST[:-1]}e Version: $LATEST",
        f"REPORT RequestId: {REQUEST[:-1]}e  Duration: 12.5 ms  Billed Duration: 13 ms",
    ]
)
HELD = "\n".join(
    [
        "04 Dec 2026 16:55:32,203 [INFO] (rapid) "
        "INIT START(type: provisioned-concurrency, phase: init)",
        REGISTERED,
        "INIT HELD(at: 1796403332.303)",  # 04 Dec 2026 16:55:32.303 UTC
        "04 Dec 2026 16:55:40,000 [INFO] (rapid) INIT REPORT(durationMs: 7797.000000)",
        f"START RequestId: {REQUEST} Version: $LATEST",
        f"REPORT RequestId: {REQUEST}  Duration: 301.25 ms  Billed Duration: 302 ms",
    ]
)
FAILED = "\n".join(
    [
        "04 Dec 2026 16:55:32,203 [INFO] (rapid) INIT START(type: on-demand, phase: init)",
        REGISTERED,
        "04 Dec 2026 16:55:32,250 [WARN] (rapid) "
        "First fatal error stored in appctx: Runtime.ExitError",
        "04 Dec 2026 16:55:32,260 [INFO] (rapid) INIT RTDONE(status: error)",
        "04 Dec 2026 16:55:32,261 [INFO] (rapid) INIT REPORT(durationMs: 58.000000)",
    ]
)


def _made(output: str, log_format: str, level: str = "INFO", *, held: bool = False) -> list[str]:
    settings = LogSettings(log_format, level, "bash:rie")
    return list(lambda_lines(output, settings, 1.0, first_init_held=held))


def test_text_lines_are_lambdas_with_the_init_duration_on_the_first_report() -> None:
    """INIT_START, START/END/REPORT as Lambda writes them; the RIE's own invocation lines go."""
    lines = _made(WAITED_FOR, LOG_FORMAT_TEXT)
    assert "INIT_START Runtime Version: bash:rie" in lines
    reports = [line for line in lines if line.startswith("REPORT RequestId:")]
    assert reports[0].split("\t") == [
        f"REPORT RequestId: {REQUEST}",
        "Duration: 301.25 ms",
        "Billed Duration: 302 ms",
        "Init Duration: 97.50 ms",
    ]
    assert "Init Duration" not in reports[1]  # a warm invocation
    assert not any("0.04 ms" in line for line in lines)  # the RIE's REPORT is gone
    assert "the function's own line" in lines
    assert REGISTERED in lines  # every other line is kept as it is


def test_json_lines_are_platform_objects() -> None:
    """platform.initStart (runtimeVersion), platform.start, platform.report (initDurationMs)."""
    lines = _made(WAITED_FOR, LOG_FORMAT_JSON)
    objects = [json.loads(line) for line in lines if line.startswith("{")]
    kinds = [o["type"] for o in objects]
    assert kinds == [
        "platform.initStart",
        "platform.start",
        "platform.report",
        "platform.start",
        "platform.report",
    ]
    assert objects[0]["record"]["runtimeVersion"] == "bash:rie"
    assert objects[2]["record"]["metrics"]["initDurationMs"] == 97.5
    assert "initDurationMs" not in objects[4]["record"]["metrics"]
    assert not any(line.startswith(("START ", "END ", "REPORT ")) for line in lines)


def test_json_under_a_system_log_level_of_warn_writes_no_platform_line() -> None:
    """WARN drops the platform's INFO lines; the RIE's invocation lines go too, as on Lambda."""
    lines = _made(WAITED_FOR, LOG_FORMAT_JSON, "WARN")
    assert not any("platform." in line or line.startswith(("START", "REPORT")) for line in lines)
    assert "the function's own line" in lines


def test_an_init_made_ahead_of_its_request_has_no_init_duration_in_its_report() -> None:
    """A provisioned (held) environment's first request did not wait for its init."""
    for log_format in (LOG_FORMAT_TEXT, LOG_FORMAT_JSON):
        made = _made(HELD, log_format, held=True)
        assert any("REPORT" in line or "platform.report" in line for line in made)
        assert not any("Init Duration" in line or "initDurationMs" in line for line in made)
        assert not any("INIT_REPORT" in line or "platform.initReport" in line for line in made)


def test_an_init_a_request_waited_at_the_open_gate_reports_its_duration_to_the_gate() -> None:
    """The harness's function prints INIT HELD at an open gate too: the init lasted until then,
    as the Telemetry API emulation reports it (INIT START 16:55:32.203 to 32.303: 100 ms)."""
    at_gate = HELD.replace("provisioned-concurrency", "on-demand")
    report = [line for line in _made(at_gate, LOG_FORMAT_TEXT) if line.startswith("REPORT")]
    assert report[0].endswith("Init Duration: 100.00 ms")


@pytest.mark.parametrize("log_format", [LOG_FORMAT_TEXT, LOG_FORMAT_JSON])
def test_a_failed_init_is_reported_with_its_status_and_error_type(log_format: str) -> None:
    """INIT_REPORT / platform.initReport: the RIE's duration, status error, the fatal error."""
    events = [{"logStreamName": "s", "message": line} for line in _made(FAILED, log_format)]
    account = accounts(events).by_stream["s"]
    assert (account.init_duration_ms, account.init_status) == (58.0, "error")
    assert (account.init_error_type, account.init_phase) == ("Runtime.ExitError", "init")


@pytest.mark.parametrize("log_format", [LOG_FORMAT_TEXT, LOG_FORMAT_JSON])
def test_the_reader_reads_back_what_the_harness_writes(log_format: str) -> None:
    """Either format, figures.platform_lines gets the RIE's duration, success and the version."""
    events = [{"logStreamName": "s", "message": line} for line in _made(WAITED_FOR, log_format)]
    account = accounts(events).by_stream["s"]
    assert account.init_duration_ms == 97.5
    assert (account.init_status, account.init_phase) == ("success", "init")
    assert account.runtime_version == "bash:rie"
    assert (account.reports, account.felt_cold_start) == (2, True)


def test_an_unknown_format_or_level_is_refused() -> None:
    """LogSettings accepts Lambda's spellings only."""
    with pytest.raises(ValueError, match="log format"):
        LogSettings("yaml")
    with pytest.raises(ValueError, match="system log level"):
        LogSettings(LOG_FORMAT_JSON, "ERROR")
