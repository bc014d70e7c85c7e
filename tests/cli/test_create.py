"""envctl create ENV: builds what the spec says, asks first (or needs --yes), is idempotent,
isolates failures, and a second run finishes what an interrupted one started."""
from __future__ import annotations

import pytest

from envctl.engine import executor
from envctl.engine.events import Done
from tests.cli.conftest import NETWORK_BASE, QUEUE_AND_TOPIC, SMALL_NETWORK, timeless

ENVCTL_TAGS = ("envctl:project", "envctl:environment", "envctl:resource")
NOT_INTERACTIVE = ("error: not running on a terminal (or CI is set), so envctl will not prompt: "
                   "pass --yes to go ahead\n")


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def ours(ec2, describe: str, key: str, **filters) -> list[dict]:
    """The EC2 resources tagged as environment acme/qa (plus `filters`), via plain boto3."""
    wanted = [{"Name": "tag:envctl:project", "Values": ["acme"]}, {"Name": "tag:envctl:environment", "Values": ["qa"]}]
    wanted += [{"Name": k.replace("_", "-"), "Values": [v]} for k, v in filters.items()]
    return getattr(ec2, describe)(Filters=wanted)[key]


def by_resource(resources: list[dict]) -> dict[str, dict]:
    return {tags(r)["envctl:resource"]: r for r in resources}


# ------------------------------------------------------------------ issue 3: the network, done when

def test_create_builds_the_network_and_security_groups(aws, envctl, network_specs):
    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stdout + result.stderr
    assert result.stderr == ""
    ec2 = aws.client("ec2")
    [vpc] = ours(ec2, "describe_vpcs", "Vpcs")
    vpc_id = vpc["VpcId"]
    assert vpc["CidrBlock"] == "10.30.0.0/16"
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]

    [igw] = ours(ec2, "describe_internet_gateways", "InternetGateways")
    assert [a["VpcId"] for a in igw["Attachments"]] == [vpc_id]

    subnets = by_resource(ours(ec2, "describe_subnets", "Subnets", vpc_id=vpc_id))
    assert {a: (s["CidrBlock"], s["AvailabilityZone"]) for a, s in subnets.items()} == {
        "subnet/public-a": ("10.30.0.0/24", "eu-north-1a"), "subnet/public-b": ("10.30.1.0/24", "eu-north-1b"),
        "subnet/private-a": ("10.30.16.0/20", "eu-north-1a"), "subnet/private-b": ("10.30.32.0/20", "eu-north-1b"),
        "subnet/data-a": ("10.30.48.0/24", "eu-north-1a"), "subnet/data-b": ("10.30.49.0/24", "eu-north-1b"),
    }
    subnet_id = {a.split("/")[1]: s["SubnetId"] for a, s in subnets.items()}

    [eip] = ours(ec2, "describe_addresses", "Addresses")
    assert eip["Domain"] == "vpc"
    [nat] = ours(ec2, "describe_nat_gateways", "NatGateways")
    assert nat["State"] == "available" and nat["SubnetId"] == subnet_id["public-a"]
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == eip["AllocationId"]

    tables = by_resource(ours(ec2, "describe_route_tables", "RouteTables", vpc_id=vpc_id))
    assert set(tables) == {"route_table/public", "route_table/private"}
    public, private = tables["route_table/public"], tables["route_table/private"]
    assert [(r["DestinationCidrBlock"], r.get("GatewayId")) for r in public["Routes"]
            if r["DestinationCidrBlock"] == "0.0.0.0/0"] == [("0.0.0.0/0", igw["InternetGatewayId"])]
    assert [(r["DestinationCidrBlock"], r.get("NatGatewayId")) for r in private["Routes"]
            if r["DestinationCidrBlock"] == "0.0.0.0/0"] == [("0.0.0.0/0", nat["NatGatewayId"])]
    assert {a["SubnetId"] for a in public["Associations"]} == {subnet_id["public-a"], subnet_id["public-b"]}
    assert {a["SubnetId"] for a in private["Associations"]} == {
        subnet_id[n] for n in ("private-a", "private-b", "data-a", "data-b")}

    groups = by_resource(ours(ec2, "describe_security_groups", "SecurityGroups", vpc_id=vpc_id))
    assert set(groups) == {"security_group/bastion", "security_group/app", "security_group/db"}
    group_id = {a.split("/")[1]: g["GroupId"] for a, g in groups.items()}

    def ingress(name: str) -> set[tuple]:
        return {(p["IpProtocol"], p["FromPort"], p["ToPort"],
                 *(r["CidrIp"] for r in p["IpRanges"]), *(g["GroupId"] for g in p["UserIdGroupPairs"]))
                for p in groups[f"security_group/{name}"]["IpPermissions"]}

    assert ingress("bastion") == {("tcp", 22, 22, "203.0.113.0/24")}
    assert ingress("app") == {("tcp", 8080, 8080, group_id["bastion"]), ("tcp", 22, 22, group_id["bastion"])}
    assert ingress("db") == {("tcp", 5432, 5432, group_id["app"])}
    assert groups["security_group/db"]["GroupName"] == "acme-qa-db"

    # Every resource carries the three envctl tags (its own address), the spec's tags and a Name.
    everything = {"vpc/main": vpc, "internet_gateway/main": igw, "eip/nat-a": eip, "nat_gateway/nat-a": nat,
                  **subnets, **tables, **groups}
    assert len(everything) == 15
    for address, resource in everything.items():
        name = {"vpc/main": "acme-qa-vpc", "internet_gateway/main": "acme-qa-igw"}.get(
            address, f"acme-qa-{address.split('/')[1]}")
        assert {k: tags(resource).get(k) for k in (*ENVCTL_TAGS, "CostCenter", "Name")} == {
            "envctl:project": "acme", "envctl:environment": "qa", "envctl:resource": address,
            "CostCenter": "4711", "Name": name}, address

    # In sync: diff says so, and a second create makes no mutating call.
    diff = envctl("diff", "qa")
    assert diff.code == 0
    assert diff.stdout.endswith("\nNo changes. acme/qa matches the spec (15 resources).\n")
    aws.log.clear()
    again = envctl("create", "qa", "--yes")
    assert again.code == 0
    assert again.stdout == ("acme/qa · eu-north-1 · account 123456789012\n\n"
                            "No changes. acme/qa matches the spec (15 resources).\n")
    assert aws.log.mutating() == []
    assert len(ours(ec2, "describe_vpcs", "Vpcs")) == 1


