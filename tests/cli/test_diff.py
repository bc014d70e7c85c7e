"""envctl diff ENV: the plan, exactly as printed; exit 0 in sync, 2 changes, 1 error.

Changes made by hand show as exactly that attribute; a change AWS cannot make in place names
the attribute that forces the replacement; resources the spec no longer holds are listed
and left alone unless --prune. User errors are one sentence, never a traceback.
"""
from __future__ import annotations

import json

import pytest

from tests.cli.conftest import NETWORK_BASE, SMALL_NETWORK

HEADER = "acme/qa · eu-north-1 · account 123456789012\n\n"



@pytest.fixture
def built(aws, envctl, network_specs):
    """The network-only qa environment, created; the request log cleared."""
    result = envctl("create", "qa", "--yes")
    assert result.code == 0, result.stdout + result.stderr
    aws.log.clear()
    return network_specs


def ec2_of(aws, describe: str, key: str, address: str) -> dict:
    [found] = getattr(aws.client("ec2"), describe)(Filters=[
        {"Name": "tag:envctl:environment", "Values": ["qa"]},
        {"Name": "tag:envctl:resource", "Values": [address]}])[key]
    return found


# ------------------------------------------------------------------ creating

def test_diff_of_a_new_environment_lists_what_create_makes(aws, envctl, write_spec):
    write_spec("qa.yaml", SMALL_NETWORK)

    result = envctl("diff", "qa")

    assert result.code == 2
    assert result.stdout == HEADER + """\
+ vpc/main               create  acme-qa-vpc
+ internet_gateway/main  create  acme-qa-igw
+ security_group/web     create  acme-qa-web
+ subnet/public-a        create  acme-qa-public-a
+ route_table/public     create  acme-qa-public

Plan: 5 to create, 0 to update, 0 to replace, 0 to delete; 0 unchanged.
"""
    assert result.stderr == ""
    assert aws.log.mutating() == []


def test_verbose_diff_shows_every_attribute_and_what_is_known_only_after_create(aws, envctl, write_spec):
    write_spec("qa.yaml", SMALL_NETWORK)

    result = envctl("-v", "diff", "qa")

    assert result.code == 2
    tags = ('    tags                     envctl:environment: "qa"\n'
            '                             envctl:project: "acme"\n'
            '                             envctl:resource: "{}"\n')
    assert result.stdout == HEADER + """\
+ vpc/main                   create  acme-qa-vpc
    cidr_block               "10.40.0.0/16"
    enable_dns_support       true
    enable_dns_hostnames     true
""" + tags.format("vpc/main") + """\
+ internet_gateway/main      create  acme-qa-igw
    vpc_id                   (known after create)
""" + tags.format("internet_gateway/main") + """\
+ security_group/web         create  acme-qa-web
    group_name               "acme-qa-web"
    description              "acme qa web"
    vpc_id                   (known after create)
    ingress                  {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "0.0.0.0/0"}
    egress                   {"protocol": "-1", "from_port": -1, "to_port": -1, "cidr": "0.0.0.0/0"}
""" + tags.format("security_group/web") + """\
+ subnet/public-a            create  acme-qa-public-a
    vpc_id                   (known after create)
    cidr_block               "10.40.0.0/24"
    availability_zone        "eu-north-1a"
    map_public_ip_on_launch  false
""" + tags.format("subnet/public-a") + """\
+ route_table/public         create  acme-qa-public
    vpc_id                   (known after create)
    routes                   {"destination": "0.0.0.0/0", "gateway_id": (known after create)}
    subnet_ids               (known after create)
""" + tags.format("route_table/public") + """
Plan: 5 to create, 0 to update, 0 to replace, 0 to delete; 0 unchanged.
"""


def test_diff_json_is_the_documented_plan(aws, envctl, write_spec):
    write_spec("qa.yaml", SMALL_NETWORK)

    result = envctl("diff", "qa", "--json")

    assert result.code == 2
    plan = json.loads(result.stdout)                     # nothing but the document on stdout
    assert set(plan) == {"version", "project", "environment", "summary", "changes"}
    assert (plan["version"], plan["project"], plan["environment"]) == (1, "acme", "qa")
    assert plan["summary"] == {"create": 5, "update": 0, "replace": 0, "delete": 0, "noop": 0, "orphan": 0}
    assert [c["address"] for c in plan["changes"]] == [
        "vpc/main", "internet_gateway/main", "security_group/web", "subnet/public-a", "route_table/public"]
    igw = plan["changes"][1]
    assert igw == {
        "address": "internet_gateway/main", "kind": "internet_gateway", "action": "create",
        "physical_name": "acme-qa-igw", "id": None,
        "changes": [
            {"path": "vpc_id", "before": None, "after": "(known after create)", "forces_replace": False},
            {"path": "tags", "before": None, "after": {"envctl:environment": "qa", "envctl:project": "acme",
                                                       "envctl:resource": "internet_gateway/main"},
             "forces_replace": False}],
        "replace_because": [], "blocked": None}


