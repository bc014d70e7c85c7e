"""envctl list (the environments in the account and region, found by tags) and envctl status
ENV (the live inventory of one environment against its spec), on the whole example system."""
from __future__ import annotations

import json
import re

from tests.cli.test_destroy import EVERYTHING, system  # noqa: F401  (the fixture)

SMALL_OTHER = """\
project: other
region: eu-north-1
account: "123456789012"
network:
  cidr: 10.40.0.0/16
  zones: 1
  nat: none
  tiers:
    public: {prefix: 24, internet: true}
"""
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ")


def created_tag(aws, environment: str, project: str = "acme") -> str:
    """The envctl:created tag of the environment's VPC, read with plain boto3."""
    [vpc] = aws.client("ec2").describe_vpcs(Filters=[
        {"Name": "tag:envctl:project", "Values": [project]},
        {"Name": "tag:envctl:environment", "Values": [environment]}])["Vpcs"]
    return {t["Key"]: t["Value"] for t in vpc["Tags"]}["envctl:created"]


# ------------------------------------------------------------------ list

def test_list_shows_each_environment_with_its_resource_count_and_creation_time(aws, envctl, system):
    (system / "other.yaml").write_text(SMALL_OTHER, encoding="utf-8")
    assert envctl("create", "qa", "--yes").code == 0
    assert envctl("create", "qa2", "--yes").code == 0
    assert envctl("create", "other", "--yes").code == 0
    # Untagged look-alikes and the default VPC are no environment.
    aws.client("ec2").create_vpc(CidrBlock="10.30.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "acme-qa3-vpc"}]}])
    aws.client("sqs").create_queue(QueueName="acme-qa3-work-units")
    created = {env: created_tag(aws, env, "other" if env == "other" else "acme") for env in ("qa", "qa2", "other")}
    assert all(STAMP.fullmatch(c) for c in created.values()), created

    result = envctl("list")
    as_json = envctl("list", "--json")

    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == (
        "PROJECT  ENVIRONMENT  RESOURCES  CREATED            EXPIRES\n"
        f"acme     qa           {EVERYTHING}         {created['qa']}  -\n"
        f"acme     qa2          {EVERYTHING}         {created['qa2']}  -\n"
        f"other    other        4          {created['other']}  -\n")
    assert (as_json.code, as_json.stderr) == (0, "")
    assert json.loads(as_json.stdout) == {"version": 1, "region": "eu-north-1", "environments": [
        {"project": "acme", "environment": "qa", "resources": EVERYTHING, "created": created["qa"], "expires": None},
        {"project": "acme", "environment": "qa2", "resources": EVERYTHING, "created": created["qa2"],
         "expires": None},
        {"project": "other", "environment": "other", "resources": 4, "created": created["other"], "expires": None},
    ]}


def test_list_leaves_out_destroyed_environments(aws, envctl, system):
    empty = envctl("list")
    assert (empty.code, empty.stdout) == (0, "No environments in eu-north-1 (account 123456789012).\n")
    assert envctl("create", "qa", "--yes").code == 0
    assert envctl("destroy", "qa", "--yes").code == 0

    # moto's tagging API still lists the terminated instance and the deleted NAT gateway of qa:
    # list counts live resources, so qa is gone.
    result = envctl("list")
    as_json = envctl("list", "--json")

    assert (result.code, result.stdout, result.stderr) == (
        0, "No environments in eu-north-1 (account 123456789012).\n", "")
    assert json.loads(as_json.stdout) == {"version": 1, "region": "eu-north-1", "environments": []}


# ------------------------------------------------------------------ status

def status_rows(stdout: str) -> dict[str, list[str]]:
    """address → [id, state, spec…] from status' table (after the header line and the titles)."""
    lines = stdout.splitlines()
    assert lines[0] == "acme/qa · eu-north-1 · account 123456789012"
    assert lines[1].split() == ["RESOURCE", "ID", "STATE", "SPEC"]
    rows = {}
    for line in lines[2:]:
        address, id, state, *spec = line.split()
        rows[address] = [id, state, " ".join(spec)]
    return rows


def test_status_says_per_resource_whether_it_is_in_sync_drifted_or_missing(aws, envctl, system):
    assert envctl("create", "qa", "--yes").code == 0
    sqs = aws.client("sqs")
    work_units = sqs.get_queue_url(QueueName="acme-qa-work-units")["QueueUrl"]
    vpc = aws.client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["acme-qa-vpc"]}])["Vpcs"][0]

    in_sync = envctl("status", "qa")

    assert (in_sync.code, in_sync.stderr) == (0, "")
    rows = status_rows(in_sync.stdout)
    assert len(rows) == EVERYTHING
    assert {spec for _, _, spec in rows.values()} == {"in sync"}
    assert rows["vpc/main"] == [vpc["VpcId"], "ready", "in sync"]
    assert rows["queue/work-units"] == [work_units, "ready", "in sync"]
    assert rows["nat_gateway/nat-a"][1] == "available"

    # By hand: a queue's visibility timeout changed, an alarm deleted.
    sqs.set_queue_attributes(QueueUrl=work_units, Attributes={"VisibilityTimeout": "30"})
    aws.client("cloudwatch").delete_alarms(AlarmNames=["acme-qa-db-cpu"])
    aws.log.clear()

    drifted = envctl("status", "qa")
    as_json = envctl("status", "qa", "--json")

    assert (drifted.code, drifted.stderr) == (0, "")
    rows = status_rows(drifted.stdout)
    assert rows["queue/work-units"] == [work_units, "ready", "drifted (visibility_timeout)"]
    assert rows["alarm/db-cpu"] == ["-", "absent", "missing"]
    assert {a for a, (_, _, spec) in rows.items() if spec != "in sync"} == {"queue/work-units", "alarm/db-cpu"}
    assert aws.log.mutating() == []                       # status only reads
    report = json.loads(as_json.stdout)
    assert (report["version"], report["project"], report["environment"]) == (1, "acme", "qa")
    entries = {e["address"]: e for e in report["resources"]}
    assert len(entries) == EVERYTHING
    assert entries["queue/work-units"] == {"address": "queue/work-units", "id": work_units, "state": "ready",
                                           "spec": "drifted", "differs": ["visibility_timeout"]}
    assert entries["alarm/db-cpu"] == {"address": "alarm/db-cpu", "id": None, "state": "absent",
                                       "spec": "missing", "differs": []}
    assert entries["vpc/main"] == {"address": "vpc/main", "id": vpc["VpcId"], "state": "ready", "spec": "in sync",
                                   "differs": []}


def test_status_lists_what_the_spec_no_longer_holds(aws, envctl, system):
    from tests.cli.test_destroy import without_imports

    assert envctl("create", "qa", "--yes").code == 0
    imports = aws.client("sqs").get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]
    without_imports(system)

    result = envctl("status", "qa")

    assert result.code == 0, result.stderr
    rows = status_rows(result.stdout)
    assert rows["queue/imports"] == [imports, "ready", "not in spec"]
    assert rows["schedule/nightly-import"] == ["acme-qa-nightly-import", "ready", "not in spec"]
    assert rows["role/app"][2].startswith("drifted (")         # its grant on the queue is gone from the spec
