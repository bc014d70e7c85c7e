"""observe → plan → execute with the real kinds against moto server: the engine end to end."""
from __future__ import annotations

from envctl.engine.executor import State, execute
from envctl.engine.observe import observe
from envctl.model.address import Address
from envctl.model.graph import Graph
from envctl.plan.changes import Action
from envctl.plan.planner import destroy_plan, plan
from tests.provisioners.harness import graph_from_yaml, make_ctx

SPEC = """
network:
  cidr: 10.30.0.0/16
  zones: 2
  nat: single
  tiers:
    public: {prefix: 24, internet: true}
    private: {prefix: 20}
queues:
  work-units: {}
"""


def test_create_again_destroy(aws, tmp_path):
    desired = graph_from_yaml(tmp_path, SPEC)
    ctx = make_ctx(aws)
    foreign_vpc = aws.client("ec2").create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]

    first = observe(ctx).resources
    created = execute(plan(desired, first), desired, first, ctx, parallelism=4)
    assert created.ok, {str(a): o.message for a, o in created.outcomes.items() if o.state is not State.CREATED}
    assert {o.state for o in created.outcomes.values()} == {State.CREATED}
    vpc_id = created.outputs[Address("vpc", "main")]["id"]
    subnets = aws.client("ec2").describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 4
    assert all({"Key": "envctl:environment", "Value": "qa"} in s["Tags"] for s in subnets)
    queue_url = created.outcomes[Address("queue", "work-units")].id
    assert aws.client("sqs").list_queue_tags(QueueUrl=queue_url)["Tags"]["envctl:resource"] == "queue/work-units"

    # Run again: the plan is empty and executing it makes no mutating call.
    aws.log.clear()
    again = observe(ctx).resources
    assert set(again) == set(desired.nodes)
    second = plan(desired, again)
    assert second.is_empty, [(str(c.address), c.changes) for c in second if c.action is not Action.NOOP]
    assert execute(second, desired, again, ctx).ok
    assert aws.log.mutating() == []

    # Destroy: users first, nothing of ours left, the foreign VPC untouched.
    aws.log.clear()
    live = observe(ctx).resources
    gone = execute(destroy_plan(live), Graph(), live, ctx, parallelism=8)
    assert gone.ok and {o.state for o in gone.outcomes.values()} == {State.DELETED}
    log = aws.log
    assert log.index("DeleteNatGateway") < log.index("ReleaseAddress")
    assert log.index("DeleteNatGateway") < min(i for i, c in enumerate(log.snapshot()) if c.action == "DeleteSubnet")
    assert max(i for i, c in enumerate(log.snapshot()) if c.action == "DeleteSubnet") < log.index("DeleteVpc")
    assert observe(ctx).resources == {}
    vpcs = [v["VpcId"] for v in aws.client("ec2").describe_vpcs()["Vpcs"]]
    assert foreign_vpc in vpcs and vpc_id not in vpcs
