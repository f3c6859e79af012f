"""Take back what ``--grant-roles`` granted (``layer detach``), from the roles' grant tags.

``revoke_roles`` takes the policy off only the roles whose grant tag names this region, only once
no function of the region still has the layer on that role, and deletes the policy once no role
holds it. Another region named in the tag keeps the grant: only this region lets go. A role that
had the policy before attach has no tag and is never touched. ListRoleTags refused once (an
operator without IAM permissions) is one "unchecked" line, and is not asked again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from concurrency_observer.rollout.fleet_update import Pacer, Sleep
from concurrency_observer.rollout.role_grants import (
    RoleOutcome,
    client_error,
    retried,
    role_tags,
    set_tag,
    why_refused,
)
from concurrency_observer.rollout.role_policy import (
    GRANT_TAG_PREFIX,
    POLICY_PATH,
    BadRole,
    RoleRef,
    tag_regions,
    tag_value,
)
from concurrency_observer.rollout.rollout_errors import error_summary


def granted_by_attach(tags: Mapping[str, str], region: str) -> dict[str, frozenset[str]]:
    """Our grant tags that name ``region``: policy name -> the regions the tag holds."""
    return {
        key.removeprefix(GRANT_TAG_PREFIX): regions
        for key, value in tags.items()
        if key.startswith(GRANT_TAG_PREFIX) and region in (regions := tag_regions(value))
    }


@dataclass(frozen=True)
class Revocation:
    """What ``revoke_roles`` did, or would do: an outcome per role, and the policies deleted."""

    outcomes: tuple[RoleOutcome, ...]
    deleted: tuple[str, ...]


@dataclass
class _Revoker:
    """Takes one role's grants back (or, in a dry run, says it would), counting what it detached."""

    iam: Any
    region: str
    dry_run: bool
    pacer: Pacer
    sleep: Sleep
    touched: dict[str, int] = field(default_factory=dict)  # policy ARN -> attachments taken off

    def revoke(self, role: RoleRef, name: str, regions: frozenset[str]) -> RoleOutcome:
        """Let go of this region in the grant tag of policy ``name``; the last one out detaches."""
        from botocore.exceptions import ClientError  # noqa: PLC0415

        policy = f"arn:{role.partition}:iam::{role.account}:policy{POLICY_PATH}{name}"
        others = regions - {self.region}
        if others:
            detail = f"{name}: granted for {tag_value(others)} too; only this region let go"
        else:
            detail = f"{name} taken off (attach granted it)"
        try:
            if not self.dry_run:
                self.pacer.wait_turn()
                if not others:
                    _detach_policy(self.iam, role.name, policy, self.sleep)
                set_tag(self.iam, role.name, GRANT_TAG_PREFIX + name, others, self.sleep)
        except ClientError as exc:
            reason = f"{exc.operation_name}: {why_refused(client_error(exc))}"
            return RoleOutcome(role.name, 0, "could not", reason)
        if not others:
            self.touched[policy] = self.touched.get(policy, 0) + 1
        return RoleOutcome(role.name, 0, "kept" if others else "revoked", detail)


def revoke_roles(
    iam: Any,
    roles: Iterable[str],
    still_used: Mapping[str, int],
    region: str,
    *,
    dry_run: bool,
    pacer: Pacer,
    sleep: Sleep = time.sleep,
) -> Revocation:
    """Take attach's grant (this region's) off each role no function with the layer still uses.

    ``still_used`` counts, per role ARN, the functions of the region that keep the layer.
    """
    from botocore.exceptions import ClientError  # noqa: PLC0415

    revoker = _Revoker(iam, region, dry_run, pacer, sleep)
    outcomes: list[RoleOutcome] = []
    unread: list[str] = []
    refused = ""
    for arn in sorted(set(roles)):
        try:
            role = RoleRef.parse(arn)
        except BadRole:
            continue
        if refused:  # refused once (no IAM permissions at all, most often): not asked again
            unread.append(role.name)
            continue
        try:
            ours = granted_by_attach(role_tags(iam, role.name), region)
        except ClientError as exc:
            refused = f"{exc.operation_name}: {error_summary(client_error(exc))}"
            unread.append(role.name)
            continue
        users = still_used.get(arn, 0)
        for name, regions in sorted(ours.items()):
            if users:
                detail = f"{name}: still used by {users} function(s) with the layer"
                outcomes.append(RoleOutcome(role.name, users, "kept", detail))
            else:
                outcomes.append(revoker.revoke(role, name, regions))
    if unread:
        detail = f"{refused}; a grant attach made on them stays"
        outcomes.append(RoleOutcome(", ".join(unread), 0, "unchecked", detail))
    deleted = _delete_unheld(iam, revoker.touched, dry_run=dry_run, sleep=sleep)
    return Revocation(tuple(outcomes), deleted)


def _detach_policy(iam: Any, role: str, policy: str, sleep: Sleep) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    try:
        retried(lambda: iam.detach_role_policy(RoleName=role, PolicyArn=policy), sleep)
    except ClientError as exc:
        if client_error(exc).get("Code") != "NoSuchEntity":  # tagged, never attached: fine
            raise


def _delete_unheld(
    iam: Any, touched: Mapping[str, int], *, dry_run: bool, sleep: Sleep
) -> tuple[str, ...]:
    """Delete each policy no role holds any more (in a dry run: would hold none)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    deleted = []
    for policy, taken in sorted(touched.items()):
        try:
            count = int(iam.get_policy(PolicyArn=policy)["Policy"].get("AttachmentCount", 0))
            if count - (taken if dry_run else 0) > 0:
                continue
            if not dry_run:
                retried(lambda p=policy: iam.delete_policy(PolicyArn=p), sleep)  # type: ignore[misc]
        except ClientError:
            continue  # gone already, or not ours to read: left for the next detach
        deleted.append(policy)
    return tuple(deleted)