def test_diff_json_of_an_environment_in_sync(built, envctl):
    result = envctl("diff", "qa", "--json")

    plan = json.loads(result.stdout)
    assert result.code == 0
    assert plan["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "noop": 15, "orphan": 0}
    assert {c["action"] for c in plan["changes"]} == {"noop"}
    vpc = next(c for c in plan["changes"] if c["address"] == "vpc/main")
    assert vpc["id"].startswith("vpc-") and vpc["changes"] == []


# ------------------------------------------------------------------ drift

def test_a_change_by_hand_shows_as_exactly_that_attribute(aws, built, envctl):
    ec2 = aws.client("ec2")
    vpc = ec2_of(aws, "describe_vpcs", "Vpcs", "vpc/main")
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": False})
    app = ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/app")
    ec2.authorize_security_group_ingress(GroupId=app["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    aws.log.clear()

    result = envctl("diff", "qa")

    assert result.code == 2
    assert result.stdout == HEADER + """\
~ vpc/main                update  acme-qa-vpc
    enable_dns_hostnames  false → true
~ security_group/app      update  acme-qa-app
    ingress               - {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "10.0.0.0/8"}

Plan: 0 to create, 2 to update, 0 to replace, 0 to delete; 13 unchanged.
"""
    assert aws.log.mutating() == []

    repaired = envctl("create", "qa", "--yes")

    assert repaired.code == 0
    assert ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")[
        "EnableDnsHostnames"]["Value"] is True
    rules = ec2.describe_security_groups(GroupIds=[app["GroupId"]])["SecurityGroups"][0]["IpPermissions"]
    assert sorted(r["FromPort"] for r in rules) == [22, 8080]
    assert envctl("diff", "qa").code == 0


def test_a_tag_changed_by_hand_shows_as_that_key(aws, built, envctl):
    subnet = ec2_of(aws, "describe_subnets", "Subnets", "subnet/data-b")
    aws.client("ec2").create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "CostCenter", "Value": "9999"},
                                                                        {"Key": "Extra", "Value": "x"}])

    result = envctl("diff", "qa")

    assert result.code == 2
    assert result.stdout == HEADER + """\
~ subnet/data-b  update  acme-qa-data-b
    tags         CostCenter: "9999" → "4711"
                 - Extra: "x"

Plan: 0 to create, 1 to update, 0 to replace, 0 to delete; 14 unchanged.
"""


def test_a_resource_deleted_by_hand_is_created_and_its_users_learn_its_id_after(aws, built, envctl):
    ec2 = aws.client("ec2")
    bastion = ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/bastion")
    app = ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/app")
    ec2.revoke_security_group_ingress(GroupId=app["GroupId"], IpPermissions=app["IpPermissions"])
    ec2.delete_security_group(GroupId=bastion["GroupId"])

    result = envctl("diff", "qa")

    assert result.code == 2
    assert result.stdout == HEADER + """\
+ security_group/bastion  create  acme-qa-bastion
~ security_group/app      update  acme-qa-app
    ingress               + {"protocol": "tcp", "from_port": 8080, "to_port": 8080, "group_id": (known after create)}
                          + {"protocol": "tcp", "from_port": 22, "to_port": 22, "group_id": (known after create)}

Plan: 1 to create, 1 to update, 0 to replace, 0 to delete; 13 unchanged.
"""


