"""Which roles the attached functions need a grant on, and the one policy that grants it (pure).

The ``cloudwatch`` sink calls PutMetricData from the Python extension, so a function's execution
role needs ``cloudwatch:PutMetricData`` in the function's namespace; the ``emf`` sink, and the bash
fallback whatever its sink, write log lines and need nothing. ``role_needs`` groups the functions
that need it by (role, namespace): a role shared by 40 functions is one entry, one grant.

The grant is one customer-managed policy per namespace, under the path ``/concurrency-observer/``:
exactly the namespace-conditioned statement of ``examples/iam-policy.json``. Its name is
``concurrency-observer-put-metrics`` for the default namespace, and carries the namespace (and a
hash, since a namespace may hold characters a policy name may not) for any other.

What attach granted is recorded on the role itself, as a tag: ``concurrency-observer:granted:<policy
name>`` whose value is the regions whose attach granted it (``us-east-1 eu-west-1``). Why a tag on
the role: it is found by whoever runs ``layer detach`` next, from any machine, with no local state;
it says which roles attach granted (a role that had the policy before keeps it); and it lives with
the grant, so it cannot drift from it as a record on one of the role's 40 functions would. Why the
regions: a role serves functions in several regions, so detaching in one region must not take the
grant from functions in another.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from concurrency_observer.rollout.sink import SINK_VARIABLE, uses_fallback
from concurrency_observer.schema import DEFAULT_NAMESPACE

NAMESPACE_VARIABLE: Final = "CONCURRENCY_OBSERVER_NAMESPACE"
POLICY_PATH: Final = "/concurrency-observer/"
POLICY_PREFIX: Final = "concurrency-observer-put-metrics"
GRANT_TAG_PREFIX: Final = "concurrency-observer:granted:"
PUT_METRICS: Final = "cloudwatch:PutMetricData"
_NOT_IN_NAME: Final = re.compile(r"[^A-Za-z0-9+=,.@_-]+")
# arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
_ROLE_ARN: Final = re.compile(
    r"arn:(?P<partition>[\w-]+):iam::(?P<account>\d{12}):role/(?P<path>.+)"
)


class BadRole(ValueError):
    """A function's role cannot be granted from here (another account's, or not a role ARN)."""


@dataclass(frozen=True)
class RoleRef:
    """An execution role, as its ARN names it."""

    arn: str
    partition: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> RoleRef:
        """``arn:aws:iam::123456789012:role/path/name``; BadRole for anything else."""
        match = _ROLE_ARN.fullmatch(arn)
        if match is None:
            raise BadRole(f"{arn!r} is not an IAM role ARN")
        return cls(arn, match["partition"], match["account"], match["path"].rsplit("/", 1)[-1])


def account_of(function_arn: str) -> str:
    """The account in ``arn:aws:lambda:REGION:ACCOUNT:function:NAME``."""
    parts = function_arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def needs_put_metrics(runtime: str | None, variables: Mapping[str, str]) -> bool:
    """Whether a function configured with ``variables`` calls PutMetricData."""
    return not uses_fallback(runtime) and variables.get(SINK_VARIABLE) == "cloudwatch"


def namespace_of(variables: Mapping[str, str]) -> str:
    """The namespace the extension writes into (its own variable, else the default)."""
    return variables.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Attached:
    """One function as it will be once attached: what the role grant depends on."""

    name: str
    arn: str
    role: str | None
    runtime: str | None
    variables: Mapping[str, str]


@dataclass(frozen=True)
class RoleNeed:
    """A role that needs PutMetricData in one namespace, and the functions that need it of it."""

    role_arn: str
    namespace: str
    functions: tuple[str, ...]
    function_account: str  # the account of the functions (the caller's)

    @property
    def role_name(self) -> str:
        """The role's name (the last part of its ARN; an unparsable ARN as it is)."""
        return self.role_arn.rsplit("/", 1)[-1]

    def role(self) -> RoleRef:
        """The parsed role; BadRole if it is not a role of the functions' account."""
        role = RoleRef.parse(self.role_arn)
        if role.account != self.function_account:
            raise BadRole(
                f"role {self.role_arn} is in account {role.account}, not the functions' "
                f"{self.function_account}: it cannot be granted from here"
            )
        return role


def role_needs(functions: Iterable[Attached]) -> list[RoleNeed]:
    """The distinct (role, namespace) pairs of the functions that call PutMetricData, by role."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for function in functions:
        if not needs_put_metrics(function.runtime, function.variables) or not function.role:
            continue
        key = (function.role, namespace_of(function.variables), account_of(function.arn))
        grouped.setdefault(key, []).append(function.name)
    return [
        RoleNeed(role, namespace, tuple(names), account)
        for (role, namespace, account), names in sorted(grouped.items())
    ]


def policy_name(namespace: str) -> str:
    """The policy's name: the prefix alone for the default namespace, else with the namespace."""
    if namespace == DEFAULT_NAMESPACE:
        return POLICY_PREFIX
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:8]
    return f"{POLICY_PREFIX}-{_NOT_IN_NAME.sub('-', namespace)[:40]}-{digest}"


def policy_arn(role: RoleRef, namespace: str) -> str:
    """The policy's ARN in the role's account."""
    return f"arn:{role.partition}:iam::{role.account}:policy{POLICY_PATH}{policy_name(namespace)}"


def policy_document(namespace: str) -> dict[str, Any]:
    """examples/iam-policy.json's statement, with ``namespace`` in its condition."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PutConcurrencyObserverMetrics",
                "Effect": "Allow",
                "Action": PUT_METRICS,
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
            }
        ],
    }


def policy_json(namespace: str) -> str:
    """The policy document as CreatePolicy takes it."""
    return json.dumps(policy_document(namespace), separators=(",", ":"))


def grant_tag_key(namespace: str) -> str:
    """The role tag that records attach's grant of this namespace's policy."""
    return GRANT_TAG_PREFIX + policy_name(namespace)


def tag_regions(value: str | None) -> frozenset[str]:
    """The regions a grant tag's value names."""
    return frozenset((value or "").split())


def tag_value(regions: Iterable[str]) -> str:
    """A grant tag's value: the regions, sorted, space-separated."""
    return " ".join(sorted(set(regions)))