def test_a_spec_pinning_another_account_is_refused_before_any_other_call(aws, envctl, network_specs):
    result = envctl("create", "prod", "--yes")

    assert result.code == 1
    assert [c.action for c in aws.log.snapshot()] == ["GetCallerIdentity"]
    assert result.stderr == ("error: the credentials belong to account 123456789012, but the spec pins account "
                             "210987654321 at specs/prod.yaml:2; use credentials for 210987654321 (--profile) or change the "
                             "spec's account:\n")
    assert result.stdout == ""
    assert result.clean


# ------------------------------------------------------------------ output



def test_create_shows_the_plan_then_each_resource_then_a_summary(aws, envctl, write_spec):
    write_spec("qa.yaml", SMALL_NETWORK)

    result = envctl("create", "qa", "--yes", "--parallelism", "1")

    assert result.code == 0, result.stderr
    ec2 = aws.client("ec2")
    ids = {}
    for describe, key, id_key in (("describe_vpcs", "Vpcs", "VpcId"),
                                  ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
                                  ("describe_subnets", "Subnets", "SubnetId"),
                                  ("describe_route_tables", "RouteTables", "RouteTableId"),
                                  ("describe_security_groups", "SecurityGroups", "GroupId")):
        ids.update({tags(r)["envctl:resource"]: r[id_key] for r in ours(ec2, describe, key)})
    # One worker: after the gateway the subnet, which the route table waits for, then the security group.
    assert timeless(result.stdout) == f"""\
acme/qa · eu-north-1 · account 123456789012

+ vpc/main               create  acme-qa-vpc
+ internet_gateway/main  create  acme-qa-igw
+ security_group/web     create  acme-qa-web
+ subnet/public-a        create  acme-qa-public-a
+ route_table/public     create  acme-qa-public

Plan: 5 to create, 0 to update, 0 to replace, 0 to delete; 0 unchanged.
  creating   vpc/main
✓ created    vpc/main               {ids["vpc/main"]}  (…s)
  creating   internet_gateway/main
✓ created    internet_gateway/main  {ids["internet_gateway/main"]}  (…s)
  creating   subnet/public-a
✓ created    subnet/public-a        {ids["subnet/public-a"]}  (…s)
  creating   security_group/web
✓ created    security_group/web     {ids["security_group/web"]}  (…s)
  creating   route_table/public
✓ created    route_table/public     {ids["route_table/public"]}  (…s)
Done: 5 created in …s.
"""
    assert result.stderr == ""