def test_a_spec_change_aws_cannot_make_in_place_is_a_replacement_naming_the_attribute(aws, built, envctl):
    built("base.yaml", NETWORK_BASE.replace("data:    {prefix: 24}", "data:    {prefix: 25}"))
    old = {n: ec2_of(aws, "describe_subnets", "Subnets", f"subnet/data-{n}")["SubnetId"] for n in "ab"}

    result = envctl("diff", "qa")

    assert result.code == 2
    gone = "\n                       ".join(f'- "{i}"' for i in sorted(old.values()))
    assert result.stdout == HEADER + f"""\
~ route_table/private  update   acme-qa-private
    subnet_ids         {gone}
                       + (known after create)
                       + (known after create)
± subnet/data-a        replace  acme-qa-data-a  (cidr_block forces replacement)
    cidr_block         "10.30.48.0/24" → "10.30.48.0/25"
± subnet/data-b        replace  acme-qa-data-b  (cidr_block forces replacement)
    cidr_block         "10.30.49.0/24" → "10.30.48.128/25"

Plan: 0 to create, 1 to update, 2 to replace, 0 to delete; 12 unchanged.
"""
    plan = json.loads(envctl("diff", "qa", "--json").stdout)
    data_a = next(c for c in plan["changes"] if c["address"] == "subnet/data-a")
    assert (data_a["action"], data_a["replace_because"], data_a["id"]) == ("replace", ["cidr_block"], old["a"])

    assert envctl("create", "qa", "--yes").code == 0
    new = ec2_of(aws, "describe_subnets", "Subnets", "subnet/data-a")
    assert new["SubnetId"] != old["a"] and new["CidrBlock"] == "10.30.48.0/25"
    assert envctl("diff", "qa").code == 0


# ------------------------------------------------------------------ not in the spec

def test_resources_no_longer_in_the_spec_are_listed_and_kept(aws, built, envctl):
    built("base.yaml", NETWORK_BASE[:NETWORK_BASE.index("  db:")])
    db = ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/db")["GroupId"]

    result = envctl("diff", "qa")

    assert result.code == 0                                  # in sync with the spec: nothing to do
    assert result.stdout == HEADER + f"""\
? security_group/db  not in spec  {db}  (create --prune deletes it)

No changes. acme/qa matches the spec (14 resources; 1 not in the spec).
"""
    assert envctl("create", "qa", "--yes").code == 0
    assert aws.log.mutating() == []
    assert ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/db")["GroupId"] == db


def test_prune_deletes_what_is_no_longer_in_the_spec(aws, built, envctl):
    built("base.yaml", NETWORK_BASE[:NETWORK_BASE.index("  db:")])
    db = ec2_of(aws, "describe_security_groups", "SecurityGroups", "security_group/db")["GroupId"]

    planned = envctl("diff", "qa", "--prune")

    assert planned.code == 2
    assert planned.stdout == HEADER + f"""\
- security_group/db  delete  {db}

Plan: 0 to create, 0 to update, 0 to replace, 1 to delete; 14 unchanged.
"""
    pruned = envctl("create", "qa", "--yes", "--prune")
    assert pruned.code == 0
    assert [c.action for c in aws.log.mutating() if not c.action.startswith("Revoke")
            and c.service != "dynamodb"] == ["DeleteSecurityGroup"]          # dynamodb: create's lock
    groups = aws.client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": ["acme-qa-db"]}])
    assert groups["SecurityGroups"] == []
    assert envctl("diff", "qa", "--prune").code == 0


# ------------------------------------------------------------------ user errors: one sentence, exit 1

def test_an_unknown_environment(aws, envctl, network_specs):
    result = envctl("diff", "staging")

    assert result.code == 1
    assert result.stderr == "error: specs/staging.yaml: no spec for environment 'staging'; " \
                            "environments here: prod, qa\n"
    assert result.stdout == "" and result.clean
    assert aws.log.snapshot() == []


def test_a_broken_spec_names_file_line_and_key(aws, envctl, network_specs):
    network_specs("qa.yaml", "extends: base.yaml\nnetwork:\n  cidr: 10.30.0.0/33\n")

    result = envctl("diff", "qa")

    assert result.code == 1
    assert result.stderr.startswith("error: specs/qa.yaml:3: network.cidr: ")
    assert result.stderr.count("\n") == 1
    assert result.stdout == "" and result.clean
    assert aws.log.snapshot() == []


def test_an_unreachable_endpoint_is_one_sentence(envctl, network_specs, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    result = envctl("--endpoint-url", "http://127.0.0.1:9", "diff", "qa")

    assert result.code == 1
    assert result.stderr == 'error: cannot reach the endpoint http://127.0.0.1:9 (Could not connect to the endpoint ' \
                            'URL: "http://127.0.0.1:9/"); check --endpoint-url / AWS_ENDPOINT_URL, or start the sandbox\n'
    assert result.stdout == "" and result.clean


def test_missing_credentials_say_what_to_do(envctl, network_specs, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)

    result = envctl("diff", "qa")

    assert result.code == 1
    assert result.stderr == "error: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/" \
                            "AWS_SECRET_ACCESS_KEY, or use --sandbox\n"
    assert result.stdout == "" and result.clean
