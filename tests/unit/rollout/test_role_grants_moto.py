"""--grant-roles, the role report and detach's take-back, on a fleet and its roles made in moto."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from concurrency_observer.aws.session import client
from concurrency_observer.cli import layer_fleet
from concurrency_observer.errors import UserError
from concurrency_observer.rollout.observer_settings import Settings
from concurrency_observer.rollout.role_grants import why_refused
from concurrency_observer.rollout.role_policy import (
    GRANT_TAG_PREFIX,
    POLICY_PATH,
    POLICY_PREFIX,
    policy_document,
    policy_json,
)
from concurrency_observer.rollout.sink import SINK_VARIABLE
from concurrency_observer.schema import DEFAULT_NAMESPACE
from tests.unit.rollout.test_attach_all_moto import LAYER, attach, layers_of
from tests.unit.rollout.test_fleet_update import FakeClock
from tests.unit.rollout.test_publish import (  # noqa: F401 (fixtures)
    _handler_zip,
    aws_env,
    lambda_client,
    layer_zip,
)

ACCOUNT = "123456789012"
POLICY_ARN = f"arn:aws:iam::{ACCOUNT}:policy{POLICY_PATH}{POLICY_PREFIX}"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# IAM's words when a permissions boundary denies the call (the shape AWS answers with).
BOUNDARY_DENIAL = (
    "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
    "iam:AttachRolePolicy on resource: role {role} with an explicit deny in a permissions "
    "boundary: arn:aws:iam::123456789012:policy/[bold]ops-boundary[/x]"
)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their rows, so a reason is never split across lines."""
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def iam(lambda_client: Any) -> Any:  # noqa: F811
    """An IAM client on the same moto backend as the Lambda client."""
    return client("iam")


def make_role(iam: Any, name: str) -> str:
    """A role (created once); its ARN."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def make_fn(
    api: Any, iam: Any, name: str, role: str, runtime: str = "python3.12", **variables: str
) -> None:
    """A zip function on its own or a shared role."""
    api.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=make_role(iam, role),
        Handler="app.handler",
        Code={"ZipFile": _handler_zip()},
        Environment={"Variables": variables},
    )


def make_fleet(api: Any, iam: Any) -> None:
    """Seven functions on five roles: shared, own, one that needs nothing (emf), the fallback."""
    for name in ("a1", "a2", "a3"):
        make_fn(api, iam, name, "shared")
    make_fn(api, iam, "b", "own")
    make_fn(api, iam, "quiet", "emf-role", **{SINK_VARIABLE: "emf"})
    make_fn(api, iam, "node", "node-role", runtime="nodejs22.x")
    make_fn(api, iam, "c", "denied")
    app = iam.create_policy(PolicyName="app", PolicyDocument=policy_json("App"))["Policy"]
    iam.attach_role_policy(RoleName="own", PolicyArn=app["Arn"])  # its own, which stays


def roles_now(iam: Any) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every role's attached policy ARNs and tags."""
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    return {
        name: (
            sorted(
                p["PolicyArn"]
                for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ),
            {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]},
        )
        for name in roles
    }


class IamProxy:
    """The moto IAM client, except the calls a test makes fail as AWS would."""

    def __init__(
        self,
        inner: Any,
        refuse: Iterable[str] = (),
        throttle: Iterable[str] = (),
        interrupt_on: int | None = None,
        simulate: Any = None,
    ) -> None:
        self.inner, self.refuse, self.throttle_roles = inner, set(refuse), set(throttle)
        self.interrupt_on, self.simulate = interrupt_on, simulate
        self.attach_calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def attach_role_policy(self, **arguments: Any) -> Any:
        role = arguments["RoleName"]
        self.attach_calls.append(role)
        if role in self.refuse:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": BOUNDARY_DENIAL.format(role=role)}},
                "AttachRolePolicy",
            )
        if role in self.throttle_roles:
            raise ClientError(
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "AttachRolePolicy"
            )
        if self.interrupt_on is not None and len(self.attach_calls) == self.interrupt_on:
            raise KeyboardInterrupt
        return self.inner.attach_role_policy(**arguments)

    def simulate_principal_policy(self, **arguments: Any) -> Any:
        if self.simulate is None:
            return self.inner.simulate_principal_policy(**arguments)
        return self.simulate.simulate_principal_policy(**arguments)