def test_quiet_create_prints_nothing_when_all_went_well(aws, envctl, write_spec):
    write_spec("qa.yaml", SMALL_NETWORK)

    result = envctl("-q", "create", "qa", "--yes")

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert len(ours(aws.client("ec2"), "describe_security_groups", "SecurityGroups")) == 1


def test_without_yes_and_no_terminal_create_refuses_and_changes_nothing(aws, envctl, network_specs):
    result = envctl("create", "qa")

    assert result.code == 1
    assert result.stderr == NOT_INTERACTIVE
    assert "Plan: 15 to create" in result.stdout            # the plan is shown, then the refusal
    assert aws.log.mutating() == []
    assert ours(aws.client("ec2"), "describe_vpcs", "Vpcs") == []


def test_ci_never_prompts_even_with_input_at_hand(aws, envctl, network_specs):
    result = envctl("create", "qa", input="y\n", env={"CI": "true"})

    assert result.code == 1
    assert result.stderr == NOT_INTERACTIVE
    assert aws.log.mutating() == []


def test_interactive_no_cancels(aws, envctl, network_specs):
    result = envctl("--interactive", "create", "qa", input="n\n")

    assert result.code == 1
    assert "Apply these changes to acme/qa? [y/N]: n\n" in result.stdout
    assert result.stderr == "error: cancelled, nothing changed\n"
    assert aws.log.mutating() == []


def test_interactive_yes_applies(aws, envctl, network_specs):
    result = envctl("--interactive", "create", "qa", input="y\n")

    assert result.code == 0, result.stderr
    assert "Apply these changes to acme/qa? [y/N]: y\n" in result.stdout
    assert timeless(result.stdout).endswith("\nDone: 15 created in …s.\n")
    assert len(ours(aws.client("ec2"), "describe_vpcs", "Vpcs")) == 1


def test_no_prompt_when_there_is_nothing_to_do(aws, envctl, network_specs):
    assert envctl("create", "qa", "--yes").code == 0

    result = envctl("--interactive", "create", "qa", input="")

    assert result.code == 0
    assert "Apply" not in result.stdout and "Done" not in result.stdout


# ------------------------------------------------------------------ failures and reruns

QUEUES = """\
    queues:
      work-units: {}
      imports: {}
    schedules:
      nightly-import:
        cron: "0 2 * * ? *"
        send:
          queue: imports
          message: {job: import-partner-files}
    """


@pytest.fixture
def queue_specs(network_specs):
    network_specs("base.yaml", NETWORK_BASE + QUEUES.replace("\n    ", "\n").lstrip())
    return network_specs


