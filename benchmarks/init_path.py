"""What each engine adds to an init, against a 22-line bash stand-in, on several kinds of runtime.

Real environments under the RIE, every case of a scenario once per round, round-robin with the
first case rotating, so a busy machine's drift hits all alike; every "added" figure is paired
with the no-extension environment of the same round. Cases (docs/benchmarks.md, "The init path"):

- ``none``: no extension; ``standin``: a bash extension that registers for SHUTDOWN over
  ``/dev/tcp`` and prints two lines (``benchmarks/standin_layer``); ``floor``: the Python floor;
  ``handoff-floor``: the stand-in's register, then ``exec python3 -I -S -B`` of a /event/next
  loop on ``_socket`` (``benchmarks/handoff_floor_layer``): the least any Python engine handed
  off by a shell adds; ``today``: the layer of another git ref (``--baseline``, ``main`` by
  default) as ``default``;
- ours, as a user gets it (the Telemetry API on, served by the harness's emulator): ``default``
  (the ``cloudwatch`` sink, moto on 127.0.0.1), ``notelemetry`` (``default`` with the Telemetry
  API off, and no emulator in the harness), ``slow60`` (the same behind a CloudWatch that
  answers after 60 ms), ``emf``, and ``bash`` (the shell engine,
  ``CONCURRENCY_OBSERVER_ENGINE=bash``).

Scenarios: ``python`` (the Python runtime, on-demand), ``bash-runtime`` (a bash custom runtime
whose own init is near zero, with a python3 the extension may use), ``provisioned`` (the Python
runtime, ``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``) and ``quota`` (the Python
runtime, on-demand, the whole environment held to 1/14 of a core)::

    .venv/bin/python -m benchmarks.init_path                       # 10 rounds of every scenario
    .venv/bin/python -m benchmarks.init_path --rounds 12 --scenarios python,quota --json out.json
    .venv/bin/python -m benchmarks.init_path --sh-is-bash   # /bin/sh is bash, as on Amazon Linux

The target: each case of ours adds at most the stand-in's median plus 3 ms (on-demand scenarios).
Exit status 0 when it held everywhere, 1 when not, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import cpu_quota, procfs
from benchmarks.measure import _Invoker
from benchmarks.slow_cloudwatch import slow_cloudwatch
from benchmarks.variants import FLOOR_LAYER, prepare_layers
from concurrency_observer.errors import UserError
from concurrency_observer.local import readback, rie
from concurrency_observer.local.cloudwatch import LocalCloudWatch
from concurrency_observer.local.environment import EnvironmentFailed, LambdaEnvironment
from concurrency_observer.local.environment_settings import BASH_RUNTIME, EnvironmentSettings
from concurrency_observer.local.process_session import processes_in_session

STANDIN_LAYER = Path(__file__).resolve().parent / "standin_layer"
HANDOFF_FLOOR_LAYER = Path(__file__).resolve().parent / "handoff_floor_layer"
REPOSITORY = Path(__file__).resolve().parent.parent
CASES = (
    "none", "standin", "floor", "handoff-floor", "today", "default", "notelemetry", "slow60",
    "emf", "bash",
)  # fmt: skip
OURS = ("default", "notelemetry", "slow60", "emf", "bash")
SCENARIOS = ("python", "bash-runtime", "provisioned", "quota")
TARGET_OVER_STANDIN_MS = 3.0
QUOTA_FRACTION = 1 / 14  # 128 MB's share of a core outside the on-demand init boost
SLOW_ANSWER_S = 0.060
_SETTLE_S = 0.05  # the extension back on /event/next after the first INVOKE before reading RSS
# "engine":"python" or "bash" in the environment record: which engine ran
_ENGINE_FIELD = '"engine":"{}"'


@dataclass
class Sample:
    """One environment: times in ms, memory in KiB."""

    scenario: str
    case: str
    round: int
    init_ms: float | None = None  # the RIE's INIT REPORT
    cold_ms: float | None = None  # the first invoke's latency at the client (init included)
    warm_ms: list[float] = field(default_factory=list)
    rss_kb: int | None = None  # every extension process of the environment, summed
    cpu_ms: float | None = None  # their CPU time until just after the first invoke (schedstat)
    records_ok: bool | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    """How to run one case: the layer, its settings, and which records to expect where."""

    name: str
    layer: Path | None
    settings: Mapping[str, str]
    records: str | None = None  # "cloudwatch" or "emf": read back and count; None: not ours
    engine: str | None = None


def layer_of_ref(ref: str, workdir: Path) -> Path:
    """The layer built from git ``ref``'s sources (``git archive``, no checkout), extracted."""
    sources = workdir / "baseline"
    sources.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", ref, "src"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(sources)], input=archive, check=True)
    build = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from concurrency_observer.layer import build_layer, extract_layer; "
        "extract_layer(build_layer(Path(sys.argv[2])).path, Path(sys.argv[3]))"
    )
    layer = workdir / "layer-baseline"
    zip_path = str(workdir / "baseline.zip")
    command = [sys.executable, "-c", build, str(sources / "src"), zip_path, str(layer)]
    subprocess.run(command, check=True)
    return layer