def detach_all(lambda_client: Any, iam: Any, clock: FakeClock, *names: str) -> int:  # noqa: F811
    """``layer detach --all`` (or the named functions), with the roles."""
    return layer_fleet.detach(
        lambda_client, LAYER, names, include=(), exclude=(), max_per_minute=4, dry_run=False,
        clock=clock, sleep=clock.sleep, iam=iam,
    )  # fmt: skip


def test_the_policy_is_the_example_policy() -> None:
    """The policy created for the default namespace is examples/iam-policy.json, exactly."""
    example = json.loads((EXAMPLES / "iam-policy.json").read_text())
    assert policy_document(DEFAULT_NAMESPACE) == example
    assert json.loads(policy_json("Mine"))["Statement"][0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Mine"}
    }


def test_grant_roles_on_a_fleet_of_shared_roles(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One policy, one attach per distinct role, the refused role untouched and said why."""
    make_fleet(lambda_client, iam)
    before = roles_now(iam)
    proxy = IamProxy(iam, refuse={"denied"})
    clock = FakeClock()
    code = attach(lambda_client, layer_zip, clock, iam=proxy, grant_roles=True)
    out = capsys.readouterr().out
    assert code == 1  # a role could not be granted
    assert sorted(proxy.attach_calls) == ["denied", "own", "shared"]  # shared: once, for 3
    policies = iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"]
    assert [p["Arn"] for p in policies] == [POLICY_ARN]
    after = roles_now(iam)
    for role in ("shared", "own"):
        assert POLICY_ARN in after[role][0]
        assert after[role][1] == {f"{GRANT_TAG_PREFIX}{POLICY_PREFIX}": "us-east-1"}
    for role in ("denied", "emf-role", "node-role"):
        assert after[role] == before[role], role
    assert "shared (3 function(s)): granted" in out
    assert "AccessDenied (a permissions boundary)" in out
    assert "[bold]ops-boundary[/x]" in out  # IAM's words as they are, never read as markup
    assert "roles: granted 2, could not 1" in out
    assert "attached 7" in out  # the functions were attached all the same


def test_grant_then_detach_leaves_every_role_as_it_was(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Attached policies and tags of every role come back exactly; the policy is deleted."""
    make_fleet(lambda_client, iam)
    before = roles_now(iam)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True) == 0
    assert roles_now(iam) != before
    capsys.readouterr()
    assert detach_all(lambda_client, iam, clock) == 0
    out = capsys.readouterr().out
    assert roles_now(iam) == before
    assert iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"] == []
    assert "roles: revoked 3" in out
    assert f"policy {POLICY_ARN} was deleted" in out


def test_a_role_that_had_the_policy_keeps_it_and_so_does_the_policy(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A role given the policy by hand 'already had it'; detach leaves it, and the policy."""
    make_fn(lambda_client, iam, "a", "shared")
    make_fn(lambda_client, iam, "h", "had")
    iam.create_policy(
        PolicyName=POLICY_PREFIX, Path=POLICY_PATH, PolicyDocument=policy_json(DEFAULT_NAMESPACE)
    )
    iam.attach_role_policy(RoleName="had", PolicyArn=POLICY_ARN)
    before = roles_now(iam)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True) == 0
    out = capsys.readouterr().out
    assert "had (1 function(s)): already had it" in out
    assert "roles: granted 1, already had it 1" in out
    assert detach_all(lambda_client, iam, clock) == 0
    assert roles_now(iam) == before
    assert iam.get_policy(PolicyArn=POLICY_ARN)["Policy"]["AttachmentCount"] == 1


def test_detach_keeps_the_grant_while_a_function_with_the_layer_uses_the_role(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Detaching one of a role's three functions keeps the grant; the last one takes it back."""
    for name in ("a1", "a2", "a3"):
        make_fn(lambda_client, iam, name, "shared")
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True)
    capsys.readouterr()
    assert detach_all(lambda_client, iam, clock, "a1") == 0
    out = capsys.readouterr().out
    assert "still used by 2 function(s) with the layer" in out
    assert POLICY_ARN in roles_now(iam)["shared"][0]
    assert detach_all(lambda_client, iam, clock, "a2", "a3") == 0
    assert roles_now(iam)["shared"] == ([], {})
    assert iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"] == []


