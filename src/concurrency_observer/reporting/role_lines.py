"""The lines attach and detach print about the functions' roles: who needs the grant, what was done.

Plain lines, never markup: role names and IAM's words are shown as they are (the consoles that print
them have markup off; click.echo has none).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from concurrency_observer.rollout.role_grants import ROLE_RESULTS, RoleOutcome, RoleState
from concurrency_observer.rollout.role_policy import PUT_METRICS, policy_name

NOTHING_NEEDED = (
    "roles: none needs anything: every function here writes EMF lines (the emf sink, or the bash "
    "fallback), which need no IAM permission"
)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def need_lines(states: Sequence[RoleState], simulation_refused: str | None = None) -> list[str]:
    """Without --grant-roles: each distinct role, its functions, whether it has what it needs."""
    if not states:
        return [NOTHING_NEEDED]
    namespaces = sorted({s.need.namespace for s in states})
    lines = [
        f"roles: {len(states)} role(s) need {PUT_METRICS} in namespace "
        f"{', '.join(namespaces)} for the cloudwatch sink:"
    ]
    lacking = 0
    for state in states:
        need = state.need
        head = f"  {need.role_name}: {len(need.functions)} function(s)"
        if need.namespace != namespaces[0] or len(namespaces) > 1:
            head += f" in {need.namespace}"
        if state.attached is None and state.may_put is None:
            why = state.unreadable or simulation_refused or "not readable"
            lines.append(f"{head}; unchecked ({why})")
            lacking += 1
            continue
        parts = [f"our policy {policy_name(need.namespace)} attached: {_yes_no(state.attached)}"]
        if state.may_put is not None:
            parts.append(f"may put metrics: {_yes_no(state.may_put)} (simulated)")
        elif simulation_refused:
            parts.append(f"may put metrics: unchecked ({simulation_refused})")
        lines.append(f"{head}; " + "; ".join(parts))
        if not state.attached and state.may_put is not True:
            lacking += 1
    if lacking:
        lines.append(
            f"to grant it: run again with --grant-roles ({lacking} role(s) may lack it; it "
            "attaches one managed policy to each role that lacks it, and layer detach takes it "
            "back), or add examples/iam-policy.json to each role"
        )
    return lines


def outcome_lines(title: str, outcomes: Sequence[RoleOutcome]) -> list[str]:
    """One line per role, then the counts: ``roles granted: granted 2, already had it 1``."""
    lines = [f"  {o.role}" + _served(o) + f": {o.result}: {o.detail}" for o in outcomes]
    return [*lines, f"{title}: {counts(outcomes)}"] if outcomes else []


def _served(outcome: RoleOutcome) -> str:
    return f" ({outcome.functions} function(s))" if outcome.functions else ""


def counts(outcomes: Iterable[RoleOutcome]) -> str:
    """``granted 2, already had it 1, could not 1``: the results in ``ROLE_RESULTS``' order."""
    counted = Counter(o.result for o in outcomes)
    return ", ".join(f"{r} {counted[r]}" for r in ROLE_RESULTS if counted[r]) or "none"