def make_cases(layers: Any, baseline: Path, endpoints: Mapping[str, str]) -> dict[str, Case]:
    """Every case, ours with the defaults but for what the case names."""
    return {
        "none": Case("none", layers.none, {}),
        "standin": Case("standin", STANDIN_LAYER, {}),
        "floor": Case("floor", layers.floor, {}),
        "handoff-floor": Case("handoff-floor", HANDOFF_FLOOR_LAYER, {}),
        "today": Case(
            "today",
            baseline,
            {"AWS_ENDPOINT_URL_CLOUDWATCH": endpoints["default"]},
            "cloudwatch",
            "python",
        ),
        "default": Case(
            "default",
            layers.ours,
            {"AWS_ENDPOINT_URL_CLOUDWATCH": endpoints["default"]},
            "cloudwatch",
            "python",
        ),
        "notelemetry": Case(
            "notelemetry",
            layers.ours,
            {
                "AWS_ENDPOINT_URL_CLOUDWATCH": endpoints["default"],
                "CONCURRENCY_OBSERVER_TELEMETRY": "off",
            },
            "cloudwatch",
            "python",
        ),
        "slow60": Case(
            "slow60",
            layers.ours,
            {"AWS_ENDPOINT_URL_CLOUDWATCH": endpoints["slow60"]},
            "cloudwatch",
            "python",
        ),
        "emf": Case("emf", layers.ours, {"CONCURRENCY_OBSERVER_SINK": "emf"}, "emf", "python"),
        "bash": Case("bash", layers.ours, {"CONCURRENCY_OBSERVER_ENGINE": "bash"}, "emf", "bash"),
    }


@contextmanager
def quota_for(scenario: str, name: str) -> Iterator[cpu_quota.CpuQuota | None]:
    """A cgroup at 1/14 of a core for the ``quota`` scenario, else nothing."""
    if scenario != "quota":
        yield None
        return
    quota = cpu_quota.CpuQuota(name, QUOTA_FRACTION)
    try:
        yield quota
    finally:
        quota.close()


@dataclass(frozen=True)
class Bench:
    """What every environment of a run shares: its id, the moto client, warm invokes."""

    run_id: str
    client: Any
    warm: int
    sh_is_bash: bool = False  # bash bind-mounted over /bin/sh in every environment