def test_a_grant_from_another_region_stays_when_this_region_detaches(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The tag names the regions that rely on the grant; detach lets go of its own region only."""
    make_fn(lambda_client, iam, "a", "shared")
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True)
    iam.tag_role(
        RoleName="shared",
        Tags=[{"Key": f"{GRANT_TAG_PREFIX}{POLICY_PREFIX}", "Value": "eu-west-1 us-east-1"}],
    )
    assert detach_all(lambda_client, iam, clock) == 0
    out = capsys.readouterr().out
    assert "granted for eu-west-1 too" in out
    policies, tags = roles_now(iam)["shared"]
    assert policies == [POLICY_ARN]
    assert tags == {f"{GRANT_TAG_PREFIX}{POLICY_PREFIX}": "eu-west-1"}


def test_a_role_that_cannot_be_read_refuses_the_grant_with_nothing_changed(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
) -> None:
    """A deleted role: one clear error, no layer version, no function or role changed."""
    make_fn(lambda_client, iam, "a", "shared")
    make_fn(lambda_client, iam, "gone", "gone-role")
    iam.delete_role(RoleName="gone-role")
    before = roles_now(iam)
    clock = FakeClock()
    with pytest.raises(UserError, match=r"not granting any role .*gone-role: ListAttached"):
        attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True)
    assert roles_now(iam) == before
    assert lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"] == []
    assert layers_of(lambda_client, "a") == []
    assert iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"] == []


class ForeignRole:
    """The moto Lambda client, except that one function's role is another account's."""

    FOREIGN = "arn:aws:iam::999999999999:role/theirs"

    def __init__(self, inner: Any, function: str) -> None:
        self.inner, self.function = inner, function

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _rewrite(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "Role": self.FOREIGN} if item["FunctionName"] == self.function else item

    def get_paginator(self, name: str) -> Any:
        paginator = self.inner.get_paginator(name)
        if name != "list_functions":
            return paginator
        proxy = self

        class Pages:
            def paginate(self, **arguments: Any) -> Iterator[dict[str, Any]]:
                for page in paginator.paginate(**arguments):
                    functions = [proxy._rewrite(f) for f in page.get("Functions", ())]
                    yield {**page, "Functions": functions}

        return Pages()

    def get_function_configuration(self, **arguments: Any) -> Any:
        return self._rewrite(self.inner.get_function_configuration(**arguments))


def test_a_role_of_another_account_refuses_the_grant_and_is_unchecked_without_it(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--grant-roles stops before any change; without it the role is listed as unchecked."""
    make_fn(lambda_client, iam, "a", "shared")
    make_fn(lambda_client, iam, "x", "shared")
    fleet = ForeignRole(lambda_client, "x")
    before = roles_now(iam)
    clock = FakeClock()
    with pytest.raises(UserError, match="in account 999999999999, not the functions' 1234"):
        attach(fleet, layer_zip, clock, iam=iam, grant_roles=True)
    assert roles_now(iam) == before
    assert lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"] == []
    assert attach(fleet, layer_zip, clock, iam=iam, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "theirs: 1 function(s); unchecked (role arn:aws:iam::999999999999:role/theirs" in out


def test_a_run_cut_short_leaves_each_role_granted_or_untouched_and_a_second_run_finishes(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C at the second role's attach: the first is granted, the second untouched; rerun."""
    make_fn(lambda_client, iam, "a", "r1")
    make_fn(lambda_client, iam, "b", "r2")
    make_fn(lambda_client, iam, "c", "r3")
    before = roles_now(iam)
    clock = FakeClock()
    with pytest.raises(KeyboardInterrupt):
        attach(lambda_client, layer_zip, clock, iam=IamProxy(iam, interrupt_on=2), grant_roles=True)
    now = roles_now(iam)
    granted = (
        [POLICY_ARN],
        {f"{GRANT_TAG_PREFIX}{POLICY_PREFIX}": "us-east-1"},
    )
    assert now["r1"] == granted
    assert now["r2"] == before["r2"]
    assert now["r3"] == before["r3"]
    capsys.readouterr()
    assert attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True) == 0
    out = capsys.readouterr().out
    assert all(roles_now(iam)[role] == granted for role in ("r1", "r2", "r3"))
    assert "roles: granted 2, already had it 1" in out


def test_throttling_beyond_the_retries_leaves_the_role_untouched(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A role throttled at every attempt is 'could not' and as it was; the waits are backoff's."""
    make_fn(lambda_client, iam, "a", "slow")
    before = roles_now(iam)
    clock = FakeClock()
    code = attach(
        lambda_client, layer_zip, clock, iam=IamProxy(iam, throttle={"slow"}), grant_roles=True
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "slow (1 function(s)): could not: AttachRolePolicy: Throttling" in out
    assert roles_now(iam)["slow"] == before["slow"]
    assert [s for s in clock.sleeps if s in (2.0, 4.0, 8.0, 16.0)] == [2.0, 4.0, 8.0, 16.0]


def _simulated(stubber: Stubber, role_arn: str, decision: str) -> None:
    stubber.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                {
                    "EvalActionName": "cloudwatch:PutMetricData",
                    "EvalResourceName": "*",
                    "EvalDecision": decision,
                    "MatchedStatements": [],
                    "MissingContextValues": [],
                }
            ],
            "IsTruncated": False,
        },
        {
            "PolicySourceArn": role_arn,
            "ActionNames": ["cloudwatch:PutMetricData"],
            "ResourceArns": ["*"],
            "ContextEntries": [
                {
                    "ContextKeyName": "cloudwatch:namespace",
                    "ContextKeyValues": [DEFAULT_NAMESPACE],
                    "ContextKeyType": "string",
                }
            ],
        },
    )


def test_without_grant_roles_the_plan_and_the_summary_say_who_lacks_it(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each distinct role, its functions, our policy, the simulation's answer, what to run."""
    for name in ("a1", "a2"):
        make_fn(lambda_client, iam, name, "shared")
    make_fn(lambda_client, iam, "b", "granted-otherwise")
    simulating = client("iam")
    stubber = Stubber(simulating)
    for _run in range(2):  # the dry run, then the real run
        _simulated(stubber, make_role(iam, "granted-otherwise"), "allowed")
        _simulated(stubber, make_role(iam, "shared"), "implicitDeny")
    before = roles_now(iam)
    clock = FakeClock()
    with stubber:
        proxy = IamProxy(iam, simulate=simulating)
        assert attach(lambda_client, layer_zip, clock, iam=proxy, dry_run=True) == 0
        plan = capsys.readouterr().out
        assert attach(lambda_client, layer_zip, clock, iam=proxy) == 0
        summary = capsys.readouterr().out
    stubber.assert_no_pending_responses()
    for out in (plan, summary):
        assert "roles: 2 role(s) need cloudwatch:PutMetricData in namespace Concurr" in out
        assert (
            "shared: 2 function(s); our policy concurrency-observer-put-metrics attached: no; "
            "may put metrics: no (simulated)"
        ) in out
        assert "granted-otherwise: 1 function(s); our policy" in out
        assert "may put metrics: yes (simulated)" in out
        assert "to grant it: run again with --grant-roles (1 role(s) may lack it" in out
    assert roles_now(iam) == before


def test_a_refused_simulation_says_unchecked_and_the_emf_sink_needs_nothing(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SimulatePrincipalPolicy denied: asked once, 'unchecked'; with --sink emf no role needs it."""
    make_fn(lambda_client, iam, "a", "r1")
    make_fn(lambda_client, iam, "b", "r2")
    simulating = client("iam")
    stubber = Stubber(simulating)
    stubber.add_client_error(
        "simulate_principal_policy", "AccessDenied", "not authorized to perform: iam:Simulate"
    )
    clock = FakeClock()
    with stubber:
        proxy = IamProxy(iam, simulate=simulating)
        assert attach(lambda_client, layer_zip, clock, iam=proxy, dry_run=True) == 0
    out = capsys.readouterr().out
    stubber.assert_no_pending_responses()  # asked once, not once per role
    assert "may put metrics: unchecked (AccessDenied: not authorized" in out
    assert (
        attach(
            lambda_client, layer_zip, clock, iam=iam, dry_run=True, settings=Settings(sink="emf")
        )
        == 0
    )
    assert "roles: none needs anything" in capsys.readouterr().out


def test_a_dry_run_with_grant_roles_is_a_plan_and_changes_nothing(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """'would grant' per role, no policy created, no role touched; detach's dry run too."""
    make_fn(lambda_client, iam, "a", "r1")
    before = roles_now(iam)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, iam=iam, dry_run=True, grant_roles=True) == 0
    out = capsys.readouterr().out
    assert "r1 (1 function(s)): would grant: attach concurrency-observer-put-metrics" in out
    assert roles_now(iam) == before
    assert iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"] == []
    attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True)
    granted = roles_now(iam)
    capsys.readouterr()
    code = layer_fleet.detach(
        lambda_client, LAYER, (), include=(), exclude=(), max_per_minute=4, dry_run=True,
        clock=clock, sleep=clock.sleep, iam=iam,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "r1: revoked: concurrency-observer-put-metrics taken off" in out
    assert f"policy {POLICY_ARN} would be deleted" in out
    assert roles_now(iam) == granted


def test_the_publisher_policy_allows_every_iam_call_of_grant_and_detach(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
) -> None:
    """Each IAM call is in the optional statements; attaching is allowed for our policies only."""
    called: set[str] = set()
    iam.meta.events.register("before-call.iam.*", lambda model, **_: called.add(model.name))
    make_fleet(lambda_client, iam)
    called.clear()
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True)
    attach(lambda_client, layer_zip, clock, iam=iam, dry_run=True)
    detach_all(lambda_client, iam, clock)
    policy = json.loads((EXAMPLES / "iam-publisher-policy.json").read_text())
    optional = [s for s in policy["Statement"] if s["Sid"].startswith("OptionalGrantRoles")]
    allowed = {action for statement in optional for action in statement["Action"]}
    assert {"CreatePolicy", "AttachRolePolicy", "DetachRolePolicy", "DeletePolicy"} <= called
    assert {f"iam:{name}" for name in called} <= allowed
    assert "iam:SimulatePrincipalPolicy" in allowed  # asked without --grant-roles (not moto's)
    (attaching,) = [s for s in optional if "iam:AttachRolePolicy" in s["Action"]]
    assert attaching["Condition"] == {
        "ArnLike": {"iam:PolicyARN": "arn:aws:iam::*:policy/concurrency-observer/*"}
    }
    assert POLICY_ARN.startswith("arn:aws:iam::123456789012:policy/concurrency-observer/")


@pytest.fixture
def zip_path(layer_zip: bytes, tmp_path: Path) -> str:  # noqa: F811
    """The layer zip as a file, for ``--zip``."""
    path = tmp_path / "layer.zip"
    path.write_bytes(layer_zip)
    return str(path)


def test_attach_with_grant_roles_then_detach_from_the_command_line(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    zip_path: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--attach a,b --grant-roles``: the plan, the grant on stderr, the ARN alone on stdout."""
    from tests.unit.rollout.test_publish_cli import run_main

    make_fn(lambda_client, iam, "a", "shared")
    make_fn(lambda_client, iam, "b", "shared")
    before = roles_now(iam)
    attach_args = ("layer", "publish", "--attach", "a,b", "--grant-roles", "--zip", zip_path)
    code, out, _ = run_main(monkeypatch, capsys, *attach_args, "--dry-run")
    assert code == 0
    assert "shared (2 function(s)): would grant" in out
    assert roles_now(iam) == before
    code, out, err = run_main(monkeypatch, capsys, *attach_args)
    assert code == 0
    (arn,) = out.split()
    assert arn.startswith("arn:aws:lambda:")
    assert "shared (2 function(s)): granted" in err
    assert POLICY_ARN in roles_now(iam)["shared"][0]
    code, out, _ = run_main(monkeypatch, capsys, "layer", "detach", "a", "b")
    assert code == 0
    assert "shared: revoked" in out
    assert roles_now(iam) == before
    code, out, err = run_main(monkeypatch, capsys, "layer", "publish", "--grant-roles")
    assert code == 1
    assert "--grant-roles works with --attach or --attach-all only" in err


class NoIam:
    """An IAM client that refuses every call, as for an operator without IAM permissions."""

    def __init__(self) -> None:
        self.calls = 0

    def list_role_tags(self, **_arguments: Any) -> Any:
        self.calls += 1
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not authorized: iam:ListRoleTags"}},
            "ListRoleTags",
        )


def test_detach_without_iam_permissions_detaches_and_says_unchecked_once(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ListRoleTags refused: asked once, one 'unchecked' line, every function detached."""
    for name, role in (("a", "r1"), ("b", "r2"), ("c", "r3")):
        make_fn(lambda_client, iam, name, role)
    clock = FakeClock()
    attach(lambda_client, layer_zip, clock)
    capsys.readouterr()
    refusing = NoIam()
    assert detach_all(lambda_client, refusing, clock) == 0
    out = capsys.readouterr().out
    assert refusing.calls == 1
    assert "r1, r2, r3: unchecked: ListRoleTags: AccessDenied" in out
    assert "detached 3" in out


class NoIamReads:
    """The moto IAM client, except that reading a role's policies is refused."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_paginator(self, name: str) -> Any:
        if name != "list_attached_role_policies":
            return self.inner.get_paginator(name)
        self.reads += 1
        error = {"Code": "AccessDenied", "Message": "not authorized: iam:ListAttachedRolePolicies"}
        raise ClientError({"Error": error}, "ListAttachedRolePolicies")


def test_roles_that_cannot_be_read_are_asked_once_and_unchecked(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without IAM reads: one refused read, every role 'unchecked'; --grant-roles stops at once."""
    for name, role in (("a", "r1"), ("b", "r2"), ("c", "r3")):
        make_fn(lambda_client, iam, name, role)
    refusing = NoIamReads(iam)
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, iam=refusing, dry_run=True) == 0
    out = capsys.readouterr().out
    assert refusing.reads == 1
    assert out.count("unchecked (ListAttachedRolePolicies: AccessDenied") == 3
    with pytest.raises(UserError, match="not granting any role"):
        attach(lambda_client, layer_zip, clock, iam=refusing, grant_roles=True)
    assert lambda_client.list_layer_versions(LayerName=LAYER)["LayerVersions"] == []


def test_a_function_with_its_own_namespace_gets_that_namespaces_policy(
    lambda_client: Any,  # noqa: F811
    iam: Any,
    layer_zip: bytes,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The function's own namespace decides the condition: one role, two namespaces, two grants."""
    make_fn(lambda_client, iam, "a", "shared")
    make_fn(lambda_client, iam, "b", "shared", CONCURRENCY_OBSERVER_NAMESPACE="Team A/orders")
    clock = FakeClock()
    assert attach(lambda_client, layer_zip, clock, iam=iam, grant_roles=True) == 0
    policies = {
        p["PolicyName"]: p
        for p in iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"]
    }
    (theirs,) = [name for name in policies if name != POLICY_PREFIX]
    assert theirs.startswith(f"{POLICY_PREFIX}-Team-A-orders-")
    version = iam.get_policy_version(
        PolicyArn=policies[theirs]["Arn"], VersionId=policies[theirs]["DefaultVersionId"]
    )["PolicyVersion"]["Document"]
    document = json.loads(version) if isinstance(version, str) else version
    assert document["Statement"][0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Team A/orders"}
    }
    assert len(roles_now(iam)["shared"][0]) == 2
    assert "roles: granted 2" in capsys.readouterr().out
    assert detach_all(lambda_client, iam, clock) == 0
    assert roles_now(iam)["shared"] == ([], {})
    assert iam.list_policies(Scope="Local", PathPrefix=POLICY_PATH)["Policies"] == []


def test_a_refusal_says_what_denied_it_where_iams_words_do() -> None:
    """A permissions boundary, an SCP, an explicit deny, or just the code; always one line."""

    def said(message: str) -> str:
        return why_refused({"Code": "AccessDenied", "Message": message})

    base = "User: u is not authorized to perform: iam:AttachRolePolicy on resource: role r "
    assert said(base + "with an explicit deny in a permissions boundary").startswith(
        "AccessDenied (a permissions boundary): User: u"
    )
    assert said(base + "with an explicit deny in a service control policy").startswith(
        "AccessDenied (a service control policy): "
    )
    assert said(base + "with an explicit deny in an identity-based policy").startswith(
        "AccessDenied (an explicit deny): "
    )
    assert said(base + "because no identity-based policy allows it").startswith("AccessDenied: ")
    assert why_refused({"Code": "LimitExceeded"}) == "LimitExceeded"
