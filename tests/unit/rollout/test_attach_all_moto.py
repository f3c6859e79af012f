"""attach-all and detach on a fleet made in moto: mixed runtimes, the limits, a busy function."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from concurrency_observer.aws.session import client
from concurrency_observer.cli import layer_fleet
from concurrency_observer.rollout.observer_settings import (
    METRICS_VARIABLE,
    RECORD_VARIABLE,
    Settings,
)
from concurrency_observer.rollout.publish import layer_spec
from concurrency_observer.rollout.sink import SINK_VARIABLE
from tests.unit.rollout.test_fleet_update import FakeClock
from tests.unit.rollout.test_publish import (  # noqa: F401 (fixtures)
    aws_env,
    lambda_client,
    layer_zip,
    make_function,
    other_layer,
)

LAYER = "concurrency-observer"
# Fields that every update moves by itself; everything else must come back exactly.
VOLATILE = {"ResponseMetadata", "RevisionId", "LastModified"}


class BusyOnce:
    """The moto client, except that named functions answer their first update with a conflict.

    moto has no LastUpdateStatus InProgress, so this stands in for a function another deploy is
    updating; it also notes when each update was sent, on the test's clock.
    """

    def __init__(self, inner: Any, busy: set[str], clock: FakeClock) -> None:
        self.inner, self.busy, self.clock = inner, set(busy), clock
        self.conflicts: list[str] = []
        self.updates: list[tuple[float, str]] = []
        self.waits: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_function_configuration(self, **arguments: Any) -> Any:
        name = str(arguments["FunctionName"]).rsplit(":", 1)[-1]
        if name in self.busy:
            self.busy.discard(name)
            self.conflicts.append(name)
            raise ClientError(
                {"Error": {"Code": "ResourceConflictException", "Message": "update in progress"}},
                "UpdateFunctionConfiguration",
            )
        self.updates.append((self.clock.now, name))
        return self.inner.update_function_configuration(**arguments)

    def get_waiter(self, name: str) -> Any:
        self.waits.append(name)
        return self.inner.get_waiter(name)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows, so a reason is never split across lines."""
    monkeypatch.setenv("COLUMNS", "250")


def make_fleet(api: Any) -> dict[str, list[str]]:
    """Seven functions: four runtimes, one at the layer limit, one image, one being updated."""
    keep = other_layer(api, "keep")
    make_function(api, "py", "python3.12", layers=(keep,), variables={"A": "1"})
    make_function(api, "node", "nodejs22.x")  # no Environment at all
    make_function(api, "java", "java21", variables={"CONCURRENCY_OBSERVER_NAMESPACE": "Mine"})
    make_function(api, "go", "provided.al2023", variables={SINK_VARIABLE: "emf"})
    five = tuple(other_layer(api, f"l{i}") for i in range(5))
    make_function(api, "full", "python3.13", layers=five)
    make_function(api, "busy", "python3.11")
    role = client("iam").get_role(RoleName="fn-role")["Role"]["Arn"]
    api.create_function(
        FunctionName="img",
        Role=role,
        PackageType="Image",
        Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"},
    )
    return {"keep": [keep]}


