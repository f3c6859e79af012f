"""Planning attach and detach for one function, as data: configuration in, a Step out."""

from __future__ import annotations

from typing import Any

import pytest

from concurrency_observer.rollout.attach_all import (
    UNZIPPED_LIMIT_BYTES,
    Target,
    layers_with,
    plan_attach,
)
from concurrency_observer.rollout.detach import plan_detach
from concurrency_observer.rollout.fleet_functions import FleetFunction, LayerRef, select, selected
from concurrency_observer.rollout.observer_settings import (
    METRICS_VARIABLE,
    RECORD_VARIABLE,
    Settings,
)
from concurrency_observer.rollout.sink import SINK_VARIABLE

OURS = "arn:aws:lambda:us-east-1:123456789012:layer:concurrency-observer"
OTHER = "arn:aws:lambda:us-east-1:123456789012:layer:other-{}:1"
TARGET = Target("concurrency-observer", f"{OURS}:4", 200_000)


def function(**changes: Any) -> FleetFunction:
    """A python3.12 zip function with no layers and no variables, changed as given."""
    fields: dict[str, Any] = {
        "name": "fn",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:fn",
        "runtime": "python3.12",
        "package_type": "Zip",
        "code_size": 1000,
        "layers": (),
        "variables": {},
        "environment_error": None,
        "revision_id": "r1",
    }
    fields.update(changes)
    return FleetFunction(**fields)


def others(count: int, size: int | None = 10) -> tuple[LayerRef, ...]:
    """``count`` unrelated layers."""
    return tuple(LayerRef(OTHER.format(i), size) for i in range(count))


def test_attach_goes_last_and_sets_both_settings() -> None:
    """Two other layers keep their order; ours is third; sink and metrics set and recorded."""
    step = plan_attach(function(layers=others(2), variables={"A": "1"}), TARGET)
    assert step.action == "attach"
    assert step.layers == (OTHER.format(0), OTHER.format(1), f"{OURS}:4")
    assert step.variables[SINK_VARIABLE] == "cloudwatch"
    assert step.variables[METRICS_VARIABLE] == "lean"
    assert step.variables["A"] == "1"
    assert RECORD_VARIABLE in step.variables
    assert "added as 3 of 3" in step.reason


def test_upgrade_replaces_our_older_version_in_place() -> None:
    """Version 2 in the middle becomes 4 in the middle; a duplicate of ours is dropped."""
    layers = (
        others(1)[0],
        LayerRef(f"{OURS}:2", 5),
        LayerRef(OTHER.format(9)),
        LayerRef(f"{OURS}:3"),
    )
    attached = plan_attach(function(), TARGET).variables
    step = plan_attach(function(layers=layers, variables=attached), TARGET)
    assert step.action == "upgrade"
    assert step.layers == (OTHER.format(0), f"{OURS}:4", OTHER.format(9))
    assert "2,3 -> 4 in place" in step.reason


def test_the_same_version_and_settings_are_unchanged() -> None:
    """What attaching produced, planned again, is unchanged: idempotent by construction."""
    first = plan_attach(function(layers=others(1)), TARGET)
    again = function(layers=tuple(LayerRef(a) for a in first.layers), variables=first.variables)
    step = plan_attach(again, TARGET)
    assert step.action == "unchanged"
    assert not step.changes


def test_new_settings_on_the_same_version_are_an_upgrade() -> None:
    """--metrics full on an attached function changes only the variable."""
    first = plan_attach(function(), TARGET)
    again = function(layers=tuple(LayerRef(a) for a in first.layers), variables=first.variables)
    step = plan_attach(
        again, Target(TARGET.layer_name, TARGET.version_arn, 1, Settings(metrics="full"))
    )
    assert step.action == "upgrade"
    assert step.layers == first.layers
    assert step.variables[METRICS_VARIABLE] == "full"
    assert "set METRICS=full" in step.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"package_type": "Image", "runtime": None}, "container image"),
        ({"layers": others(5)}, "limit of 5 layers"),
        ({"environment_error": "KMSAccessDeniedException: no"}, "cannot be read"),
        ({"code_size": UNZIPPED_LIMIT_BYTES - 100_000}, "250 MB unzipped limit"),
        ({"variables": {RECORD_VARIABLE: "garbage"}}, "not JSON"),
    ],
)
def test_functions_it_cannot_change_are_skipped_with_the_reason(
    changes: dict[str, Any], reason: str
) -> None:
    """Image, 5 layers, unreadable variables, too big, a broken record: skip, and why."""
    step = plan_attach(function(**changes), TARGET)
    assert step.action == "skip"
    assert reason in step.reason
    assert not step.changes


