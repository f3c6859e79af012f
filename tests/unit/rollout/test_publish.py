"""Publishing the layer and attaching it to functions, against moto's in-process Lambda."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from concurrency_observer.aws.session import client
from concurrency_observer.errors import AwsError, UserError
from concurrency_observer.layer import build_layer
from concurrency_observer.rollout.publish import (
    MAX_LAYERS,
    AttachRefused,
    FunctionConfig,
    PublishPlan,
    apply_plan,
    compatible_runtimes,
    layer_spec,
    plan_attachment,
    plan_publish,
    refusal,
    render_attachment,
    render_plan,
    runtime_enum_of,
    unversioned,
    wait_for_update,
    what_is_recorded,
)
from concurrency_observer.rollout.sink import SINK_VARIABLE, python_version_of, uses_fallback

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; no profile, config file or endpoint from the host."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def lambda_client(aws_env: None) -> Iterator[Any]:
    """A Lambda client on moto's in-process backend."""
    with mock_aws():
        yield client("lambda")


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The real layer zip, built once."""
    return build_layer(tmp_path_factory.mktemp("layer") / "layer.zip").path.read_bytes()


def _handler_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    return buffer.getvalue()


def other_layer(lambda_client: Any, name: str) -> str:
    """Publish an unrelated layer; its version ARN."""
    response = lambda_client.publish_layer_version(
        LayerName=name, Content={"ZipFile": _handler_zip()}
    )
    return str(response["LayerVersionArn"])


def make_function(
    lambda_client: Any,
    name: str,
    runtime: str = "python3.12",
    layers: tuple[str, ...] = (),
    variables: dict[str, str] | None = None,
) -> None:
    """Create a zip function (with its IAM role, which moto requires to exist)."""
    iam = client("iam")
    try:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lambda_client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _handler_zip()},
        Layers=list(layers),
        Environment={"Variables": variables or {}},
    )


def configuration(lambda_client: Any, name: str) -> tuple[list[str], dict[str, str]]:
    """A function's layer ARNs and environment variables, as AWS now has them."""
    config = lambda_client.get_function_configuration(FunctionName=name)
    layers = [layer["Arn"] for layer in config.get("Layers", [])]
    return layers, dict(config.get("Environment", {}).get("Variables", {}))


def attached(before: dict[str, str], sink: str, metrics: str = "lean") -> dict[str, str]:
    """The variables attaching leaves: the function's own, ours, and the record of ours."""
    from concurrency_observer.rollout.observer_settings import METRICS_VARIABLE, with_settings

    return with_settings(before, {SINK_VARIABLE: sink, METRICS_VARIABLE: metrics})[0]


def publish(
    lambda_client: Any, content: bytes, functions: tuple[str, ...] = (), sink: Any = None
) -> str:
    """Plan and apply like ``layer publish``; the new LayerVersionArn."""
    plan = plan_publish(lambda_client, layer_spec(lambda_client), len(content), functions, sink)
    return apply_plan(lambda_client, plan, content).layer_version_arn


def test_compatible_runtimes_take_each_familys_newest() -> None:
    """Python 3.10+ then each family's newest by version number (3.10 after 3.9, 22 after 8)."""
    enum = [
        "nodejs20.x", "nodejs8.10", "nodejs22.x", "nodejs24.x", "nodejs18.x", "python3.9",
        "python3.12", "python3.10", "python3.11", "provided.al2023", "provided.al2", "provided",
        "java8.al2", "java17", "java21", "java11", "java17.al2023", "dotnet8", "dotnetcore3.1",
        "dotnet6", "ruby3.2", "ruby3.3", "ruby3.4", "go1.x", "custom",
    ]  # fmt: skip
    assert compatible_runtimes(enum) == (
        "python3.10", "python3.11", "python3.12", "nodejs20.x", "nodejs22.x", "nodejs24.x",
        "java17", "java21", "dotnet8", "ruby3.3", "ruby3.4", "provided.al2023",
    )  # fmt: skip


def test_compatible_runtimes_follow_the_installed_botocore(lambda_client: Any) -> None:
    """At most 15, all in botocore's enum: Python 3.10-3.13 and every other family's newest."""
    enum = runtime_enum_of(lambda_client)
    runtimes = compatible_runtimes(enum)
    assert len(runtimes) <= 15
    assert set(runtimes) <= set(enum)
    assert {"python3.10", "python3.11", "python3.12", "python3.13", "provided.al2023"} <= set(
        runtimes
    )
    for family in ("nodejs", "java", "dotnet", "ruby"):
        assert any(r.startswith(family) for r in runtimes), family
    assert all((python_version_of(r) or (3, 10)) >= (3, 10) for r in runtimes)


