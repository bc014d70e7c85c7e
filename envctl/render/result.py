"""What `create --json` and `destroy --json` print: the outcome of a run, version 1.

    {"version": 1, "command": "create", "project": "acme", "environment": "qa",
     "region": "eu-north-1", "account": "123456789012",
     "ok": false, "interrupted": false, "elapsed_s": 2.31,
     "plan": <Plan.to_json(), the plan that ran>,
     "resources": [{"address": "queue/imports", "action": "create", "state": "failed",
                    "id": null, "seconds": 0.12, "error": "creating queue (queue/imports): …"}, …],
     "counts": {"created": 16, "updated": 0, "replaced": 0, "deleted": 0, "unchanged": 0,
                "failed": 1, "skipped": 1, "not started": 0},
     "expires": "2030-05-02T12:00Z"}             # create: the expiry it set, or null
     "left": [{"address": "db_instance/main", "id": "acme-qa-main"}]    # destroy: what is still live

`resources` has every resource of the plan, in plan order, whatever happened to it (an
empty plan: every resource `unchanged`). `error` says why a resource failed, was skipped or
was not started; null otherwise.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envctl.engine.executor import SUCCESS, Outcome, Result, State
from envctl.plan.changes import JSON_VERSION, Action, Plan

_REASONED = frozenset(State) - SUCCESS         # failed, skipped, not started: each has its reason


def unchanged(plan: Plan) -> list[Outcome]:
    """The outcomes of a plan that did not run because it changes nothing (NOOPs and ORPHANs),
    as the executor reports them."""
    return [Outcome(c.address, c.action, State.UNCHANGED, id=c.id) for c in plan
            if c.action in (Action.NOOP, Action.ORPHAN)]


def run_document(command: str, plan: Plan, outcomes: Iterable[Outcome], *, region: str, account: str,
                 result: Result | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document of one `create` or `destroy`. `outcomes`: one per resource of the plan;
    `result`: the executor's, None when nothing was executed; `extra`: the command's own
    fields (create's `expires`, destroy's `left`), which also decide `ok` through `left`."""
    outcomes = list(outcomes)
    counts = {state.value: 0 for state in State}
    for o in outcomes:
        counts[o.state.value] += 1
    extra = dict(extra or {})
    interrupted = bool(result and result.interrupted)
    ok = not interrupted and all(o.state in SUCCESS for o in outcomes) and not extra.get("left")
    return {
        "version": JSON_VERSION,
        "command": command,
        "project": plan.project,
        "environment": plan.environment,
        "region": region,
        "account": account,
        "ok": ok,
        "interrupted": interrupted,
        "elapsed_s": round(result.elapsed, 2) if result else 0.0,
        "plan": plan.to_json(),
        "resources": [{"address": str(o.address), "action": o.action.value, "state": o.state.value, "id": o.id,
                       "seconds": round(o.seconds, 2), "error": o.message if o.state in _REASONED else None}
                      for o in outcomes],
        "counts": counts,
        **extra,
    }