def test_an_upgrade_at_the_layer_limit_is_allowed() -> None:
    """Four others plus ours is five: replacing ours in place adds nothing."""
    step = plan_attach(function(layers=(*others(4), LayerRef(f"{OURS}:1"))), TARGET)
    assert step.action == "upgrade"
    assert len(step.layers) == 5


def test_the_size_bound_counts_zipped_sizes_and_says_what_is_unknown() -> None:
    """Just under the bound attaches; just over skips; a layer of unknown size counts as 0."""
    room = UNZIPPED_LIMIT_BYTES - TARGET.layer_unzipped_bytes - 20
    assert plan_attach(function(code_size=room, layers=others(2)), TARGET).action == "attach"
    over = plan_attach(function(code_size=room, layers=others(3)), TARGET)
    assert over.action == "skip"
    unknown = plan_attach(function(code_size=room + 21, layers=others(1, size=None)), TARGET)
    assert "1 layer size(s) unknown, counted as 0" in unknown.reason


def test_the_fallback_runtime_is_named() -> None:
    """A Node.js function gets emf and a note that the bash engine runs."""
    step = plan_attach(function(runtime="nodejs22.x"), TARGET)
    assert step.variables[SINK_VARIABLE] == "emf"
    assert "bash engine" in step.reason


def test_layers_with_matches_by_name_in_any_account() -> None:
    """Another account's copy of our layer is replaced too: the name is what matches."""
    foreign = LayerRef("arn:aws:lambda:eu-west-1:999999999999:layer:concurrency-observer:9")
    assert layers_with((foreign,), "concurrency-observer", f"{OURS}:4") == (f"{OURS}:4",)


def test_detach_takes_off_exactly_ours_and_its_settings() -> None:
    """Other layers in order, the user's variables, nothing else; ours and the record gone."""
    before = function(layers=others(2), variables={"A": "1", "CONCURRENCY_OBSERVER_NAMESPACE": "N"})
    attached = plan_attach(before, TARGET)
    on = function(layers=tuple(LayerRef(a) for a in attached.layers), variables=attached.variables)
    step = plan_detach(on, "concurrency-observer")
    assert step.action == "detach"
    assert step.layers == before.layer_arns
    assert step.variables == before.variables
    assert "layer 4 removed" in step.reason


def test_detach_without_a_record_removes_the_layer_only() -> None:
    """Attached before the record existed: the sink variable stays, and the reason says why."""
    on = function(layers=(LayerRef(f"{OURS}:1"),), variables={SINK_VARIABLE: "emf"})
    step = plan_detach(on, "concurrency-observer")
    assert step.layers == ()
    assert step.variables == {SINK_VARIABLE: "emf"}
    assert "no record" in step.reason
    assert "Environment" not in step.update_arguments()  # variables not re-sent


def test_detach_of_a_function_without_it_is_unchanged() -> None:
    """No layer of ours and no record: nothing to do."""
    step = plan_detach(function(layers=others(1)), "concurrency-observer")
    assert step.action == "unchanged"


def test_globs_select_by_name() -> None:
    """Any --include (all when none), then no --exclude; case matters."""
    names = ["orders-prod", "orders-dev", "billing-prod", "Orders-x"]
    fleet = [function(name=n) for n in names]
    assert [f.name for f in select(fleet, ["orders-*"], ["*-dev"])] == ["orders-prod"]
    assert [f.name for f in select(fleet, [], ["*-prod"])] == ["orders-dev", "Orders-x"]
    assert selected("billing-prod", ["orders-*", "billing-*"])
    assert not selected("Orders-x", ["orders-*"])


def test_a_managed_instances_function_is_told_to_publish() -> None:
    """Its unqualified invokes run $LATEST.PUBLISHED: the reason says so."""
    step = plan_attach(function(managed_instances=True), TARGET)
    assert step.action == "attach"
    assert "$LATEST.PUBLISHED" in step.reason
    read = FleetFunction.from_configuration(
        {"FunctionName": "f", "FunctionArn": "a", "CapacityProviderConfig": {"X": 1}}
    )
    assert read.managed_instances
