"""The whole example system (specs/qa.yaml) is built and torn down on the emulator with AWS's
deletion-dependency rules on (envctl/sandbox/dependency_rules.py).

The executor retries DependencyViolation and the like as "clears with time", so a teardown in
the wrong order can still end well, after waiting; the rules' log of refused deletes says
which deletes AWS would have refused on the way.
"""
from __future__ import annotations

import time
from pathlib import Path

from envctl.engine.executor import State, execute
from envctl.engine.observe import observe
from envctl.expand import expand
from envctl.model.graph import Graph
from envctl.plan.planner import destroy_plan, plan
from envctl.spec.validate import load
from tests.provisioners.harness import make_ctx

SPECS = Path(__file__).resolve().parents[2] / "specs"


def short_sleep(seconds: float) -> None:
    """Retries of the executor wait a little, not the backoff's seconds: moto settles at once."""
    time.sleep(min(seconds, 0.1))


def failures(result) -> dict[str, str]:
    return {str(a): f"{o.state}: {o.message}" for a, o in result.outcomes.items()
            if o.state not in (State.CREATED, State.DELETED)}


def refusals(aws, live) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(action, address, code, addresses still using it) of every refused delete; ids not ours stay ids."""
    name = {o.id: str(a) for a, o in live.items()}
    return [(r.action, name.get(r.target, r.target), r.code, tuple(name.get(b, b) for b in r.blockers))
            for r in aws.server.rules.refused]


def test_example_system_is_created_and_destroyed_in_an_order_aws_accepts(aws):
    desired = expand(load(SPECS, "qa"))
    ctx = make_ctx(aws, project="acme", environment="qa")

    first = observe(ctx).resources
    created = execute(plan(desired, first), desired, first, ctx, parallelism=8, sleep=short_sleep)
    assert created.ok, failures(created)
    assert set(observe(ctx).resources) == set(desired.nodes)

    live = observe(ctx).resources
    gone = execute(destroy_plan(live), Graph(), live, ctx, parallelism=8, sleep=short_sleep)
    assert gone.ok, failures(gone)
    assert observe(ctx).resources == {}
    # The only delete AWS refuses: a security group while another group's rule still names it.
    # Groups are one kind, deleted in parallel; the executor retries the refused one (as on AWS).
    assert {(action, code) for action, _, code, _ in refusals(aws, live)} <= {
        ("DeleteSecurityGroup", "DependencyViolation")}, refusals(aws, live)
    assert all(b.startswith("security_group/") for *_, blockers in refusals(aws, live) for b in blockers), \
        refusals(aws, live)
