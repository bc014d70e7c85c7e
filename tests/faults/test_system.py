"""The example system (the repo's specs/) built, diffed and destroyed through faults.

Under 10% throttling plus 5% of 500s, 503s, dropped connections and lost replies, `envctl
create qa` must succeed, `diff` must then find nothing to do, and AWS must hold exactly
what a clean run leaves (compared attribute by attribute, ids replaced by addresses) with
nothing made twice. The sweeps are the sharp version: the first call of every mutating
action the clean run makes loses its reply (or its connection), all in one run.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from envctl.cli import _register, cli
from envctl.sandbox.middleware import Fault, Rates
from tests.faults import inventory

_register()

REPO = Path(__file__).resolve().parents[2]
PROJECT, ENV = "acme", "qa"
# 10% throttling + 5% split evenly between 500, 503, dropped connections and lost replies.
FAULTS = Rates(throttle=0.10, error_500=0.0125, error_503=0.0125, drop=0.0125, lost_reply=0.0125)
SEEDS = [int(s) for s in os.environ.get("FAULT_SEEDS", "1,2").split(",")]    # FAULT_SEEDS=2,3,4 to try others


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("example") / "specs"
    shutil.copytree(REPO / "specs", folder)
    return folder


def envctl(specs: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--specs", str(specs), *args])


def why(result: Result) -> str:
    """The lines of a command's output that say what went wrong."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"{type(result.exception).__name__}: {result.exception}"
    output = result.output.splitlines()
    failures = [line for line in output if any(word in line for word in ("✗", "error:", "Traceback", "Failed:"))]
    changes = [line for line in output if line.startswith(("+ ", "~ ", "- ", "± ", "Plan:"))]
    return "\n".join(failures or changes) or result.output[-2000:]


def take(faulty) -> inventory.Inventory:
    return inventory.take(faulty.client, PROJECT, ENV)


@pytest.fixture(scope="module")
def baseline() -> dict:
    return {}


@pytest.fixture
def clean(faulty, specs, baseline) -> dict:
    """What a clean `create` leaves (made once per module): the inventory and its mutating calls."""
    if not baseline:
        created = envctl(specs, "create", ENV, "--yes")
        assert created.exit_code == 0, why(created)
        baseline["state"] = take(faulty).state
        assert {"vpc/main", "subnet/private-b", "nat_gateway/nat-a", "security_group/db", "instance/bastion",
                "autoscaling_group/orders", "db_instance/main", "queue/work-units", "bucket/uploads",
                "function/ingest", "role/app", "schedule/nightly-import"} <= set(baseline["state"])
        baseline["mutating"] = sorted({(c.service, c.action) for c in faulty.log.snapshot() if c.mutating})
        faulty.server.reset()
    return baseline


def assert_same_as_clean(faulty, clean: dict) -> None:
    now = take(faulty)
    assert now.duplicates == {}
    differences = inventory.differences(clean["state"], now.state)
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("seed", SEEDS)
def test_create_and_diff_through_faults_end_as_a_clean_run(faulty, specs, clean, seed):
    faulty.faults.configure(FAULTS, seed=seed)

    created = envctl(specs, "create", ENV, "--yes")
    assert created.exit_code == 0, why(created)
    diffed = envctl(specs, "diff", ENV)
    assert diffed.exit_code == 0, why(diffed)

    injected = faulty.faults.log.counts()
    faulty.faults.off()
    assert injected[Fault.THROTTLE] >= 20 and injected[Fault.LOST_REPLY] >= 1, injected   # the faults did happen
    assert_same_as_clean(faulty, clean)


@pytest.mark.parametrize("fault", [Fault.LOST_REPLY, Fault.DROP], ids=["lost-reply", "drop"])
def test_create_when_every_mutating_action_first_fails(faulty, specs, clean, fault):
    for service, action in clean["mutating"]:
        faulty.faults.force(fault, service=service, action=action)

    created = envctl(specs, "create", ENV, "--yes")
    faulty.faults.off()
    assert created.exit_code == 0, why(created)
    assert len(faulty.faults.log.injected(fault)) == len(clean["mutating"])
    diffed = envctl(specs, "diff", ENV)
    assert diffed.exit_code == 0, why(diffed)
    assert_same_as_clean(faulty, clean)