def test_publish_creates_a_version_with_the_right_metadata(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """The version has our runtimes, both architectures, description, licence and our bytes."""
    spec = layer_spec(lambda_client)
    arn = publish(lambda_client, layer_zip)
    name, number = arn.rsplit(":", 2)[1:]
    version = lambda_client.get_layer_version(LayerName=name, VersionNumber=int(number))
    assert version["CompatibleRuntimes"] == list(spec.runtimes)
    assert sorted(version["CompatibleArchitectures"]) == ["arm64", "x86_64"]
    assert version["Description"] == spec.description
    assert version["LicenseInfo"] == "MIT-0"
    expected_sha = base64.b64encode(hashlib.sha256(layer_zip).digest()).decode()
    assert version["Content"]["CodeSha256"] == expected_sha


def test_bad_layer_name_is_a_user_error(lambda_client: Any) -> None:
    """A name Lambda would refuse is caught before any call."""
    with pytest.raises(UserError, match="bad layer name"):
        layer_spec(lambda_client, "no spaces please")


def test_attach_keeps_other_layers_and_variables(lambda_client: Any, layer_zip: bytes) -> None:
    """Two other layers and existing variables survive; ours, our settings and their record."""
    others = [other_layer(lambda_client, "first"), other_layer(lambda_client, "second")]
    make_function(lambda_client, "fn", layers=tuple(others), variables={"A": "1", "B": "two"})
    arn = publish(lambda_client, layer_zip, ("fn",))
    layers, variables = configuration(lambda_client, "fn")
    assert layers == [*others, arn]
    assert variables == {
        "A": "1",
        "B": "two",
        SINK_VARIABLE: "cloudwatch",
        "CONCURRENCY_OBSERVER_METRICS": "lean",
        "CONCURRENCY_OBSERVER_ATTACHED": (
            '{"CONCURRENCY_OBSERVER_METRICS":[null,"lean"],'
            '"CONCURRENCY_OBSERVER_SINK":[null,"cloudwatch"]}'
        ),
    }


def test_attaching_again_replaces_the_older_version_in_place(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """A second publish swaps version 1 for 2 at the same position; no duplicate."""
    first, second = other_layer(lambda_client, "first"), other_layer(lambda_client, "second")
    make_function(lambda_client, "fn", layers=(first,))
    old = publish(lambda_client, layer_zip, ("fn",))
    lambda_client.update_function_configuration(FunctionName="fn", Layers=[first, old, second])
    new = publish(lambda_client, layer_zip, ("fn", "fn"))
    layers, _ = configuration(lambda_client, "fn")
    assert new != old
    assert layers == [first, new, second]


def test_the_chosen_sink_overrides_and_an_existing_one_is_kept(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """--sink emf sets emf; a later publish without --sink keeps the function's emf."""
    make_function(lambda_client, "fn")
    publish(lambda_client, layer_zip, ("fn",), sink="emf")
    assert configuration(lambda_client, "fn")[1][SINK_VARIABLE] == "emf"
    publish(lambda_client, layer_zip, ("fn",))
    assert configuration(lambda_client, "fn")[1][SINK_VARIABLE] == "emf"


def test_nodejs_and_old_python_functions_get_the_layer_and_emf(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """Node.js and python3.9 take the layer (the fallback runs there), with emf by default."""
    make_function(lambda_client, "py", variables={"A": "1"})
    make_function(lambda_client, "node", runtime="nodejs20.x", variables={"A": "1"})
    make_function(lambda_client, "old", runtime="python3.9")
    arn = publish(lambda_client, layer_zip, ("py", "node", "old"))
    assert configuration(lambda_client, "py") == ([arn], attached({"A": "1"}, "cloudwatch"))
    assert configuration(lambda_client, "node") == ([arn], attached({"A": "1"}, "emf"))
    assert configuration(lambda_client, "old") == ([arn], attached({}, "emf"))


def test_the_fallback_line_says_what_is_recorded(lambda_client: Any, layer_zip: bytes) -> None:
    """The rendering of a non-Python function has one records line; a Python 3.10+ one none."""
    make_function(lambda_client, "node", runtime="nodejs22.x")
    make_function(lambda_client, "py")
    plan = plan_publish(lambda_client, layer_spec(lambda_client), 1, ("node", "py"))
    node, py = (render_attachment(a, "arn:new") for a in plan.attachments)
    records = [line for line in node if line.startswith("  records: ")]
    assert len(records) == 1
    for fact in ("nodejs22.x", "bash engine", "invocations", "not the Telemetry API"):
        assert fact in records[0]
    assert "EMF" in records[0]
    assert not [line for line in py if "records:" in line]


def test_the_layer_limit_is_checked_before_anything_changes(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """Five other layers: refused; four others plus an old version of ours: replaced, fine."""
    others = tuple(other_layer(lambda_client, f"l{i}") for i in range(MAX_LAYERS))
    make_function(lambda_client, "full", layers=others)
    with pytest.raises(AttachRefused, match=f"Lambda allows {MAX_LAYERS}"):
        publish(lambda_client, layer_zip, ("full",))
    old = publish(lambda_client, layer_zip)
    make_function(lambda_client, "almost", layers=(*others[:4], old))
    new = publish(lambda_client, layer_zip, ("almost",))
    assert configuration(lambda_client, "almost")[0] == [*others[:4], new]


def test_a_missing_function_is_one_aws_error(lambda_client: Any, layer_zip: bytes) -> None:
    """ResourceNotFound names the operation, the function and a hint."""
    with pytest.raises(AwsError, match="GetFunctionConfiguration ghost: ResourceNotFoundException"):
        publish(lambda_client, layer_zip, ("ghost",))


def test_a_failure_midway_says_what_was_already_attached(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """If the second function vanishes after planning, the error names the first as done."""
    make_function(lambda_client, "one")
    make_function(lambda_client, "two")
    plan = plan_publish(lambda_client, layer_spec(lambda_client), len(layer_zip), ("one", "two"))
    lambda_client.delete_function(FunctionName="two")
    with pytest.raises(AwsError, match=r"attached to: one\)") as caught:
        apply_plan(lambda_client, plan, layer_zip)
    assert "\n" not in str(caught.value)


def test_a_function_edited_after_planning_is_not_overwritten(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """Variables changed between plan and apply: a clear error, and the edit survives."""
    make_function(lambda_client, "fn", variables={"A": "1"})
    plan = plan_publish(lambda_client, layer_spec(lambda_client), len(layer_zip), ("fn",))
    lambda_client.update_function_configuration(
        FunctionName="fn", Environment={"Variables": {"A": "2"}}
    )
    with pytest.raises(AwsError, match="fn changed since it was read"):
        apply_plan(lambda_client, plan, layer_zip)
    assert configuration(lambda_client, "fn") == ([], {"A": "2"})


def test_dry_run_rendering_shows_the_diff(lambda_client: Any, layer_zip: bytes) -> None:
    """The rendering marks our old version removed, the next one added and the sink variable."""
    keep = other_layer(lambda_client, "keep")
    old = publish(lambda_client, layer_zip)
    make_function(lambda_client, "fn", layers=(keep, old), variables={"SECRET": "hunter2"})
    plan = plan_publish(lambda_client, layer_spec(lambda_client), len(layer_zip), ("fn",))
    text = "\n".join(render_plan(plan))
    assert f"    - {old}" in text
    assert f"    + {unversioned(old)}:2" in text
    assert f"      {keep}" in text
    assert f"+ {SINK_VARIABLE}=cloudwatch" in text
    assert "SECRET" in text
    assert "hunter2" not in text


def _config(**overrides: Any) -> FunctionConfig:
    response: dict[str, Any] = {
        "FunctionName": "fn",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
        "Version": "$LATEST",
        "Runtime": "python3.12",
        "PackageType": "Zip",
    }
    response.update(overrides)
    return FunctionConfig.from_response("fn", response)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"Runtime": None, "PackageType": "Image"}, "container image"),
        ({"Version": "3"}, "names version 3"),
        ({"Environment": {"Error": {"ErrorCode": "KMSAccessDenied"}}}, "cannot be read"),
    ],
)
def test_functions_the_extension_cannot_run_in_are_refused(
    overrides: dict[str, Any], reason: str
) -> None:
    """Images, versions and unreadable variables each say why."""
    assert reason in (refusal(_config(**overrides)) or "")


@pytest.mark.parametrize(
    ("runtime", "fallback"),
    [
        ("python3.10", False),
        ("python3.14", False),
        ("python3.9", True),
        ("python3.8", True),
        ("nodejs24.x", True),
        ("java21", True),
        ("dotnet8", True),
        ("ruby3.4", True),
        ("provided.al2023", True),
    ],
)
def test_every_runtime_is_accepted(runtime: str, fallback: bool) -> None:
    """Any runtime passes; the fallback runs where no Python 3.10+ is."""
    assert refusal(_config(Runtime=runtime)) is None
    assert uses_fallback(runtime) is fallback
    assert bool(what_is_recorded(_config(Runtime=runtime))) is fallback


LMI_CONFIG: dict[str, Any] = {
    "CapacityProviderConfig": {
        "LambdaManagedInstancesCapacityProviderConfig": {
            "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp",
            "PerExecutionEnvironmentMaxConcurrency": 16,
        }
    },
    "State": "ActiveNonInvocable",
}


def test_a_managed_instances_function_attaches_and_says_to_publish() -> None:
    """CapacityProviderConfig (LMI): attached like any other, and one line on what it records."""
    import botocore.session
    from botocore.stub import Stubber

    stubbed = botocore.session.get_session().create_client(
        "lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    function = {
        "FunctionName": "fn",
        "FunctionArn": arn,
        "Version": "$LATEST",
        "Runtime": "python3.13",
        "RevisionId": "r1",
        "LastUpdateStatus": "Successful",
        **LMI_CONFIG,
    }
    layer_arn = "arn:aws:lambda:us-east-1:123456789012:layer:concurrency-observer"
    stubber = Stubber(stubbed)
    stubber.add_response("list_layer_versions", {"LayerVersions": []})
    stubber.add_response("get_function_configuration", function, {"FunctionName": "fn"})
    stubber.add_response(
        "publish_layer_version", {"LayerVersionArn": f"{layer_arn}:1", "Version": 1}
    )
    stubber.add_response("get_function_configuration", function)
    stubber.add_response(
        "update_function_configuration",
        {},
        {
            "FunctionName": arn,
            "Layers": [f"{layer_arn}:1"],
            "Environment": {"Variables": attached({}, "cloudwatch")},
            "RevisionId": "r1",
        },
    )
    stubber.add_response("get_function_configuration", {**function, "RevisionId": "r2"})
    stubber.activate()
    plan = plan_publish(stubbed, layer_spec(stubbed), 1, ("fn",))
    assert plan.attachments[0].function.managed_instances
    result = apply_plan(stubbed, plan, b"zip")
    assert result.attached == ("fn",)
    stubber.assert_no_pending_responses()
    records = [
        line
        for line in render_attachment(plan.attachments[0], result.layer_version_arn)
        if line.startswith("  records: ")
    ]
    assert len(records) == 1
    assert "Lambda Managed Instances: extensions get SHUTDOWN only" in records[0]
    assert "from the Telemetry API" in records[0]
    assert "--publish-to LATEST_PUBLISHED" in records[0]


class _Clock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _stubbed_lambda(statuses: list[str]) -> Any:
    """A real botocore Lambda client answering GetFunctionConfiguration with these statuses."""
    import botocore.session
    from botocore.stub import Stubber

    stubbed = botocore.session.get_session().create_client(
        "lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    stubber = Stubber(stubbed)
    for status in statuses:
        stubber.add_response(
            "get_function_configuration",
            {"FunctionName": "fn", "State": "Active", "LastUpdateStatus": status},
        )
    stubber.activate()
    return stubbed


def test_waiting_polls_until_the_update_is_done() -> None:
    """Two InProgress answers mean two sleeps, then the finished configuration."""
    clock = _Clock()
    lambda_client = _stubbed_lambda(["InProgress", "InProgress", "Successful"])
    config = wait_for_update(lambda_client, "fn", poll=2.0, sleep=clock.sleep, clock=clock)
    assert config["LastUpdateStatus"] == "Successful"
    assert clock.sleeps == [2.0, 2.0]


def test_waiting_gives_up_after_the_timeout() -> None:
    """An update that never finishes is one clear AwsError, not an endless loop."""
    clock = _Clock()
    lambda_client = _stubbed_lambda(["InProgress"] * 4)
    with pytest.raises(AwsError, match="still updating after 5 s"):
        wait_for_update(lambda_client, "fn", timeout=5.0, poll=2.0, sleep=clock.sleep, clock=clock)


def test_throttling_and_access_denied_become_one_line() -> None:
    """Both name the operation, AWS's code and a hint, on one line."""
    import botocore.session
    from botocore.stub import Stubber

    stubbed = botocore.session.get_session().create_client(
        "lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    stubber = Stubber(stubbed)
    stubber.add_client_error("list_layer_versions", "TooManyRequestsException", "Rate exceeded")
    stubber.add_client_error("list_layer_versions", "AccessDeniedException", "not allowed")
    stubber.activate()
    spec = layer_spec(stubbed)
    for code in ("TooManyRequestsException", "AccessDeniedException"):
        with pytest.raises(AwsError, match=f"ListLayerVersions concurrency-observer: {code}") as e:
            plan_publish(stubbed, spec, 1)
        assert "\n" not in str(e.value)


def test_the_next_version_is_1_for_a_new_layer(lambda_client: Any) -> None:
    """Dry-run of a never-published layer announces version 1."""
    plan = plan_publish(lambda_client, layer_spec(lambda_client), 10)
    assert isinstance(plan, PublishPlan)
    assert plan.next_version_arn == "concurrency-observer:1"


def test_the_publisher_policy_allows_every_call_publish_makes(
    lambda_client: Any, layer_zip: bytes
) -> None:
    """Each Lambda operation a real publish-and-attach run calls is in the example policy."""
    called: set[str] = set()
    lambda_client.meta.events.register(
        "before-call.lambda.*", lambda model, **_: called.add(model.name)
    )
    make_function(lambda_client, "fn")
    called.clear()
    publish(lambda_client, layer_zip, ("fn",))
    policy_path = Path(__file__).resolve().parents[3] / "examples" / "iam-publisher-policy.json"
    policy = json.loads(policy_path.read_text())
    allowed = {
        action
        for statement in policy["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    assert {"ListLayerVersions", "PublishLayerVersion", "UpdateFunctionConfiguration"} <= called
    assert {f"lambda:{name}" for name in called} <= allowed
    # Lambda also checks GetLayerVersion on every layer an update lists.
    assert "lambda:GetLayerVersion" in allowed


def test_sink_names_match_what_the_extension_reads() -> None:
    """The variable, the sink names and the default are the ones the extension's config uses."""
    from concurrency_observer.extension import config
    from concurrency_observer.rollout.sink import DEFAULT_SINK, SINKS

    assert f"{config.PREFIX}SINK" == SINK_VARIABLE
    assert tuple(config.SINKS) == SINKS
    defaults, _warnings = config.Config.from_environ({})
    assert defaults.sink == DEFAULT_SINK


def test_a_failed_update_is_reported_with_lambdas_reason() -> None:
    """LastUpdateStatus Failed after our update: one line with the reason; RevisionId was sent."""
    import botocore.session
    from botocore.stub import ANY, Stubber

    stubbed = botocore.session.get_session().create_client(
        "lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    ready = {"FunctionName": "fn", "FunctionArn": arn, "Runtime": "python3.12", "RevisionId": "r2"}
    stubber = Stubber(stubbed)
    stubber.add_response(
        "publish_layer_version",
        {"LayerVersionArn": "arn:aws:lambda:us-east-1:123456789012:layer:co:1", "Version": 1},
    )
    stubber.add_response("get_function_configuration", {**ready, "LastUpdateStatus": "Successful"})
    stubber.add_response(
        "update_function_configuration",
        {},
        {"FunctionName": arn, "Layers": ANY, "Environment": ANY, "RevisionId": "r2"},
    )
    stubber.add_response(
        "get_function_configuration",
        {**ready, "LastUpdateStatus": "Failed", "LastUpdateStatusReason": "KMS key disabled"},
    )
    stubber.activate()
    function = FunctionConfig.from_response("fn", {**ready, "RevisionId": "r1"})
    plan = PublishPlan(
        layer_spec(stubbed, "co"), 1, None, None, (plan_attachment(function, None, None),)
    )
    with pytest.raises(AwsError, match="updating fn failed: KMS key disabled") as caught:
        apply_plan(stubbed, plan, b"zip")
    assert "attached to: none" in str(caught.value)
    stubber.assert_no_pending_responses()