def measure(bench: Bench, scenario: str, case: Case, round_index: int) -> Sample:
    """One environment of ``case`` in ``scenario``: start, invoke cold and warm, shut down."""
    sample = Sample(scenario, case.name, round_index)
    namespace = f"InitPathBench/{bench.run_id}/{scenario}/{case.name}/{round_index}"
    env: dict[str, str] = {**case.settings, "CONCURRENCY_OBSERVER_NAMESPACE": namespace}
    if scenario == "provisioned":
        env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "provisioned-concurrency"
    settings = EnvironmentSettings(
        function_name=f"initpath-{scenario}-{case.name}-{round_index}",
        extra_env=env,
        emulate_telemetry=(
            case.engine == "python" and case.settings.get("CONCURRENCY_OBSERVER_TELEMETRY") != "off"
        ),
        runtime_command=("/bin/bash", str(BASH_RUNTIME)) if scenario == "bash-runtime" else None,
        sh_is_bash=bench.sh_is_bash,
    )
    since = datetime.now(timezone.utc)
    environment = LambdaEnvironment(case.layer, settings, name=f"initpath-{case.name}")
    warm = bench.warm if scenario != "quota" else max(1, bench.warm // 5)
    with quota_for(scenario, f"initpath-{os.getpid()}-{round_index}") as quota:
        try:
            _exercise(environment, quota, sample, warm)
        except (EnvironmentFailed, OSError, http.client.HTTPException) as error:
            sample.errors.append(str(error))
        finally:
            environment.close()
    output = environment.output
    sample.init_ms = environment.init_duration_ms()
    if case.engine is not None and _ENGINE_FIELD.format(case.engine) not in output:
        sample.errors.append(f"the {case.engine} engine did not write the record")
    if case.records is not None:
        _check_records(bench, case, sample, output=output, namespace=namespace, since=since)
    return sample


def _exercise(
    environment: LambdaEnvironment, quota: cpu_quota.CpuQuota | None, sample: Sample, warm: int
) -> None:
    """Start the environment (under the quota), invoke it cold then warm, shut it down."""
    environment.start()
    session = environment.session_id
    if quota is not None and session is not None:
        # Init is lazy: nothing but unshare and the RIE runs before the first invoke.
        quota.add([session, *processes_in_session(session)])
    invoker = _Invoker(environment.emulator_url)
    try:
        sample.cold_ms = invoker.invoke_ms()
        time.sleep(_SETTLE_S)
        if session is not None:
            pids = procfs.extension_processes(session)
            sample.rss_kb = sum(procfs.memory(pid).rss_kb for pid in pids)
            sample.cpu_ms = sum(procfs.cpu_ms(pid) for pid in pids)
        sample.warm_ms = [invoker.invoke_ms() for _ in range(warm)]
    finally:
        invoker.close()
    if environment.shutdown().forced:
        sample.errors.append("the RIE did not exit in time after SIGTERM")


def _check_records(
    bench: Bench, case: Case, sample: Sample, *, output: str, namespace: str, since: datetime
) -> None:
    """Count the lean data that arrived (EMF lines or moto): +1 and -1, nothing else."""
    try:
        if case.records == "emf":
            series = readback.read_emf(output, namespace)
        else:
            series = readback.read_cloudwatch(bench.client, namespace, since)
    except Exception as error:  # botocore's errors: one case's failure must not end the run
        sample.errors.append(f"reading the records back: {error}")
        return
    arrived = sum(s.samples for s in series)
    sample.records_ok = arrived == 2
    if not sample.records_ok:
        sample.errors.append(f"{case.records}: {arrived} data arrived, 2 expected")


def median(values: list[float]) -> float | None:
    """The median, ``None`` for no values."""
    return statistics.median(values) if values else None


def paired(samples: list[Sample], scenario: str, case: str, metric: str) -> list[float]:
    """``metric`` of ``case`` minus that of ``none`` in the same round, for every round."""
    by_round = {
        (s.case, s.round): getattr(s, metric)
        for s in samples
        if s.scenario == scenario and not s.errors
    }
    return [
        value - by_round[("none", r)]
        for (name, r), value in by_round.items()
        if name == case and value is not None and by_round.get(("none", r)) is not None
    ]


def warm_p50(samples: list[Sample], scenario: str, case: str) -> list[float]:
    """Each environment's median warm latency minus that of ``none`` in the same round."""
    medians = {
        (s.case, s.round): statistics.median(s.warm_ms)
        for s in samples
        if s.scenario == scenario and s.warm_ms and not s.errors
    }
    return [
        value - medians[("none", r)]
        for (name, r), value in medians.items()
        if name == case and ("none", r) in medians
    ]


def summarize(samples: list[Sample], scenarios: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """One row per scenario and case; and whether the target held in every on-demand scenario."""
    rows: list[dict[str, Any]] = []
    held = True
    for scenario in scenarios:
        standin = median(paired(samples, scenario, "standin", "init_ms"))
        for case in CASES:
            mine = [s for s in samples if s.scenario == scenario and s.case == case]
            added = median(paired(samples, scenario, case, "init_ms"))
            rss = [s.rss_kb / 1024 for s in mine if s.rss_kb is not None and not s.errors]
            row: dict[str, Any] = {
                "scenario": scenario,
                "case": case,
                "rounds": sum(not s.errors for s in mine),
                "errors": sum(bool(s.errors) for s in mine),
                "init_ms": median([s.init_ms for s in mine if s.init_ms is not None]),
                "added_init_ms": added,
                "added_cold_ms": median(paired(samples, scenario, case, "cold_ms")),
                "added_warm_p50_ms": median(warm_p50(samples, scenario, case)),
                "rss_mb": median(rss),
                "cpu_ms": median([s.cpu_ms for s in mine if s.cpu_ms is not None and not s.errors]),
                "target": None,
            }
            if case in OURS and scenario != "provisioned" and standin is not None and mine:
                row["target"] = added is not None and added <= standin + TARGET_OVER_STANDIN_MS
                held = held and bool(row["target"])
            rows.append(row)
    return rows, held


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The table: medians, each "added" paired with no extension in the same round."""
    print(
        f"{'scenario':<13}{'case':<9}{'rounds':>7}{'init':>9}{'added init':>12}"
        f"{'added 1st':>11}{'warm p50':>10}{'RSS MB':>8}{'CPU ms':>8}  target (<= standin + 3 ms)"
    )
    for row in rows:
        target = {None: "", True: "PASS", False: "FAIL"}[row["target"]]
        init = "-" if row["init_ms"] is None else f"{row['init_ms']:.1f}"
        rss = "-" if row["rss_mb"] is None else f"{row['rss_mb']:.1f}"
        cpu = "-" if row["cpu_ms"] is None else f"{row['cpu_ms']:.0f}"
        errors = f" ({row['errors']} failed)" if row["errors"] else ""
        print(
            f"{row['scenario']:<13}{row['case']:<9}{row['rounds']:>7}{init:>9}"
            f"{_fmt(row['added_init_ms']):>12}{_fmt(row['added_cold_ms']):>11}"
            f"{_fmt(row['added_warm_p50_ms'], 2):>10}{rss:>8}{cpu:>8}  {target}{errors}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.init_path", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="rounds per scenario (10)")
    parser.add_argument("--warm", type=int, default=50, help="warm invokes per environment (50)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=", ".join(SCENARIOS))
    parser.add_argument("--cases", default=",".join(CASES), help="subset of " + ", ".join(CASES))
    parser.add_argument("--baseline", default="main", help="git ref of the 'today' case (main)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also save every sample")
    parser.add_argument(
        "--sh-is-bash",
        action="store_true",
        help="bind bash over /bin/sh in every environment, as Amazon Linux has it (the launcher"
        " then reads the front door itself); default: this host's /bin/sh",
    )
    args = parser.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.cases = [c for c in CASES if c in {"none", "standin", *args.cases.split(",")}]
    if set(args.scenarios) - set(SCENARIOS) or args.rounds < 1 or args.warm < 1:
        parser.error("unknown scenario, or rounds/warm below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every scenario's rounds and print the table."""
    args = parse_args(argv)
    began = time.monotonic()
    run_id = f"{int(time.time())}-{os.getpid()}"
    samples: list[Sample] = []
    try:
        rie.check_host()
        rie.rie_binary()
        if "quota" in args.scenarios and (why := cpu_quota.available()) is not None:
            print(f"quota scenario skipped: {why}", file=sys.stderr)
            args.scenarios.remove("quota")
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="initpath-")))
            layers = prepare_layers(workdir)
            assert FLOOR_LAYER.exists()
            moto = stack.enter_context(LocalCloudWatch())
            client = moto.client()
            bench = Bench(run_id, client, args.warm, args.sh_is_bash)
            slow = stack.enter_context(slow_cloudwatch(moto.endpoint_url, SLOW_ANSWER_S))
            baseline = layer_of_ref(args.baseline, workdir)
            cases = make_cases(layers, baseline, {"default": moto.endpoint_url, "slow60": slow})
            chosen = [cases[name] for name in args.cases]
            for scenario in args.scenarios:
                for index in range(-1, args.rounds):  # round -1: a warm-up, thrown away
                    shift = index % len(chosen)
                    order = chosen[shift:] + chosen[:shift]
                    this = [measure(bench, scenario, c, index) for c in order]
                    for sample in this:
                        for error in sample.errors:
                            where = f"{scenario} {sample.case} round {index}"
                            print(f"{where}: {error}", file=sys.stderr)
                    if index >= 0:
                        samples += this
                print(f"{scenario}: {time.monotonic() - began:.0f} s", file=sys.stderr)
    except (UserError, RuntimeError, OSError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows, held = summarize(samples, args.scenarios)
    print_rows(rows)
    elapsed = time.monotonic() - began
    print(
        f"{len(samples)} environments, {args.rounds} rounds, {os.cpu_count()} CPUs, {elapsed:.0f} s"
    )
    if args.json is not None:
        document = {"rows": rows, "samples": [asdict(s) for s in samples], "rounds": args.rounds}
        args.json.write_text(json.dumps(document, indent=1))
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