def test_repairs_when_every_mutating_action_first_loses_its_reply(faulty, specs, clean):
    """Updates under lost replies: each repair call is carried out and its answer lost, so the
    retry must read again and do only what still differs (no "already exists", nothing twice)."""
    created = envctl(specs, "create", ENV, "--yes")
    assert created.exit_code == 0, why(created)
    drift_by_hand(faulty)
    assert envctl(specs, "diff", ENV).exit_code == 2
    # SetQueueAttributes is a repair only: a clean create gives a queue its attributes in CreateQueue.
    for service, action in set(clean["mutating"]) | {("sqs", "SetQueueAttributes")}:
        faulty.faults.force(Fault.LOST_REPLY, service=service, action=action)

    repaired = envctl(specs, "create", ENV, "--yes")
    injected = faulty.faults.log.injected(Fault.LOST_REPLY)
    faulty.faults.off()
    assert repaired.exit_code == 0, why(repaired)
    repairs = {"AuthorizeSecurityGroupIngress", "CreateRoute", "UpdateTimeToLive", "AddRoleToInstanceProfile",
               "PutMetricFilter", "SetQueueAttributes"}
    assert repairs <= {s.action for s in injected}
    diffed = envctl(specs, "diff", ENV)
    assert diffed.exit_code == 0, why(diffed)
    assert_same_as_clean(faulty, clean)


def drift_by_hand(faulty) -> None:
    """Undo one sub-resource of each of several kinds, as someone at the console would."""
    ec2, ours = faulty.client("ec2"), [{"Name": "tag:envctl:environment", "Values": [ENV]}]

    def tagged(kind_filter: list[dict], describe: str, key: str, address: str) -> dict:
        items = getattr(ec2, describe)(Filters=ours + kind_filter + [
            {"Name": "tag:envctl:resource", "Values": [address]}])[key]
        assert len(items) == 1, address
        return items[0]

    app = tagged([], "describe_security_groups", "SecurityGroups", "security_group/app")
    rule = next(p for p in app["IpPermissions"] if p.get("FromPort") == 8080)
    ec2.revoke_security_group_ingress(GroupId=app["GroupId"], IpPermissions=[
        {k: rule[k] for k in ("IpProtocol", "FromPort", "ToPort", "UserIdGroupPairs")}])
    private = tagged([], "describe_route_tables", "RouteTables", "route_table/private")
    ec2.delete_route(RouteTableId=private["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")

    ddb = faulty.client("dynamodb")
    table = next(t for t in ddb.list_tables()["TableNames"] if t.endswith("sessions"))
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": False,
                                                                      "AttributeName": "expires_at"})
    iam = faulty.client("iam")
    profile = next(p for p in iam.list_instance_profiles()["InstanceProfiles"] if p["Roles"])
    iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"],
                                          RoleName=profile["Roles"][0]["RoleName"])
    logs = faulty.client("logs")
    group = next(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
                 if logs.describe_metric_filters(logGroupName=g["logGroupName"])["metricFilters"])
    for f in logs.describe_metric_filters(logGroupName=group)["metricFilters"]:
        logs.delete_metric_filter(logGroupName=group, filterName=f["filterName"])
    sqs = faulty.client("sqs")
    queue = next(q for q in sqs.list_queues()["QueueUrls"] if q.endswith("work-units"))
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "31"})


def test_destroy_through_faults_leaves_nothing_tagged(faulty, specs, clean):
    if "destroy" not in cli.commands:
        pytest.skip("envctl destroy is not a command yet")
    created = envctl(specs, "create", ENV, "--yes")
    assert created.exit_code == 0, why(created)

    faulty.faults.configure(FAULTS, seed=SEEDS[0])
    destroyed = envctl(specs, "destroy", ENV, "--yes")
    faulty.faults.off()
    assert destroyed.exit_code == 0, why(destroyed)
    assert take(faulty).found == {}
    assert still_tagged(faulty) == []


def still_tagged(faulty) -> list[str]:
    return inventory.still_tagged(faulty.client, PROJECT, ENV)
