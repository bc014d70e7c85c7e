"""envctl destroy ENV on the whole example system (specs/): deletes everything tagged for the
environment, in an order AWS accepts, and nothing else; asks first; respects protection;
finishes interrupted work; and `create --prune` deletes what the spec no longer holds.

The emulator enforces AWS's deletion-dependency rules (envctl/sandbox/dependency_rules.py),
which moto lacks: a delete AWS would refuse is refused here too. The executor retries such
refusals for a while ("clears with time"), so a wrong order could still end well after
waiting: the tests also read the order of the calls from the request log, and the rules'
list of refused deletes.
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from envctl.engine import executor
from tests.cli.conftest import timeless
from tests.cli.test_create import stop_after

SPECS = Path(__file__).resolve().parents[2] / "specs"
NOT_INTERACTIVE = ("error: not running on a terminal (or CI is set), so envctl will not prompt: "
                   "pass --yes to go ahead\n")
EVERYTHING = 36             # resources of the example system (specs/qa.yaml)


# ------------------------------------------------------------------ fixtures and helpers

@pytest.fixture(autouse=True)
def brief_retries(monkeypatch):
    """The executor's retries (a security group still named by another group's rule) wait 50 ms
    instead of the backoff's second or two: the emulator settles at once."""
    real = executor.execute

    def execute(*args, **kwargs):
        kwargs.setdefault("sleep", lambda seconds: time.sleep(min(seconds, 0.05)))
        return real(*args, **kwargs)

    monkeypatch.setattr(executor, "execute", execute)


@pytest.fixture
def system(workdir) -> Path:
    """The repo's specs/ (base.yaml, qa.yaml, prod.yaml, functions/, …) plus qa2.yaml: a second
    environment of the same project, the same system on another CIDR."""
    specs = workdir / "specs"
    shutil.copytree(SPECS, specs, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    qa = (specs / "qa.yaml").read_text(encoding="utf-8")
    (specs / "qa2.yaml").write_text(qa.replace("10.30.0.0/16", "10.31.0.0/16"), encoding="utf-8")
    return specs


# How late the deletes of the kinds AWS takes minutes over start (seconds), slowest longest.
SLOW_DELETES = {"instance": 0.9, "autoscaling_group": 0.9, "db_instance": 0.3, "nat_gateway": 0.3,
                "instance_profile": 0.3}


@pytest.fixture
def slow_deletes(monkeypatch):
    """moto deletes at once, so a delete that does not wait for what uses it (a subnet before its
    instances) would still come after it in the log, by luck of timing. Made slow as on AWS,
    the users' deletes start late (SLOW_DELETES): a delete that does not wait for them overtakes
    them, the emulator refuses it as AWS would, and the order checks see it."""
    from envctl.provisioners import by_kind

    for kind, seconds in SLOW_DELETES.items():
        cls = type(by_kind(kind))
        real = cls.delete

        def delete(self, ctx, observed, real=real, seconds=seconds):
            time.sleep(seconds)
            return real(self, ctx, observed)

        monkeypatch.setattr(cls, "delete", delete)


def ok(result) -> str:
    """For assertion messages."""
    return result.stdout + result.stderr


def env_filters(project: str = "acme", environment: str = "qa") -> list[dict]:
    return [{"Name": "tag:envctl:project", "Values": [project]},
            {"Name": "tag:envctl:environment", "Values": [environment]}]


def tag_dict(tags) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}


def tagged_for(tags: dict[str, str], project: str, environment: str) -> bool:
    return tags.get("envctl:project") == project and tags.get("envctl:environment") == environment