def test_a_name_taken_by_a_foreign_resource_fails_that_resource_only(aws, envctl, queue_specs):
    sqs = aws.client("sqs")
    foreign = sqs.create_queue(QueueName="acme-qa-imports")["QueueUrl"]

    result = envctl("create", "qa", "--yes")

    assert result.code == 1
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("✗")]
    assert failed == ["✗ failed     queue/imports            creating queue (queue/imports): "
                      "SQS queue acme-qa-imports already exists and is not managed by envctl for this "
                      "environment; rename it in the spec or remove the existing one"]
    assert [line for line in lines if line.startswith("- skipped")] == [
        "- skipped    schedule/nightly-import  waits for queue/imports, which failed"]
    assert timeless(lines[-1]) == "Failed: 16 created, 1 failed, 1 skipped in …s."
    assert result.clean
    # Independent resources were created; the foreign queue is untouched (no envctl tags).
    assert len(ours(aws.client("ec2"), "describe_vpcs", "Vpcs")) == 1
    assert "acme-qa-work-units" in sqs.get_queue_url(QueueName="acme-qa-work-units")["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=foreign).get("Tags", {}) == {}
    assert aws.client("events").list_rules(NamePrefix="acme-qa-")["Rules"] == []


def test_after_the_clash_is_cleared_create_finishes_the_job_without_duplicates(aws, envctl, queue_specs):
    sqs = aws.client("sqs")
    foreign = sqs.create_queue(QueueName="acme-qa-imports")["QueueUrl"]
    assert envctl("create", "qa", "--yes").code == 1
    sqs.delete_queue(QueueUrl=foreign)

    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stdout
    plan = result.stdout.split("\n\n")[1].splitlines()
    assert plan == ["+ queue/imports            create  acme-qa-imports",
                    "+ schedule/nightly-import  create  acme-qa-nightly-import"]
    assert timeless(result.stdout.splitlines()[-1]) == "Done: 2 created, 16 unchanged in …s."
    imports = sqs.get_queue_url(QueueName="acme-qa-imports")["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=imports)["Tags"]["envctl:resource"] == "queue/imports"
    assert [r["Name"] for r in aws.client("events").list_rules(NamePrefix="acme-qa-")["Rules"]] == [
        "acme-qa-nightly-import"]
    assert envctl("diff", "qa").code == 0


def stop_after(count: int, monkeypatch) -> None:
    """Make create's executor stop (as on Ctrl-C) once `count` resources are done, as the
    first Ctrl-C does: no new work starts, calls in flight finish."""
    real = executor.execute

    def execute(*args, on_event, stop, **kwargs):
        done = 0

        def on(event):
            nonlocal done
            on_event(event)
            done += isinstance(event, Done)
            if done >= count:
                stop.set()

        return real(*args, on_event=on, stop=stop, **kwargs)

    monkeypatch.setattr(executor, "execute", execute)


def test_an_interrupted_create_is_finished_by_the_next_one(aws, envctl, network_specs, monkeypatch):
    ec2 = aws.client("ec2")
    with monkeypatch.context() as patch:
        stop_after(4, patch)
        first = envctl("create", "qa", "--yes", "--parallelism", "2")

    assert first.code == 1
    last = timeless(first.stdout.splitlines()[-1])
    assert last.startswith("Interrupted: ") and last.endswith(" not started in …s."), last
    assert first.stdout.count("\n✓ created ") >= 4
    assert len(ours(ec2, "describe_vpcs", "Vpcs")) == 1

    second = envctl("create", "qa", "--yes")

    assert second.code == 0, second.stdout
    assert "+ vpc/main" not in second.stdout                            # adopted, not created again
    assert len(ours(ec2, "describe_vpcs", "Vpcs")) == 1
    assert len(ours(ec2, "describe_subnets", "Subnets")) == 6
    assert len(ours(ec2, "describe_security_groups", "SecurityGroups")) == 3
    assert len(ours(ec2, "describe_route_tables", "RouteTables")) == 2
    assert len(ours(ec2, "describe_nat_gateways", "NatGateways")) == 1
    assert len(ours(ec2, "describe_addresses", "Addresses")) == 1
    aws.log.clear()
    assert envctl("create", "qa", "--yes").code == 0
    assert aws.log.mutating() == []


# ------------------------------------------------------------------ lifecycle tags follow the spec



def lifecycle_tags(aws) -> dict[str, dict[str, str]]:
    """address → envctl:protected / envctl:expires of acme/qa's queue and topic, read with plain boto3."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.get_queue_url(QueueName="acme-qa-work")["QueueUrl"]
    arn = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":acme-qa-alarms"))
    found = {"queue/work": sqs.list_queue_tags(QueueUrl=url)["Tags"],
             "topic/alarms": {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=arn)["Tags"]}}
    return {a: {k: v for k, v in tags.items() if k in ("envctl:protected", "envctl:expires")}
            for a, tags in found.items()}


def tag_calls(aws) -> list[str]:
    """The mutating calls made, but for the environment lock's (a DynamoDB item)."""
    return sorted({c.action for c in aws.log.mutating() if c.service != "dynamodb"})


def test_a_spec_no_longer_protected_takes_the_protected_tag_off(aws, envctl, write_spec):
    write_spec("qa.yaml", QUEUE_AND_TOPIC + "protected: true\n")
    assert envctl("create", "qa", "--yes").code == 0
    assert lifecycle_tags(aws) == {a: {"envctl:protected": "true"} for a in ("queue/work", "topic/alarms")}
    write_spec("qa.yaml", QUEUE_AND_TOPIC)
    assert envctl("diff", "qa").code == 0                   # a lifecycle tag is not a change of the spec's
    aws.log.clear()

    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert result.stdout.endswith("No changes. acme/qa matches the spec (2 resources).\n"
                                  "Removed envctl:protected from 2 resource(s) of acme/qa: "
                                  "its spec no longer says protected.\n")
    assert lifecycle_tags(aws) == {"queue/work": {}, "topic/alarms": {}}
    assert tag_calls(aws) == ["UntagQueue", "UntagResource"]        # tags alone
    # Destroy no longer needs --force.
    assert envctl("destroy", "qa", "--yes").code == 0


def test_an_updated_resource_loses_the_protected_tag_in_the_same_run(aws, envctl, write_spec):
    write_spec("qa.yaml", QUEUE_AND_TOPIC + "protected: true\n")
    assert envctl("create", "qa", "--yes").code == 0
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="acme-qa-work")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99"})      # drift: an UPDATE
    write_spec("qa.yaml", QUEUE_AND_TOPIC)

    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert "Done: 1 updated, 1 unchanged" in result.stdout
    assert "Removed envctl:protected from 1 resource(s) of acme/qa" in result.stdout      # the topic
    assert lifecycle_tags(aws) == {"queue/work": {}, "topic/alarms": {}}
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == {
        "VisibilityTimeout": "30"}


def test_a_ttl_removed_from_the_spec_takes_the_expiry_off(aws, envctl, write_spec):
    write_spec("qa.yaml", QUEUE_AND_TOPIC + "ttl: 3d\n")
    assert envctl("create", "qa", "--yes").code == 0
    assert all("envctl:expires" in tags for tags in lifecycle_tags(aws).values())
    write_spec("qa.yaml", QUEUE_AND_TOPIC)
    aws.log.clear()

    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert result.stdout.endswith("Removed the expiry (envctl:expires) of 2 resource(s) of acme/qa: "
                                  "it has no ttl now.\n")
    assert lifecycle_tags(aws) == {"queue/work": {}, "topic/alarms": {}}
    assert tag_calls(aws) == ["UntagQueue", "UntagResource"]
    assert envctl("diff", "qa").code == 0
    aws.log.clear()
    assert envctl("create", "qa", "--yes").code == 0         # and then nothing more to do
    assert tag_calls(aws) == []


def test_an_environment_made_protected_trades_its_expiry_for_the_protected_tag(aws, envctl, write_spec):
    write_spec("qa.yaml", QUEUE_AND_TOPIC + "ttl: 3d\n")
    assert envctl("create", "qa", "--yes").code == 0
    write_spec("qa.yaml", QUEUE_AND_TOPIC + "protected: true\n")

    result = envctl("create", "qa", "--yes")

    assert result.code == 0, result.stderr
    assert lifecycle_tags(aws) == {a: {"envctl:protected": "true"} for a in ("queue/work", "topic/alarms")}
    assert "Removed the expiry (envctl:expires) of 2 resource(s)" in result.stdout
    assert "Marked 2 resource(s) of acme/qa as protected (envctl:protected)." in result.stdout
