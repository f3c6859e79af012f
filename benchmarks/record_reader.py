"""What checking every record line costs ``report``: the reader against a bare ``json.loads``.

Makes N record lines as the Python extension writes them (``build_environment_record``, the
platform's fields included) plus a share of ordinary log lines and hostile ones, then times, in the
same run and the same process, (a) the baseline: ``json.loads`` of each line that holds the marker
word, the least any reader does, with no check at all, and (b) ``aws.records.collect``: the bounds,
the decoding, the record contract's validator and the dedupe, as ``report`` runs them::

    .venv/bin/python -m benchmarks.record_reader [--records 20000] [--rounds 5]

It prints the median of the rounds for each, per line and in total, and the time each hostile line
of issue 27 costs alone (the 12 KB nested line is refused before it is decoded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

from concurrency_observer.aws.records import check_line, collect
from concurrency_observer.extension.environment_line import (
    build_environment_record,
    environment_line,
)
from concurrency_observer.extension.records import Environment, ShutdownFacts

PLATFORM = {
    "initDurationMs": 182.5,
    "initStatus": "success",
    "initPhase": "init",
    "runtimeVersion": "python:3.12.v18",
    "availabilityZoneId": "use1-az4",
}
HOSTILE = {
    "1,000 nested messages (12 KB)": "concurrencyObserver "
    + '{"message":' * 1000
    + "1"
    + "}" * 1000,
    "5 brackets, then 2,000 escaped quotes": "concurrencyObserver " + "{" * 5 + '\\"' * 2000,
    "lifetime 1e999": None,
    "invocations 1e30": None,
}


def record_lines(count: int) -> list[str]:
    """``count`` distinct record lines, as the extension writes them."""
    lines = []
    start = 1_764_800_000.0
    for index in range(count):
        facts = ShutdownFacts(
            timestamp=start + index + 60.0,
            reason="spindown",
            lifetime=60.0,
            idle_time=1.5,
            invocations=index % 50,
            time_to_first_invoke=0.02,
        )
        record = build_environment_record(
            Environment(f"orders-api-{index % 7}", "$LATEST", "on-demand"),
            facts,
            environment_id=f"{index:016x}",
            profile="lean",
            init_time=start + index,
            first_invoke="prompt",
            platform=PLATFORM,
        )
        lines.append(environment_line(record).rstrip("\n"))
    return lines


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    """The median wall time of ``rounds`` runs of ``work``."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    """Print the baseline and the reader side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    lines = record_lines(options.records)
    good = json.loads(lines[0])
    HOSTILE["lifetime 1e999"] = lines[0].replace(
        f'"lifetimeMs":{good["lifetimeMs"]}', '"lifetimeMs":1e999'
    )
    HOSTILE["invocations 1e30"] = lines[0].replace(
        f'"invocations":{good["invocations"]}', '"invocations":1e30'
    )
    events = [{"message": line, "logStreamName": f"s{i}"} for i, line in enumerate(lines)]
    events += [{"message": "END RequestId: x concurrencyObserver"}] * (options.records // 10)

    def baseline() -> int:
        decoded = 0
        for event in events:
            message = event["message"]
            if "concurrencyObserver" in message and "{" in message:
                json.loads(message[message.find("{") :])
                decoded += 1
        return decoded

    def reader() -> int:
        return len(collect("/g", events).records)

    assert reader() == options.records
    base = median_seconds(baseline, options.rounds)
    checked = median_seconds(reader, options.rounds)
    lines_read = len(events)
    print(
        f"{lines_read} lines ({options.records} records, {len(lines[0])} characters each), "
        f"median of {options.rounds} rounds"
    )
    for label, seconds in (("baseline json.loads only", base), ("aws.records.collect", checked)):
        print(
            f"  {label:26} {seconds * 1000:8.1f} ms  {seconds / lines_read * 1e6:6.2f} us a line"
            f"  ({seconds / base:.2f}x the baseline)"
        )
    for name, message in HOSTILE.items():
        assert message is not None
        cost = median_seconds(partial(check_line, message), options.rounds * 20)
        print(f"  {name}: {cost * 1e6:.1f} us, {check_line(message)[1] or 'kept, field dropped'}")


if __name__ == "__main__":
    main()