def leftovers(aws, project: str = "acme", environment: str = "qa") -> dict[str, list[str]]:
    """Everything of the environment still in AWS, service by service, read with plain boto3:
    by envctl's tags, and by name for what AWS makes on envctl's behalf (Lambda's log group,
    the database's master secret) or names after the environment. {} when nothing is left."""
    prefix = f"{project}-{environment}-"
    found: dict[str, list[str]] = {}

    def note(what: str, items) -> None:
        items = sorted(str(i) for i in items)
        if items:
            found[what] = items

    ec2 = aws.client("ec2")
    scope = env_filters(project, environment)

    def ec2_ours(describe: str, key: str, id_key: str, filter_arg: str = "Filters", live=lambda item: True):
        # The tags are checked here too: moto ignores some filters (describe_nat_gateways' tag filters).
        items = getattr(ec2, describe)(**{filter_arg: scope})[key]
        if key == "Reservations":
            items = [i for r in items for i in r["Instances"]]
        return [i[id_key] for i in items if tagged_for(tag_dict(i.get("Tags")), project, environment) and live(i)]

    note("vpcs", ec2_ours("describe_vpcs", "Vpcs", "VpcId"))
    note("subnets", ec2_ours("describe_subnets", "Subnets", "SubnetId"))
    note("security groups", ec2_ours("describe_security_groups", "SecurityGroups", "GroupId"))
    note("route tables", ec2_ours("describe_route_tables", "RouteTables", "RouteTableId"))
    note("internet gateways", ec2_ours("describe_internet_gateways", "InternetGateways", "InternetGatewayId"))
    note("nat gateways", ec2_ours("describe_nat_gateways", "NatGateways", "NatGatewayId", "Filter",
                                  live=lambda n: n["State"] not in ("deleted", "failed")))
    note("elastic ips", ec2_ours("describe_addresses", "Addresses", "AllocationId"))
    note("launch templates", ec2_ours("describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"))
    note("instances", ec2_ours("describe_instances", "Reservations", "InstanceId",
                               live=lambda i: i["State"]["Name"] != "terminated"))
    note("volumes", ec2_ours("describe_volumes", "Volumes", "VolumeId"))

    rgta = aws.client("resourcegroupstaggingapi")
    note("tagging api", (m["ResourceARN"] for m in rgta.get_resources(TagFilters=[
        {"Key": "envctl:project", "Values": [project]}, {"Key": "envctl:environment", "Values": [environment]},
    ])["ResourceTagMappingList"] if not _ended(ec2, m["ResourceARN"])))

    iam = aws.client("iam")
    path = f"/envctl/{project}/{environment}/"
    note("roles", (r["RoleName"] for r in iam.list_roles(PathPrefix=path)["Roles"]))
    note("roles by name", (r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(prefix)))
    # moto ignores list_instance_profiles' PathPrefix: the path is checked here.
    note("instance profiles", (p["InstanceProfileName"]
                               for p in iam.list_instance_profiles(PathPrefix=path)["InstanceProfiles"]
                               if p["Path"].startswith(path) or p["InstanceProfileName"].startswith(prefix)))

    autoscaling = aws.client("autoscaling")
    note("auto scaling groups", (g["AutoScalingGroupName"]
                                 for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
                                 if tagged_for(tag_dict(g.get("Tags")), project, environment)
                                 or g["AutoScalingGroupName"].startswith(prefix)))

    rds = aws.client("rds")
    note("db instances", (d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
                          if tagged_for(tag_dict(d.get("TagList")), project, environment)
                          or d["DBInstanceIdentifier"].startswith(prefix)))
    note("db subnet groups", (g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]
                              if g["DBSubnetGroupName"].startswith(prefix) or tagged_for(tag_dict(
                                  rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"]),
                                  project, environment)))
    # RDS made the master password's secret (ManageMasterUserPassword), tagged with the database's
    # ARN, not with envctl's tags. AWS deletes it with the database ("If you delete a DB instance
    # that manages a secret in Secrets Manager, the secret and its metadata are deleted too",
    # RDS User Guide, rds-secrets-manager), and moto does the same, so a secret left behind here
    # would be a real leak, not an emulator artefact.
    secrets = aws.client("secretsmanager")
    note("db master secrets", (s["Name"] for s in secrets.list_secrets()["SecretList"]
                               if tag_dict(s.get("Tags")).get("aws:rds:primaryDBInstanceArn", "").endswith(
                                   f":db:{prefix}main")))

    events = aws.client("events")
    note("event rules", (r["Name"] for r in events.list_rules(NamePrefix=prefix)["Rules"]))
    logs = aws.client("logs")
    note("log groups", (g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]))
    note("lambda log groups", (g["logGroupName"] for g in logs.describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{prefix}")["logGroups"]))
    note("alarms", (a["AlarmName"] for a in aws.client("cloudwatch").describe_alarms(
        AlarmNamePrefix=prefix)["MetricAlarms"]))
    note("functions", (f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]
                       if f["FunctionName"].startswith(prefix)))
    note("queues", aws.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", []))
    note("topics", (t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]
                    if t["TopicArn"].rsplit(":", 1)[1].startswith(prefix)))
    note("tables", (t for t in aws.client("dynamodb").list_tables()["TableNames"] if t.startswith(prefix)))

    s3 = aws.client("s3")
    ours = []
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        try:
            tags = tag_dict(s3.get_bucket_tagging(Bucket=name)["TagSet"])
        except s3.exceptions.ClientError:
            tags = {}
        if tagged_for(tags, project, environment) or name == f"{prefix}uploads":
            versions = s3.list_object_versions(Bucket=name)
            ours.append(f"{name} ({len(versions.get('Versions', []))} versions, "
                        f"{len(versions.get('DeleteMarkers', []))} delete markers)")
    note("buckets", ours)
    return found


EVERY_CHECK = {
    "vpcs", "subnets", "security groups", "route tables", "internet gateways", "nat gateways", "elastic ips",
    "launch templates", "instances", "volumes", "tagging api", "roles", "roles by name", "instance profiles",
    "auto scaling groups", "db instances", "db subnet groups", "db master secrets", "event rules", "log groups",
    "lambda log groups", "alarms", "functions", "queues", "topics", "tables", "buckets"}


def _ended(ec2, arn: str) -> bool:
    """moto's tagging API still lists terminated instances and deleted NAT gateways (AWS drops
    them from it once they are gone)."""
    kind, _, id = arn.rpartition(":")[2].partition("/")
    if kind == "instance":
        [reservation] = ec2.describe_instances(InstanceIds=[id])["Reservations"]
        return reservation["Instances"][0]["State"]["Name"] == "terminated"
    if kind == "natgateway":
        return ec2.describe_nat_gateways(NatGatewayIds=[id])["NatGateways"][0]["State"] in ("deleted", "failed")
    return False


def put_versions(aws, bucket: str) -> None:
    """Objects with several versions and a delete marker in the (versioned) bucket.

    The bucket denies non-TLS requests with a Condition, which makes moto refuse every object
    call (MOTO-NOTES §4): the policy is lifted for the writes and put back as it was.
    """
    s3 = aws.client("s3")
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    for body in (b"<v1/>", b"<v2/>", b"<v3/>"):
        s3.put_object(Bucket=bucket, Key="incoming/partner-a.xml", Body=body)
    s3.put_object(Bucket=bucket, Key="incoming/partner-b.xml", Body=b"<b/>")
    s3.delete_object(Bucket=bucket, Key="incoming/partner-b.xml")          # a delete marker
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    versions = s3.list_object_versions(Bucket=bucket)
    assert (len(versions["Versions"]), len(versions["DeleteMarkers"])) == (4, 1)


class CallOrder:
    """Positions of the successful calls in the request log (refused deletes are left out)."""

    def __init__(self, aws):
        self.calls = [c.action for c in aws.log.snapshot() if 200 <= c.status < 300]

    def first(self, action: str) -> int:
        assert action in self.calls, f"{action} was never called"
        return self.calls.index(action)

    def last(self, action: str) -> int:
        assert action in self.calls, f"{action} was never called"
        return len(self.calls) - 1 - self.calls[::-1].index(action)


def refused(aws) -> list[tuple[str, str]]:
    """(action, code) of every delete the emulator refused as AWS would."""
    return [(r.action, r.code) for r in aws.server.rules.refused]


# ------------------------------------------------------------------ the whole system

def test_destroy_deletes_everything_of_the_environment_and_nothing_else(aws, envctl, system, slow_deletes):
    ec2, s3 = aws.client("ec2"), aws.client("s3")
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    defaults = {
        "subnets": {s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"]},
        "groups": {g["GroupId"] for g in ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["SecurityGroups"]},
    }
    assert envctl("create", "qa", "--yes").code == 0
    assert envctl("create", "qa2", "--yes").code == 0
    # Same names, made by hand without envctl's tags: a VPC named like ours, a group of our
    # group's name in it, a bucket whose name starts with ours.
    foreign_vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "acme-qa-vpc"}]}])["Vpc"]["VpcId"]
    foreign_group = ec2.create_security_group(GroupName="acme-qa-app", Description="by hand",
                                              VpcId=foreign_vpc)["GroupId"]
    s3.create_bucket(Bucket="acme-qa-uploads-copy", CreateBucketConfiguration={"LocationConstraint": aws.region})
    s3.put_object(Bucket="acme-qa-uploads-copy", Key="incoming/partner-a.xml", Body=b"<copy/>")
    put_versions(aws, "acme-qa-uploads")
    before = leftovers(aws)
    assert set(before) == EVERY_CHECK                    # each check sees what is there
    assert len(before["instances"]) == 2                 # the bastion and the auto scaling group's
    # moto does not tag an auto scaling instance's volume from the launch template: the volumes
    # are found by their attachments.
    attached = ec2.describe_volumes(Filters=[
        {"Name": "attachment.instance-id", "Values": before["instances"]}])["Volumes"]
    assert {a["InstanceId"] for v in attached for a in v["Attachments"]} == set(before["instances"])
    volumes = [v["VolumeId"] for v in attached]
    aws.log.clear()
    aws.server.rules.clear()

    result = envctl("destroy", "qa", "--yes")

    assert result.code == 0, ok(result)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:2] == ["acme/qa · eu-north-1 · account 123456789012", ""]
    assert f"Plan: {EVERYTHING} to destroy." in lines
    assert [timeless(line) for line in lines[-2:]] == [f"Done: {EVERYTHING} deleted in …s.",
                                                       "0 resources left in acme/qa."]
    assert leftovers(aws) == {}
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": volumes}])["Volumes"] == []

    # The order AWS needs. Deletes follow the spec's graph reversed, resource by resource (a
    # subnet waits for the instances in it, not for every instance), so the emulator's rules,
    # which refuse as AWS does a delete that something still depends on, are the check: nothing
    # was refused, not even a group another group's rule names (the graph orders those too).
    assert refused(aws) == [], "; ".join(f"{r.action} {r.target} by {r.blockers}" for r in aws.server.rules.refused)
    order = CallOrder(aws)
    assert order.last("DeleteNatGateway") < order.first("ReleaseAddress")
    assert order.last("DeleteNatGateway") < order.first("DetachInternetGateway")
    assert order.last("DeleteDBInstance") < order.first("DeleteDBSubnetGroup")
    # IAM (moto too) refuses DeleteRole while the role is in an instance profile (the role's
    # delete would then empty the profiles itself): the profile went first, so none was refused.
    assert [c.status for c in aws.log.snapshot() if c.action == "DeleteRole"] == [200, 200]
    assert order.last("DeleteInstanceProfile") < order.last("DeleteRole")
    # S3's REST calls are logged as method + path: DeleteObjects is a POST on the bucket, and
    # the bucket's own DELETE comes last (after DeleteBucketPolicy, on the same path); moto
    # refuses to delete a bucket that holds any version or delete marker.
    assert order.first("DELETE /acme-qa-uploads") < order.first("POST /acme-qa-uploads") \
        < order.last("DELETE /acme-qa-uploads")

    # Untouched: the default VPC, the other environment, what was made by hand.
    assert ec2.describe_vpcs(VpcIds=[default_vpc])["Vpcs"][0]["IsDefault"]
    assert {s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"]} == defaults["subnets"]
    assert {g["GroupId"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["SecurityGroups"]} == defaults["groups"]
    other = envctl("diff", "qa2")
    assert other.code == 0, ok(other)
    assert other.stdout.endswith(f"No changes. acme/qa2 matches the spec ({EVERYTHING} resources).\n")
    assert len(leftovers(aws, environment="qa2")["db master secrets"]) == 1
    assert ec2.describe_vpcs(VpcIds=[foreign_vpc])["Vpcs"][0]["Tags"] == [{"Key": "Name", "Value": "acme-qa-vpc"}]
    assert ec2.describe_security_groups(GroupIds=[foreign_group])["SecurityGroups"][0]["GroupName"] == "acme-qa-app"
    assert s3.get_object(Bucket="acme-qa-uploads-copy", Key="incoming/partner-a.xml")["Body"].read() == b"<copy/>"


# ------------------------------------------------------------------ asking first

def test_destroy_lists_what_it_will_delete_and_asks_for_the_environment_name(aws, envctl, system):
    assert envctl("create", "qa", "--yes").code == 0
    aws.log.clear()

    off_terminal = envctl("destroy", "qa")
    in_ci = envctl("destroy", "qa", input="qa\n", env={"CI": "true"})
    wrong = envctl("--interactive", "destroy", "qa", input="y\n")

    assert (off_terminal.code, off_terminal.stderr) == (1, NOT_INTERACTIVE)
    plan = off_terminal.stdout.split("\n\n")[1].splitlines()
    assert len(plan) == EVERYTHING
    assert all(line.startswith("- ") and "  delete  " in line for line in plan), plan
    assert "- db_instance/main           delete  acme-qa-main" in plan
    assert off_terminal.stdout.endswith(f"\nPlan: {EVERYTHING} to destroy.\n")
    assert (in_ci.code, in_ci.stdout, in_ci.stderr) == (1, off_terminal.stdout, NOT_INTERACTIVE)
    assert wrong.code == 1
    assert wrong.stdout == off_terminal.stdout + (f"Destroy all {EVERYTHING} resources of acme/qa? "
                                                  "Type 'qa' to confirm: y\n")
    assert wrong.stderr == "error: cancelled, nothing changed\n"
    assert aws.log.mutating() == []
    assert len(leftovers(aws)["vpcs"]) == 1

    right = envctl("--interactive", "destroy", "qa", input="qa\n")

    assert right.code == 0, ok(right)
    assert "Type 'qa' to confirm: qa\n" in right.stdout
    assert right.stdout.endswith("\n0 resources left in acme/qa.\n")
    assert leftovers(aws) == {}


# ------------------------------------------------------------------ protection

PROTECTED = """\
extends: base.yaml
account: "123456789012"
protected: true
network:
  cidr: 10.50.0.0/16
databases:
  main:
    deletion_protection: true
"""


def test_a_protected_environment_is_destroyed_only_with_force_and_keeps_a_final_snapshot(aws, envctl, system):
    (system / "safe.yaml").write_text(PROTECTED, encoding="utf-8")
    assert envctl("create", "safe", "--yes").code == 0
    rds, ddb = aws.client("rds"), aws.client("dynamodb")
    assert rds.describe_db_instances(DBInstanceIdentifier="acme-safe-main")["DBInstances"][0]["DeletionProtection"]
    assert ddb.describe_table(TableName="acme-safe-sessions")["Table"]["DeletionProtectionEnabled"]
    aws.log.clear()

    unforced = envctl("destroy", "safe", "--yes")
    unasked = envctl("destroy", "safe", "--force")

    assert unforced.code == 1
    assert unforced.stderr == "error: acme/safe is protected: destroy needs --force (nothing was deleted)\n"
    assert "- db_instance/main           delete [blocked]  acme-safe-main" in unforced.stdout
    assert unforced.stdout.endswith(f"Plan: {EVERYTHING} to destroy.\nblocked: {EVERYTHING} resources: "
                                    "the environment is protected: destroying it needs force\n")
    assert (unasked.code, unasked.stderr) == (1, NOT_INTERACTIVE)
    # With the spec gone, the resources' envctl:protected tags still say so.
    spec = (system / "safe.yaml").read_text(encoding="utf-8")
    (system / "safe.yaml").unlink()
    untold = envctl("destroy", "safe", "--project", "acme", "--yes")
    assert untold.code == 1, ok(untold)
    assert untold.stderr == "error: acme/safe is protected: destroy needs --force (nothing was deleted)\n"
    assert aws.log.mutating() == []
    (system / "safe.yaml").write_text(spec, encoding="utf-8")

    result = envctl("destroy", "safe", "--force", "--yes")

    assert result.code == 0, ok(result)
    assert result.stdout.endswith("\n0 resources left in acme/safe.\n")
    assert leftovers(aws, environment="safe") == {}
    [snapshot] = rds.describe_db_snapshots(DBInstanceIdentifier="acme-safe-main")["DBSnapshots"]
    assert re.fullmatch(r"acme-safe-main-final-\d{8}-\d{4}", snapshot["DBSnapshotIdentifier"]), snapshot
    assert snapshot["SnapshotType"] == "manual"               # kept: not deleted with the instance
    # Deletion protection was lifted by destroy --force, right before each delete.
    order = CallOrder(aws)
    assert order.first("ModifyDBInstance") < order.first("DeleteDBInstance")
    assert order.first("UpdateTable") < order.first("DeleteTable")


DB_PROTECTED_QA = """\
extends: base.yaml
account: "123456789012"
network:
  cidr: 10.30.0.0/16
databases:
  main:
    deletion_protection: true
"""


def test_a_database_with_deletion_protection_stays_without_force_and_destroy_says_what_is_left(
        aws, envctl, system):
    (system / "qa.yaml").write_text(DB_PROTECTED_QA, encoding="utf-8")
    assert envctl("create", "qa", "--yes").code == 0

    result = envctl("destroy", "qa", "--yes")

    assert result.code == 1
    assert ("✗ failed     db_instance/main           deleting db_instance (db_instance/main): RDS DB instance "
            "acme-qa-main (db_instance/main) has deletion protection on; set deletion_protection: false in the "
            "spec and run create before deleting it, or destroy with --force") in result.stdout.splitlines()
    assert "- skipped    db_subnet_group/main       waits for db_instance/main, which failed" in result.stdout
    left = result.stderr.splitlines()
    # What waits for the database stays too: destroy orders by the spec's graph, so its subnet
    # group, its subnets, the groups it is in (and those their rules name) and the VPC.
    assert left[0] == "8 resource(s) left:", left
    assert left[1] == f"  {'db_instance/main':<22}  acme-qa-main"
    assert [line.split()[0] for line in left[1:]] == [
        "db_instance/main", "db_subnet_group/main", "security_group/app", "security_group/bastion",
        "security_group/db", "subnet/data-a", "subnet/data-b", "vpc/main"]
    db = aws.client("rds").describe_db_instances(DBInstanceIdentifier="acme-qa-main")["DBInstances"][0]
    assert db["DeletionProtection"] and db["DBInstanceStatus"] == "available"

    forced = envctl("destroy", "qa", "--yes", "--force")

    assert forced.code == 0, ok(forced)
    assert "Plan: 8 to destroy." in forced.stdout
    assert leftovers(aws) == {}
    # Not a protected environment: no final snapshot.
    assert aws.client("rds").describe_db_snapshots(DBInstanceIdentifier="acme-qa-main")["DBSnapshots"] == []


# ------------------------------------------------------------------ from tags alone

def without_imports(specs: Path) -> None:
    """Take the `imports` queue (and the schedule and grant that use it) out of base.yaml."""
    base = yaml.safe_load((specs / "base.yaml").read_text(encoding="utf-8"))
    del base["queues"]["imports"]
    del base["schedules"]
    base["roles"]["app"]["allow"] = [a for a in base["roles"]["app"]["allow"] if a.get("queue") != "imports"]
    (specs / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")


def test_destroy_works_from_the_tags_when_the_spec_has_changed_or_is_gone(aws, envctl, system):
    assert envctl("create", "qa", "--yes").code == 0
    aws.log.clear()
    without_imports(system)

    changed = envctl("destroy", "qa")                       # shows the plan, then needs --yes

    assert (changed.code, changed.stderr) == (1, NOT_INTERACTIVE)
    assert f"Plan: {EVERYTHING} to destroy." in changed.stdout
    assert "\n- queue/imports " in changed.stdout and "\n- schedule/nightly-import " in changed.stdout

    (system / "qa.yaml").unlink()
    unnamed = envctl("destroy", "qa", "--yes")

    assert (unnamed.code, unnamed.stdout) == (1, "")
    assert unnamed.stderr == ("error: no spec for environment 'qa' in specs/: name the project with --project "
                              "to destroy it from its tags alone\n")
    assert aws.log.mutating() == []

    result = envctl("destroy", "qa", "--project", "acme", "--yes")

    assert result.code == 0, ok(result)
    assert result.stdout.startswith("acme/qa · eu-north-1 · account 123456789012\n\n")
    assert f"Plan: {EVERYTHING} to destroy." in result.stdout
    assert result.stdout.endswith("\n0 resources left in acme/qa.\n")
    assert leftovers(aws) == {}


# ------------------------------------------------------------------ interrupted work

def test_destroy_finishes_an_interrupted_create(aws, envctl, system, monkeypatch):
    with monkeypatch.context() as patch:
        stop_after(12, patch)
        first = envctl("create", "qa", "--yes", "--parallelism", "4")
    assert first.code == 1
    summary = re.fullmatch(r"Interrupted: (\d+) created, (\d+) not started in …s\.",
                           timeless(first.stdout.splitlines()[-1]))
    assert summary, first.stdout
    created = int(summary[1])
    assert created >= 12 and int(summary[2]) > 0            # partway: some made, not all
    assert leftovers(aws)["vpcs"]

    result = envctl("destroy", "qa", "--yes")

    assert result.code == 0, ok(result)
    assert f"Plan: {created} to destroy." in result.stdout
    assert result.stdout.endswith("\n0 resources left in acme/qa.\n")
    assert leftovers(aws) == {}


def test_destroy_finishes_an_interrupted_destroy_and_a_second_has_nothing_to_do(aws, envctl, system, monkeypatch):
    assert envctl("create", "qa", "--yes").code == 0
    with monkeypatch.context() as patch:
        stop_after(10, patch)
        first = envctl("destroy", "qa", "--yes", "--parallelism", "2")

    assert first.code == 1
    summary = re.fullmatch(r"Interrupted: (\d+) deleted, (\d+) not started in …s\.",
                           timeless(first.stdout.splitlines()[-1]))
    assert summary, first.stdout
    deleted, count = int(summary[1]), int(summary[2])
    assert deleted >= 10 and deleted + count == EVERYTHING
    left = first.stderr.splitlines()
    assert left[0] == f"{count} resource(s) left:"
    assert len(left) == count + 1 and "  vpc/main " in first.stderr

    second = envctl("destroy", "qa", "--yes")

    assert second.code == 0, ok(second)
    assert f"Plan: {count} to destroy." in second.stdout
    assert second.stdout.endswith("\n0 resources left in acme/qa.\n")
    assert leftovers(aws) == {}
    aws.log.clear()

    third = envctl("destroy", "qa", "--yes")

    assert (third.code, third.stdout, third.stderr) == (0, "Nothing to destroy: acme/qa has no resources.\n", "")
    assert aws.log.mutating() == []


# ------------------------------------------------------------------ create --prune

def test_create_prune_deletes_what_the_spec_no_longer_holds_and_only_with_prune(aws, envctl, system):
    assert envctl("create", "qa", "--yes").code == 0
    sqs, events = aws.client("sqs"), aws.client("events")
    imports = sqs.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]
    without_imports(system)

    diff = envctl("diff", "qa")

    assert diff.code == 2
    plan = diff.stdout.split("\n\n")[1].splitlines()
    assert [line.split()[:2] for line in plan if not line.startswith(" ")] == [
        ["~", "role/app"], ["?", "schedule/nightly-import"], ["?", "queue/imports"]]
    assert f"? queue/imports            not in spec  {imports}  (create --prune deletes it)" in plan
    assert diff.stdout.endswith(f"Plan: 0 to create, 1 to update, 0 to replace, 0 to delete; "
                                f"{EVERYTHING - 3} unchanged; 2 not in the spec (kept).\n")

    kept = envctl("create", "qa", "--yes")

    assert kept.code == 0, ok(kept)
    assert timeless(kept.stdout.splitlines()[-1]) == f"Done: 1 updated, {EVERYTHING - 1} unchanged in …s."
    assert sqs.list_queue_tags(QueueUrl=imports)["Tags"]["envctl:resource"] == "queue/imports"
    assert [r["Name"] for r in events.list_rules(NamePrefix="acme-qa-")["Rules"]] == ["acme-qa-nightly-import"]
    in_sync = envctl("diff", "qa")
    assert in_sync.code == 0
    assert in_sync.stdout.endswith(f"No changes. acme/qa matches the spec ({EVERYTHING - 2} resources; "
                                   "2 not in the spec).\n")
    aws.log.clear()

    pruned = envctl("create", "qa", "--prune", "--yes")

    assert pruned.code == 0, ok(pruned)
    assert pruned.stdout.split("\n\n")[1].splitlines() == [
        "- schedule/nightly-import  delete  acme-qa-nightly-import",
        f"- queue/imports            delete  {imports}"]
    assert timeless(pruned.stdout.splitlines()[-1]) == f"Done: 2 deleted, {EVERYTHING - 2} unchanged in …s."
    assert sqs.list_queues(QueueNamePrefix="acme-qa-imports").get("QueueUrls", []) == []
    assert events.list_rules(NamePrefix="acme-qa-")["Rules"] == []
    order = CallOrder(aws)
    assert order.last("DeleteRule") < order.first("DeleteQueue")        # the rule's target goes first
    # Nothing else changed (DynamoDB's calls are the environment lock's, engine/lock.py).
    assert [c.action for c in aws.log.mutating() if c.service != "dynamodb"] == [
        "RemoveTargets", "DeleteRule", "DeleteQueue"]
    after = envctl("diff", "qa")
    assert after.code == 0
    assert after.stdout.endswith(f"No changes. acme/qa matches the spec ({EVERYTHING - 2} resources).\n")


# ------------------------------------------------------------------ refusals before any delete

def test_destroy_refuses_credentials_of_another_account_before_any_other_call(aws, envctl, system):
    result = envctl("destroy", "prod", "--yes", "--force")

    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == ("error: the credentials belong to account 123456789012, but the spec pins account "
                             "210987654321 at specs/prod.yaml:3; use credentials for 210987654321 (--profile) or change the "
                             "spec's account:\n")
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]


def test_an_invalid_spec_stops_destroy_unless_the_project_is_named(aws, envctl, system):
    (system / "qa.yaml").write_text(DB_PROTECTED_QA.replace("deletion_protection: true", "deletion_protection: 3"),
                                    encoding="utf-8")

    broken = envctl("destroy", "qa", "--yes")

    assert (broken.code, broken.stdout) == (1, "")
    assert broken.stderr.splitlines()[-1] == ("error: the spec of 'qa' is invalid; fix it, or pass --project to "
                                              "destroy from tags alone")
    assert "specs/qa.yaml:7" in broken.stderr
    assert aws.log.snapshot() == []

    named = envctl("destroy", "qa", "--project", "acme", "--yes")

    assert named.code == 0, ok(named)
    assert named.stderr == "warning: the spec of 'qa' is invalid; destroying from the tags of project 'acme'\n"
    assert named.stdout == "Nothing to destroy: acme/qa has no resources.\n"