def snapshot(api: Any) -> dict[str, dict[str, Any]]:
    """Every function's GetFunctionConfiguration, less what each update moves by itself."""
    names = [
        f["FunctionName"]
        for page in api.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    return {
        name: {
            k: v
            for k, v in api.get_function_configuration(FunctionName=name).items()
            if k not in VOLATILE
        }
        for name in names
    }


def attach(fleet_client: Any, content: bytes, clock: FakeClock, **options: Any) -> int:
    """``layer publish --attach-all`` with the test's clock."""
    arguments: dict[str, Any] = {
        "include": (),
        "exclude": (),
        "max_per_minute": 4,
        "dry_run": False,
    } | options
    settings = arguments.pop("settings", Settings())
    return layer_fleet.attach_all(
        fleet_client,
        layer_spec(fleet_client, LAYER),
        content,
        settings,
        clock=clock,
        sleep=clock.sleep,
        **arguments,
    )


def layers_of(api: Any, name: str) -> list[str]:
    """The function's layer ARNs."""
    config = api.get_function_configuration(FunctionName=name)
    return [layer["Arn"] for layer in config.get("Layers", [])]


def variables_of(api: Any, name: str) -> dict[str, str]:
    """The function's environment variables."""
    config = api.get_function_configuration(FunctionName=name)
    return dict(config.get("Environment", {}).get("Variables", {}))


def test_attach_all_on_a_mixed_fleet(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Five attached (the busy one after the waiter), the full and the image skipped, paced."""
    made = make_fleet(lambda_client)
    clock = FakeClock()
    fleet = BusyOnce(lambda_client, {"busy"}, clock)
    assert attach(fleet, layer_zip, clock) == 0
    out = capsys.readouterr().out
    (version,) = lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"]
    ours = version["LayerVersionArn"]
    for name in ("py", "node", "java", "go", "busy"):
        assert layers_of(lambda_client, name)[-1] == ours, name
    assert layers_of(lambda_client, "py") == [*made["keep"], ours]
    assert len(layers_of(lambda_client, "full")) == 5
    assert ours not in layers_of(lambda_client, "full")
    assert variables_of(lambda_client, "py")["A"] == "1"
    assert variables_of(lambda_client, "node")[SINK_VARIABLE] == "emf"  # the bash fallback
    assert variables_of(lambda_client, "py")[SINK_VARIABLE] == "cloudwatch"
    assert variables_of(lambda_client, "go")[SINK_VARIABLE] == "emf"  # its own, kept
    assert all(variables_of(lambda_client, n)[METRICS_VARIABLE] == "lean" for n in ("py", "go"))
    # The busy function's conflict was waited out with botocore's waiter, then it was attached.
    assert fleet.conflicts == ["busy"]
    assert "function_updated_v2" in fleet.waits
    # Paced: 4 a minute, so each update started 15 s after the one before, on the test's clock.
    starts = [moment for moment, _name in fleet.updates]
    assert len(starts) == 5
    assert all(b - a >= 15.0 for a, b in itertools.pairwise(starts))
    # The summary: what happened to each, the skip reasons, the notes.
    assert "attached 5, skipped 2" in out
    assert "container image" in out
    assert "limit of 5 layers" in out
    assert "run published versions" in out
    assert "$0.30" in out
    assert "22–31" in out


def test_a_second_run_changes_nothing_and_says_so(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Same bytes: no new layer version, no update, every function unchanged or skipped."""
    make_fleet(lambda_client)
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock)
    before = snapshot(lambda_client)
    capsys.readouterr()
    fleet = BusyOnce(lambda_client, set(), clock)
    assert attach(fleet, layer_zip, clock) == 0
    out = capsys.readouterr().out
    assert fleet.updates == []
    assert len(lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"]) == 1
    assert "not publishing again" in out
    assert "nothing changed: unchanged 5, skipped 2" in out
    after = snapshot(lambda_client)
    assert after == before


def test_new_bytes_upgrade_in_place_and_metrics_full_is_an_upgrade(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A different zip publishes version 2, which takes version 1's place; --metrics full too."""
    keep = other_layer(lambda_client, "keep")
    make_function(lambda_client, "py", layers=(keep,))
    clock = FakeClock()
    attach(lambda_client, b"" + _other_zip(), clock)
    (first,) = [a for a in layers_of(lambda_client, "py") if LAYER in a]
    lambda_client.update_function_configuration(
        FunctionName="py", Layers=[first, keep]
    )  # ours first: it must stay first
    attach(lambda_client, layer_zip, clock, settings=Settings(metrics="full"))
    out = capsys.readouterr().out
    layers = layers_of(lambda_client, "py")
    assert layers[1] == keep
    assert layers[0].endswith(":2")
    assert variables_of(lambda_client, "py")[METRICS_VARIABLE] == "full"
    assert "upgraded 1" in out
    assert "on full" in out


def _other_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("extensions/other", "#!/bin/sh\n")
    return buffer.getvalue()


def test_include_exclude_and_dry_run(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A dry run changes nothing and publishes nothing; the globs limit a real run."""
    make_fleet(lambda_client)
    before = snapshot(lambda_client)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "would publish" in out
    assert "dry run: nothing was changed" in out
    assert snapshot(lambda_client) == before
    assert lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"] == []
    attach(lambda_client, layer_zip, clock, include=("py", "j*", "go"), exclude=("go",))
    changed = {n for n, c in snapshot(lambda_client).items() if c != before[n]}
    assert changed == {"py", "java"}


def test_attach_then_detach_gives_back_the_earlier_configuration(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Field by field (layers, variables, an absent Environment, the rest) after attach, detach."""
    make_fleet(lambda_client)
    before = snapshot(lambda_client)
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock, settings=Settings(sink="cloudwatch"))
    attached = snapshot(lambda_client)
    assert attached["go"]["Environment"]["Variables"][SINK_VARIABLE] == "cloudwatch"
    assert RECORD_VARIABLE in attached["node"]["Environment"]["Variables"]
    capsys.readouterr()
    code = layer_fleet.detach(
        lambda_client,
        LAYER,
        (),
        include=(),
        exclude=(),
        max_per_minute=4,
        dry_run=False,
        clock=clock,
        sleep=clock.sleep,
    )
    assert code == 0
    out = capsys.readouterr().out
    after = snapshot(lambda_client)
    for name, fields in before.items():
        assert after[name].keys() == fields.keys(), name
        for field, value in fields.items():
            assert after[name][field] == value, (name, field)
    assert "Environment" not in after["node"]  # it had none, and has none again
    assert after["go"]["Environment"]["Variables"] == {SINK_VARIABLE: "emf"}  # overwritten, back
    assert "detached 5" in out
    assert "Published versions keep the layer" in out


def test_detach_one_function_leaves_the_others(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``layer detach py``: only py changes; a second detach finds nothing to do."""
    make_fleet(lambda_client)
    before = snapshot(lambda_client)
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock)
    attached = snapshot(lambda_client)
    for _ in range(2):
        layer_fleet.detach(
            lambda_client,
            LAYER,
            ("py",),
            include=(),
            exclude=(),
            max_per_minute=4,
            dry_run=False,
            clock=clock,
            sleep=clock.sleep,
        )
    out = capsys.readouterr().out
    after = snapshot(lambda_client)
    assert after["py"] == before["py"]
    assert after["java"] == attached["java"]
    assert "nothing changed: unchanged 1" in out


def test_the_publisher_policy_allows_every_call_of_attach_all_and_detach(
    lambda_client: Any,  # noqa: F811
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each Lambda operation attach-all and detach call (the waiter's too) is in the policy."""
    called: set[str] = set()
    make_fleet(lambda_client)
    lambda_client.meta.events.register(
        "before-call.lambda.*", lambda model, **_: called.add(model.name)
    )
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock)
    layer_fleet.detach(
        lambda_client, LAYER, (), include=(), exclude=(), max_per_minute=4, dry_run=False,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    policy = json.loads(
        (Path(__file__).resolve().parents[3] / "examples" / "iam-publisher-policy.json").read_text()
    )
    allowed = {
        action
        for statement in policy["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert {"ListFunctions", "GetFunction", "UpdateFunctionConfiguration"} <= called
    assert {f"lambda:{name}" for name in called} <= allowed
